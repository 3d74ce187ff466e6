use super::*;

/// Runs a handler on `$shard` and applies its output.
macro_rules! step {
    ($shard:ident, $method:ident($($arg:expr),* $(,)?) $(,)?) => {{
        let output = $shard.$method($($arg),*);
        apply(&mut $shard, output)
    }};
}

macro_rules! step_end {
    ($shard:ident, $($arg:expr),* $(,)?) => {{
        let output = shard_end(&mut $shard, $($arg),*);
        apply(&mut $shard, output)
    }};
}

/// What the runtime does with a handler's output: replay its records (after a successful write) and answer.
fn apply<R>(shard: &mut TransactionCoordinatorShard, output: Output<R>) -> R {
    for record in &output.records {
        shard.replay(record);
    }
    output.response
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

fn init(shard: &mut TransactionCoordinatorShard, now: i64) -> (ProducerId, ProducerEpoch) {
    let out = shard.init_producer_id("tx", 60_000, None, None, now);
    let out = match out.response {
        InitOutcome::NeedsProducerId => {
            shard.init_producer_id("tx", 60_000, None, Some(ProducerId(1000)), now)
        }
        _ => out,
    };
    match apply(shard, out) {
        InitOutcome::Initialized(id, epoch) => (id, epoch),
        other => panic!("not initialised: {other:?}"),
    }
}

#[test]
fn a_new_transactional_id_needs_a_producer_id_then_starts_at_epoch_0() {
    let mut shard = TransactionCoordinatorShard::new();
    let first = shard.init_producer_id("tx", 60_000, None, None, 1);
    assert_eq!(first.response, InitOutcome::NeedsProducerId);
    assert!(first.records.is_empty());
    assert_eq!(init(&mut shard, 1), (ProducerId(1000), ProducerEpoch(0)));
    assert_eq!(
        init(&mut shard, 2),
        (ProducerId(1000), ProducerEpoch(1)),
        "re-init bumps the epoch"
    );
}

#[test]
fn a_transaction_commits_through_prepare_and_complete() {
    let mut shard = TransactionCoordinatorShard::new();
    let (pid, epoch) = init(&mut shard, 1);
    let added = shard.add_partitions("tx", pid, epoch, &[tp("a", 0), tp("b", 1)], 5);
    assert_eq!(added.records.len(), 1);
    assert_eq!(apply(&mut shard, added), Ok(()));
    let again = shard.add_partitions("tx", pid, epoch, &[tp("a", 0)], 6);
    assert!(
        again.records.is_empty(),
        "partitions already in the transaction need no record"
    );
    let description = shard.describe("tx").expect("described");
    assert_eq!(description.state, TransactionState::Ongoing);
    assert_eq!(description.start_timestamp_ms, 5);

    let ended = step_end!(shard, pid, epoch, true);
    let Ok(EndOutcome::Prepared(completion)) = ended else {
        panic!("not prepared: {ended:?}");
    };
    assert!(completion.commit);
    assert_eq!(completion.partitions, vec![tp("a", 0), tp("b", 1)]);
    // While the markers are written, the producer must wait.
    assert_eq!(
        step!(shard, add_partitions("tx", pid, epoch, &[tp("a", 0)], 7)),
        Err(TransactionError::ConcurrentTransactions)
    );
    assert_eq!(
        step_end!(shard, pid, epoch, true),
        Err(TransactionError::ConcurrentTransactions)
    );
    step!(shard, complete(&completion, 8));
    assert_eq!(
        shard.describe("tx").map(|d| d.state),
        Ok(TransactionState::CompleteCommit)
    );
    assert!(shard
        .describe("tx")
        .expect("described")
        .partitions
        .is_empty());
    assert_eq!(
        step_end!(shard, pid, epoch, true),
        Ok(EndOutcome::AlreadyComplete),
        "a retried commit succeeds"
    );
    assert_eq!(
        step_end!(shard, pid, epoch, false),
        Err(TransactionError::InvalidTxnState)
    );
    // The next transaction starts afresh.
    assert_eq!(
        step!(shard, add_partitions("tx", pid, epoch, &[tp("c", 0)], 9)),
        Ok(())
    );
    assert_eq!(
        shard.describe("tx").expect("described").partitions,
        vec![tp("c", 0)]
    );
}

fn shard_end(
    shard: &mut TransactionCoordinatorShard,
    pid: ProducerId,
    epoch: ProducerEpoch,
    commit: bool,
) -> Output<Result<EndOutcome, TransactionError>> {
    shard.end_transaction("tx", pid, epoch, commit, 10)
}

#[test]
fn a_second_producer_fences_the_first_and_aborts_its_transaction() {
    let mut shard = TransactionCoordinatorShard::new();
    let (pid, epoch) = init(&mut shard, 1);
    step!(shard, add_partitions("tx", pid, epoch, &[tp("a", 0)], 2),).expect("added");
    // The new incarnation: the open transaction is aborted with a bumped epoch; it must retry.
    let fencing = step!(shard, init_producer_id("tx", 60_000, None, None, 3),);
    let InitOutcome::Fencing(completion) = fencing else {
        panic!("not fencing: {fencing:?}");
    };
    assert!(!completion.commit);
    assert_eq!(completion.producer_epoch, ProducerEpoch(epoch.0 + 1));
    assert_eq!(
        step!(shard, init_producer_id("tx", 60_000, None, None, 4)),
        InitOutcome::Failed(TransactionError::ConcurrentTransactions)
    );
    step!(shard, complete(&completion, 5));
    let (pid2, epoch2) = init(&mut shard, 6);
    assert_eq!((pid2, epoch2), (pid, ProducerEpoch(epoch.0 + 2)));
    // The old one is fenced everywhere.
    assert_eq!(
        step!(shard, add_partitions("tx", pid, epoch, &[tp("a", 0)], 7)),
        Err(TransactionError::ProducerFenced)
    );
    assert_eq!(
        step_end!(shard, pid, epoch, true),
        Err(TransactionError::ProducerFenced)
    );
    assert_eq!(
        step!(
            shard,
            add_partitions("tx", ProducerId(1), epoch2, &[tp("a", 0)], 7)
        ),
        Err(TransactionError::InvalidProducerIdMapping)
    );
}

#[test]
fn kip_360_reinit_with_the_current_epoch_bumps_and_a_retry_is_answered() {
    let mut shard = TransactionCoordinatorShard::new();
    let (pid, epoch) = init(&mut shard, 1);
    let bumped = step!(
        shard,
        init_producer_id("tx", 60_000, Some((pid, epoch)), None, 2),
    );
    assert_eq!(
        bumped,
        InitOutcome::Initialized(pid, ProducerEpoch(epoch.0 + 1))
    );
    // The answer was lost; the producer asks again with the epoch it had.
    let retried = step!(
        shard,
        init_producer_id("tx", 60_000, Some((pid, epoch)), None, 3),
    );
    assert_eq!(
        retried,
        InitOutcome::Initialized(pid, ProducerEpoch(epoch.0 + 1))
    );
    let stale = step!(
        shard,
        init_producer_id("tx", 60_000, Some((ProducerId(5), epoch)), None, 4),
    );
    assert_eq!(stale, InitOutcome::Failed(TransactionError::ProducerFenced));
}

#[test]
fn an_exhausted_epoch_rotates_the_producer_id() {
    let mut shard = TransactionCoordinatorShard::new();
    let (pid, _) = init(&mut shard, 1);
    let mut meta = shard.transactions.get("tx").cloned().expect("present");
    meta.stored.producer_epoch = ProducerEpoch(i16::MAX - 1);
    shard.replay(&TransactionRecord {
        transactional_id: "tx".into(),
        value: Some(meta.stored),
    });
    let out = shard.init_producer_id("tx", 60_000, None, None, 2);
    assert_eq!(out.response, InitOutcome::NeedsProducerId);
    let rotated = step!(
        shard,
        init_producer_id("tx", 60_000, None, Some(ProducerId(2000)), 2),
    );
    assert_eq!(
        rotated,
        InitOutcome::Initialized(ProducerId(2000), ProducerEpoch(0))
    );
    let value = &shard.transactions["tx"].stored;
    assert_eq!(value.previous_producer_id, pid);
}

#[test]
fn a_timed_out_transaction_is_aborted_with_a_bumped_epoch() {
    let mut shard = TransactionCoordinatorShard::new();
    let (pid, epoch) = init(&mut shard, 0);
    step!(
        shard,
        add_partitions("tx", pid, epoch, &[tp("a", 0)], 1_000),
    )
    .expect("added");
    assert!(
        shard.timed_out(61_000).is_empty(),
        "not yet: start + timeout is not passed"
    );
    let expired = shard.timed_out(61_001);
    assert_eq!(expired, vec![("tx".to_string(), pid, epoch)]);
    let completion = step!(shard, abort_timed_out("tx", pid, epoch, 61_001)).expect("aborting");
    assert_eq!(completion.producer_epoch, ProducerEpoch(epoch.0 + 1));
    assert!(!completion.commit);
    assert_eq!(
        step_end!(shard, pid, epoch, true),
        Err(TransactionError::ProducerFenced),
        "the producer that let it expire is fenced"
    );
    assert!(step!(shard, abort_timed_out("tx", pid, epoch, 61_002)).is_none());
}

#[test]
fn a_reload_rebuilds_the_same_state_and_finds_decisions_to_complete() {
    let mut shard = TransactionCoordinatorShard::new();
    let mut log = Vec::new();
    let mut run = |shard: &mut TransactionCoordinatorShard, output: Output<()>| {
        log.extend(output.records.iter().cloned());
        apply(shard, output);
    };
    let out = shard.init_producer_id("tx", 60_000, None, Some(ProducerId(7)), 1);
    let out = Output {
        records: out.records,
        replies: Vec::new(),
        response: (),
    };
    run(&mut shard, out);
    let out = shard.add_partitions("tx", ProducerId(7), ProducerEpoch(0), &[tp("a", 0)], 2);
    run(
        &mut shard,
        Output {
            records: out.records,
            replies: Vec::new(),
            response: (),
        },
    );
    let out = shard.end_transaction("tx", ProducerId(7), ProducerEpoch(0), false, 3);
    run(
        &mut shard,
        Output {
            records: out.records,
            replies: Vec::new(),
            response: (),
        },
    );

    let mut reloaded = TransactionCoordinatorShard::new();
    for record in &log {
        let (key, value) = TransactionCoordinatorShard::serialize(record).expect("encodes");
        let decoded = TransactionCoordinatorShard::deserialize(&key, value.as_deref())
            .expect("decodes")
            .expect("a transaction record");
        reloaded.replay(&decoded);
    }
    reloaded.on_loaded(4);
    assert_eq!(reloaded.describe("tx"), shard.describe("tx"));
    let recovering = reloaded.take_recovering().response;
    assert_eq!(recovering.len(), 1);
    assert!(!recovering[0].commit);
    assert!(
        reloaded.take_recovering().response.is_empty(),
        "handed out once"
    );
}

#[test]
fn verification_and_listing() {
    let mut shard = TransactionCoordinatorShard::new();
    let (pid, epoch) = init(&mut shard, 1);
    step!(shard, add_partitions("tx", pid, epoch, &[tp("a", 0)], 2),).expect("added");
    assert_eq!(
        shard.verify_partitions("tx", pid, epoch, &[tp("a", 0), tp("a", 1)]),
        Ok(vec![None, Some(TransactionError::TransactionAbortable)])
    );
    assert_eq!(
        shard.verify_partitions("other", pid, epoch, &[tp("a", 0)]),
        Err(TransactionError::InvalidProducerIdMapping)
    );
    assert_eq!(shard.list(&[], &[], -1, 10).len(), 1);
    assert_eq!(shard.list(&["Ongoing".into()], &[], -1, 10).len(), 1);
    assert!(shard.list(&["Empty".into()], &[], -1, 10).is_empty());
    assert!(shard.list(&[], &[ProducerId(99)], -1, 10).is_empty());
    assert!(
        shard.list(&[], &[], 100, 10).is_empty(),
        "running 8 ms, not 100"
    );
    assert_eq!(
        shard.describe("nope"),
        Err(TransactionError::TransactionalIdNotFound)
    );
}

//! The nemesis run (issue 12, part 6): three `ferrite` processes, each in a network namespace of its own, take
//! idempotent acks=all writes and serve a consumer group while a seeded schedule of faults hits them one at a time
//! (kill -9 and restart, SIGSTOP and SIGCONT, cutting a node off from its peers and healing it), aimed at a node, at
//! a partition's leader or at the active controller. Afterwards every partition is read back and the whole history
//! is checked (see `nemesis/history.rs` for the anomalies it names).
//!
//! `FERRITE_NEMESIS_SECS` sets how long the faults go on (90 s by default: the bounded run of `.ci/run`),
//! `FERRITE_NEMESIS_SEED` the schedule (12 by default, so that a CI failure replays). The history is written to
//! `target/tmp/nemesis-<seed>.history`, one event per line, for a failed run's post-mortem.

mod common;
#[path = "nemesis/faults.rs"]
mod faults;
#[path = "nemesis/history.rs"]
mod history;
#[path = "nemesis/workload.rs"]
mod workload;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{create_replicated_topic, eventually, partition_leader_and_isr, TestCluster};
use history::{Event, History};
use workload::Workload;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOPIC: &str = "nemesis";
const PARTITIONS: i32 = 3;
const NODES: i32 = 3;
const PRODUCERS: u32 = 3;
/// Records per second per producer: enough to have writes in flight at every fault, few enough for debug builds of
/// three brokers on two cores.
const RATE: u32 = 50;

fn setting(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(value) => value.parse().map_err(|e| format!("{name}={value}: {e}")),
        Err(_) => Ok(default),
    }
}

/// Whether every partition has a leader and its whole replica set in sync, as every node sees it.
fn fully_replicated(cluster: &TestCluster) -> bool {
    cluster.nodes.iter().all(|node| {
        (0..PARTITIONS).all(|p| {
            partition_leader_and_isr(&node.addr(), TOPIC, p)
                .is_some_and(|(leader, isr)| leader > 0 && isr.len() == NODES as usize)
        })
    })
}

fn write_history(seed: u64, history: &History) -> std::io::Result<std::path::PathBuf> {
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nemesis-{seed}.history"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for entry in history.entries() {
        writeln!(file, "{:>8} {:?}", entry.at_ms, entry.event)?;
    }
    file.flush()?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_records_survive_a_seeded_schedule_of_faults() -> TestResult {
    let seconds = setting("FERRITE_NEMESIS_SECS", 90)?;
    let seed = setting("FERRITE_NEMESIS_SEED", 12)?;
    let steps = faults::schedule(seed, Duration::from_secs(seconds), NODES, PARTITIONS);
    eprintln!(
        "nemesis: seed {seed}, {seconds} s, {} faults: {steps:#?}",
        steps.len()
    );

    let mut cluster = TestCluster::start_isolated(NODES as usize);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, PARTITIONS, "2").await?;
    eventually(
        Duration::from_secs(30),
        "the topic fully replicated",
        || fully_replicated(&cluster),
    )?;

    let history = History::new();
    let workload = Workload {
        bootstrap,
        topic: TOPIC.to_string(),
        partitions: PARTITIONS,
        history: history.clone(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| tokio::spawn(workload.clone().produce(id, RATE)))
        .collect();
    let drain_to = Arc::new(Mutex::new(None));
    let member = {
        let (workload, drain_to) = (workload.clone(), drain_to.clone());
        std::thread::spawn(move || workload.consume(drain_to))
    };
    let watching_done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (workload, done) = (workload.clone(), watching_done.clone());
        std::thread::spawn(move || workload.watch_commits(done))
    };

    // The faults, on a thread of their own: kill and restart block.
    let nemesis = {
        let history = history.clone();
        std::thread::spawn(move || {
            faults::run(&mut cluster, &steps, TOPIC, &history);
            cluster
        })
    };
    let cluster = tokio::task::spawn_blocking(move || nemesis.join())
        .await?
        .map_err(|_| "the nemesis panicked")?;
    history.record(Event::Nemesis {
        what: "all healed".into(),
    });

    // Quiet: every node runs and is connected. Let the cluster settle, then stop the writes and let every
    // outstanding send resolve.
    let settled = eventually(
        Duration::from_secs(60),
        "every partition fully replicated",
        || fully_replicated(&cluster),
    );
    workload.stop.store(true, Ordering::Relaxed);
    for producer in producers {
        producer.await??;
    }
    settled?;

    let ends = {
        let workload = workload.clone();
        tokio::task::spawn_blocking(move || workload.log_ends(Duration::from_secs(60))).await??
    };
    *drain_to.lock().map_err(|_| "poisoned")? = Some(ends.clone());
    member.join().map_err(|_| "the group member panicked")??;
    watching_done.store(true, Ordering::Relaxed);
    watcher.join().map_err(|_| "the watcher panicked")??;
    {
        let workload = workload.clone();
        tokio::task::spawn_blocking(move || workload.read_final(&ends)).await??;
    }

    let path = write_history(seed, &history)?;
    let report = history::check(&history.entries());
    eprintln!(
        "nemesis: seed {seed}, history in {}\n{report}",
        path.display()
    );
    assert!(report.is_valid(), "seed {seed}: anomalies found\n{report}");
    assert!(
        report.acked > 0 && report.read_final >= report.acked,
        "seed {seed}: too little got through\n{report}"
    );
    drop(cluster);
    Ok(())
}

//! The handlers, tested by the records they emit and the answers they give.

use super::*;

fn id(n: u128) -> TopicId {
    TopicId(uuid::Uuid::from_u128(n))
}

/// Hands out ids 100, 101, ... so that tests can name the records they expect.
fn ids_from(first: u128) -> impl FnMut() -> TopicId {
    let mut next = first;
    move || {
        next += 1;
        id(next - 1)
    }
}

fn brokers(ids: &[i32]) -> ControllerState {
    let records: Vec<_> = ids
        .iter()
        .map(|&b| MetadataRecord::RegisterBroker {
            broker_id: BrokerId(b),
            host: format!("broker-{b}"),
            port: 9092,
            rack: None,
            incarnation_id: None,
            broker_epoch: None,
            fenced: false,
        })
        .collect();
    ControllerState::from_records(&records)
}

fn spec(name: &str, num_partitions: i32, replication_factor: i16) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.to_string(),
        num_partitions,
        replication_factor,
        assignments: Vec::new(),
        configs: Vec::new(),
    }
}

fn manual(name: &str, assignments: &[(i32, &[i32])]) -> CreateTopicSpec {
    CreateTopicSpec {
        assignments: assignments
            .iter()
            .map(|(p, replicas)| {
                (
                    PartitionIndex(*p),
                    replicas.iter().copied().map(BrokerId).collect(),
                )
            })
            .collect(),
        ..spec(name, -1, -1)
    }
}

fn create(
    state: &ControllerState,
    topics: &[CreateTopicSpec],
    start: usize,
) -> ControllerResult<Vec<Result<CreatedTopic, ControllerError>>> {
    create_topics(state, topics, start, &mut ids_from(100))
}

fn partition(topic: TopicId, p: i32, replicas: &[i32]) -> MetadataRecord {
    let replicas: Vec<BrokerId> = replicas.iter().copied().map(BrokerId).collect();
    MetadataRecord::Partition {
        topic_id: topic,
        partition: PartitionIndex(p),
        isr: replicas.clone(),
        leader: replicas[0],
        replicas,
        leader_epoch: LeaderEpoch(0),
        partition_epoch: PartitionEpoch(0),
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    }
}

/// The replica lists of the emitted partition records, in order.
fn placements(records: &[MetadataRecord]) -> Vec<Vec<i32>> {
    records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::Partition { replicas, .. } => {
                Some(replicas.iter().map(|b| b.0).collect())
            }
            _ => None,
        })
        .collect()
}

fn only_error<T: std::fmt::Debug>(
    result: ControllerResult<Vec<Result<T, ControllerError>>>,
) -> ControllerError {
    assert!(result.records.is_empty(), "emitted {:?}", result.records);
    let mut response = result.response;
    assert_eq!(response.len(), 1);
    match response.pop() {
        Some(Err(error)) => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn create_emits_topic_partitions_and_configs() {
    let state = brokers(&[1]);
    let mut topic = spec("orders", 2, 1);
    topic.configs = vec![("cleanup.policy".into(), "compact".into())];
    let result = create(&state, &[topic], 0);
    assert_eq!(
        result.records,
        vec![
            MetadataRecord::Topic {
                name: "orders".into(),
                topic_id: id(100),
            },
            partition(id(100), 0, &[1]),
            partition(id(100), 1, &[1]),
            MetadataRecord::Config {
                resource: ConfigResource::Topic("orders".into()),
                name: "cleanup.policy".into(),
                value: Some("compact".into()),
            },
        ]
    );
    let created = CreatedTopic {
        name: "orders".into(),
        topic_id: id(100),
        num_partitions: 2,
        replication_factor: 1,
        configs: vec![("cleanup.policy".into(), "compact".into())],
    };
    assert_eq!(result.response.len(), 1);
    assert_eq!(result.response[0].as_ref().ok(), Some(&created));

    // Replaying what was emitted is what creates the topic.
    let mut after = state.clone();
    for record in &result.records {
        assert_eq!(after.replay(record), Ok(()));
    }
    assert_eq!(
        after.topic_by_name("orders").map(|t| t.partitions.len()),
        Some(2)
    );
}

#[test]
fn placement_spreads_leaders_and_followers_like_kafka() {
    let state = brokers(&[1, 2, 3]);
    let result = create(&state, &[spec("t", 4, 2)], 0);
    assert_eq!(
        placements(&result.records),
        vec![vec![1, 2], vec![2, 3], vec![3, 1], vec![1, 3]]
    );
    // The next call starts one broker further on.
    let result = create(&state, &[spec("t", 3, 3)], 1);
    assert_eq!(
        placements(&result.records),
        vec![vec![2, 1, 3], vec![3, 2, 1], vec![1, 3, 2]]
    );
}

#[test]
fn manual_assignment_is_used_as_given() {
    let state = brokers(&[1, 2, 3]);
    let result = create(&state, &[manual("m", &[(1, &[3, 1]), (0, &[2, 3])])], 0);
    assert_eq!(placements(&result.records), vec![vec![2, 3], vec![3, 1]]);
    let created = result.response[0].as_ref().ok().cloned();
    assert_eq!(
        created.map(|c| (c.num_partitions, c.replication_factor)),
        Some((2, 2))
    );
}

#[test]
fn invalid_topic_names_are_refused() {
    let state = brokers(&[1]);
    let long = "a".repeat(MAX_TOPIC_NAME_LEN + 1);
    for name in ["", ".", "..", "a b", "a/b", "é", long.as_str()] {
        let error = only_error(create(&state, &[spec(name, 1, 1)], 0));
        assert!(
            matches!(error, ControllerError::InvalidTopic(_)),
            "{name:?}: {error:?}"
        );
    }
    let longest = "a".repeat(MAX_TOPIC_NAME_LEN);
    let ok = create(&state, &[spec(&longest, 1, 1)], 0);
    assert!(ok.response[0].is_ok());
    assert!(create(&state, &[spec("A-z_0.9", 1, 1)], 0).response[0].is_ok());
}

#[test]
fn existing_and_colliding_topics_are_refused() {
    let mut state = brokers(&[1]);
    for record in create(&state, &[spec("a.b", 1, 1)], 0).records {
        assert_eq!(state.replay(&record), Ok(()));
    }
    let error = only_error(create(&state, &[spec("a.b", 1, 1)], 0));
    assert!(matches!(error, ControllerError::TopicAlreadyExists(ref n) if n == "a.b"));
    let error = only_error(create(&state, &[spec("a_b", 1, 1)], 0));
    assert!(matches!(error, ControllerError::InvalidTopic(ref m) if m.contains("collides")));
}

#[test]
fn topics_of_one_request_are_checked_against_each_other() {
    let state = brokers(&[1]);
    let result = create(
        &state,
        &[
            spec("x.y", 1, 1),
            spec("x_y", 1, 1),
            spec("d", 1, 1),
            spec("d", 1, 1),
        ],
        0,
    );
    assert!(result.response[0].is_ok());
    assert!(matches!(
        result.response[1],
        Err(ControllerError::InvalidTopic(_))
    ));
    assert!(matches!(
        result.response[2],
        Err(ControllerError::InvalidRequest(_))
    ));
    assert!(matches!(
        result.response[3],
        Err(ControllerError::InvalidRequest(_))
    ));
    // Only the accepted topic's records are emitted.
    assert_eq!(result.records.len(), 2);
}

#[test]
fn partition_counts_and_replication_factors_are_checked() {
    let state = brokers(&[1, 2]);
    for n in [0, -1, MAX_PARTITIONS_PER_TOPIC + 1] {
        let error = only_error(create(&state, &[spec("t", n, 1)], 0));
        assert!(
            matches!(error, ControllerError::InvalidPartitions(_)),
            "{n}: {error:?}"
        );
    }
    for rf in [0, -1, 3] {
        let error = only_error(create(&state, &[spec("t", 1, rf)], 0));
        assert!(
            matches!(error, ControllerError::InvalidReplicationFactor(_)),
            "{rf}: {error:?}"
        );
    }
    let error = only_error(create(&ControllerState::default(), &[spec("t", 1, 1)], 0));
    assert!(matches!(
        error,
        ControllerError::InvalidReplicationFactor(_)
    ));
}

#[test]
fn bad_manual_assignments_are_refused() {
    let state = brokers(&[1, 2]);
    let cases: [&[(i32, &[i32])]; 6] = [
        &[(0, &[])],
        &[(0, &[1, 1])],
        &[(0, &[1, 9])],
        &[(1, &[1])],
        &[(0, &[1]), (0, &[2])],
        &[(0, &[1]), (1, &[1, 2])],
    ];
    for assignment in cases {
        let error = only_error(create(&state, &[manual("m", assignment)], 0));
        assert!(
            matches!(error, ControllerError::InvalidReplicaAssignment(_)),
            "{assignment:?}: {error:?}"
        );
    }
}

#[test]
fn topic_ids_are_never_nil_nor_reused() {
    let mut state = brokers(&[1]);
    state
        .replay(&MetadataRecord::Topic {
            name: "old".into(),
            topic_id: id(1),
        })
        .ok();
    let mut draws = [id(0), id(1), id(7)].into_iter();
    let result = create_topics(&state, &[spec("new", 1, 1)], 0, &mut || {
        draws.next().unwrap_or(id(0))
    });
    assert_eq!(
        result.response[0].as_ref().map(|c| c.topic_id).ok(),
        Some(id(7))
    );

    let error = only_error(create_topics(&state, &[spec("new", 1, 1)], 0, &mut || {
        id(0)
    }));
    assert!(matches!(error, ControllerError::InvalidRequest(_)));
}

fn with_topics() -> ControllerState {
    let state = brokers(&[1]);
    let result = create(&state, &[spec("a", 1, 1), spec("b", 1, 1)], 0);
    let mut state = state;
    for record in &result.records {
        assert_eq!(state.replay(record), Ok(()));
    }
    state
}

#[test]
fn delete_emits_remove_topic_by_name_or_id() {
    let state = with_topics();
    let result = delete_topics(&state, &[TopicRef::Name("a".into()), TopicRef::Id(id(101))]);
    assert_eq!(
        result.records,
        vec![
            MetadataRecord::RemoveTopic { topic_id: id(100) },
            MetadataRecord::RemoveTopic { topic_id: id(101) },
        ]
    );
    let deleted: Vec<_> = result.response.into_iter().filter_map(Result::ok).collect();
    assert_eq!(
        deleted,
        vec![
            DeletedTopic {
                name: "a".into(),
                topic_id: id(100),
            },
            DeletedTopic {
                name: "b".into(),
                topic_id: id(101),
            },
        ]
    );
}

#[test]
fn delete_refuses_unknown_and_duplicate_topics() {
    let state = with_topics();
    let error = only_error(delete_topics(&state, &[TopicRef::Name("zz".into())]));
    assert!(matches!(error, ControllerError::UnknownTopicOrPartition(ref n) if n == "zz"));
    let error = only_error(delete_topics(&state, &[TopicRef::Id(id(9))]));
    assert!(matches!(error, ControllerError::UnknownTopicId(i) if i == id(9)));

    let twice = [TopicRef::Name("a".into()), TopicRef::Name("a".into())];
    let result = delete_topics(&state, &twice);
    assert!(result.records.is_empty());
    assert!(result
        .response
        .iter()
        .all(|r| matches!(r, Err(ControllerError::InvalidRequest(_)))));

    // The same topic by name and by id is removed once.
    let both = [TopicRef::Name("a".into()), TopicRef::Id(id(100))];
    let result = delete_topics(&state, &both);
    assert_eq!(
        result.records,
        vec![MetadataRecord::RemoveTopic { topic_id: id(100) }]
    );
    assert!(result.response.iter().all(Result::is_ok));
}

#[test]
fn producer_id_blocks_follow_each_other_and_survive_a_snapshot() {
    let mut state = brokers(&[1, 2]);
    let first = allocate_producer_ids(&state, BrokerId(1));
    assert_eq!(
        first.response.ok(),
        Some(ProducerIdBlock {
            first: ProducerId(0),
            size: PRODUCER_ID_BLOCK_SIZE
        })
    );
    for record in &first.records {
        state.replay(record).expect("replays");
    }
    let second = allocate_producer_ids(&state, BrokerId(2));
    assert_eq!(
        second.response.ok().map(|block| block.first),
        Some(ProducerId(PRODUCER_ID_BLOCK_SIZE))
    );
    for record in &second.records {
        state.replay(record).expect("replays");
    }
    let rebuilt = ControllerState::from_records(&state.to_records());
    assert_eq!(
        rebuilt.next_producer_id(),
        ProducerId(2 * PRODUCER_ID_BLOCK_SIZE)
    );
    assert!(allocate_producer_ids(&state, BrokerId(9)).response.is_err());
}

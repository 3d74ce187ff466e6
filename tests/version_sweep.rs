//! Every advertised version of every API answers a well-formed request with a well-formed response.
//!
//! A handler that fills a field its negotiated version does not have makes the codec refuse the response, and the
//! client sees its connection drop; real clients pin different versions (kcat's librdkafka 2.0 uses ListOffsets v2,
//! kafka-python older ones still), so each version is exercised here on its own.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::TestBroker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

const TOPIC: &str = "sweep";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic_name() -> TopicName {
    TopicName(s(TOPIC))
}

fn batch() -> Bytes {
    common::record_batch(b"k", b"v")
}

/// A meaningful request for `key` at `version`, using only fields that version has.
fn request(key: ApiKey, version: i16, topic_id: Uuid) -> Option<RequestKind> {
    use RequestKind as R;
    let by_id = |v: i16, from: i16| v >= from;
    Some(match key {
        ApiKey::ApiVersions => R::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::Metadata => R::Metadata(MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name())),
        ]))),
        ApiKey::Produce => {
            let mut topic = produce_request::TopicProduceData::default().with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch())),
            ]);
            topic = if by_id(version, 13) {
                topic.with_topic_id(topic_id)
            } else {
                topic.with_name(topic_name())
            };
            R::Produce(
                ProduceRequest::default()
                    .with_acks(1)
                    .with_timeout_ms(5000)
                    .with_topic_data(vec![topic]),
            )
        }
        ApiKey::Fetch => {
            let mut topic = fetch_request::FetchTopic::default().with_partitions(vec![
                fetch_request::FetchPartition::default()
                    .with_partition(0)
                    .with_partition_max_bytes(1 << 20),
            ]);
            topic = if by_id(version, 13) {
                topic.with_topic_id(topic_id)
            } else {
                topic.with_topic(topic_name())
            };
            R::Fetch(
                FetchRequest::default()
                    .with_max_wait_ms(10)
                    .with_min_bytes(1)
                    .with_topics(vec![topic]),
            )
        }
        ApiKey::ListOffsets => R::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic_name())
                    .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-2)]),
            ])),
        ApiKey::OffsetForLeaderEpoch => {
            R::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default().with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(topic_name())
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_leader_epoch(0),
                    ]),
            ]))
        }
        ApiKey::CreateTopics => R::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(TopicName(s(&format!("created-v{version}"))))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ])),
        ApiKey::DeleteTopics => {
            let name = TopicName(s(&format!("created-v{}", version.min(7))));
            if version >= 6 {
                R::DeleteTopics(DeleteTopicsRequest::default().with_topics(vec![
                    delete_topics_request::DeleteTopicState::default().with_name(Some(name)),
                ]))
            } else {
                R::DeleteTopics(DeleteTopicsRequest::default().with_topic_names(vec![name]))
            }
        }
        ApiKey::FindCoordinator if version >= 4 => R::FindCoordinator(
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("sweep-group")]),
        ),
        ApiKey::FindCoordinator => {
            R::FindCoordinator(FindCoordinatorRequest::default().with_key(s("sweep-group")))
        }
        ApiKey::Heartbeat => R::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(GroupId(s("sweep-group")))
                .with_member_id(s("nobody")),
        ),
        ApiKey::LeaveGroup if version >= 3 => R::LeaveGroup(
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s("sweep-group")))
                .with_members(vec![
                    leave_group_request::MemberIdentity::default().with_member_id(s("nobody"))
                ]),
        ),
        ApiKey::LeaveGroup => R::LeaveGroup(
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s("sweep-group")))
                .with_member_id(s("nobody")),
        ),
        ApiKey::OffsetCommit => {
            let mut topic = offset_commit_request::OffsetCommitRequestTopic::default()
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(0),
                ]);
            topic = if by_id(version, 10) {
                topic.with_topic_id(topic_id)
            } else {
                topic.with_name(topic_name())
            };
            R::OffsetCommit(
                OffsetCommitRequest::default()
                    .with_group_id(GroupId(s("sweep-group")))
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(vec![topic]),
            )
        }
        ApiKey::OffsetFetch if version >= 8 => {
            let mut topic = offset_fetch_request::OffsetFetchRequestTopics::default()
                .with_partition_indexes(vec![0]);
            topic = if by_id(version, 10) {
                topic.with_topic_id(topic_id)
            } else {
                topic.with_name(topic_name())
            };
            R::OffsetFetch(
                OffsetFetchRequest::default()
                    .with_require_stable(true)
                    .with_groups(vec![
                        offset_fetch_request::OffsetFetchRequestGroup::default()
                            .with_group_id(GroupId(s("sweep-group")))
                            .with_topics(Some(vec![topic])),
                    ]),
            )
        }
        ApiKey::OffsetFetch => R::OffsetFetch(
            OffsetFetchRequest::default()
                .with_require_stable(version >= 7)
                .with_group_id(GroupId(s("sweep-group")))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic_name())
                        .with_partition_indexes(vec![0]),
                ])),
        ),
        ApiKey::TxnOffsetCommit => R::TxnOffsetCommit(
            TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s("sweep-txn")))
                .with_group_id(GroupId(s("sweep-group")))
                .with_producer_id(ProducerId(1))
                .with_producer_epoch(0)
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(topic_name())
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(0),
                        ]),
                ]),
        ),
        ApiKey::ListGroups => R::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeGroups => R::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![GroupId(s("sweep-group"))]),
        ),
        ApiKey::DeleteGroups => R::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("never-a-group"))]),
        ),
        ApiKey::OffsetDelete => R::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(s("never-a-group")))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(topic_name())
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default(),
                        ]),
                ]),
        ),
        ApiKey::DescribeConfigs => {
            R::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(TOPIC)),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("1")),
            ]))
        }
        ApiKey::AlterConfigs => R::AlterConfigs(
            AlterConfigsRequest::default()
                .with_validate_only(true)
                .with_resources(vec![alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(TOPIC))
                    .with_configs(vec![alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1000")))])]),
        ),
        ApiKey::IncrementalAlterConfigs => R::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default()
                .with_validate_only(true)
                .with_resources(vec![
                    incremental_alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(TOPIC))
                        .with_configs(vec![
                            incremental_alter_configs_request::AlterableConfig::default()
                                .with_name(s("retention.ms"))
                                .with_value(Some(s("1000"))),
                        ]),
                ]),
        ),
        ApiKey::CreatePartitions => R::CreatePartitions(
            CreatePartitionsRequest::default()
                .with_validate_only(true)
                .with_topics(vec![
                    create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(topic_name())
                        .with_count(2),
                ]),
        ),
        ApiKey::DeleteRecords => {
            R::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(topic_name())
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(0),
                    ]),
            ]))
        }
        ApiKey::DescribeCluster => R::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::DescribeLogDirs => R::DescribeLogDirs(DescribeLogDirsRequest::default()),
        ApiKey::DescribeQuorum => {
            R::DescribeQuorum(DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(TopicName(s("__cluster_metadata")))
                .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
        ]))
        }
        // The partition's current replicas: a reassignment that changes nothing.
        ApiKey::AlterPartitionReassignments => R::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest::default().with_topics(vec![
                alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(topic_name())
                    .with_partitions(vec![
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_replicas(Some(vec![BrokerId(1)])),
                    ]),
            ]),
        ),
        ApiKey::ListPartitionReassignments => {
            R::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
        }
        // Group joins need a live member; tests/groups.rs covers them through librdkafka.
        _ => return None,
    })
}

struct Raw {
    stream: TcpStream,
    correlation_id: i32,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        Raw {
            stream,
            correlation_id: 0,
        }
    }

    fn send(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &RequestKind,
    ) -> Result<ResponseKind, String> {
        self.correlation_id += 1;
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(s("sweep")))
            .encode(&mut buf, key.request_header_version(version))
            .map_err(|e| format!("test bug, cannot encode header: {e}"))?;
        request
            .encode(&mut buf, version)
            .map_err(|e| format!("test bug, cannot encode request: {e}"))?;
        let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&buf);
        self.stream
            .write_all(&framed)
            .map_err(|e| format!("write: {e}"))?;
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|e| format!("no response (connection closed?): {e}"))?;
        let mut body = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| format!("short response: {e}"))?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
            .map_err(|e| format!("bad response header: {e}"))?;
        if header.correlation_id != self.correlation_id {
            return Err(format!(
                "correlation id {} for request {}",
                header.correlation_id, self.correlation_id
            ));
        }
        ResponseKind::decode(key, &mut body, version).map_err(|e| format!("bad response body: {e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_answers() {
    let broker = TestBroker::start_with(&["--group.initial.rebalance.delay.ms=0"]);
    broker.create_topic(TOPIC, 1).await;
    let mut raw = Raw::connect(&broker.addr);

    let Ok(ResponseKind::ApiVersions(versions)) = raw.send(
        ApiKey::ApiVersions,
        3,
        &RequestKind::ApiVersions(Default::default()),
    ) else {
        panic!("ApiVersions v3 failed");
    };
    let topic_id = match raw.send(
        ApiKey::Metadata,
        12,
        &request(ApiKey::Metadata, 12, Uuid::nil()).expect("metadata"),
    ) {
        Ok(ResponseKind::Metadata(m)) => m.topics[0].topic_id,
        other => panic!("metadata: {other:?}"),
    };

    let mut failures = Vec::new();
    let mut exercised = 0;
    for api in &versions.api_keys {
        let Ok(key) = ApiKey::try_from(api.api_key) else {
            failures.push(format!("advertised unknown api key {}", api.api_key));
            continue;
        };
        for version in api.min_version..=api.max_version {
            let Some(request) = request(key, version, topic_id) else {
                continue;
            };
            exercised += 1;
            if let Err(error) = raw.send(key, version, &request) {
                failures.push(format!("{key:?} v{version}: {error}"));
                raw = Raw::connect(&broker.addr);
            }
        }
    }
    assert!(exercised > 100, "only {exercised} requests were exercised");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

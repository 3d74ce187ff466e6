//! DescribeQuorum (key 55): the metadata quorum (`__cluster_metadata-0`) as the active controller's openraft
//! metrics show it (asked of it when it is another node, as Kafka's brokers forward DescribeQuorum): leader, epoch
//! (the Raft term), high watermark, voters and observers (broker-only nodes) with their log end offsets and last
//! fetch and caught-up timestamps (the leader's last successful push to each), and (v2) the voters' controller
//! endpoints.
//! Any other partition gets UNKNOWN_TOPIC_OR_PARTITION, as in Kafka.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use kafka_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::BrokerId as WireBrokerId;
use kafka_protocol::protocol::StrBytes;

use super::KafkaApis;
use ferrite_raft::QuorumReplica;

const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let status = apis.quorum.describe().await;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let is_metadata = &*topic.topic_name.0 == METADATA_TOPIC;
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let data = PartitionData::default().with_partition_index(p.partition_index);
                    if !is_metadata || p.partition_index != 0 {
                        return data
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_leader_id(WireBrokerId(-1))
                            .with_leader_epoch(-1)
                            .with_high_watermark(-1);
                    }
                    let replicas = |replicas: &[QuorumReplica]| {
                        replicas
                            .iter()
                            .map(|v| {
                                ReplicaState::default()
                                    .with_replica_id(WireBrokerId(v.replica_id.0))
                                    .with_log_end_offset(v.log_end_offset)
                                    .with_last_fetch_timestamp(v.last_fetch_timestamp)
                                    .with_last_caught_up_timestamp(v.last_caught_up_timestamp)
                            })
                            .collect()
                    };
                    data.with_leader_id(WireBrokerId(status.leader_id.map_or(-1, |id| id.0)))
                        .with_leader_epoch(status.leader_epoch)
                        .with_high_watermark(status.high_watermark)
                        .with_current_voters(replicas(&status.voters))
                        .with_observers(replicas(&status.observers))
                })
                .collect();
            TopicData::default()
                .with_topic_name(topic.topic_name)
                .with_partitions(partitions)
        })
        .collect();
    let nodes = apis
        .config
        .controller_quorum_voters
        .iter()
        .filter_map(|(id, addr)| {
            let (host, port) = addr.rsplit_once(':')?;
            let listener = Listener::default()
                .with_name(StrBytes::from_string(
                    apis.config
                        .controller_listener_names
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "CONTROLLER".into()),
                ))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port.parse().ok()?);
            Some(
                Node::default()
                    .with_node_id(WireBrokerId(id.0))
                    .with_listeners(vec![listener]),
            )
        })
        .collect();
    let response = DescribeQuorumResponse::default().with_topics(topics);
    // Node endpoints exist from v2 on; earlier versions must leave them out.
    if version >= 2 {
        response.with_nodes(nodes)
    } else {
        response
    }
}

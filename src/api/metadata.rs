//! Metadata (key 3): brokers, controller, topics and partition leaders; creates unknown topics when the request
//! allows it and `auto.create.topics.enable` is on.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::KafkaApis;
use super::{authorized_operations, AclResourceType, ToErrorCode, AUTHORIZED_OPERATIONS_OMITTED};
use crate::ids::TopicId;
use crate::metadata::{MetadataImage, TopicImage};
use ferrite_raft::CreateTopicSpec;

/// A topic the client asked about, by name or (v12+) by id.
enum Wanted {
    Name(String),
    Id(Uuid),
}

pub async fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    // v0 has no null: an empty list means every topic.
    let wanted: Option<Vec<Wanted>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| match t.name {
                    Some(name) => Wanted::Name(name.0.to_string()),
                    None => Wanted::Id(t.topic_id),
                })
                .collect(),
        ),
    };
    let allow_create =
        (version < 4 || request.allow_auto_topic_creation) && apis.config.auto_create_topics_enable;

    let mut image = apis.image();
    if let (Some(wanted), true) = (&wanted, allow_create) {
        let missing: Vec<String> = wanted
            .iter()
            .filter_map(|w| match w {
                Wanted::Name(name) if image.topic(name).is_none() && !name.starts_with("__") => {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            auto_create(apis, missing).await;
            image = apis.image();
        }
    }

    // Both fields exist from v8; the cluster's moved to DescribeCluster in v11. As in Kafka, a topic id that
    // matches nothing has no name to authorize against, so its operations stay omitted.
    let topic_operations = authorized_operations(
        AclResourceType::Topic,
        version >= 8 && request.include_topic_authorized_operations,
    );
    let cluster_operations = authorized_operations(
        AclResourceType::Cluster,
        (8..=10).contains(&version) && request.include_cluster_authorized_operations,
    );
    let topics = match wanted {
        None => image
            .topics()
            .map(|topic| describe(&image, topic, topic_operations))
            .collect(),
        Some(wanted) => wanted
            .into_iter()
            .map(|w| match w {
                Wanted::Name(name) => match image.topic(&name) {
                    Some(topic) => describe(&image, topic, topic_operations),
                    None => {
                        let error = unknown_name_error(&name);
                        unknown(Some(name), Uuid::nil(), error, topic_operations)
                    }
                },
                Wanted::Id(id) => match image.topic_by_id(TopicId(id)) {
                    Some(topic) => describe(&image, topic, topic_operations),
                    None => unknown(
                        None,
                        id,
                        ResponseError::UnknownTopicId,
                        AUTHORIZED_OPERATIONS_OMITTED,
                    ),
                },
            })
            .collect(),
    };

    MetadataResponse::default()
        .with_brokers(
            image
                .live_brokers()
                .map(|b| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(b.broker_id.0))
                        .with_host(StrBytes::from_string(b.host.clone()))
                        .with_port(i32::from(b.port))
                        .with_rack(b.rack.clone().map(StrBytes::from_string))
                })
                .collect(),
        )
        .with_cluster_id(Some(StrBytes::from_string(apis.cluster_id.clone())))
        // KRaft's brokers name some live broker, not the active controller (which may take no clients); Ferrite
        // names itself, the one broker the client is sure to reach, and forwards what needs the controller.
        .with_controller_id(BrokerId(apis.config.node_id.0))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_operations)
}

fn unknown_name_error(name: &str) -> ResponseError {
    if ferrite_raft::validate_topic_name(name).is_err() {
        ResponseError::InvalidTopicException
    } else {
        ResponseError::UnknownTopicOrPartition
    }
}

async fn auto_create(apis: &Arc<KafkaApis>, names: Vec<String>) {
    let specs = names
        .into_iter()
        .map(|name| CreateTopicSpec {
            name,
            num_partitions: apis.config.num_partitions,
            replication_factor: apis.config.default_replication_factor,
            assignments: Vec::new(),
            configs: Vec::new(),
        })
        .collect();
    for result in apis
        .quorum
        .channel()
        .create_topics(specs, false, super::AUTO_CREATE_TIMEOUT)
        .await
    {
        match result {
            Ok(created) => tracing::info!(topic = %created.name, "auto-created topic"),
            // Another request created it first, or the name is invalid: the lookup that follows answers for it.
            Err(error) => tracing::debug!(%error, code = error.code(), "auto-creation declined"),
        }
    }
}

fn unknown(
    name: Option<String>,
    id: Uuid,
    error: ResponseError,
    operations: i32,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
        .with_topic_id(id)
        .with_topic_authorized_operations(operations)
}

fn describe(image: &MetadataImage, topic: &TopicImage, operations: i32) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(index, p)| {
            // Kafka names a leader only while it is alive (unfenced); the replicas that are not alive are offline.
            let leader_known = image.is_live(p.leader);
            MetadataResponsePartition::default()
                .with_error_code(if leader_known {
                    0
                } else {
                    ResponseError::LeaderNotAvailable.code()
                })
                .with_partition_index(index.0)
                .with_leader_id(BrokerId(if leader_known { p.leader.0 } else { -1 }))
                .with_leader_epoch(p.leader_epoch.0)
                .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(r.0)).collect())
                .with_isr_nodes(p.isr.iter().map(|r| BrokerId(r.0)).collect())
                .with_offline_replicas(
                    p.replicas
                        .iter()
                        .filter(|r| !image.is_live(**r))
                        .map(|r| BrokerId(r.0))
                        .collect(),
                )
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.name.to_string(),
        ))))
        .with_topic_id(topic.topic_id.0)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(operations)
}

//! FindCoordinator (key 10): the broker leading a group's `__consumer_offsets` partition, or a transactional id's
//! `__transaction_state` partition, creating the topic on first use. v4+ looks up a batch of keys. An empty
//! transactional id is INVALID_REQUEST, as in Kafka.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;

use super::KafkaApis;
use crate::coordinator::group::{GroupId, OFFSETS_TOPIC};
use crate::coordinator::transaction::TRANSACTION_STATE_TOPIC;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
/// How long a lookup waits for a coordinator partition of this broker to load. A freshly created partition loads in
/// moments; answering after that spares the client a round of COORDINATOR_LOAD_IN_PROGRESS.
const LOAD_WAIT: Duration = Duration::from_secs(5);

pub async fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= 4 {
        request.coordinator_keys
    } else {
        vec![request.key]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        coordinators.push(find(apis, request.key_type, key).await);
    }
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let found = coordinators.pop().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(found.error_code)
        .with_error_message(if version >= 1 {
            found.error_message
        } else {
            None
        })
        .with_node_id(found.node_id)
        .with_host(found.host)
        .with_port(found.port)
}

async fn find(apis: &Arc<KafkaApis>, key_type: i8, key: StrBytes) -> Coordinator {
    let not_available = |key: StrBytes, error: ResponseError| {
        Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(-1))
            .with_host(StrBytes::from_static_str(""))
            .with_port(-1)
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(error.to_string())))
    };
    let leader = match key_type {
        KEY_TYPE_GROUP => {
            if apis.image().topic(OFFSETS_TOPIC).is_none() {
                let brokers = apis.image().live_brokers().count();
                apis.groups
                    .create_offsets_topic(
                        apis.quorum.channel(),
                        brokers,
                        super::AUTO_CREATE_TIMEOUT,
                    )
                    .await;
            }
            let group_id = GroupId::from(key.to_string());
            let leader = leader_of(apis, apis.groups.partition_of(&group_id));
            if leader == Some(apis.config.node_id) {
                apis.groups.wait_loaded(&group_id, LOAD_WAIT).await;
            }
            leader
        }
        KEY_TYPE_TRANSACTION => {
            if key.is_empty() {
                return not_available(key, ResponseError::InvalidRequest);
            }
            if apis.image().topic(TRANSACTION_STATE_TOPIC).is_none() {
                let brokers = apis.image().live_brokers().count();
                apis.transactions
                    .create_state_topic(apis.quorum.channel(), brokers, super::AUTO_CREATE_TIMEOUT)
                    .await;
            }
            let leader = leader_of(apis, apis.transactions.partition_of(&key));
            if leader == Some(apis.config.node_id) {
                apis.transactions.wait_loaded(&key, LOAD_WAIT).await;
            }
            leader
        }
        _ => return not_available(key, ResponseError::InvalidRequest),
    };
    let image = apis.image();
    match leader
        .filter(|id| image.is_live(*id))
        .and_then(|id| image.brokers.get(&id))
    {
        Some(registration) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(registration.broker_id.0))
            .with_host(StrBytes::from_string(registration.host.clone()))
            .with_port(i32::from(registration.port)),
        None => not_available(key, ResponseError::CoordinatorNotAvailable),
    }
}

/// The leader of a coordinator partition, by this broker's latest metadata.
fn leader_of(
    apis: &KafkaApis,
    partition: Option<(crate::ids::TopicId, crate::ids::PartitionIndex)>,
) -> Option<crate::ids::BrokerId> {
    let (topic_id, index) = partition?;
    let image = apis.image();
    let leader = image.topic_by_id(topic_id)?.partitions.get(&index)?.leader;
    Some(leader)
}

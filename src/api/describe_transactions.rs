//! DescribeTransactions (key 65): the state of each transactional id this broker coordinates (`kafka-transactions
//! describe`): TRANSACTIONAL_ID_NOT_FOUND for one it does not know, NOT_COORDINATOR for one another broker
//! coordinates, COORDINATOR_LOAD_IN_PROGRESS while its partition loads.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use kafka_protocol::messages::{ProducerId as WireProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaApis, ToErrorCode};
use crate::ids::{ProducerEpoch, ProducerId};

pub fn handle(
    apis: &Arc<KafkaApis>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let state = TransactionState::default().with_transactional_id(id.clone());
            match apis.transactions.describe(&id) {
                Ok(found) => {
                    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for p in found.partitions {
                        topics.entry(p.topic).or_default().push(p.partition);
                    }
                    state
                        .with_transaction_state(StrBytes::from_static_str(found.state.name()))
                        .with_transaction_timeout_ms(found.timeout_ms)
                        .with_transaction_start_time_ms(found.start_timestamp_ms)
                        .with_producer_id(WireProducerId(found.producer_id.0))
                        .with_producer_epoch(found.producer_epoch.0)
                        .with_topics(
                            topics
                                .into_iter()
                                .map(|(topic, partitions)| {
                                    TopicData::default()
                                        .with_topic(TopicName(StrBytes::from_string(topic)))
                                        .with_partitions(partitions)
                                })
                                .collect(),
                        )
                }
                Err(error) => state
                    .with_error_code(error.code())
                    .with_transaction_state(StrBytes::from_static_str(""))
                    .with_transaction_start_time_ms(-1)
                    .with_producer_id(WireProducerId(ProducerId::NONE.0))
                    .with_producer_epoch(ProducerEpoch::NONE.0),
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

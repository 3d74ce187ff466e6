//! AddPartitionsToTxn (key 24, v0..=v4): the partitions a transactional producer is about to write to join its
//! transaction, so that the coordinator writes their markers when it ends.
//!
//! v0..=v3 come from producers: one transaction, answered per partition. v4 (KIP-890) comes from brokers: a batch
//! of transactions, each either added or, with `verify_only`, only checked against the ongoing transaction
//! (TRANSACTION_ABORTABLE for a partition not in it). As in Kafka, a partition the metadata does not know fails the
//! whole transaction: UNKNOWN_TOPIC_OR_PARTITION for it, OPERATION_NOT_ATTEMPTED for the others. Before v2 a fenced
//! producer hears INVALID_PRODUCER_EPOCH, which older clients understand.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};

use super::{KafkaApis, ToErrorCode};
use crate::coordinator::transaction::{TopicPartition, TransactionError};
use crate::ids::{PartitionIndex, ProducerEpoch, ProducerId};

pub async fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if version < 4 {
        let transaction = AddPartitionsToTxnTransaction::default()
            .with_transactional_id(request.v3_and_below_transactional_id)
            .with_producer_id(request.v3_and_below_producer_id)
            .with_producer_epoch(request.v3_and_below_producer_epoch)
            .with_topics(request.v3_and_below_topics);
        let result = add(apis, version, transaction).await;
        return AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(result.topic_results);
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in request.transactions {
        results.push(add(apis, version, transaction).await);
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

async fn add(
    apis: &Arc<KafkaApis>,
    version: i16,
    transaction: AddPartitionsToTxnTransaction,
) -> AddPartitionsToTxnResult {
    let transactional_id = transaction.transactional_id.to_string();
    let partitions: Vec<TopicPartition> = transaction
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|&partition| TopicPartition {
                topic: topic.name.to_string(),
                partition,
            })
        })
        .collect();
    let image = apis.image();
    let unknown = |p: &TopicPartition| {
        image
            .topic(&p.topic)
            .is_none_or(|t| !t.partitions.contains_key(&PartitionIndex(p.partition)))
    };
    let codes: Vec<i16> = if partitions.iter().any(unknown) {
        partitions
            .iter()
            .map(|p| {
                if unknown(p) {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    ResponseError::OperationNotAttempted.code()
                }
            })
            .collect()
    } else {
        let (producer_id, epoch) = (
            ProducerId(transaction.producer_id.0),
            ProducerEpoch(transaction.producer_epoch),
        );
        let coordinator = &apis.transactions;
        if transaction.verify_only {
            match coordinator.verify_partitions(&transactional_id, producer_id, epoch, &partitions)
            {
                Ok(errors) => errors
                    .iter()
                    .map(|e| e.as_ref().map_or(0, |e| code(version, e)))
                    .collect(),
                Err(error) => vec![code(version, &error); partitions.len()],
            }
        } else {
            let result = coordinator
                .add_partitions(&transactional_id, producer_id, epoch, &partitions)
                .await;
            if let Err(error) = &result {
                tracing::debug!(%transactional_id, %error, "AddPartitionsToTxn refused");
            }
            let code = result.err().map_or(0, |e| code(version, &e));
            vec![code; partitions.len()]
        }
    };
    AddPartitionsToTxnResult::default()
        .with_transactional_id(transaction.transactional_id)
        .with_topic_results(topic_results(&transaction.topics, &codes))
}

/// Kafka's codes, with PRODUCER_FENCED as INVALID_PRODUCER_EPOCH before v2.
fn code(version: i16, error: &TransactionError) -> i16 {
    match error {
        TransactionError::ProducerFenced if version < 2 => {
            ResponseError::InvalidProducerEpoch.code()
        }
        error => error.code(),
    }
}

/// `codes`, one per partition in request order, grouped back into the request's topics.
fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    codes: &[i16],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut codes = codes.iter().copied();
    topics
        .iter()
        .map(|topic| {
            let results = topic
                .partitions
                .iter()
                .map(|&partition| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(partition)
                        .with_partition_error_code(codes.next().unwrap_or_default())
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(results)
        })
        .collect()
}

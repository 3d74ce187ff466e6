//! InitProducerId (key 22): a producer id and epoch for an idempotent producer, from the TransactionCoordinator.
//! An empty transactional id is treated as none, as Kafka does.

use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ProducerId as WireProducerId;

use super::{KafkaApis, ToErrorCode};
use crate::ids::{ProducerEpoch, ProducerId};

pub async fn handle(apis: &KafkaApis, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|id| id.0.as_str())
        .filter(|id| !id.is_empty());
    let result = apis
        .transactions
        .init_producer_id(apis.quorum.controller(), transactional_id)
        .await;
    let response = InitProducerIdResponse::default()
        .with_ongoing_txn_producer_id(WireProducerId(ProducerId::NONE.0))
        .with_ongoing_txn_producer_epoch(ProducerEpoch::NONE.0);
    match result {
        Ok((producer_id, epoch)) => response
            .with_producer_id(WireProducerId(producer_id.0))
            .with_producer_epoch(epoch.0),
        Err(error) => {
            tracing::debug!(%error, "InitProducerId refused");
            response
                .with_error_code(error.code())
                .with_producer_id(WireProducerId(ProducerId::NONE.0))
                .with_producer_epoch(ProducerEpoch::NONE.0)
        }
    }
}

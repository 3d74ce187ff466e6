//! InitProducerId (key 22, v0..=v5): a producer id and epoch from the TransactionCoordinator. Without a
//! transactional id (null): a new producer id, epoch 0, for an idempotent producer. With one: that id's producer
//! id at a bumped epoch, fencing older producers with the same transactional id, after checking the transaction
//! timeout against transaction.max.timeout.ms (INVALID_TRANSACTION_TIMEOUT); an empty one is INVALID_REQUEST, as
//! in Kafka. v3+ carries the producer's current id and epoch (KIP-360) so a retry is answered, not fenced. Before
//! v4 a fenced producer hears INVALID_PRODUCER_EPOCH, which older clients understand.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ProducerId as WireProducerId;

use super::{KafkaApis, ToErrorCode};
use crate::coordinator::transaction::TransactionError;
use crate::ids::{ProducerEpoch, ProducerId};

pub async fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.as_str());
    let expected = (request.producer_id.0 != ProducerId::NONE.0
        || request.producer_epoch != ProducerEpoch::NONE.0)
        .then_some((
            ProducerId(request.producer_id.0),
            ProducerEpoch(request.producer_epoch),
        ));
    let result = apis
        .transactions
        .init_producer_id(
            apis.quorum.channel(),
            transactional_id,
            request.transaction_timeout_ms,
            expected,
        )
        .await;
    let response = InitProducerIdResponse::default()
        .with_ongoing_txn_producer_id(WireProducerId(ProducerId::NONE.0))
        .with_ongoing_txn_producer_epoch(ProducerEpoch::NONE.0);
    match result {
        Ok((producer_id, epoch)) => response
            .with_producer_id(WireProducerId(producer_id.0))
            .with_producer_epoch(epoch.0),
        Err(error) => {
            tracing::debug!(?transactional_id, %error, "InitProducerId refused");
            let code = match error {
                TransactionError::ProducerFenced if version < 4 => {
                    ResponseError::InvalidProducerEpoch.code()
                }
                error => error.code(),
            };
            response
                .with_error_code(code)
                .with_producer_id(WireProducerId(ProducerId::NONE.0))
                .with_producer_epoch(ProducerEpoch::NONE.0)
        }
    }
}

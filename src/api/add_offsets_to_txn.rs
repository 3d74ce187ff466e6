//! AddOffsetsToTxn (key 25): a transactional producer is about to commit a group's offsets in its transaction
//! (`sendOffsetsToTransaction`). The group's `__consumer_offsets` partition joins the transaction, so that the
//! transaction's marker reaches it and the offsets (sent next, by TxnOffsetCommit to the group coordinator) take
//! effect, or not, with the rest. Before v2 a fenced producer hears INVALID_PRODUCER_EPOCH.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;

use super::{KafkaApis, ToErrorCode};
use crate::coordinator::transaction::TransactionError;
use crate::ids::{ProducerEpoch, ProducerId};

pub async fn handle(
    apis: &Arc<KafkaApis>,
    version: i16,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let transactional_id = request.transactional_id.to_string();
    let partition = apis.transactions.offsets_partition_of(&request.group_id);
    let result = apis
        .transactions
        .add_partitions(
            &transactional_id,
            ProducerId(request.producer_id.0),
            ProducerEpoch(request.producer_epoch),
            &[partition],
        )
        .await;
    let code = match result {
        Ok(()) => 0,
        Err(TransactionError::ProducerFenced) if version < 2 => {
            ResponseError::InvalidProducerEpoch.code()
        }
        Err(error) => {
            tracing::debug!(%transactional_id, %error, "AddOffsetsToTxn refused");
            error.code()
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

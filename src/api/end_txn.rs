//! EndTxn (key 26, v0..=v4): a transactional producer commits or aborts its transaction. Once the decision
//! (PrepareCommit or PrepareAbort) is durable in `__transaction_state` it stands; the answer waits a bounded while
//! longer for the markers to the transaction's partitions, until which the producer's next transaction would hear
//! CONCURRENT_TRANSACTIONS. A retry of an EndTxn already completed the same way succeeds. Before v2 a fenced
//! producer hears INVALID_PRODUCER_EPOCH. v5 (KIP-890's epoch bump per transaction, transaction version 2) is not
//! offered.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::ProducerId as WireProducerId;

use super::{KafkaApis, ToErrorCode};
use crate::coordinator::transaction::TransactionError;
use crate::ids::{ProducerEpoch, ProducerId};

pub async fn handle(apis: &Arc<KafkaApis>, version: i16, request: EndTxnRequest) -> EndTxnResponse {
    let transactional_id = request.transactional_id.to_string();
    let result = apis
        .transactions
        .end_transaction(
            &transactional_id,
            ProducerId(request.producer_id.0),
            ProducerEpoch(request.producer_epoch),
            request.committed,
        )
        .await;
    let code = match result {
        Ok(()) => 0,
        Err(TransactionError::ProducerFenced) if version < 2 => {
            ResponseError::InvalidProducerEpoch.code()
        }
        Err(error) => {
            tracing::debug!(%transactional_id, %error, "EndTxn refused");
            error.code()
        }
    };
    EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id(WireProducerId(ProducerId::NONE.0))
        .with_producer_epoch(ProducerEpoch::NONE.0)
}

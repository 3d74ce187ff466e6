//! ListTransactions (key 66, v0..=v1): the transactional ids this broker coordinates (`kafka-transactions list`),
//! filtered by state, producer id and (v1, KIP-994) the least time a transaction has been running. State names
//! Kafka does not know come back in `unknown_state_filters`. v2's regular-expression filter is not offered.

use std::sync::Arc;

use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::list_transactions_response::{
    ListTransactionsResponse, TransactionState,
};
use kafka_protocol::messages::{ProducerId as WireProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaApis, ToErrorCode};
use crate::coordinator::transaction::TransactionState as State;
use crate::ids::ProducerId;

pub fn handle(apis: &Arc<KafkaApis>, request: ListTransactionsRequest) -> ListTransactionsResponse {
    let (known, unknown): (Vec<StrBytes>, Vec<StrBytes>) = request
        .state_filters
        .into_iter()
        .partition(|s| State::from_name(s).is_some());
    let states: Vec<String> = known.iter().map(|s| s.to_string()).collect();
    let producer_ids: Vec<ProducerId> = request
        .producer_id_filters
        .iter()
        .map(|id| ProducerId(id.0))
        .collect();
    let response = ListTransactionsResponse::default().with_unknown_state_filters(unknown);
    // Only unknown states asked for: nothing can match.
    if states.is_empty() && !response.unknown_state_filters.is_empty() {
        return response;
    }
    match apis
        .transactions
        .list(&states, &producer_ids, request.duration_filter)
    {
        Ok(listed) => response.with_transaction_states(
            listed
                .into_iter()
                .map(|t| {
                    TransactionState::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_string(
                            t.transactional_id,
                        )))
                        .with_producer_id(WireProducerId(t.producer_id.0))
                        .with_transaction_state(StrBytes::from_static_str(t.state.name()))
                })
                .collect(),
        ),
        Err(error) => response.with_error_code(error.code()),
    }
}

//! The error codes a response carries, as Kafka's `AbstractResponse.errorCounts` counts them for
//! `ErrorsPerSec`: each top-level code, and each per-topic or per-partition code, NONE included.
//!
//! Only the APIs clients call all the time are walked; the others count their requests but not their errors.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ResponseKind;

/// Calls `count` with every error code in `response`.
pub fn error_codes(response: &ResponseKind, mut count: impl FnMut(i16)) {
    match response {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| count(p.error_code)),
        ResponseKind::Fetch(r) => {
            count(r.error_code);
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| count(p.error_code));
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| count(p.error_code)),
        ResponseKind::Metadata(r) => r.topics.iter().for_each(|t| count(t.error_code)),
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| count(p.error_code)),
        ResponseKind::OffsetFetch(r) => {
            count(r.error_code);
            r.groups.iter().for_each(|g| count(g.error_code));
        }
        ResponseKind::FindCoordinator(r) => match r.coordinators.is_empty() {
            true => count(r.error_code),
            false => r.coordinators.iter().for_each(|c| count(c.error_code)),
        },
        ResponseKind::JoinGroup(r) => count(r.error_code),
        ResponseKind::SyncGroup(r) => count(r.error_code),
        ResponseKind::Heartbeat(r) => count(r.error_code),
        ResponseKind::LeaveGroup(r) => count(r.error_code),
        ResponseKind::InitProducerId(r) => count(r.error_code),
        ResponseKind::EndTxn(r) => count(r.error_code),
        ResponseKind::ApiVersions(r) => count(r.error_code),
        ResponseKind::CreateTopics(r) => r.topics.iter().for_each(|t| count(t.error_code)),
        ResponseKind::DeleteTopics(r) => r.responses.iter().for_each(|t| count(t.error_code)),
        _ => {}
    }
}

/// Kafka's name of an error code (`Errors.name()`): `NONE`, `NOT_LEADER_OR_FOLLOWER`; the number when unknown.
pub fn error_name(code: i16) -> String {
    if code == 0 {
        return "NONE".to_string();
    }
    match ResponseError::try_from_code(code) {
        None | Some(ResponseError::Unknown(_)) => code.to_string(),
        Some(error) => crate::admin::error::code_name(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(9999), "9999");
    }
}

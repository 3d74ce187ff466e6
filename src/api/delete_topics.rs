//! DeleteTopics (key 20): by name (v0-5) or by name or topic id (v6+). The controller commits the removal; each
//! broker deletes its partition logs when it applies the record.

use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::ToErrorCode;
use crate::ids::TopicId;
use ferrite_raft::MetadataQuorum;
use ferrite_raft::TopicRef;

pub async fn handle(
    quorum: &MetadataQuorum,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let request_timeout_ms = request.timeout_ms;
    let refs: Vec<TopicRef> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| match t.name {
                Some(name) if t.topic_id.is_nil() => TopicRef::Name(name.0.to_string()),
                _ => TopicRef::Id(TopicId(t.topic_id)),
            })
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|name| TopicRef::Name(name.0.to_string()))
            .collect()
    };
    let asked = refs.clone();
    let results = quorum
        .channel()
        .delete_topics(refs, super::controller_timeout(request_timeout_ms))
        .await;
    let responses = asked
        .into_iter()
        .zip(results)
        .map(|(asked, result)| {
            let (name, id) = match &asked {
                TopicRef::Name(name) => (Some(name.clone()), Uuid::nil()),
                TopicRef::Id(id) => (None, id.0),
            };
            let response = DeletableTopicResult::default();
            match result {
                Ok(deleted) => response
                    .with_name(Some(TopicName(StrBytes::from_string(deleted.name))))
                    .with_topic_id(deleted.topic_id.0),
                Err(error) => response
                    .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                    .with_topic_id(id)
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(error.to_string()))),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

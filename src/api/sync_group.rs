//! SyncGroup (key 14): the leader hands out the assignment; every member gets its own once the group's metadata
//! record with the assignments is durable.

use kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::protocol::StrBytes;

use super::ToErrorCode;
use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::group::SyncRequest;

pub async fn handle(
    groups: &GroupCoordinator,
    version: i16,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let sync = SyncRequest {
        group_id: request.group_id.to_string().into(),
        member_id: request.member_id.to_string().into(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string().into()),
        generation: request.generation_id,
        protocol_type: request.protocol_type.map(|p| p.to_string()),
        protocol_name: request.protocol_name.map(|p| p.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string().into(), a.assignment))
            .collect(),
    };
    let result = groups.sync_group(sync).await;
    let v5 = version >= 5;
    SyncGroupResponse::default()
        .with_error_code(result.error.as_ref().map_or(0, |e| e.code()))
        .with_protocol_type(
            result
                .protocol_type
                .filter(|_| v5)
                .map(StrBytes::from_string),
        )
        .with_protocol_name(
            result
                .protocol_name
                .filter(|_| v5)
                .map(StrBytes::from_string),
        )
        .with_assignment(result.assignment)
}

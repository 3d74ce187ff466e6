//! Heartbeat (key 12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;

use super::ToErrorCode;
use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::group::{GroupId, GroupInstanceId, MemberId};

pub async fn handle(groups: &GroupCoordinator, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = GroupId::from(request.group_id.to_string());
    let member_id = MemberId::from(request.member_id.to_string());
    let group_instance_id = request
        .group_instance_id
        .map(|i| GroupInstanceId::from(i.to_string()));
    let result = groups
        .heartbeat(
            &group_id,
            &member_id,
            group_instance_id.as_ref(),
            request.generation_id,
        )
        .await;
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}

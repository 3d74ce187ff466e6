//! JoinGroup (key 11): the classic rebalance's join phase. The response waits until the group's join phase ends
//! (all members rejoined, the rebalance timeout, or group.initial.rebalance.delay.ms for a new group).

use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::protocol::StrBytes;

use super::ToErrorCode;
use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::group::JoinRequest;

pub async fn handle(
    groups: &GroupCoordinator,
    version: i16,
    client_id: &str,
    client_host: &str,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let join = JoinRequest {
        group_id: request.group_id.to_string().into(),
        member_id: request.member_id.to_string().into(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string().into()),
        fresh_member_id: format!("{client_id}-{}", uuid::Uuid::new_v4()).into(),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout serves for both, as in Kafka.
        rebalance_timeout_ms: if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let result = groups.join_group(join).await;
    let members = result
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(m.member_id.into()))
                .with_group_instance_id(if version >= 5 {
                    m.group_instance_id.map(|i| StrBytes::from_string(i.into()))
                } else {
                    None
                })
                .with_metadata(m.metadata)
        })
        .collect();
    // Before v7 the protocol name is not nullable: Kafka sends "" instead.
    let protocol_name = match result.protocol_name {
        None if version < 7 => Some(String::new()),
        name => name,
    };
    JoinGroupResponse::default()
        .with_error_code(result.error.as_ref().map_or(0, |e| e.code()))
        .with_generation_id(result.generation)
        .with_protocol_type(if version >= 7 {
            result.protocol_type.map(StrBytes::from_string)
        } else {
            None
        })
        .with_protocol_name(protocol_name.map(StrBytes::from_string))
        .with_leader(StrBytes::from_string(result.leader.into()))
        .with_skip_assignment(version >= 9 && result.skip_assignment)
        .with_member_id(StrBytes::from_string(result.member_id.into()))
        .with_members(members)
}

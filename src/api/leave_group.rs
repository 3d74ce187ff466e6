//! LeaveGroup (key 13): members leave, one (v0..=v2) or a batch identified by member id or group instance id
//! (v3+, KIP-345).

use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};

use super::ToErrorCode;
use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::group::{GroupId, GroupInstanceId, MemberId};

pub async fn handle(
    groups: &GroupCoordinator,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let members: Vec<(MemberId, Option<GroupInstanceId>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string().into(),
                    m.group_instance_id.as_ref().map(|i| i.to_string().into()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string().into(), None)]
    };
    let group_id = GroupId::from(request.group_id.to_string());
    match groups.leave_group(&group_id, &members).await {
        Err(error) => LeaveGroupResponse::default().with_error_code(error.code()),
        Ok(errors) if version < 3 => LeaveGroupResponse::default().with_error_code(
            errors
                .first()
                .and_then(Option::as_ref)
                .map_or(0, |e| e.code()),
        ),
        Ok(errors) => LeaveGroupResponse::default().with_members(
            request
                .members
                .into_iter()
                .zip(errors)
                .map(|(m, error)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect(),
        ),
    }
}

//! DescribeGroups (key 15): state, protocol and members (client id, host, metadata, assignment) of each group.
//! An unknown group is "Dead"; v6 adds GROUP_ID_NOT_FOUND (KIP-1043).

use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use kafka_protocol::protocol::StrBytes;

use super::{authorized_operations, AclResourceType, ToErrorCode};
use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::group::GroupError;

pub fn handle(
    groups: &GroupCoordinator,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let operations = authorized_operations(
        AclResourceType::Group,
        request.include_authorized_operations,
    );
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let described = DescribedGroup::default()
                .with_authorized_operations(operations)
                .with_protocol_type(StrBytes::default())
                .with_protocol_data(StrBytes::default());
            match groups.describe_group(&group_id.to_string().into()) {
                Err(error) => described
                    .with_group_id(group_id)
                    .with_error_code(error.code()),
                Ok(None) => {
                    let not_found = if version >= 6 {
                        GroupError::GroupIdNotFound.code()
                    } else {
                        0
                    };
                    described
                        .with_error_message(if version >= 6 {
                            Some(StrBytes::from_string(format!(
                                "Group {} not found.",
                                &*group_id
                            )))
                        } else {
                            None
                        })
                        .with_group_id(group_id)
                        .with_error_code(not_found)
                        .with_group_state(StrBytes::from_static_str("Dead"))
                }
                Ok(Some(group)) => described
                    .with_group_id(group_id)
                    .with_group_state(StrBytes::from_static_str(group.state.name()))
                    .with_protocol_type(StrBytes::from_string(group.protocol_type))
                    .with_protocol_data(StrBytes::from_string(group.protocol))
                    .with_members(
                        group
                            .members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.member_id.into()))
                                    .with_group_instance_id(if version >= 4 {
                                        m.group_instance_id.map(|i| StrBytes::from_string(i.into()))
                                    } else {
                                        None
                                    })
                                    .with_client_id(StrBytes::from_string(m.client_id))
                                    .with_client_host(StrBytes::from_string(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

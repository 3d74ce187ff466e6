//! ListGroups (key 16): the groups this broker coordinates, filtered by state (v4+) and type (v5+; all groups here
//! are "classic").

use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;

use super::ToErrorCode;
use crate::coordinator::group::GroupCoordinator;

pub fn handle(
    groups: &GroupCoordinator,
    version: i16,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_string())
        .collect();
    let classic_wanted = request.types_filter.is_empty()
        || request
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    let listed = match groups.list_groups(&states) {
        Ok(listed) => listed,
        Err(error) => return ListGroupsResponse::default().with_error_code(error.code()),
    };
    let groups = listed
        .into_iter()
        .filter(|_| classic_wanted)
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id.into())))
                .with_protocol_type(StrBytes::from_string(g.protocol_type))
                .with_group_state(if version >= 4 {
                    StrBytes::from_static_str(g.state.name())
                } else {
                    StrBytes::default()
                })
                .with_group_type(if version >= 5 {
                    StrBytes::from_static_str("classic")
                } else {
                    StrBytes::default()
                })
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

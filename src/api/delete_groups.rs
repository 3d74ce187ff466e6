//! DeleteGroups (key 42): deletes Empty groups with their offsets; NON_EMPTY_GROUP while members remain.

use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};

use super::ToErrorCode;
use crate::coordinator::group::GroupCoordinator;

pub async fn handle(
    groups: &GroupCoordinator,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let error = groups.delete_group(&group_id.to_string().into()).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error.map_or(0, |e| e.code())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

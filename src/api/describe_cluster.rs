//! DescribeCluster (key 60): the cluster id, the controller, and the registered brokers (endpoint type 1, brokers;
//! the controllers' endpoints are not served on a client listener: UNSUPPORTED_ENDPOINT_TYPE, as in Kafka).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::KafkaApis;
use super::{authorized_operations, AclResourceType};

const ENDPOINT_BROKERS: i8 = 1;

pub fn handle(
    apis: &Arc<KafkaApis>,
    _version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(StrBytes::from_string(apis.cluster_id.clone()))
        .with_cluster_authorized_operations(authorized_operations(
            AclResourceType::Cluster,
            request.include_cluster_authorized_operations,
        ));
    if request.endpoint_type != ENDPOINT_BROKERS {
        return response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )))
            .with_controller_id(kafka_protocol::messages::BrokerId(-1));
    }
    let image = apis.image();
    let controller = apis
        .quorum
        .leader_id()
        .filter(|id| image.is_live(*id))
        .unwrap_or(apis.config.node_id);
    let brokers = image
        .live_brokers()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(kafka_protocol::messages::BrokerId(b.broker_id.0))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    response
        .with_controller_id(kafka_protocol::messages::BrokerId(controller.0))
        .with_brokers(brokers)
}

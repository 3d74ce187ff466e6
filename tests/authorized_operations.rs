//! Authorized operations without an authorizer: Kafka then authorizes everything a resource type supports, and says
//! so in Metadata, DescribeCluster and DescribeGroups when the client asks (include_*_authorized_operations), with
//! the "omitted" sentinel i32::MIN when it does not. The rdkafka crate does not expose these fields, so the checks
//! are on the wire; librdkafka's own 0081_admin DescribeTopics and DescribeCluster subtests check them too.

mod common;

use std::time::{Duration, Instant};

use common::{call, TestBroker};
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterResponse;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::DescribeGroupsResponse;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::{ApiKey, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;

const OMITTED: i32 = i32::MIN;

/// Bit n is AclOperation code n.
fn bits(codes: &[u8]) -> i32 {
    codes.iter().fold(0, |b, c| b | (1 << c))
}

/// READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS.
fn topic_ops() -> i32 {
    bits(&[3, 4, 5, 6, 7, 8, 10, 11])
}

/// CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE.
fn cluster_ops() -> i32 {
    bits(&[5, 7, 8, 9, 10, 11, 12])
}

/// READ DELETE DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS.
fn group_ops() -> i32 {
    bits(&[3, 6, 8, 10, 11])
}

fn metadata(
    broker: &TestBroker,
    version: i16,
    topics: &[&str],
    include_topic: bool,
    include_cluster: bool,
) -> MetadataResponse {
    let topics = topics
        .iter()
        .map(|t| {
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
        })
        .collect();
    let request = MetadataRequest::default()
        .with_topics(Some(topics))
        .with_allow_auto_topic_creation(false)
        .with_include_topic_authorized_operations(include_topic)
        .with_include_cluster_authorized_operations(include_cluster && version <= 10);
    call(broker, ApiKey::Metadata, version, &request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_reports_topic_and_cluster_operations_when_asked() {
    let broker = TestBroker::start();
    broker.create_topic("ops", 1).await;

    for version in [8, 10, 12] {
        let asked = metadata(&broker, version, &["ops", "nowhere"], true, true);
        assert_eq!(asked.topics[0].error_code, 0, "v{version}");
        assert_eq!(
            asked.topics[0].topic_authorized_operations,
            topic_ops(),
            "v{version}"
        );
        // As in Kafka: a name that matches no topic is still a topic resource the client could create.
        assert_eq!(asked.topics[1].error_code, 3, "v{version}");
        assert_eq!(
            asked.topics[1].topic_authorized_operations,
            topic_ops(),
            "v{version}"
        );
        let cluster = if version <= 10 {
            cluster_ops()
        } else {
            OMITTED
        };
        assert_eq!(
            asked.cluster_authorized_operations, cluster,
            "v{version}: the cluster's operations moved to DescribeCluster in v11"
        );

        let not_asked = metadata(&broker, version, &["ops"], false, false);
        assert_eq!(not_asked.topics[0].topic_authorized_operations, OMITTED);
        assert_eq!(not_asked.cluster_authorized_operations, OMITTED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_reports_cluster_operations_when_asked() {
    let broker = TestBroker::start();
    let version = ApiKey::DescribeCluster.valid_versions().max;
    for (asked, expected) in [(true, cluster_ops()), (false, OMITTED)] {
        let response: DescribeClusterResponse = call(
            &broker,
            ApiKey::DescribeCluster,
            version,
            &DescribeClusterRequest::default()
                .with_endpoint_type(1)
                .with_include_cluster_authorized_operations(asked),
        );
        assert_eq!(response.error_code, 0);
        assert_eq!(response.cluster_authorized_operations, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_groups_reports_group_operations_when_asked() {
    let broker = TestBroker::start();
    let describe = |asked: bool| -> DescribeGroupsResponse {
        call(
            &broker,
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(StrBytes::from_static_str("nobody"))])
                .with_include_authorized_operations(asked),
        )
    };
    // FindCoordinator creates __consumer_offsets; the coordinator answers once it has loaded its partition.
    let deadline = Instant::now() + Duration::from_secs(30);
    while describe(false).groups[0].error_code != 0 {
        let _: FindCoordinatorResponse = call(
            &broker,
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("nobody")),
        );
        assert!(
            Instant::now() < deadline,
            "the group coordinator never loaded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (asked, expected) in [(true, group_ops()), (false, OMITTED)] {
        let response = describe(asked);
        assert_eq!(response.groups[0].error_code, 0);
        assert_eq!(&*response.groups[0].group_state, "Dead");
        assert_eq!(response.groups[0].authorized_operations, expected);
    }
}

//! The metrics read at scrape time from the broker's parts: Kafka's `Log`, `ReplicaManager`, `KafkaController`,
//! raft and group coordinator gauges, and consumer lag as kafka_exporter names it. Built into a fresh registry
//! per scrape, so a deleted partition or group simply stops appearing.

use std::sync::Arc;

use ferrite_raft::MetadataQuorum;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Labels;
use crate::coordinator::group::{GroupCoordinator, GroupState};
use crate::ids::{BrokerId, PartitionIndex};
use crate::metadata::MetadataLoader;
use crate::replica::ReplicaManager;

/// What a scrape reads; a controller-only node has no broker parts.
pub struct NodeParts {
    pub node_id: BrokerId,
    pub quorum: MetadataQuorum,
    pub metadata: Arc<MetadataLoader>,
    pub broker: Option<BrokerParts>,
}

pub struct BrokerParts {
    pub replicas: Arc<ReplicaManager>,
    pub groups: Arc<GroupCoordinator>,
}

/// Gauges of one scrape, registered as they are filled.
struct Gauges {
    registry: Registry,
}

impl Gauges {
    fn single(&mut self, name: &str, help: &str, value: i64) {
        let gauge = Gauge::<i64>::default();
        gauge.set(value);
        self.registry.register(name, help, gauge);
    }

    fn family(&mut self, name: &str, help: &str, values: Vec<(Labels, i64)>) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, value) in values {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }
}

/// The scrape-time metrics of `node`, in Prometheus's text format.
pub async fn encode(node: &NodeParts, out: &mut String) -> std::fmt::Result {
    let mut gauges = Gauges {
        registry: Registry::default(),
    };
    quorum(node, &mut gauges);
    if let Some(broker) = &node.broker {
        partitions(broker, &mut gauges);
        groups(node, broker, &mut gauges).await;
    }
    prometheus_client::encoding::prometheus_text::encode(out, &gauges.registry)
}

fn quorum(node: &NodeParts, gauges: &mut Gauges) {
    let status = node.quorum.status();
    let image = node.metadata.current();
    let leader = status.leader_id.map_or(-1, |id| i64::from(id.0));
    let active = leader == i64::from(node.node_id.0);
    gauges.single(
        "kafka_server_raft_metrics_current_leader",
        "The metadata quorum's leader as this node knows it, -1 when none (raft-metrics current-leader)",
        leader,
    );
    gauges.single(
        "kafka_server_raft_metrics_current_epoch",
        "The metadata quorum's epoch (raft-metrics current-epoch)",
        i64::from(status.leader_epoch),
    );
    gauges.single(
        "kafka_server_raft_metrics_high_watermark",
        "The metadata log's committed offset (raft-metrics high-watermark)",
        status.high_watermark,
    );
    gauges.single(
        "kafka_server_broker_metadata_metrics_last_applied_record_offset",
        "The metadata log offset this node's MetadataImage has applied (broker-metadata-metrics)",
        i64::try_from(image.offset).unwrap_or(i64::MAX),
    );
    gauges.single(
        "kafka_server_broker_metadata_metrics_last_applied_record_lag",
        "Committed metadata log entries not yet applied to this node's MetadataImage",
        // The high watermark is the offset after the last committed entry; the image holds the last applied one.
        (status.high_watermark - 1 - i64::try_from(image.offset).unwrap_or(i64::MAX)).max(0),
    );
    // As in Kafka, the cluster-wide controller gauges are non-zero only on the active controller, so that summing
    // them over the cluster counts each partition and broker once.
    let (mut offline, mut fenced, mut live, mut topics, mut partitions) = (0, 0, 0, 0, 0);
    if active {
        for broker in image.brokers.values() {
            match broker.fenced {
                true => fenced += 1,
                false => live += 1,
            }
        }
        for topic in image.topics() {
            topics += 1;
            for registration in topic.partitions.values() {
                partitions += 1;
                if registration.leader.0 < 0 || !image.is_live(registration.leader) {
                    offline += 1;
                }
            }
        }
    }
    let controller = [
        (
            "activecontrollercount",
            "1 on the active controller, 0 elsewhere",
            i64::from(active),
        ),
        (
            "offlinepartitionscount",
            "Partitions without a live leader",
            offline,
        ),
        (
            "fencedbrokercount",
            "Registered brokers that are fenced",
            fenced,
        ),
        (
            "activebrokercount",
            "Registered brokers that are unfenced",
            live,
        ),
        ("globaltopiccount", "Topics in the cluster", topics),
        (
            "globalpartitioncount",
            "Partitions in the cluster",
            partitions,
        ),
    ];
    for (name, help, value) in controller {
        gauges.single(
            &format!("kafka_controller_kafkacontroller_{name}"),
            &format!("{help} (KafkaController)"),
            value,
        );
    }
}

fn partitions(broker: &BrokerParts, gauges: &mut Gauges) {
    let hosted = broker.replicas.hosted();
    let mut size = Vec::with_capacity(hosted.len());
    let mut segments = Vec::with_capacity(hosted.len());
    let mut start = Vec::with_capacity(hosted.len());
    let mut end = Vec::with_capacity(hosted.len());
    let (mut leaders, mut under_replicated, mut under_min_isr) = (0, 0, 0);
    for partition in &hosted {
        let stats = partition.stats();
        let labels = partition_labels(&partition.topic, partition.index);
        size.push((
            labels.clone(),
            i64::try_from(stats.size_bytes).unwrap_or(i64::MAX),
        ));
        segments.push((
            labels.clone(),
            i64::try_from(stats.segments).unwrap_or(i64::MAX),
        ));
        start.push((labels.clone(), stats.log_start_offset.0));
        end.push((labels, stats.log_end_offset.0));
        leaders += i64::from(stats.is_leader);
        under_replicated += i64::from(stats.under_replicated);
        under_min_isr += i64::from(stats.under_min_isr);
    }
    gauges.family(
        "kafka_log_log_size",
        "Bytes of the partition's log on disk (Log Size)",
        size,
    );
    gauges.family(
        "kafka_log_log_numlogsegments",
        "Segments of the partition's log (Log NumLogSegments)",
        segments,
    );
    gauges.family(
        "kafka_log_log_logstartoffset",
        "The partition's LogStartOffset (Log LogStartOffset)",
        start,
    );
    gauges.family(
        "kafka_log_log_logendoffset",
        "The partition's log end offset (Log LogEndOffset)",
        end,
    );
    let replica_manager = [
        (
            "partitioncount",
            "Partition replicas on this broker",
            hosted.len() as i64,
        ),
        ("leadercount", "Partitions this broker leads", leaders),
        (
            "underreplicatedpartitions",
            "Partitions led here whose ISR is smaller than their replicas",
            under_replicated,
        ),
        (
            "underminisrpartitioncount",
            "Partitions led here whose ISR is below min.insync.replicas",
            under_min_isr,
        ),
    ];
    for (name, help, value) in replica_manager {
        gauges.single(
            &format!("kafka_server_replicamanager_{name}"),
            &format!("{help} (ReplicaManager)"),
            value,
        );
    }
}

/// Group counts by state (GroupMetadataManager's NumGroups*), and each group's committed offset and lag on the
/// partitions this broker leads: lag is the HighWatermark (what a consumer can read) less the committed offset.
async fn groups(node: &NodeParts, broker: &BrokerParts, gauges: &mut Gauges) {
    // A shard still loading answers COORDINATOR_LOAD_IN_PROGRESS; its groups appear on a later scrape.
    let listed = broker.groups.list_groups(&[]).unwrap_or_default();
    let count = |state: GroupState| listed.iter().filter(|g| g.state == state).count() as i64;
    let by_state = [
        (
            "numgroups",
            "Groups this broker coordinates",
            listed.len() as i64,
        ),
        (
            "numgroupsstable",
            "Groups in Stable",
            count(GroupState::Stable),
        ),
        (
            "numgroupspreparingrebalance",
            "Groups in PreparingRebalance",
            count(GroupState::PreparingRebalance),
        ),
        (
            "numgroupscompletingrebalance",
            "Groups in CompletingRebalance",
            count(GroupState::CompletingRebalance),
        ),
        (
            "numgroupsempty",
            "Groups in Empty",
            count(GroupState::Empty),
        ),
        ("numgroupsdead", "Groups in Dead", count(GroupState::Dead)),
    ];
    for (name, help, value) in by_state {
        gauges.single(
            &format!("kafka_coordinator_group_groupmetadatamanager_{name}"),
            &format!("{help} (GroupMetadataManager)"),
            value,
        );
    }
    let image = node.metadata.current();
    let (mut current, mut lag) = (Vec::new(), Vec::new());
    for group in &listed {
        let Ok(topics) = broker
            .groups
            .fetch_offsets(&group.group_id, None, false)
            .await
        else {
            continue;
        };
        for (topic, offsets) in topics {
            let Some(topic_image) = image.topic(&topic) else {
                continue;
            };
            for committed in offsets
                .iter()
                .filter(|o| o.offset >= 0 && o.error.is_none())
            {
                let index = PartitionIndex(committed.partition);
                let mut labels = partition_labels(&topic, index);
                labels.insert(0, ("consumergroup", group.group_id.as_str().to_string()));
                current.push((labels.clone(), committed.offset));
                let Some(partition) = broker.replicas.partition(topic_image.topic_id, index) else {
                    continue;
                };
                let stats = partition.stats();
                if stats.is_leader {
                    lag.push((labels, (stats.high_watermark.0 - committed.offset).max(0)));
                }
            }
        }
    }
    gauges.family(
        "kafka_consumergroup_current_offset",
        "A group's committed offset (kafka_exporter's name)",
        current,
    );
    gauges.family(
        "kafka_consumergroup_lag",
        "Records a group has not committed: HighWatermark less committed offset, for partitions led here (kafka_exporter's name)",
        lag,
    );
}

fn partition_labels(topic: &str, index: PartitionIndex) -> Labels {
    vec![
        ("topic", topic.to_string()),
        ("partition", index.0.to_string()),
    ]
}

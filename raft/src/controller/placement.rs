//! Where new partitions' replicas go, over the usable (registered, unfenced) brokers, as Kafka's AdminUtils places
//! them: leaders round-robin from a start that rotates between requests, each further replica shifted by a distance
//! that grows once per full round, so followers spread as well as leaders.
//!
//! When every usable broker has a `broker.rack` (and there is more than one rack), placement is rack-aware: the
//! brokers are taken in an order that alternates racks, and a partition's followers skip a broker whose rack
//! already holds one of its replicas while some rack holds none (and a broker that holds one while some broker holds
//! none), so a replication factor up to the number of racks puts every replica on a different rack.

use std::collections::{BTreeMap, BTreeSet};

use crate::controller::state::ControllerState;
use crate::ids::BrokerId;

/// A broker new replicas may go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UsableBroker {
    pub(crate) id: BrokerId,
    pub(crate) rack: Option<String>,
}

/// The registered, unfenced brokers, by id.
pub(crate) fn usable_brokers(state: &ControllerState) -> Vec<UsableBroker> {
    state
        .unfenced_brokers()
        .map(|b| UsableBroker {
            id: b.broker_id,
            rack: b.rack.clone(),
        })
        .collect()
}

/// Replicas for `partitions` new partitions with `replication_factor` replicas each; `start` rotates the first
/// leader. The caller has checked `1 <= replication_factor <= brokers.len()`.
pub(crate) fn assign(
    brokers: &[UsableBroker],
    partitions: usize,
    replication_factor: usize,
    start: usize,
) -> Vec<Vec<BrokerId>> {
    let racks: BTreeSet<&str> = brokers.iter().filter_map(|b| b.rack.as_deref()).collect();
    let all_racked = brokers.iter().all(|b| b.rack.is_some());
    if all_racked && racks.len() > 1 {
        rack_aware(brokers, partitions, replication_factor, start)
    } else {
        let ids: Vec<BrokerId> = brokers.iter().map(|b| b.id).collect();
        spread(&ids, partitions, replication_factor, start, |_, _| true)
    }
}

fn rack_aware(
    brokers: &[UsableBroker],
    partitions: usize,
    replication_factor: usize,
    start: usize,
) -> Vec<Vec<BrokerId>> {
    // Rack-alternated order: the first broker of each rack, then the second of each, ...
    let mut by_rack: BTreeMap<&str, Vec<BrokerId>> = BTreeMap::new();
    for broker in brokers {
        by_rack
            .entry(broker.rack.as_deref().unwrap_or_default())
            .or_default()
            .push(broker.id);
    }
    let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    let ordered: Vec<BrokerId> = (0..deepest)
        .flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied()))
        .collect();
    let rack_of: BTreeMap<BrokerId, &str> = brokers
        .iter()
        .map(|b| (b.id, b.rack.as_deref().unwrap_or_default()))
        .collect();
    let rack_count = by_rack.len();
    let broker_count = ordered.len();
    spread(
        &ordered,
        partitions,
        replication_factor,
        start,
        |candidate, chosen| {
            let racks: BTreeSet<&str> = chosen
                .iter()
                .filter_map(|b| rack_of.get(b).copied())
                .collect();
            let rack = rack_of.get(&candidate).copied().unwrap_or_default();
            (!racks.contains(rack) || racks.len() == rack_count)
                && (!chosen.contains(&candidate) || chosen.len() == broker_count)
        },
    )
}

/// The round-robin walk both placements share. For each follower it tries brokers at growing distances from the
/// leader until `accept(candidate, replicas so far)` takes one (rack-unaware placement takes the first).
fn spread(
    brokers: &[BrokerId],
    partitions: usize,
    replication_factor: usize,
    start: usize,
    accept: impl Fn(BrokerId, &[BrokerId]) -> bool,
) -> Vec<Vec<BrokerId>> {
    let n = brokers.len();
    if n == 0 {
        return Vec::new();
    }
    let start_index = start % n;
    let mut shift = start % n;
    let mut assignment = Vec::with_capacity(partitions);
    for p in 0..partitions {
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (p + start_index) % n;
        let mut replicas = Vec::with_capacity(replication_factor);
        replicas.push(brokers[first]);
        let mut attempt = 0;
        // With one broker there are no followers, so `n - 1` is never zero inside the loop.
        while replicas.len() < replication_factor && n > 1 {
            let distance = 1 + (shift + attempt) % (n - 1);
            let candidate = brokers[(first + distance) % n];
            attempt += 1;
            let fresh = !replicas.contains(&candidate);
            if fresh && accept(candidate, &replicas) {
                replicas.push(candidate);
            } else if attempt > n * n {
                // Cannot happen with replication_factor <= n; never loop forever on bad input.
                break;
            }
        }
        assignment.push(replicas);
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(racks: &[Option<&str>]) -> Vec<UsableBroker> {
        racks
            .iter()
            .enumerate()
            .map(|(i, rack)| UsableBroker {
                id: BrokerId(i32::try_from(i + 1).unwrap_or(0)),
                rack: rack.map(String::from),
            })
            .collect()
    }

    #[test]
    fn leaders_and_followers_spread_over_the_brokers() {
        let brokers = brokers(&[None, None, None]);
        let assignment = assign(&brokers, 6, 3, 0);
        for replicas in &assignment {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3);
        }
        let mut leaders: BTreeMap<BrokerId, usize> = BTreeMap::new();
        for replicas in &assignment {
            *leaders.entry(replicas[0]).or_default() += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[test]
    fn with_racks_every_replica_of_a_partition_is_on_another_rack() {
        // Two brokers in each of three racks, listed rack by rack.
        let brokers = brokers(&[
            Some("a"),
            Some("a"),
            Some("b"),
            Some("b"),
            Some("c"),
            Some("c"),
        ]);
        let rack = |id: BrokerId| {
            brokers
                .iter()
                .find(|b| b.id == id)
                .and_then(|b| b.rack.clone())
        };
        for start in 0..6 {
            let assignment = assign(&brokers, 12, 3, start);
            assert_eq!(assignment.len(), 12);
            for replicas in &assignment {
                let racks: BTreeSet<_> = replicas.iter().map(|id| rack(*id)).collect();
                assert_eq!(racks.len(), 3, "{replicas:?} shares a rack");
                let distinct: BTreeSet<_> = replicas.iter().collect();
                assert_eq!(distinct.len(), 3);
            }
            let leaders: BTreeSet<_> = assignment.iter().map(|r| r[0]).collect();
            assert_eq!(leaders.len(), 6, "every broker leads some partition");
        }
    }

    #[test]
    fn more_replicas_than_racks_still_uses_distinct_brokers() {
        let brokers = brokers(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        for replicas in assign(&brokers, 8, 3, 1) {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3);
        }
    }
}

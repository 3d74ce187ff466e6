//! The nemesis: a seeded schedule of faults, one at a time, each held for a while and then healed, with quiet
//! periods between them. The same seed gives the same schedule (kinds, targets, durations); faults aimed at "the
//! leader" pick whichever node leads when they begin.

use std::time::{Duration, Instant};

use super::common::cluster::{partition_leader_and_isr, quorum_leader, TestCluster};
use super::history::{Event, History};

/// SplitMix64: a tiny, well-mixed generator, enough for a schedule (no statistics rest on it).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }
}

/// Whom a fault is aimed at.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    Node(i32),
    /// The leader of a partition of the workload's topic, when the fault begins.
    PartitionLeader(i32),
    /// The active controller, when the fault begins.
    ControllerLeader,
}

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// `kill -9`, then a restart on the same data.
    Kill(Target),
    /// SIGSTOP, then SIGCONT: the process keeps its sockets but stops answering, heartbeats included.
    Pause(Target),
    /// Every packet between the node and its peers dropped; clients still reach it.
    Isolate(Target),
}

impl Fault {
    fn pick(rng: &mut Rng, nodes: i32, partitions: i32) -> Fault {
        let target = match rng.between(0, 2) {
            0 => Target::Node(i32::try_from(rng.between(1, nodes as u64)).unwrap_or(1)),
            1 => Target::PartitionLeader(
                i32::try_from(rng.between(0, partitions as u64 - 1)).unwrap_or(0),
            ),
            _ => Target::ControllerLeader,
        };
        match rng.between(0, 2) {
            0 => Fault::Kill(target),
            1 => Fault::Pause(target),
            _ => Fault::Isolate(target),
        }
    }

    fn target(self) -> Target {
        match self {
            Fault::Kill(t) | Fault::Pause(t) | Fault::Isolate(t) => t,
        }
    }
}

/// One step of the schedule: wait `quiet`, then hold `fault` for `hold`.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub quiet: Duration,
    pub fault: Fault,
    pub hold: Duration,
}

/// The schedule a seed gives, as long as it takes to fill `duration`.
pub fn schedule(seed: u64, duration: Duration, nodes: i32, partitions: i32) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut steps = Vec::new();
    let mut total = Duration::ZERO;
    while total < duration {
        let step = Step {
            quiet: Duration::from_millis(rng.between(2_000, 6_000)),
            fault: Fault::pick(&mut rng, nodes, partitions),
            hold: Duration::from_millis(rng.between(2_000, 10_000)),
        };
        total += step.quiet + step.hold;
        steps.push(step);
    }
    steps
}

/// Runs `steps` against the cluster, recording each fault as it begins and as it is healed. Returns when the last
/// is healed and every node runs again.
pub fn run(cluster: &mut TestCluster, steps: &[Step], topic: &str, history: &History) {
    for step in steps {
        std::thread::sleep(step.quiet);
        let Some(node) = resolve(cluster, step.fault.target(), topic) else {
            history.record(Event::Nemesis {
                what: format!("skipped {:?}: no such leader now", step.fault),
            });
            history.record(Event::Nemesis {
                what: "healed nothing".into(),
            });
            continue;
        };
        history.record(Event::Nemesis {
            what: format!("{:?} on node {node}", step.fault),
        });
        match step.fault {
            Fault::Kill(_) => cluster.node(node).kill(),
            Fault::Pause(_) => cluster.node(node).pause(),
            Fault::Isolate(_) => network(cluster).isolate(node),
        }
        std::thread::sleep(step.hold);
        let healed = Instant::now();
        match step.fault {
            Fault::Kill(_) => cluster.node(node).restart(),
            Fault::Pause(_) => cluster.node(node).resume(),
            Fault::Isolate(_) => network(cluster).heal(node),
        }
        history.record(Event::Nemesis {
            what: format!(
                "healed node {node} ({} ms to restart)",
                healed.elapsed().as_millis()
            ),
        });
    }
}

fn network(cluster: &TestCluster) -> &super::common::netns::Network {
    cluster
        .network
        .as_ref()
        .expect("the nemesis runs on TestCluster::start_isolated")
}

/// The node a target names now, asked of any node that answers.
fn resolve(cluster: &TestCluster, target: Target, topic: &str) -> Option<i32> {
    match target {
        Target::Node(node) => Some(node),
        Target::PartitionLeader(partition) => cluster
            .nodes
            .iter()
            .find_map(|n| {
                partition_leader_and_isr(&n.addr(), topic, partition).map(|(leader, _)| leader)
            })
            .filter(|leader| *leader > 0),
        Target::ControllerLeader => cluster
            .nodes
            .iter()
            .map(|n| quorum_leader(&n.addr()))
            .find(|leader| *leader > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule() {
        let a = schedule(7, Duration::from_secs(300), 3, 3);
        let b = schedule(7, Duration::from_secs(300), 3, 3);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(
            format!("{a:?}"),
            format!("{:?}", schedule(8, Duration::from_secs(300), 3, 3))
        );
        let total: Duration = a.iter().map(|s| s.quiet + s.hold).sum();
        assert!(total >= Duration::from_secs(300));
    }
}

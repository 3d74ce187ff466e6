//! Three voters over TCP on 127.0.0.1 in one process: election, replication, failover, catch-up.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, quorum_config, register, topic, Recorder};
use ferrite_raft::{BrokerId, ControllerError, MetadataQuorum, QuorumError};
use tokio::net::TcpListener;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(20);

struct Voter {
    id: BrokerId,
    quorum: MetadataQuorum,
    recorder: Arc<Recorder>,
}

/// Binds `addr`, retrying while a just-closed listener still holds the port.
async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut attempts = 0;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(_) if attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn start(
    id: BrokerId,
    dir: &Path,
    voters: &BTreeMap<BrokerId, String>,
    listener: TcpListener,
) -> Result<Voter, QuorumError> {
    let recorder = Arc::new(Recorder::default());
    // Small snapshot interval, so that the voter that was down is sent a snapshot rather than the log.
    let config = quorum_config(id, dir, voters.clone(), Some(listener), 2);
    let quorum = tokio::time::timeout(WAIT, MetadataQuorum::start(config, recorder.clone()))
        .await
        .map_err(|_| QuorumError::InvalidConfig(format!("voter {id} did not start in time")))??;
    Ok(Voter {
        id,
        quorum,
        recorder,
    })
}

/// The leader all the given voters agree on, once they do (and it is not `stale`).
async fn agreed_leader(voters: &[&Voter], stale: Option<BrokerId>) -> Option<BrokerId> {
    let mut leader = None;
    let agreed = eventually(WAIT, || {
        let seen: Vec<_> = voters.iter().map(|v| v.quorum.leader_id()).collect();
        leader = seen[0];
        leader.is_some() && leader != stale && seen.iter().all(|l| *l == leader)
    })
    .await;
    if agreed {
        leader
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_replicate_fail_over_and_catch_up() -> TestResult {
    let ids = [BrokerId(1), BrokerId(2), BrokerId(3)];
    let mut dirs = Vec::new();
    let mut listeners = Vec::new();
    let mut voters = BTreeMap::new();
    for id in ids {
        dirs.push(tempfile::tempdir()?);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        voters.insert(id, listener.local_addr()?.to_string());
        listeners.push(listener);
    }

    // A voter's start waits for a leader, which needs two of them: start all at once.
    let mut starting = Vec::new();
    for ((id, dir), listener) in ids.iter().zip(&dirs).zip(listeners) {
        let (id, dir, voters) = (*id, dir.path().to_path_buf(), voters.clone());
        starting.push(tokio::spawn(async move {
            start(id, &dir, &voters, listener).await
        }));
    }
    let mut nodes = Vec::new();
    for handle in starting {
        nodes.push(handle.await??);
    }

    let leader_id = agreed_leader(&nodes.iter().collect::<Vec<_>>(), None)
        .await
        .ok_or("no agreed leader")?;
    let leader = nodes.iter().find(|v| v.id == leader_id).ok_or("leader")?;
    let controller = leader.quorum.controller();
    for id in ids {
        register(controller, id, None).await?;
    }
    let created = controller
        .create_topics(vec![replicated_topic("replicated", 3)], false)
        .await;
    let created = created[0].as_ref().map_err(|e| e.to_string())?.clone();
    assert_eq!(created.replication_factor, 3);

    // Every voter's listener sees the topic, with three replicas per partition.
    for node in &nodes {
        let replicated = eventually(WAIT, || {
            node.recorder
                .image()
                .topic_by_name("replicated")
                .is_some_and(|t| t.partitions.values().all(|p| p.replicas.len() == 3))
        })
        .await;
        assert!(replicated, "voter {} did not get the topic", node.id);
    }

    // A follower is not the controller.
    let follower = nodes.iter().find(|v| v.id != leader_id).ok_or("follower")?;
    let refused = follower
        .quorum
        .controller()
        .create_topics(vec![topic("on-follower", 1)], false)
        .await;
    assert!(matches!(refused[0], Err(ControllerError::NotController)));

    // Stop the leader: the other two elect one of themselves and keep accepting writes.
    let old_index = nodes
        .iter()
        .position(|v| v.id == leader_id)
        .ok_or("index")?;
    let old = nodes.remove(old_index);
    old.quorum.shutdown().await?;
    let survivors: Vec<&Voter> = nodes.iter().collect();
    let new_leader_id = agreed_leader(&survivors, Some(leader_id))
        .await
        .ok_or("no new leader")?;
    assert_ne!(new_leader_id, leader_id);
    let new_leader = nodes
        .iter()
        .find(|v| v.id == new_leader_id)
        .ok_or("new leader")?;
    for name in [
        "after-failover",
        "more-1",
        "more-2",
        "more-3",
        "more-4",
        "more-5",
    ] {
        let after = new_leader
            .quorum
            .controller()
            .create_topics(vec![replicated_topic(name, 1)], false)
            .await;
        assert!(after[0].is_ok(), "{name}: {:?}", after[0]);
    }

    // The old leader restarts from its dir and catches up before start returns.
    let addr: SocketAddr = voters.get(&leader_id).ok_or("address")?.parse()?;
    let restarted = start(
        leader_id,
        dirs[old_index].path(),
        &voters,
        bind(addr).await?,
    )
    .await?;
    // start returned only after catching up with the new leader: no waiting here.
    assert_eq!(restarted.recorder.image(), new_leader.recorder.image());
    assert!(restarted
        .recorder
        .image()
        .topic_by_name("after-failover")
        .is_some());
    assert_eq!(restarted.quorum.leader_id(), Some(new_leader_id));
    // It fell behind the leader's purged log: it was sent a snapshot (its second on_snapshot).
    let snapshots = restarted
        .recorder
        .events()
        .iter()
        .filter(|e| matches!(e, common::Event::Snapshot(_)))
        .count();
    assert_eq!(
        snapshots, 2,
        "expected the snapshot loaded at start and one installed"
    );

    restarted.quorum.shutdown().await?;
    for node in &nodes {
        node.quorum.shutdown().await?;
    }
    Ok(())
}

fn replicated_topic(name: &str, partitions: i32) -> ferrite_raft::CreateTopicSpec {
    let mut spec = topic(name, partitions);
    spec.replication_factor = 3;
    spec
}

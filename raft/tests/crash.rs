//! Acknowledged means durable: a controller process killed with SIGKILL right after its writes
//! were acknowledged restarts with all of them. The test re-runs this test binary as the child
//! (selected by an environment variable) so that the kill is a real process kill.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{register, single_voter, topic, Recorder};
use ferrite_raft::{BrokerId, MetadataQuorum};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CHILD_DIR_VAR: &str = "FERRITE_RAFT_CRASH_CHILD_DIR";
const CHILD_SNAPSHOT_VAR: &str = "FERRITE_RAFT_CRASH_CHILD_SNAPSHOT_AFTER";
const TOPICS: usize = 12;
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The child: acknowledges writes, says so, then waits to be killed. A no-op in a normal run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() -> TestResult {
    let Ok(dir) = std::env::var(CHILD_DIR_VAR) else {
        return Ok(());
    };
    let snapshot_after: u64 = std::env::var(CHILD_SNAPSHOT_VAR)?.parse()?;
    let recorder = Arc::new(Recorder::default());
    let quorum =
        MetadataQuorum::start(single_voter(Path::new(&dir), snapshot_after), recorder).await?;
    let controller = quorum.controller();
    register(controller, BrokerId(1), None).await?;
    for i in 0..TOPICS {
        let created = controller
            .create_topics(vec![topic(&format!("t{i}"), 2)], false)
            .await;
        let created = created[0].as_ref().map_err(|e| e.to_string())?;
        println!("ACKED {} {}", created.name, created.topic_id);
    }
    println!("ALL-ACKED");
    std::future::pending::<()>().await;
    Ok(())
}

/// Runs the child until it acknowledged everything, kills it, and returns what it acknowledged.
fn run_and_kill(
    dir: &Path,
    snapshot_after: u64,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_VAR, dir)
        .env(CHILD_SNAPSHOT_VAR, snapshot_after.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("child stdout")?;
    // Lines arrive through a channel so that a child that hangs fails the test instead.
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    let outcome = loop {
        let Ok(line) = lines.recv_timeout(CHILD_TIMEOUT) else {
            break Err("the child did not acknowledge its writes in time");
        };
        // libtest prints "test crash_child ... " without a newline before the child's output.
        if line.ends_with("ALL-ACKED") {
            break Ok(());
        }
        if let Some((_, rest)) = line.split_once("ACKED ") {
            acked.push(rest.to_string());
        }
    };
    // Child::kill is SIGKILL on unix: no destructors, no shutdown, no flush.
    child.kill()?;
    child.wait()?;
    outcome?;
    Ok(acked)
}

async fn restart_has(dir: &Path, snapshot_after: u64, acked: &[String]) -> TestResult {
    let recorder = Arc::new(Recorder::default());
    let quorum = MetadataQuorum::start(single_voter(dir, snapshot_after), recorder.clone()).await?;
    let image = recorder.image();
    let found: Vec<String> = image
        .topics()
        .map(|t| format!("{} {}", t.name, t.topic_id))
        .collect();
    for topic in acked {
        assert!(
            found.contains(topic),
            "acknowledged {topic} lost; found {found:?}"
        );
    }
    assert_eq!(found.len(), acked.len());
    quorum.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() -> TestResult {
    if std::env::var(CHILD_DIR_VAR).is_ok() {
        return Ok(());
    }
    for snapshot_after in [0, 4] {
        let dir = tempfile::tempdir()?;
        let acked = run_and_kill(dir.path(), snapshot_after)?;
        assert_eq!(acked.len(), TOPICS);
        restart_has(dir.path(), snapshot_after, &acked).await?;
    }
    Ok(())
}

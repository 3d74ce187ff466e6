//! Debian's kcat (librdkafka 2.0.2): `-L`, `-P` and `-C -e` against Ferrite. kcat's old librdkafka is the
//! strictest parser of ApiVersions among the clients we meet.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::TestBroker;

fn kcat(broker: &TestBroker, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("kcat")
        .arg("-b")
        .arg(&broker.addr)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed by scripts/test.sh");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write to kcat");
    }
    drop(input);
    let output = child.wait_with_output().expect("kcat output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kcat {args:?} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_lists_produces_and_consumes() {
    let broker = TestBroker::start();
    broker.create_topic("kcat", 1).await;

    let listing = kcat(&broker, &["-L"], None);
    assert!(listing.contains("1 brokers:"), "{listing}");
    assert!(
        listing.contains("topic \"kcat\" with 1 partitions"),
        "{listing}"
    );

    kcat(
        &broker,
        &["-P", "-t", "kcat", "-K", ":"],
        Some("a:first\nb:second\nc:third\n"),
    );
    let consumed = kcat(
        &broker,
        &[
            "-C",
            "-t",
            "kcat",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k=%s@%o\n",
        ],
        None,
    );
    assert_eq!(consumed, "a=first@0\nb=second@1\nc=third@2\n");
}

//! The `ferrite:dev` image (docker/build.sh) in a container, driven by librdkafka through the host-mapped port:
//! produce, consume, a clean stop on SIGTERM, a restart, and a new container on the same named volume that still
//! serves every acknowledged record.
//!
//! Without a reachable Docker engine the test prints SKIPPED and returns, unless FERRITE_REQUIRE_DOCKER=1 (set by
//! scripts/test.sh), which makes that a failure. A missing image is always a failure: build it with
//! `docker/build.sh`.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use testcontainers::bollard::query_parameters::RemoveVolumeOptions;
use testcontainers::bollard::{Docker, API_DEFAULT_VERSION};
use testcontainers::core::{IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

const IMAGE: &str = "ferrite";
const TAG: &str = "dev";
const TOPIC: &str = "docker-volume";
const RECORDS: usize = 100;

#[test]
fn image_serves_clients_and_keeps_data_in_its_volume() {
    let docker_host = match engine_relay::docker_host() {
        Ok(host) => host,
        Err(reason) => {
            if std::env::var("FERRITE_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("FERRITE_REQUIRE_DOCKER=1 but the Docker engine is unusable: {reason}");
            }
            eprintln!("\n{0}\nSKIPPED image_serves_clients_and_keeps_data_in_its_volume: no Docker engine ({reason})\n{0}\n", "*".repeat(100));
            return;
        }
    };
    // testcontainers reads DOCKER_HOST when it first connects. The only other test in this binary reads no
    // environment, so setting it here races with nothing.
    std::env::set_var("DOCKER_HOST", &docker_host);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(scenario(&docker_host));
}

async fn scenario(docker_host: &str) {
    let docker = match docker_host.strip_prefix("unix://") {
        Some(socket) => Docker::connect_with_unix(socket, 120, API_DEFAULT_VERSION),
        None => Docker::connect_with_http(docker_host, 120, API_DEFAULT_VERSION),
    }
    .expect("docker client");
    if let Err(e) = docker.inspect_image(&format!("{IMAGE}:{TAG}")).await {
        panic!("image {IMAGE}:{TAG} is missing ({e}); build it with docker/build.sh");
    }
    let volume = format!("ferrite-test-{}", uuid::Uuid::new_v4().simple());
    // Clients must be told an address they can reach: the host port, chosen here so that it can be both the
    // mapping and the advertised listener.
    let host_port = free_port();
    let bootstrap = format!("127.0.0.1:{host_port}");

    let first = start_container(&volume, host_port).await;
    let producer: FutureProducer = client_config(&bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    for i in 0..RECORDS {
        let key = format!("k{i}");
        let value = format!("record {i}");
        producer
            .send(
                FutureRecord::to(TOPIC).key(&key).payload(&value),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("record {i} not acknowledged: {e}"));
    }
    drop(producer);
    assert_records(&bootstrap, RECORDS, "before any restart");

    // `docker stop` sends SIGTERM; a clean shutdown exits 0 well within the grace period.
    first
        .stop_with_timeout(Some(30))
        .await
        .expect("docker stop");
    assert_eq!(
        first.exit_code().await.expect("inspect"),
        Some(0),
        "ferrite did not exit cleanly on SIGTERM"
    );
    first.start().await.expect("docker start");
    assert_records(&bootstrap, RECORDS, "after the container restarted");
    first.rm().await.expect("remove the first container");

    // A brand-new container sees only what the named volume kept.
    let second = start_container(&volume, host_port).await;
    assert_records(&bootstrap, RECORDS, "in a new container on the same volume");
    second.rm().await.expect("remove the second container");

    if let Err(e) = docker
        .remove_volume(&volume, None::<RemoveVolumeOptions>)
        .await
    {
        eprintln!("warning: could not remove volume {volume}: {e}");
    }
}

async fn start_container(volume: &str, host_port: u16) -> ContainerAsync<GenericImage> {
    GenericImage::new(IMAGE, TAG)
        .with_exposed_port(9092.tcp())
        .with_wait_for(WaitFor::message_on_stderr("ferrite is listening"))
        .with_mapped_port(host_port, 9092.tcp())
        .with_env_var(
            "FERRITE_ADVERTISED_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{host_port}"),
        )
        .with_mount(Mount::volume_mount(volume, "/var/lib/ferrite"))
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("start the ferrite:dev container")
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    config
}

/// Reads the topic from the beginning until `expected` records arrived, retrying while the broker starts.
fn assert_records(bootstrap: &str, expected: usize, when: &str) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "docker-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    // From offset 0 rather than Offset::Beginning: this test is about the image, and needs no ListOffsets.
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Offset(0))
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while seen.len() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                let value =
                    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
                seen.push((message.offset(), value));
            }
            Some(Err(e)) => eprintln!("consumer ({when}): {e}"),
            None => {}
        }
    }
    let want: Vec<(i64, String)> = (0..expected)
        .map(|i| (i as i64, format!("record {i}")))
        .collect();
    assert_eq!(seen, want, "records {when}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// testcontainers 0.28 talks to Docker through bollard 0.21, which names API 1.53 in every request path
/// (`/v1.53/containers/create`). Engines older than Docker 29 refuse a version newer than their own ("client
/// version 1.53 is too new"): Debian 12's docker.io 20.10 speaks 1.41. For such an engine the test goes through
/// this loopback relay, which rewrites the version in each request line to the engine's; everything else passes
/// through byte for byte. The engine accepts any older version, so nothing else changes.
mod engine_relay {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;
    use std::time::Duration;

    /// bollard's API version, `1.NN`.
    const CLIENT_MINOR: u32 = 53;
    /// ` /v1.NN/`: the start of a request path that names an API version.
    const PATTERN_LEN: usize = 8;

    /// A `DOCKER_HOST` for testcontainers: the engine itself if it speaks bollard's version (or is not a local
    /// socket), else a relay. Err says why there is no usable engine.
    pub fn docker_host() -> Result<String, String> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
            Ok(host) if !host.is_empty() => return Ok(host),
            _ => PathBuf::from("/var/run/docker.sock"),
        };
        let engine_minor =
            engine_api_minor(&socket).map_err(|e| format!("{}: {e}", socket.display()))?;
        if engine_minor >= CLIENT_MINOR {
            return Ok(format!("unix://{}", socket.display()));
        }
        if engine_minor < 10 {
            return Err(format!("Docker API 1.{engine_minor} is too old"));
        }
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let socket = socket.clone();
                std::thread::spawn(move || relay(client, &socket, engine_minor));
            }
        });
        eprintln!("Docker engine speaks API 1.{engine_minor}; testcontainers goes through a relay on {addr}");
        Ok(format!("tcp://{addr}"))
    }

    /// The engine's API version from `GET /_ping` (header `Api-Version: 1.NN`).
    fn engine_api_minor(socket: &PathBuf) -> std::io::Result<u32> {
        let mut stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        response
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                if !name.eq_ignore_ascii_case("api-version") {
                    return None;
                }
                value.trim().strip_prefix("1.")?.parse().ok()
            })
            .ok_or_else(|| std::io::Error::other(format!("no Api-Version in {response:?}")))
    }

    fn relay(client: TcpStream, socket: &PathBuf, engine_minor: u32) {
        let Ok(engine) = UnixStream::connect(socket) else {
            return;
        };
        let (Ok(mut client_read), Ok(mut engine_read)) = (client.try_clone(), engine.try_clone())
        else {
            return;
        };
        let mut client_write = client;
        let mut engine_write = engine;
        let responses = std::thread::spawn(move || {
            let _ = std::io::copy(&mut engine_read, &mut client_write);
            let _ = client_write.shutdown(Shutdown::Write);
        });
        let _ = requests(&mut client_read, &mut engine_write, engine_minor);
        let _ = engine_write.shutdown(Shutdown::Write);
        let _ = responses.join();
    }

    /// Copies requests, rewriting ` /v1.NN/` (NN above the engine's) to the engine's version. Bytes that might
    /// begin a pattern are held back until the next read completes or shows nothing more is coming.
    fn requests(
        client: &mut TcpStream,
        engine: &mut UnixStream,
        engine_minor: u32,
    ) -> std::io::Result<()> {
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            client.set_read_timeout(if pending.is_empty() {
                None
            } else {
                Some(Duration::from_millis(20))
            })?;
            match client.read(&mut buf) {
                Ok(0) => {
                    engine.write_all(&pending)?;
                    return Ok(());
                }
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    engine.write_all(&pending)?;
                    pending.clear();
                    continue;
                }
                Err(e) => return Err(e),
            }
            rewrite(&mut pending, engine_minor);
            let keep = partial_pattern_suffix(&pending);
            let send = pending.len() - keep;
            engine.write_all(&pending[..send])?;
            pending.drain(..send);
        }
    }

    fn matches_at(bytes: &[u8], i: usize) -> bool {
        let template = b" /v1.##/";
        template.iter().zip(&bytes[i..]).all(|(t, b)| {
            if *t == b'#' {
                b.is_ascii_digit()
            } else {
                t == b
            }
        })
    }

    fn rewrite(bytes: &mut [u8], engine_minor: u32) {
        let engine_digits = format!("{engine_minor:02}");
        let mut i = 0;
        while i + PATTERN_LEN <= bytes.len() {
            if matches_at(bytes, i) {
                let minor = u32::from(bytes[i + 5] - b'0') * 10 + u32::from(bytes[i + 6] - b'0');
                if minor > engine_minor {
                    bytes[i + 5..i + 7].copy_from_slice(engine_digits.as_bytes());
                }
                i += PATTERN_LEN;
            } else {
                i += 1;
            }
        }
    }

    /// How many trailing bytes could be the start of a pattern completed by the next read.
    fn partial_pattern_suffix(bytes: &[u8]) -> usize {
        (1..PATTERN_LEN)
            .rev()
            .find(|&len| len <= bytes.len() && matches_at(bytes, bytes.len() - len))
            .unwrap_or(0)
    }

    #[test]
    fn rewrites_the_version_of_request_lines_only() {
        let mut request =
            b"GET /v1.53/images/ferrite:dev/json HTTP/1.1\r\n\r\n{\"a\":\"/v1.53/\"}".to_vec();
        rewrite(&mut request, 41);
        assert_eq!(
            &request[..],
            &b"GET /v1.41/images/ferrite:dev/json HTTP/1.1\r\n\r\n{\"a\":\"/v1.53/\"}"[..]
        );
        assert_eq!(partial_pattern_suffix(b"xx\r\n\r\nGET /v1.5"), 6);
        assert_eq!(partial_pattern_suffix(b"GET "), 1);
        assert_eq!(partial_pattern_suffix(b"}\r\n"), 0);
    }
}

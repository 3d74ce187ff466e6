//! `ferrite admin`: Kafka's command-line tools (kafka-topics.sh, kafka-configs.sh, kafka-consumer-groups.sh) on a
//! small async Kafka client of our own, so that librdkafka stays out of the `ferrite` binary.
//!
//! The client (`connection`, `client`, `error`) speaks the protocol through the kafka-protocol crate; the commands
//! (`topics`, `configs`, `groups`) take Kafka's flags and print Kafka's output formats.

pub mod args;
pub mod client;
pub mod connection;
pub mod error;

mod configs;
mod groups;
mod offsets;
pub mod storage;
mod topics;

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};

use args::{OptionSpec, Parsed};
use client::AdminClient;
use connection::ConnectionSettings;

/// DescribeConfigs / IncrementalAlterConfigs resource types.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const USAGE: &str = "\
Usage: ferrite admin <command> --bootstrap-server <host:port> [options]

Commands (flags follow Kafka's tools of the same name):
  topics            kafka-topics.sh: --create, --delete, --list, --describe, --alter
  configs           kafka-configs.sh: --describe, --alter (--add-config, --delete-config)
  consumer-groups   kafka-consumer-groups.sh: --list, --describe, --delete, --reset-offsets
  storage           kafka-storage.sh: format, random-uuid (local; no --bootstrap-server)

`ferrite admin <command> --help` lists a command's options.
";

/// What a command needs to reach the cluster.
pub struct Session {
    bootstrap_servers: String,
    timeout: Duration,
}

impl Session {
    pub async fn connect(&self) -> anyhow::Result<AdminClient> {
        let settings = ConnectionSettings {
            client_id: "ferrite-admin".to_string(),
            connect_timeout: CONNECT_TIMEOUT.min(self.timeout),
            request_timeout: self.timeout,
        };
        AdminClient::connect(&self.bootstrap_servers, settings)
            .await
            .with_context(|| format!("cannot reach the cluster at {}", self.bootstrap_servers))
    }

    /// The timeout the broker gets for operations it waits on (topic creation and deletion).
    pub fn timeout_ms(&self) -> i32 {
        i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

/// Runs `ferrite admin <args>`; returns the process exit code.
pub async fn run(args: &[String]) -> i32 {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return 1;
    };
    let (options, error_prefix): (&[OptionSpec], &str) = match command.as_str() {
        "topics" => (topics::OPTIONS, "Error while executing topic command : "),
        "configs" => (configs::OPTIONS, "Error while executing config command : "),
        "consumer-groups" => (groups::OPTIONS, "Error: "),
        "storage" => return storage::run(rest),
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            return 0;
        }
        other => {
            eprintln!("ferrite admin: unknown command '{other}'\n");
            eprint!("{USAGE}");
            return 1;
        }
    };
    let opts = match args::parse(options, rest) {
        Ok(opts) => opts,
        Err(error) => {
            eprintln!("{error}\n");
            eprint!("{}", args::usage(command, options));
            return 1;
        }
    };
    if opts.has("--help") {
        print!("{}", args::usage(command, options));
        return 0;
    }
    let mut out = String::new();
    let result = match session(&opts) {
        Ok(session) => match command.as_str() {
            "topics" => topics::run(&session, &opts, &mut out).await,
            "configs" => configs::run(&session, &opts, &mut out).await,
            _ => groups::run(&session, &opts, &mut out).await,
        },
        Err(error) => Err(error),
    };
    // A closed stdout (`| head`) is not worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("{error_prefix}{error:#}");
            1
        }
    }
}

fn session(opts: &Parsed) -> anyhow::Result<Session> {
    let Some(bootstrap_servers) = opts.value("--bootstrap-server") else {
        bail!("Missing required argument \"[bootstrap-server]\"");
    };
    let timeout = match opts.value("--timeout") {
        Some(ms) => Duration::from_millis(
            ms.parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .with_context(|| format!("--timeout takes milliseconds, not '{ms}'"))?,
        ),
        None => DEFAULT_TIMEOUT,
    };
    Ok(Session {
        bootstrap_servers: bootstrap_servers.to_string(),
        timeout,
    })
}

/// `key=value`, split at the first `=` (values may hold `=`).
pub fn parse_key_value(entry: &str) -> anyhow::Result<(String, String)> {
    match entry.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => bail!("Invalid config '{entry}': expected key=value"),
    }
}

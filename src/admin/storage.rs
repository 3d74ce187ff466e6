//! `ferrite format` / `ferrite admin storage` (Kafka's kafka-storage.sh): prepares a node's log directory for a
//! cluster before its first start, and prints new cluster ids.
//!
//! `format -t <cluster id> [-c <server.properties>] [-g] [--key=value ...]` writes meta.properties into the
//! configured `log.dirs` for the configured `node.id` (the same file, environment and flags the node starts
//! with); `random-uuid` prints a cluster id.

use anyhow::{bail, Context};

use crate::config::cluster::is_cluster_id;
use crate::config::BrokerConfig;
use crate::storage::meta_properties::{random_kafka_uuid, MetaProperties};

const USAGE: &str = "\
Usage: ferrite format -t <cluster id> [-c <server.properties>] [-g] [--key=value ...]
       ferrite random-uuid

  format        write meta.properties into log.dirs for node.id (kafka-storage.sh format)
    -t, --cluster-id <id>      the cluster id; every node of the cluster is formatted with the same one
    -c, --config <file>        the node's properties file (also read: FERRITE_* variables, --key=value flags)
    -g, --ignore-formatted     succeed if the directory is already formatted for this cluster and node
  random-uuid   print a new cluster id (kafka-storage.sh random-uuid)
";

/// Runs `ferrite admin storage <args>` (or `ferrite format|random-uuid ...`); returns the exit code.
pub fn run(args: &[String]) -> i32 {
    match execute(args) {
        Ok(output) => {
            print!("{output}");
            0
        }
        Err(error) => {
            eprintln!("{error:#}");
            1
        }
    }
}

fn execute(args: &[String]) -> anyhow::Result<String> {
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match command.as_str() {
        "random-uuid" => Ok(format!("{}\n", random_kafka_uuid())),
        "format" => format(rest),
        "--help" | "-h" | "help" => Ok(USAGE.to_string()),
        other => bail!("unknown storage command '{other}'\n\n{USAGE}"),
    }
}

fn format(args: &[String]) -> anyhow::Result<String> {
    let mut cluster_id = None;
    let mut config_file = None;
    let mut ignore_formatted = false;
    let mut overrides = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-t" | "--cluster-id" => cluster_id = args.next().cloned(),
            "-c" | "--config" => config_file = args.next().cloned(),
            "-g" | "--ignore-formatted" => ignore_formatted = true,
            "--help" | "-h" => return Ok(USAGE.to_string()),
            _ => match arg.split_once('=') {
                Some(("--cluster-id", id)) => cluster_id = Some(id.to_string()),
                Some(("--config", file)) => config_file = Some(file.to_string()),
                _ => overrides.push(arg.clone()),
            },
        }
    }
    let Some(cluster_id) = cluster_id else {
        bail!("format needs a cluster id (-t); `ferrite random-uuid` prints one\n\n{USAGE}");
    };
    if !is_cluster_id(&cluster_id) {
        bail!("Cluster ID string {cluster_id} does not appear to be a valid UUID: it must be 22 characters of URL-safe base64");
    }
    let config_args = config_file.into_iter().chain(overrides);
    let config = BrokerConfig::from_args_and_env(config_args, std::env::vars())
        .context("cannot read the node's configuration")?;
    MetaProperties::format(
        &config.log_dirs,
        &cluster_id,
        config.node_id,
        ignore_formatted,
    )?;
    Ok(format!(
        "Formatting {} with cluster.id {cluster_id} for node.id {}\n",
        config.log_dirs.display(),
        config.node_id.0
    ))
}

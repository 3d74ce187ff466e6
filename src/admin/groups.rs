//! `ferrite admin consumer-groups`: Kafka's kafka-consumer-groups.sh (ConsumerGroupCommand) — list, describe with
//! lag, delete, reset offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use anyhow::{bail, Context};
use bytes::Buf;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::protocol::{Decodable, Message};

use super::args::{switch, value, OptionSpec, Parsed};
use super::client::AdminClient;
use super::connection::Connection;
use super::error::KafkaError;
use super::offsets::{self, group_id, TopicPartition, EARLIEST, LATEST};
use super::Session;

pub const OPTIONS: &[OptionSpec] = &[
    value(
        "--bootstrap-server",
        "REQUIRED: the Kafka server to connect to, host:port[,host:port]",
    ),
    switch("--list", "List all consumer groups."),
    switch(
        "--describe",
        "Describe consumer groups: offsets and lag (default), --members or --state.",
    ),
    switch(
        "--delete",
        "Delete consumer groups (they must have no active members).",
    ),
    switch(
        "--reset-offsets",
        "Reset the offsets of a group with no active members.",
    ),
    value("--group", "The consumer group; repeatable."),
    switch("--all-groups", "Apply to all consumer groups."),
    value(
        "--topic",
        "With --reset-offsets: topic, or topic:p0,p1 for some of its partitions; repeatable.",
    ),
    switch(
        "--all-topics",
        "With --reset-offsets: every topic the group has offsets for.",
    ),
    switch("--to-earliest", "Reset offsets to the earliest offset."),
    switch("--to-latest", "Reset offsets to the latest offset."),
    value(
        "--to-offset",
        "Reset offsets to this offset (within the log's bounds).",
    ),
    value(
        "--shift-by",
        "Move each committed offset by this many records (may be negative).",
    ),
    switch(
        "--to-current",
        "Reset offsets to the current committed offsets.",
    ),
    switch(
        "--execute",
        "Execute the reset (without it, --reset-offsets only shows what it would do).",
    ),
    switch("--dry-run", "Only show the result of the reset."),
    switch("--members", "With --describe: the group's members."),
    switch("--state", "With --describe: the group's state."),
    switch(
        "--offsets",
        "With --describe: offsets and lag per partition (the default).",
    ),
    switch(
        "--verbose",
        "With --describe --members: each member's assignment.",
    ),
    value(
        "--timeout",
        "Milliseconds to wait for the cluster (default 30000).",
    ),
    switch("--help", "Print usage information."),
];

const CONSUMER_PROTOCOL: &str = "consumer";
const MISSING: &str = "-";

pub async fn run(session: &Session, opts: &Parsed, out: &mut String) -> anyhow::Result<()> {
    let actions = ["--list", "--describe", "--delete", "--reset-offsets"];
    let chosen: Vec<&str> = actions.iter().copied().filter(|a| opts.has(a)).collect();
    if chosen.len() != 1 {
        bail!("Command must include exactly one action: --list, --describe, --delete, --reset-offsets");
    }
    let client = session.connect().await?;
    if chosen[0] == "--list" {
        for group in list_groups(&client).await? {
            writeln!(out, "{group}")?;
        }
        return Ok(());
    }
    let groups: Vec<String> = match (opts.values("--group"), opts.has("--all-groups")) {
        ([], true) => list_groups(&client).await?,
        ([], false) => bail!(
            "Option {} takes one of these options: --all-groups, --group",
            chosen[0]
        ),
        (_, true) => bail!("Option --all-groups cannot be used with --group"),
        (groups, false) => groups.to_vec(),
    };
    match chosen[0] {
        "--describe" => {
            for group in &groups {
                describe(&client, group, opts, out).await?;
            }
            Ok(())
        }
        "--delete" => delete(&client, &groups, out).await,
        _ => {
            for group in &groups {
                reset_offsets(&client, group, opts, out).await?;
            }
            Ok(())
        }
    }
}

/// Consumer groups (and groups that only commit offsets) across every broker, by name.
async fn list_groups(client: &AdminClient) -> anyhow::Result<Vec<String>> {
    let mut groups = BTreeSet::new();
    for broker in client.broker_ids() {
        let response = client
            .node(broker)
            .await?
            .send(|_| ListGroupsRequest::default())
            .await?;
        KafkaError::check(response.error_code, None)
            .with_context(|| format!("cannot list the groups of broker {broker}"))?;
        for group in response.groups {
            let protocol = group.protocol_type.as_str();
            if protocol == CONSUMER_PROTOCOL || protocol.is_empty() {
                groups.insert(group.group_id.as_str().to_string());
            }
        }
    }
    Ok(groups.into_iter().collect())
}

/// The group as its coordinator describes it; `None` when it does not exist (Dead, or GROUP_ID_NOT_FOUND from
/// DescribeGroups v6 on).
async fn describe_group(
    coordinator: &Connection,
    group: &str,
) -> anyhow::Result<Option<DescribedGroup>> {
    let response = coordinator
        .send(|_| DescribeGroupsRequest::default().with_groups(vec![group_id(group)]))
        .await?;
    let Some(described) = response.groups.into_iter().next() else {
        bail!("DescribeGroups answered nothing for group '{group}'");
    };
    match KafkaError::check(described.error_code, described.error_message.as_deref()) {
        Err(e) if e.error == ResponseError::GroupIdNotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot describe group '{group}'")),
        Ok(()) if described.group_state.as_str() == "Dead" => Ok(None),
        Ok(()) => Ok(Some(described)),
    }
}

/// The partitions assigned to each member (consumer protocol only), as (member index, partition).
fn assignments(group: &DescribedGroup) -> BTreeMap<TopicPartition, usize> {
    let mut assigned = BTreeMap::new();
    if group.protocol_type.as_str() != CONSUMER_PROTOCOL {
        return assigned;
    }
    for (index, member) in group.members.iter().enumerate() {
        let mut bytes = member.member_assignment.clone();
        if bytes.remaining() < 2 {
            continue;
        }
        // The embedded assignment starts with its own version; newer ones than we know decode as our newest.
        let version = bytes
            .get_i16()
            .clamp(0, ConsumerProtocolAssignment::VERSIONS.max);
        let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut bytes, version) else {
            continue;
        };
        for topic in assignment.assigned_partitions {
            for partition in topic.partitions {
                assigned.insert((topic.topic.as_str().to_string(), partition), index);
            }
        }
    }
    assigned
}

async fn describe(
    client: &AdminClient,
    group: &str,
    opts: &Parsed,
    out: &mut String,
) -> anyhow::Result<()> {
    let (coordinator_id, coordinator) = client.group_coordinator(group).await?;
    let Some(described) = describe_group(&coordinator, group).await? else {
        bail!("Consumer group '{group}' does not exist.");
    };
    let state = described.group_state.as_str();
    if opts.has("--state") {
        let coordinator_text = format!("{} ({coordinator_id})", coordinator.addr());
        let rows = vec![[
            group.to_string(),
            coordinator_text,
            described.protocol_data.as_str().to_string(),
            state.to_string(),
            described.members.len().to_string(),
        ]];
        table(
            out,
            [
                "GROUP",
                "COORDINATOR (ID)",
                "ASSIGNMENT-STRATEGY",
                "STATE",
                "#MEMBERS",
            ],
            &rows,
        )?;
        return Ok(());
    }
    note_state(group, state);
    let assigned = assignments(&described);
    if opts.has("--members") {
        let mut rows = Vec::new();
        for (index, member) in described.members.iter().enumerate() {
            let mine: Vec<&TopicPartition> = assigned
                .iter()
                .filter(|(_, m)| **m == index)
                .map(|(tp, _)| tp)
                .collect();
            let mut row = vec![
                group.to_string(),
                member.member_id.as_str().to_string(),
                member.client_host.as_str().to_string(),
                member.client_id.as_str().to_string(),
                mine.len().to_string(),
            ];
            if opts.has("--verbose") {
                row.push(assignment_text(&mine));
            }
            rows.push(row);
        }
        let mut headers = vec!["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"];
        if opts.has("--verbose") {
            headers.push("ASSIGNMENT");
        }
        return table(out, headers, &rows);
    }

    let committed = offsets::committed_offsets(&coordinator, group).await?;
    let partitions: Vec<TopicPartition> = committed
        .keys()
        .chain(assigned.keys())
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if partitions.is_empty() {
        return Ok(());
    }
    let log_end = offsets::log_offsets(client, &partitions, LATEST).await?;
    let mut rows = Vec::new();
    for tp in &partitions {
        let current = committed.get(tp).copied();
        let end = log_end.get(tp).copied();
        let member = assigned.get(tp).and_then(|i| described.members.get(*i));
        let text = |v: Option<i64>| v.map_or(MISSING.to_string(), |v| v.to_string());
        rows.push(vec![
            group.to_string(),
            tp.0.clone(),
            tp.1.to_string(),
            text(current),
            text(end),
            text(current.zip(end).map(|(c, e)| (e - c).max(0))),
            member.map_or(MISSING.to_string(), |m| m.member_id.as_str().to_string()),
            member.map_or(MISSING.to_string(), |m| m.client_host.as_str().to_string()),
            member.map_or(MISSING.to_string(), |m| m.client_id.as_str().to_string()),
        ]);
    }
    table(
        out,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &rows,
    )
}

/// As ConsumerGroupCommand, the group's state is remarked on (on stderr) when it explains the table.
fn note_state(group: &str, state: &str) {
    match state {
        "Empty" => eprintln!("\nConsumer group '{group}' has no active members."),
        "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling" => {
            eprintln!("\nWarning: Consumer group '{group}' is rebalancing.")
        }
        _ => {}
    }
}

fn assignment_text(partitions: &[&TopicPartition]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic
            .entry(topic)
            .or_default()
            .push(partition.to_string());
    }
    if by_topic.is_empty() {
        return MISSING.to_string();
    }
    by_topic
        .iter()
        .map(|(topic, ps)| format!("{topic}({})", ps.join(",")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Columns left-aligned, each at least 15 wide and as wide as its widest cell, a space apart; the last column
/// unpadded. A blank line first, as Kafka's tool prints.
fn table<R: AsRef<[String]>>(
    out: &mut String,
    headers: impl AsRef<[&'static str]>,
    rows: &[R],
) -> anyhow::Result<()> {
    let headers = headers.as_ref();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.as_ref().get(i).map(String::len))
                .chain([headers[i].len(), 15])
                .max()
                .unwrap_or(15)
        })
        .collect();
    writeln!(out)?;
    let mut line = |cells: Vec<&str>| -> std::fmt::Result {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                text.push_str(cell);
            } else {
                write!(text, "{cell:<width$} ", width = widths[i])?;
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(headers.to_vec())?;
    for row in rows {
        line(row.as_ref().iter().map(String::as_str).collect())?;
    }
    Ok(())
}

async fn delete(client: &AdminClient, groups: &[String], out: &mut String) -> anyhow::Result<()> {
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for group in groups {
        let result = async {
            let (_, coordinator) = client.group_coordinator(group).await?;
            let response = coordinator
                .send(|_| DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]))
                .await?;
            for result in &response.results {
                KafkaError::check(result.error_code, None)?;
            }
            anyhow::Ok(())
        }
        .await;
        match result {
            Ok(()) => deleted.push(format!("'{group}'")),
            Err(error) => failed.push((group, error)),
        }
    }
    if failed.is_empty() {
        writeln!(
            out,
            "Deletion of requested consumer groups ({}) was successful.",
            deleted.join(", ")
        )?;
        return Ok(());
    }
    let mut message = "Deletion of some consumer groups failed:".to_string();
    for (group, error) in &failed {
        write!(
            message,
            "\n* Group '{group}' could not be deleted due to: {error:#}"
        )?;
    }
    if !deleted.is_empty() {
        write!(
            message,
            "\nThese consumer groups were deleted successfully: {}",
            deleted.join(", ")
        )?;
    }
    bail!(message)
}

enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    ShiftBy(i64),
    Current,
}

fn reset_scenario(opts: &Parsed) -> anyhow::Result<ResetTo> {
    let mut scenarios = Vec::new();
    if opts.has("--to-earliest") {
        scenarios.push(ResetTo::Earliest);
    }
    if opts.has("--to-latest") {
        scenarios.push(ResetTo::Latest);
    }
    if let Some(offset) = opts.value("--to-offset") {
        scenarios.push(ResetTo::Offset(offset.parse().with_context(|| {
            format!("--to-offset takes an offset, not '{offset}'")
        })?));
    }
    if let Some(shift) = opts.value("--shift-by") {
        scenarios.push(ResetTo::ShiftBy(shift.parse().with_context(|| {
            format!("--shift-by takes a number, not '{shift}'")
        })?));
    }
    if opts.has("--to-current") {
        scenarios.push(ResetTo::Current);
    }
    if scenarios.len() != 1 {
        bail!(
            "Option --reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset, --shift-by, \
             --to-current"
        );
    }
    Ok(scenarios.remove(0))
}

/// The partitions `--topic` names (`topic` or `topic:0,1`), or with `--all-topics` those the group has offsets for.
async fn reset_partitions(
    client: &AdminClient,
    opts: &Parsed,
    committed: &BTreeMap<TopicPartition, i64>,
) -> anyhow::Result<Vec<TopicPartition>> {
    match (opts.values("--topic"), opts.has("--all-topics")) {
        ([], true) => Ok(committed.keys().cloned().collect()),
        ([], false) => {
            bail!("Option --reset-offsets takes one of these options: --all-topics, --topic")
        }
        (_, true) => bail!("Option --all-topics cannot be used with --topic"),
        (specs, false) => {
            let mut partitions = BTreeSet::new();
            for spec in specs {
                let (topic, listed) = match spec.split_once(':') {
                    Some((topic, list)) => (topic, Some(list)),
                    None => (spec.as_str(), None),
                };
                let metadata = client.metadata(Some(&[topic.to_string()])).await?;
                let Some(found) = metadata
                    .topics
                    .iter()
                    .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
                else {
                    bail!("Topic '{topic}' does not exist");
                };
                KafkaError::check(found.error_code, None)
                    .with_context(|| format!("topic '{topic}'"))?;
                let existing: BTreeSet<i32> =
                    found.partitions.iter().map(|p| p.partition_index).collect();
                match listed {
                    None => partitions.extend(existing.iter().map(|p| (topic.to_string(), *p))),
                    Some(list) => {
                        for p in list.split(',') {
                            let p: i32 = p.trim().parse().with_context(|| {
                                format!("bad partition '{p}' in --topic {spec}")
                            })?;
                            if !existing.contains(&p) {
                                bail!("Topic '{topic}' has no partition {p}");
                            }
                            partitions.insert((topic.to_string(), p));
                        }
                    }
                }
            }
            Ok(partitions.into_iter().collect())
        }
    }
}

async fn reset_offsets(
    client: &AdminClient,
    group: &str,
    opts: &Parsed,
    out: &mut String,
) -> anyhow::Result<()> {
    let scenario = reset_scenario(opts)?;
    let execute = opts.has("--execute");
    if execute && opts.has("--dry-run") {
        bail!("Option --execute cannot be used with --dry-run");
    }
    if !execute && !opts.has("--dry-run") {
        eprintln!(
            "WARN: No action will be performed as the --execute option is missing. Add --dry-run to say so \
             explicitly, or --execute to reset the offsets."
        );
    }
    let (_, coordinator) = client.group_coordinator(group).await?;
    // A group that does not exist yet may be given offsets: it starts from them.
    let described = describe_group(&coordinator, group).await?;
    let state = described
        .as_ref()
        .map_or("Dead", |d| d.group_state.as_str());
    if state != "Empty" && state != "Dead" {
        bail!("Assignments can only be reset if the group '{group}' is inactive, but the current state is {state}.");
    }
    let committed = offsets::committed_offsets(&coordinator, group).await?;
    let partitions = reset_partitions(client, opts, &committed).await?;
    if partitions.is_empty() {
        return Ok(());
    }
    let earliest = offsets::log_offsets(client, &partitions, EARLIEST).await?;
    let latest = offsets::log_offsets(client, &partitions, LATEST).await?;
    let mut targets = BTreeMap::new();
    for tp in &partitions {
        let (Some(&low), Some(&high)) = (earliest.get(tp), latest.get(tp)) else {
            bail!("no log offsets for {}-{}", tp.0, tp.1);
        };
        let current = committed.get(tp).copied();
        // As Kafka's tool: a target outside the log is moved to its nearest end.
        let target = match scenario {
            ResetTo::Earliest => low,
            ResetTo::Latest => high,
            ResetTo::Offset(offset) => offset,
            ResetTo::ShiftBy(shift) => current
                .with_context(|| {
                    format!(
                        "group '{group}' has no committed offset for {}-{} to shift",
                        tp.0, tp.1
                    )
                })?
                .saturating_add(shift),
            ResetTo::Current => current.unwrap_or(high),
        }
        .clamp(low, high);
        targets.insert(tp.clone(), target);
    }
    if execute {
        offsets::commit_offsets(&coordinator, group, &targets)
            .await
            .with_context(|| format!("cannot reset the offsets of group '{group}'"))?;
    }
    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|((topic, partition), offset)| {
            vec![
                group.to_string(),
                topic.clone(),
                partition.to_string(),
                offset.to_string(),
            ]
        })
        .collect();
    table(out, ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows)
}

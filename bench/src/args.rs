//! Command-line flags, parsed by hand: a dozen flags do not justify a parser crate in the build.

use anyhow::{anyhow, bail, Context, Result};

pub const USAGE: &str = "\
ferrite-bench: load generator for Kafka-compatible brokers (librdkafka)

USAGE:
    ferrite-bench produce [FLAGS]   produce records, report throughput and ack latency
    ferrite-bench consume [FLAGS]   read records from offset 0 of every partition, report throughput
    ferrite-bench all [FLAGS]       produce, then consume the same number of records

COMMON FLAGS:
    --bootstrap HOST:PORT[,...]     bootstrap servers               [default: 127.0.0.1:9092]
    --topic NAME                                                    [default: bench]
    --records N                     records to produce / consume    [default: 1000000]
    -X, --property KEY=VALUE        any librdkafka property; applied last, so it overrides
                                    the settings below (repeatable)

PRODUCE FLAGS:
    --record-size BYTES             payload size                    [default: 100]
    --acks 0|1|all                                                  [default: all]
    --create                        create the topic first (an existing topic is left as it is)
    --partitions N                  partitions for --create         [default: 6]
    --replication-factor N          for --create; -1 = broker default [default: -1]
    --compression none|gzip|snappy|lz4|zstd                         [default: none]
    --linger-ms MS                                                  [default: 5]
    --batch-size BYTES              max bytes per batch             [default: 1000000]
    --throughput N                  cap at N records/s; -1 = as fast as possible [default: -1]
    --transaction-records N         produce transactionally, committing every N records
                                    (transactional.id ferrite-bench-<pid>); 0 = not transactional [default: 0]

CONSUME FLAGS:
    --timeout-ms MS                 give up when no record arrives for this long [default: 10000]

The results are printed to stdout as Markdown tables (for docs/benchmarks.md); progress and
client errors go to stderr. MiB = 1024 * 1024 bytes of payload.
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Produce,
    Consume,
    All,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub command: Command,
    pub bootstrap: String,
    pub topic: String,
    pub records: u64,
    pub record_size: usize,
    pub acks: String,
    pub create: bool,
    pub partitions: i32,
    pub replication_factor: i32,
    pub compression: String,
    pub linger_ms: u64,
    pub batch_size: u64,
    /// Records per second; `None` is unthrottled.
    pub throughput: Option<u64>,
    /// Records per transaction; `None` produces without transactions.
    pub transaction_records: Option<u64>,
    pub timeout_ms: u64,
    /// librdkafka properties from `-X`, in the order given.
    pub properties: Vec<(String, String)>,
}

/// `Ok(None)` means help was asked for.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>> {
    let mut args = args.into_iter();
    let command = match args.next().as_deref() {
        Some("produce") => Command::Produce,
        Some("consume") => Command::Consume,
        Some("all") => Command::All,
        Some("-h" | "--help" | "help") => return Ok(None),
        Some(other) => bail!("unknown command '{other}': expected produce, consume or all"),
        None => bail!("missing command: expected produce, consume or all"),
    };
    let mut options = Options {
        command,
        bootstrap: "127.0.0.1:9092".to_owned(),
        topic: "bench".to_owned(),
        records: 1_000_000,
        record_size: 100,
        acks: "all".to_owned(),
        create: false,
        partitions: 6,
        replication_factor: -1,
        compression: "none".to_owned(),
        linger_ms: 5,
        batch_size: 1_000_000,
        throughput: None,
        transaction_records: None,
        timeout_ms: 10_000,
        properties: Vec::new(),
    };

    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String> {
            match &inline_value {
                Some(value) => Ok(value.clone()),
                None => args.next().ok_or_else(|| anyhow!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--create" => options.create = true,
            "--bootstrap" | "--bootstrap-server" => options.bootstrap = value()?,
            "--topic" => options.topic = value()?,
            "--records" | "--num-records" => options.records = number(&flag, &value()?)?,
            "--record-size" => options.record_size = number(&flag, &value()?)?,
            "--acks" => options.acks = acks(&value()?)?,
            "--partitions" => options.partitions = number(&flag, &value()?)?,
            "--replication-factor" => options.replication_factor = number(&flag, &value()?)?,
            "--compression" | "--compression-type" => options.compression = value()?,
            "--linger-ms" => options.linger_ms = number(&flag, &value()?)?,
            "--batch-size" => options.batch_size = number(&flag, &value()?)?,
            "--throughput" => {
                let throughput: i64 = number(&flag, &value()?)?;
                options.throughput = match throughput {
                    n if n < 0 => None,
                    0 => bail!("--throughput must be positive, or -1 for no limit"),
                    n => Some(n.unsigned_abs()),
                };
            }
            "--transaction-records" => {
                let records: u64 = number(&flag, &value()?)?;
                options.transaction_records = (records > 0).then_some(records);
            }
            "--timeout-ms" => options.timeout_ms = number(&flag, &value()?)?,
            "-X" | "--property" => {
                let property = value()?;
                let (key, value) = property
                    .split_once('=')
                    .ok_or_else(|| anyhow!("{flag} expects KEY=VALUE, got '{property}'"))?;
                options.properties.push((key.to_owned(), value.to_owned()));
            }
            _ => bail!("unknown flag '{arg}' (see --help)"),
        }
    }

    if options.records == 0 {
        bail!("--records must be at least 1");
    }
    if options.partitions < 1 {
        bail!("--partitions must be at least 1");
    }
    if options.topic.is_empty() {
        bail!("--topic must not be empty");
    }
    Ok(Some(options))
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.parse()
        .with_context(|| format!("{flag}: '{text}' is not a valid number"))
}

fn acks(text: &str) -> Result<String> {
    match text {
        "0" | "1" => Ok(text.to_owned()),
        "all" | "-1" => Ok("all".to_owned()),
        _ => bail!("--acks must be 0, 1 or all, got '{text}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Option<Options>> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn defaults() {
        let options = parse_str("produce").unwrap().unwrap();
        assert_eq!(options.command, Command::Produce);
        assert_eq!(options.bootstrap, "127.0.0.1:9092");
        assert_eq!(options.records, 1_000_000);
        assert_eq!(options.acks, "all");
        assert_eq!(options.throughput, None);
        assert!(!options.create);
    }

    #[test]
    fn flags_with_separate_and_inline_values() {
        let options = parse_str(
            "all --bootstrap=h:1 --topic t --records 10 --record-size=1024 --acks -1 --create \
             --partitions 3 --compression lz4 --linger-ms 0 --throughput 500 -X a=b --property c=d=e",
        )
        .unwrap()
        .unwrap();
        assert_eq!(options.command, Command::All);
        assert_eq!(options.bootstrap, "h:1");
        assert_eq!(options.topic, "t");
        assert_eq!(options.records, 10);
        assert_eq!(options.record_size, 1024);
        assert_eq!(options.acks, "all");
        assert!(options.create);
        assert_eq!(options.partitions, 3);
        assert_eq!(options.compression, "lz4");
        assert_eq!(options.linger_ms, 0);
        assert_eq!(options.throughput, Some(500));
        assert_eq!(
            options.properties,
            vec![("a".into(), "b".into()), ("c".into(), "d=e".into())]
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse_str("").is_err());
        assert!(parse_str("bake").is_err());
        assert!(parse_str("produce --records").is_err());
        assert!(parse_str("produce --records ten").is_err());
        assert!(parse_str("produce --records 0").is_err());
        assert!(parse_str("produce --acks 2").is_err());
        assert!(parse_str("produce --frobnicate").is_err());
        assert!(parse_str("produce -X novalue").is_err());
        assert!(parse_str("produce --throughput 0").is_err());
    }

    #[test]
    fn help() {
        assert!(parse_str("--help").unwrap().is_none());
        assert!(parse_str("consume -h").unwrap().is_none());
    }
}

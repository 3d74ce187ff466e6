//! Command-line options as Kafka's tools take them (joptsimple): `--name value` or `--name=value`, switches, and
//! options given more than once.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Switch,
    Value,
}

/// One option a command accepts.
pub struct OptionSpec {
    pub name: &'static str,
    pub arity: Arity,
    pub help: &'static str,
}

pub const fn switch(name: &'static str, help: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        arity: Arity::Switch,
        help,
    }
}

pub const fn value(name: &'static str, help: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        arity: Arity::Value,
        help,
    }
}

/// Options of Kafka's tools that change nothing against Ferrite (no security, no JVM): accepted with a warning so
/// that scripts written for Kafka keep working.
const IGNORED: &[OptionSpec] = &[
    value(
        "--command-config",
        "client properties file (ignored: Ferrite has no client security yet)",
    ),
    value(
        "--admin.config",
        "client properties file (ignored: Ferrite has no client security yet)",
    ),
];

#[derive(Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("unrecognized option '{0}'")]
    Unknown(String),
    #[error("option {0} requires an argument")]
    MissingValue(&'static str),
    #[error("option {0} takes no argument")]
    UnexpectedValue(&'static str),
    #[error("unexpected argument '{0}' (options start with --)")]
    Positional(String),
}

/// Parses `args` against `specs`; ignored options produce a warning on stderr.
pub fn parse(specs: &[OptionSpec], args: &[String]) -> Result<Parsed, ArgsError> {
    let mut parsed = Parsed::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(body) = arg.strip_prefix("--") else {
            return Err(ArgsError::Positional(arg.clone()));
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (body, None),
        };
        let flag = format!("--{name}");
        let (spec, ignored) = match specs.iter().find(|s| s.name == flag) {
            Some(spec) => (spec, false),
            None => match IGNORED.iter().find(|s| s.name == flag) {
                Some(spec) => (spec, true),
                None => return Err(ArgsError::Unknown(arg.clone())),
            },
        };
        let value = match spec.arity {
            Arity::Switch if inline.is_some() => return Err(ArgsError::UnexpectedValue(spec.name)),
            Arity::Switch => String::new(),
            Arity::Value => match inline {
                Some(value) => value,
                None => args
                    .next()
                    .cloned()
                    .ok_or(ArgsError::MissingValue(spec.name))?,
            },
        };
        if ignored {
            eprintln!("WARN: ignoring {} {value}: {}", spec.name, spec.help);
            continue;
        }
        parsed.values.entry(spec.name).or_default().push(value);
    }
    Ok(parsed)
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The last value given for an option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value given for an option, in order.
    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The usage text of a command: its options, one a line.
pub fn usage(command: &str, specs: &[OptionSpec]) -> String {
    let width = specs.iter().map(|s| s.name.len()).max().unwrap_or(0) + 10;
    let mut out = format!(
        "Usage: ferrite admin {command} --bootstrap-server <host:port> [options]\n\nOptions:\n"
    );
    for spec in specs {
        let left = match spec.arity {
            Arity::Switch => spec.name.to_string(),
            Arity::Value => format!("{} <value>", spec.name),
        };
        out.push_str(&format!("  {left:width$} {}\n", spec.help));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[OptionSpec] = &[
        switch("--create", "create"),
        value("--topic", "topic"),
        value("--config", "config"),
    ];

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_kafka_style_options() {
        let parsed = parse(
            SPECS,
            &strings(&[
                "--create",
                "--topic",
                "t",
                "--config=a=1",
                "--config",
                "b=2",
            ]),
        )
        .expect("parsed");
        assert!(parsed.has("--create"));
        assert_eq!(parsed.value("--topic"), Some("t"));
        assert_eq!(parsed.values("--config"), ["a=1", "b=2"]);
        assert!(!parsed.has("--delete"));
    }

    #[test]
    fn rejects_what_it_does_not_know_and_skips_what_is_harmless() {
        assert_eq!(
            parse(SPECS, &strings(&["--zookeeper", "x"])).unwrap_err(),
            ArgsError::Unknown("--zookeeper".into())
        );
        assert_eq!(
            parse(SPECS, &strings(&["--topic"])).unwrap_err(),
            ArgsError::MissingValue("--topic")
        );
        assert_eq!(
            parse(SPECS, &strings(&["t"])).unwrap_err(),
            ArgsError::Positional("t".into())
        );
        let parsed = parse(
            SPECS,
            &strings(&["--command-config", "c.properties", "--create"]),
        )
        .expect("parsed");
        assert!(parsed.has("--create"));
        assert!(!parsed.has("--command-config"));
    }
}

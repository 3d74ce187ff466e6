//! ferrite-bench: kafka-producer-perf-test and kafka-consumer-perf-test in one binary, on
//! librdkafka, for any Kafka-compatible broker. `ferrite-bench --help` for the flags.

mod args;
mod cluster;
mod consume;
mod histogram;
mod produce;
mod report;

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Command, Options};

fn main() -> ExitCode {
    match args::parse(std::env::args().skip(1)) {
        Ok(None) => {
            print!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Some(options)) => match run(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("error: {error:#}\nrun 'ferrite-bench --help' for the flags");
            ExitCode::from(2)
        }
    }
}

fn run(options: &Options) -> Result<()> {
    if matches!(options.command, Command::Produce | Command::All) {
        let report = produce::run(options)?;
        println!("{}", produce::table(options, &report));
    }
    if matches!(options.command, Command::Consume | Command::All) {
        let report = consume::run(options)?;
        println!("{}", consume::table(options, &report));
    }
    Ok(())
}

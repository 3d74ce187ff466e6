//! `ferrite`: run a node. Configuration: see `ferrite::config` and the README. `ferrite admin ...` runs the
//! administration tools instead (`ferrite::admin`); `ferrite format ...` and `ferrite random-uuid` prepare a log
//! directory for a cluster (`ferrite::admin::storage`).

use anyhow::Context;
use ferrite::config::BrokerConfig;
use ferrite::node::Node;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("admin") => std::process::exit(ferrite::admin::run(&args[1..]).await),
        Some("format" | "random-uuid") => std::process::exit(ferrite::admin::storage::run(&args)),
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match BrokerConfig::from_args_and_env(args.into_iter(), std::env::vars()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ferrite: {error}");
            std::process::exit(2);
        }
    };
    let server = Node::start(config).await.context("cannot start ferrite")?;
    wait_for_signal().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

//! Graceful shutdown: one broadcast that every task listens to.

use tokio::sync::watch;

/// A task's view of the shutdown signal.
#[derive(Clone)]
pub struct Shutdown {
    signal: watch::Receiver<bool>,
}

impl Shutdown {
    pub fn new(signal: watch::Receiver<bool>) -> Self {
        Self { signal }
    }

    /// Completes once shutdown has begun (or the sender is gone).
    pub async fn recv(&mut self) {
        let _ = self.signal.wait_for(|stopping| *stopping).await;
    }
}

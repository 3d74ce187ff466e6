//! The broker's side of its membership in the cluster (Kafka's BrokerLifecycleManager): it registers with the
//! active controller, wherever that runs, then heartbeats for as long as it runs.
//!
//! A new registration is fenced. Heartbeats report how far this node has applied the metadata log; once that
//! reaches the registration, the controller unfences the broker and [`BrokerLifecycleManager::wait_unfenced`]
//! returns: the node serves clients only from then on, as Kafka's brokers do. Should heartbeats stop getting
//! through for `broker.session.timeout.ms`, the controller fences the broker again; the next heartbeat that gets
//! through unfences it. A heartbeat refused for a stale epoch registers again. On shutdown the broker asks to be
//! fenced (`want_shut_down`), so that Metadata stops naming it before it goes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrite_raft::{
    AlterPartitionRequest, BrokerHeartbeatRequest, BrokerRegistrationRequest, ControllerError,
    IncarnationId, IsrChange, MetadataQuorum,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::ClusterConfig;
use crate::ids::{BrokerEpoch, BrokerId};
use crate::metadata::MetadataLoader;
use crate::replica::{AlterPartitionSender, IsrProposal};

/// While fenced, heartbeat often: unfencing waits for the next heartbeat after catching up.
const FENCED_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(50);
/// How often failing heartbeats are reported while they keep failing.
const FAILURE_REPORT_INTERVAL: Duration = Duration::from_secs(30);
/// How long a clean shutdown waits for the controller to fence this broker.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("could not register with the controller within initial.broker.registration.timeout.ms ({0:?})")]
    RegistrationTimeout(Duration),
    #[error("the controller refused the registration")]
    Refused(#[source] ControllerError),
    #[error("the controller did not unfence this broker within initial.broker.registration.timeout.ms ({0:?})")]
    UnfenceTimeout(Duration),
}

/// Where the broker stands with the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerState {
    Fenced,
    Unfenced,
    ShuttingDown,
}

pub struct BrokerLifecycleManager {
    state: watch::Receiver<BrokerState>,
    shut_down: watch::Sender<bool>,
    task: JoinHandle<()>,
    registration_timeout: Duration,
    isr_sender: Arc<ControllerIsrSender>,
}

struct Heartbeater {
    quorum: MetadataQuorum,
    /// This broker's image: its offset is how far the broker has caught up.
    loader: Arc<MetadataLoader>,
    registration: BrokerRegistrationRequest,
    broker_epoch: BrokerEpoch,
    /// The same epoch, for the partition leaders' AlterPartition requests.
    shared_epoch: Arc<AtomicI64>,
    interval: Duration,
    request_timeout: Duration,
    state: watch::Sender<BrokerState>,
    /// When a failing heartbeat was last reported; `None` while they succeed.
    last_failure_report: Option<Instant>,
}

impl BrokerLifecycleManager {
    /// Registers this broker (retrying until `initial.broker.registration.timeout.ms`) and starts heartbeating.
    pub async fn start(
        quorum: MetadataQuorum,
        loader: Arc<MetadataLoader>,
        broker_id: BrokerId,
        host: String,
        port: u16,
        config: &ClusterConfig,
    ) -> Result<BrokerLifecycleManager, LifecycleError> {
        let registration = BrokerRegistrationRequest {
            broker_id,
            incarnation_id: IncarnationId::random(),
            host,
            port,
            rack: config.rack.clone(),
        };
        let registration_timeout = Duration::from_millis(config.initial_registration_timeout_ms);
        let interval = Duration::from_millis(config.heartbeat_interval_ms);
        let request_timeout = Duration::from_millis(config.session_timeout_ms / 2).max(interval);
        let broker_epoch = register(&quorum, &registration, registration_timeout, interval).await?;
        tracing::info!(broker_id = broker_id.0, %broker_epoch, "registered with the controller");
        let (state, state_rx) = watch::channel(BrokerState::Fenced);
        let (shut_down, shut_down_rx) = watch::channel(false);
        let shared_epoch = Arc::new(AtomicI64::new(broker_epoch.0));
        let isr_sender = Arc::new(ControllerIsrSender {
            quorum: quorum.clone(),
            broker_id,
            broker_epoch: shared_epoch.clone(),
        });
        let heartbeater = Heartbeater {
            quorum,
            loader,
            registration,
            broker_epoch,
            shared_epoch,
            interval,
            request_timeout,
            state,
            last_failure_report: None,
        };
        Ok(BrokerLifecycleManager {
            state: state_rx,
            shut_down,
            task: tokio::spawn(heartbeater.run(shut_down_rx)),
            registration_timeout,
            isr_sender,
        })
    }

    /// How this broker's partition leaders send AlterPartition: as this registration, to the active controller.
    pub fn alter_partition_sender(&self) -> Arc<dyn AlterPartitionSender> {
        self.isr_sender.clone()
    }

    /// Returns once the controller has unfenced this broker.
    pub async fn wait_unfenced(&self) -> Result<(), LifecycleError> {
        let mut state = self.state.clone();
        let unfenced = async move {
            state
                .wait_for(|s| *s == BrokerState::Unfenced)
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(self.registration_timeout, unfenced).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(LifecycleError::UnfenceTimeout(self.registration_timeout)),
        }
    }

    pub fn state(&self) -> BrokerState {
        *self.state.borrow()
    }

    /// Asks the controller to fence this broker for shutdown and stops heartbeating.
    pub async fn shutdown(self) {
        let _ = self.shut_down.send(true);
        if tokio::time::timeout(SHUTDOWN_TIMEOUT * 2, self.task)
            .await
            .is_err()
        {
            tracing::warn!("the heartbeat task did not stop in time");
        }
    }
}

/// Registers, retrying what may pass (no controller yet, a previous incarnation whose session has not expired).
async fn register(
    quorum: &MetadataQuorum,
    registration: &BrokerRegistrationRequest,
    timeout: Duration,
    backoff: Duration,
) -> Result<BrokerEpoch, LifecycleError> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(LifecycleError::RegistrationTimeout(timeout));
        }
        match quorum
            .channel()
            .register_broker(registration.clone(), remaining)
            .await
        {
            Ok(epoch) => return Ok(epoch),
            Err(error @ ControllerError::DuplicateBrokerRegistration(_)) => {
                tracing::info!(%error, "waiting for the previous incarnation's session to expire");
            }
            Err(ControllerError::NotController | ControllerError::Timeout) => {}
            Err(error) => return Err(LifecycleError::Refused(error)),
        }
        tokio::time::sleep(backoff.min(remaining)).await;
    }
}

impl Heartbeater {
    async fn run(mut self, mut shut_down: watch::Receiver<bool>) {
        loop {
            let wait = match *self.state.borrow() {
                BrokerState::Unfenced => self.interval,
                _ => FENCED_HEARTBEAT_INTERVAL,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shut_down.changed() => break,
            }
            self.heartbeat(false, self.request_timeout).await;
        }
        let _ = self.state.send(BrokerState::ShuttingDown);
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if self.heartbeat(true, remaining).await {
                tracing::info!("the controller fenced this broker for shutdown");
                return;
            }
            tokio::time::sleep(FENCED_HEARTBEAT_INTERVAL).await;
        }
        tracing::warn!(
            "the controller did not answer the shutdown heartbeat; its session will expire instead"
        );
    }

    /// One heartbeat; returns whether the controller agreed to the shutdown asked for.
    async fn heartbeat(&mut self, want_shut_down: bool, timeout: Duration) -> bool {
        let request = BrokerHeartbeatRequest {
            broker_id: self.registration.broker_id,
            broker_epoch: self.broker_epoch,
            current_metadata_offset: i64::try_from(self.loader.current().offset)
                .unwrap_or(i64::MAX),
            want_fence: false,
            want_shut_down,
        };
        match self
            .quorum
            .channel()
            .broker_heartbeat(request, timeout)
            .await
        {
            Ok(reply) => {
                if self.last_failure_report.take().is_some() {
                    tracing::info!("heartbeats reach the active controller again");
                }
                if !want_shut_down {
                    let state = if reply.is_fenced {
                        BrokerState::Fenced
                    } else {
                        BrokerState::Unfenced
                    };
                    self.state.send_if_modified(|current| {
                        let changed = *current != state;
                        if changed {
                            tracing::info!(?state, "the controller changed this broker's state");
                        }
                        *current = state;
                        changed
                    });
                }
                reply.should_shut_down
            }
            Err(
                ControllerError::StaleBrokerEpoch(_) | ControllerError::BrokerIdNotRegistered(_),
            ) => {
                tracing::warn!(
                    "the controller no longer knows this registration; registering again"
                );
                let _ = self.state.send(BrokerState::Fenced);
                match register(
                    &self.quorum,
                    &self.registration,
                    self.request_timeout,
                    self.interval,
                )
                .await
                {
                    Ok(epoch) => {
                        self.broker_epoch = epoch;
                        self.shared_epoch.store(epoch.0, Ordering::Release);
                    }
                    Err(error) => tracing::warn!(%error, "registering again failed"),
                }
                false
            }
            Err(error) => {
                // Once when heartbeats start failing, then every so often: the controller fences this broker if
                // it stays unreachable for broker.session.timeout.ms.
                let now = Instant::now();
                if self
                    .last_failure_report
                    .is_none_or(|at| now.duration_since(at) >= FAILURE_REPORT_INTERVAL)
                {
                    self.last_failure_report = Some(now);
                    tracing::warn!(%error, "heartbeat to the active controller failed");
                } else {
                    tracing::debug!(%error, "heartbeat failed");
                }
                false
            }
        }
    }
}

/// AlterPartition to the active controller, in this broker's current registration.
struct ControllerIsrSender {
    quorum: MetadataQuorum,
    broker_id: BrokerId,
    broker_epoch: Arc<AtomicI64>,
}

impl AlterPartitionSender for ControllerIsrSender {
    fn alter_partition(
        &self,
        proposal: IsrProposal,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        let request = AlterPartitionRequest {
            broker_id: self.broker_id,
            broker_epoch: BrokerEpoch(self.broker_epoch.load(Ordering::Acquire)),
            partitions: vec![IsrChange {
                topic_id: proposal.topic_id,
                partition: proposal.index,
                leader_epoch: proposal.leader_epoch,
                partition_epoch: proposal.partition_epoch,
                new_isr: proposal.new_isr,
            }],
        };
        let quorum = self.quorum.clone();
        Box::pin(async move {
            let results = quorum
                .channel()
                .alter_partition(request)
                .await
                .map_err(|e| e.to_string())?;
            match results.into_iter().next().map(|r| r.result) {
                Some(Ok(_)) | None => Ok(()),
                Some(Err(error)) => Err(error.to_string()),
            }
        })
    }
}

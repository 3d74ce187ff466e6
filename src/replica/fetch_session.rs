//! Incremental fetch sessions (KIP-227): the FetchSessionCache.
//!
//! A consumer that fetches the same partitions over and over may ask the broker to remember them. Its first fetch
//! (epoch 0) is a full one and creates a session; the response carries the session's id. Every later fetch names
//! the session and its next epoch, and lists only the partitions whose fetch position or limits changed (plus the
//! ones to forget); the broker fetches every partition of the session and answers with only those that have
//! something to say: records, an error, or a HighWatermark, LastStableOffset or LogStartOffset the client has not
//! seen yet.
//!
//! Epochs: -1 asks for no session (and closes the one named); 0 opens a new one (closing the one named); 1, 2, ...
//! continue one, each exactly one more than the last. A session this broker does not hold is
//! FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH; the client then starts over with a full
//! fetch. Sessions live only in memory: after a restart every client starts over, as with Kafka.
//!
//! The cache holds at most `max.incremental.fetch.session.cache.slots` sessions. When it is full, a new session
//! takes the slot of the least recently used one if that one has been idle for [`MIN_EVICTION_MS`] (Kafka's fixed
//! two minutes); otherwise the full fetch is answered with session id 0 (no session), as Kafka answers, and the
//! client keeps sending full fetches.
//!
//! [`FetchSessionCache::open`] and [`FetchSessionCache::close`] are the two halves of one fetch: what to fetch,
//! then which of the fetched partitions to answer with. Both are pure bookkeeping under one short lock; the fetch
//! itself (and its long poll) runs between them without it.

use std::collections::HashMap;
use std::sync::Mutex;

use kafka_protocol::indexmap::IndexMap;
use uuid::Uuid;

/// The session id a client sends when it has none, and the broker answers when it creates none.
pub const NO_SESSION: i32 = 0;
/// Epoch of a fetch that wants no session.
pub const FINAL_EPOCH: i32 = -1;
/// Epoch of a full fetch that opens a session.
pub const INITIAL_EPOCH: i32 = 0;
/// How long a session must have been idle before a newcomer may take its slot in a full cache (Kafka's constant).
pub const MIN_EVICTION_MS: i64 = 120_000;

/// Why a fetch's session cannot be used; the client answers each by starting over with a full fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FetchSessionError {
    #[error("fetch session {0} is not in this broker's cache")]
    IdNotFound(i32),
    #[error("fetch session {session_id} expected epoch {expected}, got {got}")]
    InvalidEpoch {
        session_id: i32,
        expected: i32,
        got: i32,
    },
    #[error("fetch session {0} was opened with topic {1} but continued with the other")]
    TopicIdMismatch(i32, &'static str),
}

/// A partition as a session remembers it: by topic id (Fetch v13+) or by name, never both in one session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicKey {
    Id(Uuid),
    Name(String),
}

/// One partition a fetch reads: where from and how much, as the request (or the session) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPosition {
    pub topic: TopicKey,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: usize,
    /// KIP-320: the leader epoch the client believes current, -1 when it does not say.
    pub current_leader_epoch: i32,
    /// KIP-320: the epoch of the last batch the client has, -1 when it does not say.
    pub last_fetched_epoch: i32,
}

/// What a read of one partition told the client, to know next time whether it has news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionState {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

/// One partition's outcome, as [`FetchSessionCache::close`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOutcome {
    pub state: PartitionState,
    pub has_records: bool,
    pub has_error: bool,
}

#[derive(Debug, Clone)]
struct CachedPartition {
    fetch_offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    /// What the last response said of this partition; `None` until one has.
    sent: Option<PartitionState>,
}

#[derive(Debug)]
struct FetchSession {
    /// The epoch the next fetch must carry.
    next_epoch: i32,
    uses_topic_ids: bool,
    partitions: IndexMap<(TopicKey, i32), CachedPartition>,
    last_used_ms: i64,
}

/// What kind of fetch [`FetchSessionCache::open`] found, to hand back to [`FetchSessionCache::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchContext {
    /// A full fetch answered without a session (epoch -1).
    Sessionless,
    /// A full fetch that asks for a new session (epoch 0).
    Full { uses_topic_ids: bool },
    /// A fetch in an existing session.
    Incremental { session_id: i32 },
}

/// What to fetch: every partition, in the order the response lists them.
#[derive(Debug)]
pub struct FetchPlan {
    pub context: FetchContext,
    pub positions: Vec<FetchPosition>,
}

#[derive(Debug)]
pub struct FetchSessionCache {
    max_sessions: usize,
    eviction_ms: i64,
    state: Mutex<Sessions>,
}

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<i32, FetchSession>,
    /// Session ids are handed out in sequence (skipping 0 and negatives), so a recycled id is unlikely to meet a
    /// client still holding the old session of that id.
    last_id: i32,
}

impl FetchSessionCache {
    pub fn new(max_sessions: usize, eviction_ms: i64) -> FetchSessionCache {
        FetchSessionCache {
            max_sessions,
            eviction_ms,
            state: Mutex::new(Sessions::default()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.sessions().by_id.is_empty()
    }

    /// Reads a fetch request's session fields: which partitions to fetch, and in what context. `requested` are the
    /// request's partitions; `forgotten` the ones it asks an incremental session to drop.
    pub fn open(
        &self,
        session_id: i32,
        epoch: i32,
        uses_topic_ids: bool,
        requested: Vec<FetchPosition>,
        forgotten: &[(TopicKey, i32)],
        now_ms: i64,
    ) -> Result<FetchPlan, FetchSessionError> {
        let mut sessions = self.sessions();
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if session_id != NO_SESSION {
                sessions.by_id.remove(&session_id);
            }
            let context = if epoch == FINAL_EPOCH {
                FetchContext::Sessionless
            } else {
                FetchContext::Full { uses_topic_ids }
            };
            return Ok(FetchPlan {
                context,
                positions: requested,
            });
        }
        let session = sessions
            .by_id
            .get_mut(&session_id)
            .ok_or(FetchSessionError::IdNotFound(session_id))?;
        if session.next_epoch != epoch {
            return Err(FetchSessionError::InvalidEpoch {
                session_id,
                expected: session.next_epoch,
                got: epoch,
            });
        }
        if session.uses_topic_ids != uses_topic_ids {
            let opened_with = if session.uses_topic_ids {
                "ids"
            } else {
                "names"
            };
            return Err(FetchSessionError::TopicIdMismatch(session_id, opened_with));
        }
        for position in requested {
            let cached = session
                .partitions
                .entry((position.topic, position.partition))
                .or_insert(CachedPartition {
                    fetch_offset: position.fetch_offset,
                    max_bytes: position.max_bytes,
                    current_leader_epoch: position.current_leader_epoch,
                    last_fetched_epoch: position.last_fetched_epoch,
                    sent: None,
                });
            cached.fetch_offset = position.fetch_offset;
            cached.max_bytes = position.max_bytes;
            cached.current_leader_epoch = position.current_leader_epoch;
            cached.last_fetched_epoch = position.last_fetched_epoch;
        }
        for key in forgotten {
            session.partitions.shift_remove(key);
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used_ms = now_ms;
        let positions = session
            .partitions
            .iter()
            .map(|((topic, partition), cached)| FetchPosition {
                topic: topic.clone(),
                partition: *partition,
                fetch_offset: cached.fetch_offset,
                max_bytes: cached.max_bytes,
                current_leader_epoch: cached.current_leader_epoch,
                last_fetched_epoch: cached.last_fetched_epoch,
            })
            .collect();
        Ok(FetchPlan {
            context: FetchContext::Incremental { session_id },
            positions,
        })
    }

    /// Finishes a fetch planned by [`open`](Self::open), given each fetched partition's outcome in plan order:
    /// returns which of them the response lists (every one, except in an incremental fetch) and the session id to
    /// answer with. A full fetch that asked for a session gets one here, if the cache has room.
    pub fn close(
        &self,
        context: FetchContext,
        positions: &[FetchPosition],
        outcomes: &[PartitionOutcome],
        now_ms: i64,
    ) -> (Vec<bool>, i32) {
        match context {
            FetchContext::Sessionless => (vec![true; outcomes.len()], NO_SESSION),
            FetchContext::Full { uses_topic_ids } => {
                let partitions = positions
                    .iter()
                    .zip(outcomes)
                    .map(|(position, outcome)| {
                        let cached = CachedPartition {
                            fetch_offset: position.fetch_offset,
                            max_bytes: position.max_bytes,
                            current_leader_epoch: position.current_leader_epoch,
                            last_fetched_epoch: position.last_fetched_epoch,
                            sent: Some(outcome.state),
                        };
                        ((position.topic.clone(), position.partition), cached)
                    })
                    .collect();
                let session = FetchSession {
                    next_epoch: next_epoch(INITIAL_EPOCH),
                    uses_topic_ids,
                    partitions,
                    last_used_ms: now_ms,
                };
                let id = self.insert(session, now_ms);
                (vec![true; outcomes.len()], id)
            }
            FetchContext::Incremental { session_id } => {
                let mut sessions = self.sessions();
                let Some(session) = sessions.by_id.get_mut(&session_id) else {
                    // Closed meanwhile (a full fetch reopened it): answer everything, without the session.
                    return (vec![true; outcomes.len()], NO_SESSION);
                };
                let listed = positions
                    .iter()
                    .zip(outcomes)
                    .map(|(position, outcome)| {
                        let key = (position.topic.clone(), position.partition);
                        let Some(cached) = session.partitions.get_mut(&key) else {
                            return true;
                        };
                        let news = outcome.has_records
                            || outcome.has_error
                            || cached.sent != Some(outcome.state);
                        cached.sent = Some(outcome.state);
                        news
                    })
                    .collect();
                (listed, session_id)
            }
        }
    }

    /// Stores a new session and returns its id, or [`NO_SESSION`] when the cache is full of sessions in use.
    fn insert(&self, session: FetchSession, now_ms: i64) -> i32 {
        if self.max_sessions == 0 {
            return NO_SESSION;
        }
        let mut sessions = self.sessions();
        if sessions.by_id.len() >= self.max_sessions {
            let idlest = sessions
                .by_id
                .iter()
                .min_by_key(|(_, s)| s.last_used_ms)
                .map(|(id, s)| (*id, s.last_used_ms));
            match idlest {
                Some((id, last_used_ms)) if now_ms - last_used_ms >= self.eviction_ms => {
                    sessions.by_id.remove(&id);
                }
                _ => return NO_SESSION,
            }
        }
        let mut id = sessions.last_id;
        loop {
            id = if id >= i32::MAX - 1 { 1 } else { id.max(0) + 1 };
            if !sessions.by_id.contains_key(&id) {
                break;
            }
        }
        sessions.last_id = id;
        sessions.by_id.insert(id, session);
        id
    }
}

/// The epoch after `epoch`: wraps from i32::MAX to 1 (0 and -1 mean "new" and "none").
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(topic: &str, partition: i32, fetch_offset: i64) -> FetchPosition {
        FetchPosition {
            topic: TopicKey::Name(topic.into()),
            partition,
            fetch_offset,
            max_bytes: 1024,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
        }
    }

    fn quiet(high_watermark: i64) -> PartitionOutcome {
        PartitionOutcome {
            state: PartitionState {
                high_watermark,
                last_stable_offset: high_watermark,
                log_start_offset: 0,
            },
            has_records: false,
            has_error: false,
        }
    }

    /// Opens a session over `partitions` of topic "t", all quiet at HighWatermark 10.
    fn opened(cache: &FetchSessionCache, partitions: &[i32]) -> i32 {
        let requested = partitions.iter().map(|p| position("t", *p, 0)).collect();
        let plan = cache
            .open(NO_SESSION, INITIAL_EPOCH, false, requested, &[], 0)
            .expect("full fetch");
        let outcomes = vec![quiet(10); plan.positions.len()];
        let (listed, id) = cache.close(plan.context, &plan.positions, &outcomes, 0);
        assert!(
            listed.iter().all(|l| *l),
            "a full fetch lists every partition"
        );
        assert_ne!(id, NO_SESSION);
        id
    }

    #[test]
    fn an_incremental_fetch_reads_the_whole_session_and_lists_only_news() {
        let cache = FetchSessionCache::new(10, 1000);
        let id = opened(&cache, &[0, 1, 2]);
        // The client moved partition 1 on; the session supplies 0 and 2.
        let plan = cache
            .open(id, 1, false, vec![position("t", 1, 7)], &[], 1)
            .expect("incremental");
        let offsets: Vec<_> = plan
            .positions
            .iter()
            .map(|p| (p.partition, p.fetch_offset))
            .collect();
        assert_eq!(offsets, vec![(0, 0), (1, 7), (2, 0)]);
        let mut records = quiet(10);
        records.has_records = true;
        let outcomes = [quiet(10), records, quiet(11)];
        let (listed, answered) = cache.close(plan.context, &plan.positions, &outcomes, 1);
        assert_eq!(answered, id);
        assert_eq!(
            listed,
            vec![false, true, true],
            "records and a new HighWatermark are news; the same state is not"
        );
        // Nothing changed since: nothing is listed.
        let plan = cache.open(id, 2, false, vec![], &[], 2).expect("epoch 2");
        let (listed, _) = cache.close(
            plan.context,
            &plan.positions,
            &[quiet(10), quiet(10), quiet(11)],
            2,
        );
        assert_eq!(listed, vec![false, false, false]);
    }

    #[test]
    fn forgotten_partitions_leave_the_session() {
        let cache = FetchSessionCache::new(10, 1000);
        let id = opened(&cache, &[0, 1]);
        let forgotten = [(TopicKey::Name("t".into()), 0)];
        let plan = cache
            .open(id, 1, false, vec![], &forgotten, 1)
            .expect("incremental");
        assert_eq!(plan.positions.len(), 1);
        assert_eq!(plan.positions[0].partition, 1);
    }

    #[test]
    fn wrong_epochs_and_unknown_sessions_are_refused() {
        let cache = FetchSessionCache::new(10, 1000);
        let id = opened(&cache, &[0]);
        assert_eq!(
            cache.open(id + 100, 1, false, vec![], &[], 1).unwrap_err(),
            FetchSessionError::IdNotFound(id + 100)
        );
        assert!(matches!(
            cache.open(id, 2, false, vec![], &[], 1),
            Err(FetchSessionError::InvalidEpoch {
                expected: 1,
                got: 2,
                ..
            })
        ));
        assert!(matches!(
            cache.open(id, 1, true, vec![], &[], 1),
            Err(FetchSessionError::TopicIdMismatch(..))
        ));
        // A refused fetch does not advance the session.
        assert!(cache.open(id, 1, false, vec![], &[], 1).is_ok());
    }

    #[test]
    fn epoch_minus_one_and_zero_close_the_named_session() {
        let cache = FetchSessionCache::new(10, 1000);
        let id = opened(&cache, &[0]);
        let plan = cache
            .open(id, FINAL_EPOCH, false, vec![position("t", 0, 0)], &[], 1)
            .expect("sessionless");
        assert_eq!(plan.context, FetchContext::Sessionless);
        assert!(cache.is_empty(), "epoch -1 closes the session it names");
        let (_, answered) = cache.close(plan.context, &plan.positions, &[quiet(1)], 1);
        assert_eq!(answered, NO_SESSION);
        let id = opened(&cache, &[0]);
        let _ = cache
            .open(id, INITIAL_EPOCH, false, vec![], &[], 1)
            .expect("reopen");
        assert!(
            cache.is_empty(),
            "epoch 0 closes the old session before opening a new one"
        );
    }

    #[test]
    fn a_full_cache_evicts_only_sessions_idle_long_enough() {
        let cache = FetchSessionCache::new(1, 1000);
        let first = opened(&cache, &[0]);
        let newcomer = |now_ms| {
            let requested = vec![position("t", 1, 0)];
            let plan = cache
                .open(NO_SESSION, INITIAL_EPOCH, false, requested, &[], now_ms)
                .expect("full");
            cache
                .close(plan.context, &plan.positions, &[quiet(1)], now_ms)
                .1
        };
        assert_eq!(
            newcomer(500),
            NO_SESSION,
            "busy: the newcomer gets no session"
        );
        assert!(cache.open(first, 1, false, vec![], &[], 500).is_ok());
        let id = newcomer(1500);
        assert!(
            id != NO_SESSION && id != first,
            "idle long enough: its slot goes"
        );
        assert_eq!(
            cache.open(first, 2, false, vec![], &[], 1500).unwrap_err(),
            FetchSessionError::IdNotFound(first)
        );
    }

    #[test]
    fn epochs_wrap_to_one() {
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(0), 1);
    }
}

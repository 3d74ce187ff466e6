//! The broker's view of the cluster: a [`MetadataImage`] rebuilt from the committed metadata log, and the
//! [`MetadataDelta`] of each step.
//!
//! The quorum hands the [`MetadataLoader`] each committed entry (or a whole snapshot) and goes on: the loader's own
//! thread replays the records into the next image while noting the delta, lets every [`MetadataPublisher`] act on
//! the delta (the [`ReplicaManager`](crate::replica::ReplicaManager) opens, recovers and deletes partition logs, the
//! [`GroupCoordinator`](crate::coordinator::group::GroupCoordinator) loads and unloads `__consumer_offsets`
//! partitions), then publishes the image for request handlers. A slow log open therefore never stalls the Raft state
//! machine; the controller instead waits for [`MetadataListener::caught_up`] after each write, so whoever made a
//! change sees it in the image when the write returns. The names are Kafka's (`MetadataLoader`,
//! `MetadataPublisher.onMetadataUpdate`).

mod delta;
mod image;

pub use delta::MetadataDelta;
/// The controller's types, shared so that the two replays of the metadata log build the same values.
pub use ferrite_raft::{BrokerRegistration, PartitionRegistration};
pub use image::{is_internal_topic, MetadataImage, TopicImage};

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use ferrite_raft::{MetadataListener, MetadataRecord};
use tokio::sync::watch;

/// A part of the broker that acts on metadata changes.
pub trait MetadataPublisher: Send + Sync + 'static {
    /// Called on the loader's thread (inside the tokio runtime's context, so it may spawn tasks) with what changed
    /// and the image after the change, before request handlers see that image.
    fn on_metadata_update(&self, delta: &MetadataDelta, image: &MetadataImage);
}

/// Committed records on their way to the loader's thread; `seq` numbers them in log order.
struct Load {
    seq: u64,
    snapshot: bool,
    /// The metadata log offset of the entry (0 for a snapshot, whose registrations carry their epochs).
    offset: u64,
    records: Vec<MetadataRecord>,
}

/// Receives committed metadata records from the quorum, and publishes the resulting image and its delta from a
/// thread of its own.
pub struct MetadataLoader {
    // The state machine calls in from one task at a time; the lock keeps numbering and sending in one order anyway.
    queue: Mutex<mpsc::Sender<Load>>,
    submitted: AtomicU64,
    published: watch::Receiver<u64>,
    image: watch::Receiver<Arc<MetadataImage>>,
}

impl MetadataLoader {
    /// Starts the loader's thread. Call it within the tokio runtime: publishers spawn their tasks on it.
    /// `publishers` hear each update in this order.
    pub fn start(publishers: Vec<Arc<dyn MetadataPublisher>>) -> std::io::Result<Arc<Self>> {
        let (queue, loads) = mpsc::channel();
        let (image_tx, image) = watch::channel(Arc::new(MetadataImage::default()));
        let (published_tx, published) = watch::channel(0);
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        std::thread::Builder::new()
            .name("metadata-loader".into())
            .spawn(move || {
                let _context = runtime.enter();
                load(&loads, &publishers, &image_tx, &published_tx);
            })?;
        Ok(Arc::new(MetadataLoader {
            queue: Mutex::new(queue),
            submitted: AtomicU64::new(0),
            published,
            image,
        }))
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// The newest image published.
    pub fn current(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    fn submit(&self, snapshot: bool, offset: u64, records: &[MetadataRecord]) {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let seq = self.submitted.fetch_add(1, Ordering::SeqCst) + 1;
        let load = Load {
            seq,
            snapshot,
            offset,
            records: records.to_vec(),
        };
        if queue.send(load).is_err() {
            tracing::error!(
                "the metadata loader has stopped; this broker's image no longer follows the log"
            );
        }
    }
}

impl MetadataListener for MetadataLoader {
    fn on_snapshot(&self, records: &[MetadataRecord]) {
        self.submit(true, 0, records);
    }

    fn on_records(&self, offset: u64, records: &[MetadataRecord]) {
        self.submit(false, offset, records);
    }

    fn caught_up(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let target = self.submitted.load(Ordering::SeqCst);
        let mut published = self.published.clone();
        Box::pin(async move {
            // An error means the loader's thread is gone; nothing will ever catch up, so do not wait.
            let _ = published.wait_for(|seq| *seq >= target).await;
        })
    }
}

/// The loader's thread: takes every load queued so far as one step (from the last snapshot among them, if any),
/// replays it into the next image and its delta, runs the publishers and publishes.
fn load(
    loads: &mpsc::Receiver<Load>,
    publishers: &[Arc<dyn MetadataPublisher>],
    image: &watch::Sender<Arc<MetadataImage>>,
    published: &watch::Sender<u64>,
) {
    while let Ok(first) = loads.recv() {
        let mut step = vec![first];
        step.extend(loads.try_iter());
        let from = step.iter().rposition(|load| load.snapshot);
        let (mut next, mut delta) = match from {
            Some(_) => (MetadataImage::default(), MetadataDelta::full()),
            None => ((**image.borrow()).clone(), MetadataDelta::default()),
        };
        for load in &step[from.unwrap_or(0)..] {
            for record in &load.records {
                next.replay_at(record, load.offset, &mut delta);
            }
        }
        for publisher in publishers {
            // A publisher that panics must not stop the image from following the log.
            if catch_unwind(AssertUnwindSafe(|| {
                publisher.on_metadata_update(&delta, &next)
            }))
            .is_err()
            {
                tracing::error!("a metadata publisher panicked; continuing with the next");
            }
        }
        image.send_replace(Arc::new(next));
        let last = step.last().map_or(0, |load| load.seq);
        published.send_replace(last);
    }
}

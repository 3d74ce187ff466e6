//! The broker's view of the cluster: a [`MetadataImage`] rebuilt from the committed metadata log, and the
//! [`MetadataDelta`] of each step.
//!
//! The quorum hands the [`MetadataLoader`] each committed entry (or a whole snapshot); it replays the records into
//! the next image while noting the delta, lets every [`MetadataPublisher`] act on the delta (the
//! [`ReplicaManager`](crate::replica::ReplicaManager) opens and deletes partition logs, the
//! [`GroupCoordinator`](crate::coordinator::group::GroupCoordinator) loads and unloads `__consumer_offsets`
//! partitions), then publishes the image for request handlers. The names are Kafka's (`MetadataLoader`,
//! `MetadataPublisher.onMetadataUpdate`).

mod delta;
mod image;

pub use delta::MetadataDelta;
pub use image::{is_internal_topic, BrokerRegistration, MetadataImage, PartitionImage, TopicImage};

use std::sync::{Arc, Mutex};

use ferrite_raft::{MetadataListener, MetadataRecord};
use tokio::sync::watch;

/// A part of the broker that acts on metadata changes.
pub trait MetadataPublisher: Send + Sync + 'static {
    /// Called with what changed and the image after the change, before request handlers see that image.
    fn on_metadata_update(&self, delta: &MetadataDelta, image: &MetadataImage);
}

/// Receives committed metadata records from the quorum, and publishes the resulting image and its delta.
pub struct MetadataLoader {
    image: watch::Sender<Arc<MetadataImage>>,
    // Serialises replay so that two callbacks never race on the same image.
    replay: Mutex<()>,
    publishers: Vec<Arc<dyn MetadataPublisher>>,
}

impl MetadataLoader {
    /// `publishers` hear each update in this order.
    pub fn new(publishers: Vec<Arc<dyn MetadataPublisher>>) -> Self {
        let (image, _) = watch::channel(Arc::new(MetadataImage::default()));
        Self {
            image,
            replay: Mutex::new(()),
            publishers,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.subscribe()
    }

    pub fn current(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    fn load(&self, snapshot: bool, records: &[MetadataRecord]) {
        let _serial = self
            .replay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (mut next, mut delta) = if snapshot {
            (MetadataImage::default(), MetadataDelta::full())
        } else {
            ((**self.image.borrow()).clone(), MetadataDelta::default())
        };
        for record in records {
            next.replay(record, &mut delta);
        }
        for publisher in &self.publishers {
            publisher.on_metadata_update(&delta, &next);
        }
        self.image.send_replace(Arc::new(next));
    }
}

impl MetadataListener for MetadataLoader {
    fn on_snapshot(&self, records: &[MetadataRecord]) {
        self.load(true, records);
    }

    fn on_records(&self, records: &[MetadataRecord]) {
        self.load(false, records);
    }
}

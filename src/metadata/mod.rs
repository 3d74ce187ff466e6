//! The broker's view of the cluster: a [`MetadataImage`] rebuilt from the committed metadata log.
//!
//! The quorum calls [`MetadataPublisher`] with each committed entry (or a whole snapshot); it replays the records into
//! a fresh image, publishes it for request handlers, and lets the [`ReplicaManager`](crate::replica::ReplicaManager)
//! open and delete partition logs to match.

mod image;

pub use image::{is_internal_topic, BrokerRegistration, MetadataImage, PartitionImage, TopicImage};

use std::sync::{Arc, Mutex};

use ferrite_raft::{MetadataListener, MetadataRecord};
use tokio::sync::watch;

/// Something that must follow the image as it changes (the replica manager).
pub trait ImageFollower: Send + Sync + 'static {
    fn follow(&self, image: &MetadataImage);
}

/// Receives committed metadata records from the quorum and publishes the resulting image.
pub struct MetadataPublisher {
    image: watch::Sender<Arc<MetadataImage>>,
    // Serialises replay so that two callbacks never race on the same image.
    replay: Mutex<()>,
    followers: Vec<Arc<dyn ImageFollower>>,
}

impl MetadataPublisher {
    pub fn new(followers: Vec<Arc<dyn ImageFollower>>) -> Self {
        let (image, _) = watch::channel(Arc::new(MetadataImage::default()));
        Self {
            image,
            replay: Mutex::new(()),
            followers,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.subscribe()
    }

    pub fn current(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    fn publish(&self, rebuild: bool, records: &[MetadataRecord]) {
        let _serial = self
            .replay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = if rebuild {
            MetadataImage::default()
        } else {
            (**self.image.borrow()).clone()
        };
        for record in records {
            next.replay(record);
        }
        for follower in &self.followers {
            follower.follow(&next);
        }
        self.image.send_replace(Arc::new(next));
    }
}

impl MetadataListener for MetadataPublisher {
    fn on_snapshot(&self, records: &[MetadataRecord]) {
        self.publish(true, records);
    }

    fn on_records(&self, records: &[MetadataRecord]) {
        self.publish(false, records);
    }
}

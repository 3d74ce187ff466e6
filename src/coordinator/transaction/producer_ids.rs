//! The ProducerIdManager (Kafka's): producer ids for InitProducerId, from blocks that the controller allocates
//! through the metadata quorum (Kafka's ProducerIdsRecord), so that no two brokers, and no restart, ever hand out
//! the same id. A block is asked for when the current one runs out; ids left in a block at shutdown are skipped.

use ferrite_raft::{ControllerChannel, ControllerError, ProducerIdBlock};
use tokio::sync::Mutex;

use crate::ids::{BrokerId, ProducerId};

/// Producer ids from the current block; a new block from the controller when it runs out.
pub struct ProducerIdManager {
    broker_id: BrokerId,
    /// The next id to hand out and the end of its block (exclusive).
    block: Mutex<Option<(i64, i64)>>,
}

impl ProducerIdManager {
    pub fn new(broker_id: BrokerId) -> ProducerIdManager {
        ProducerIdManager {
            broker_id,
            block: Mutex::new(None),
        }
    }

    pub async fn generate(
        &self,
        controller: &ControllerChannel,
    ) -> Result<ProducerId, ControllerError> {
        let mut block = self.block.lock().await;
        let (next, end) = match *block {
            Some((next, end)) if next < end => (next, end),
            _ => {
                let ProducerIdBlock { first, size } =
                    controller.allocate_producer_ids(self.broker_id).await?;
                (first.0, first.0 + size)
            }
        };
        *block = Some((next + 1, end));
        Ok(ProducerId(next))
    }
}

//! The broker's group coordinator: made on first use, over this broker's replicas of
//! `__consumer_offsets`, which is created then (compacted, 50 partitions) and read back from its
//! start on every later first use, as a Kafka coordinator loads the partitions it takes over.

use std::sync::Arc;

use super::{Broker, BrokerError, CleanupPolicy, TopicConfig};
use crate::group::{
    BlockingCoordinator, CoordinatorConfig, GroupCoordinator, OffsetsLog, OffsetsLogError,
    OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS,
};
use crate::log::LogRead;
use crate::partition::Replica;
use crate::record::RecordBatch;

/// Kafka's `offsets.topic.segment.bytes`.
const OFFSETS_SEGMENT_BYTES: u32 = 100 << 20;

/// `__consumer_offsets` on a single broker: its local replicas, appended to as a producer's
/// batches are (the high watermark moves with the log end). The replicated broker implements
/// [`OffsetsLog`] on the leader path instead, returning from `append` once the ISR has it.
#[derive(Debug)]
pub struct BrokerOffsetsLog {
    replicas: Vec<Arc<Replica>>,
}

impl BrokerOffsetsLog {
    fn replica(&self, partition: u32) -> Result<&Arc<Replica>, OffsetsLogError> {
        self.replicas
            .get(partition as usize)
            .ok_or(OffsetsLogError::UnknownPartition { partition })
    }
}

impl OffsetsLog for BrokerOffsetsLog {
    fn partitions(&self) -> u32 {
        self.replicas.len() as u32
    }

    fn append(&self, partition: u32, batch: &RecordBatch) -> Result<u64, OffsetsLogError> {
        let appended = self.replica(partition)?.append_producer_batch(batch)?;
        Ok(appended.last_offset)
    }

    fn read(
        &self,
        partition: u32,
        from: u64,
        max_bytes: usize,
    ) -> Result<LogRead, OffsetsLogError> {
        Ok(self.replica(partition)?.read_committed(from, max_bytes)?)
    }

    fn start_offset(&self, partition: u32) -> Result<u64, OffsetsLogError> {
        Ok(self.replica(partition)?.log().log_start_offset())
    }
}

/// The configuration of `__consumer_offsets`: Kafka's (`offsets.topic.num.partitions` 50,
/// `cleanup.policy` compact, `offsets.topic.segment.bytes` 100 MiB), with no time or size
/// retention: only compaction may remove offsets.
fn offsets_topic_config() -> TopicConfig {
    TopicConfig {
        partitions: OFFSETS_TOPIC_PARTITIONS,
        retention_ms: None,
        retention_bytes: None,
        segment_bytes: OFFSETS_SEGMENT_BYTES,
        cleanup_policy: CleanupPolicy::Compact,
        ..TopicConfig::default()
    }
}

impl Broker {
    /// The group coordinator of this broker, created on first use with `__consumer_offsets`
    /// and every group and committed offset stored there.
    ///
    /// # Errors
    /// `Io` and log errors creating the offsets topic; `Group(Corrupt)` when a stored record
    /// does not decode (the groups of that partition then answer `CoordinatorNotAvailable`).
    pub fn group_coordinator(&self) -> Result<Arc<BlockingCoordinator>, BrokerError> {
        let mut slot = self.inner.groups.lock();
        if let Some(coordinator) = slot.as_ref() {
            return Ok(Arc::clone(coordinator));
        }
        let log = Arc::new(self.offsets_log()?);
        let config = CoordinatorConfig {
            offsets_topic_partitions: log.partitions(),
            ..CoordinatorConfig::default()
        };
        let clock = Arc::clone(&self.inner.store.clock);
        let core = GroupCoordinator::new(config, clock.now_ms());
        let coordinator = Arc::new(BlockingCoordinator::new(core, log, clock));
        // Loading under the slot's lock: callers racing to first use wait for a loaded
        // coordinator rather than get one answering `NotCoordinator`.
        let loaded = coordinator.take_over_all();
        *slot = Some(Arc::clone(&coordinator));
        loaded.map(|()| coordinator).map_err(BrokerError::from)
    }

    fn offsets_log(&self) -> Result<BrokerOffsetsLog, BrokerError> {
        let topic = match self.topic(OFFSETS_TOPIC) {
            Ok(topic) => topic,
            Err(BrokerError::UnknownTopic { .. }) => {
                let config = offsets_topic_config();
                // `validate` refuses `Compact` until the log cleaner lands (the compaction
                // work); the internal topic is created compacted now so its stored
                // configuration is already right, and is checked with the policy aside.
                TopicConfig {
                    cleanup_policy: CleanupPolicy::Delete,
                    ..config.clone()
                }
                .validate(1)?;
                self.create_validated_topic(OFFSETS_TOPIC, config)?
            }
            Err(other) => return Err(other),
        };
        let replicas = (0..topic.partition_count())
            .map(|partition| topic.partition(partition).map(|p| Arc::clone(p.replica())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BrokerOffsetsLog { replicas })
    }
}

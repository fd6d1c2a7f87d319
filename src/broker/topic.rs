//! Topic and partition handles, and their descriptions.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{Broker, BrokerError, TopicConfig};
use crate::clock::Clock;
use crate::log::PartitionName;
use crate::partition::Replica;

/// A topic's shared state on this broker. With replication a broker holds only the partitions
/// assigned to it, so `replicas` has a slot per partition and an empty slot for each one held
/// elsewhere. `config` and `replicas` change only under the broker's admin lock or while the
/// replica manager opens a replica.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub name: Arc<str>,
    /// Of its fields only `partitions` ever changes (see [`TopicState::grow`]); producers keep
    /// the others from their first send.
    pub config: RwLock<TopicConfig>,
    /// `config.partitions`, read without the lock by every send.
    partitions: AtomicU32,
    replicas: RwLock<Arc<Vec<Option<Arc<Replica>>>>>,
    pub deleted: AtomicBool,
}

impl TopicState {
    /// A topic with no partition opened yet.
    pub(crate) fn new(name: &str, config: TopicConfig) -> TopicState {
        let slots = vec![None; config.partitions as usize];
        TopicState {
            name: Arc::from(name),
            partitions: AtomicU32::new(config.partitions),
            config: RwLock::new(config),
            replicas: RwLock::new(Arc::new(slots)),
            deleted: AtomicBool::new(false),
        }
    }

    /// The replicas this broker holds.
    pub(crate) fn replicas(&self) -> Vec<Arc<Replica>> {
        self.replicas.read().iter().flatten().cloned().collect()
    }

    pub(crate) fn replica(&self, partition: u32) -> Result<Arc<Replica>, BrokerError> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(BrokerError::UnknownTopic {
                topic: self.name.to_string(),
            });
        }
        self.replicas
            .read()
            .get(partition as usize)
            .cloned()
            .flatten()
            .ok_or_else(|| BrokerError::UnknownPartition {
                topic: self.name.to_string(),
                partition,
            })
    }

    /// Opens (creating if needed) this broker's replica of `partition`.
    pub(crate) fn open_partition(
        &self,
        data_dir: &Path,
        partition: u32,
        clock: &Arc<dyn Clock>,
    ) -> Result<Arc<Replica>, BrokerError> {
        if let Ok(replica) = self.replica(partition) {
            return Ok(replica);
        }
        let config = self.config.read().clone();
        let mut slots = self.replicas.write();
        if let Some(Some(replica)) = slots.get(partition as usize) {
            return Ok(Arc::clone(replica));
        }
        let replica = open_replica(data_dir, &self.name, partition, &config, clock)?;
        let mut grown: Vec<Option<Arc<Replica>>> = slots.to_vec();
        if grown.len() <= partition as usize {
            grown.resize(partition as usize + 1, None);
        }
        grown[partition as usize] = Some(Arc::clone(&replica));
        *slots = Arc::new(grown);
        Ok(replica)
    }

    /// Grows the topic's configuration to `partitions`; returns the new configuration to store.
    pub(crate) fn grow(&self, partitions: u32) -> Result<TopicConfig, BrokerError> {
        let mut config = self.config.read().clone();
        if partitions < config.partitions {
            return Err(BrokerError::PartitionsCannotShrink {
                current: config.partitions,
                requested: partitions,
            });
        }
        config.partitions = partitions;
        config.validate(config.replication_factor)?;
        let mut slots = self.replicas.write();
        let mut grown: Vec<Option<Arc<Replica>>> = slots.to_vec();
        grown.resize(partitions as usize, None);
        *slots = Arc::new(grown);
        *self.config.write() = config.clone();
        self.partitions.store(partitions, Ordering::Release);
        Ok(config)
    }

    /// The partition count, without taking the config's lock.
    pub(crate) fn partition_count(&self) -> u32 {
        self.partitions.load(Ordering::Acquire)
    }

    /// Marks the topic and its replicas deleted and returns the replicas.
    pub(crate) fn mark_deleted(&self) -> Vec<Arc<Replica>> {
        self.deleted.store(true, Ordering::Release);
        let replicas = self.replicas();
        for replica in &replicas {
            replica.mark_deleted();
        }
        replicas
    }
}

fn open_replica(
    data_dir: &Path,
    topic: &str,
    partition: u32,
    config: &TopicConfig,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<Replica>, BrokerError> {
    let dir = data_dir.join(
        PartitionName {
            topic: topic.to_owned(),
            partition,
        }
        .dir_name(),
    );
    Ok(Arc::new(Replica::open(
        &dir,
        config.log_config(),
        config.message_timestamp_type,
        Arc::clone(clock),
    )?))
}

/// A handle on a topic of a broker.
#[derive(Debug, Clone)]
pub struct Topic {
    broker: Broker,
    state: Arc<TopicState>,
}

impl Topic {
    pub(crate) fn new(broker: Broker, state: Arc<TopicState>) -> Topic {
        Topic { broker, state }
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    pub fn partition_count(&self) -> u32 {
        self.state.partition_count()
    }

    pub fn config(&self) -> TopicConfig {
        self.state.config.read().clone()
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// A handle on one partition.
    ///
    /// # Errors
    /// `UnknownPartition`; `UnknownTopic` after the topic was deleted.
    pub fn partition(&self, partition: u32) -> Result<Partition, BrokerError> {
        Ok(Partition {
            replica: self.state.replica(partition)?,
        })
    }

    pub fn describe(&self) -> TopicDescription {
        TopicDescription {
            name: self.name().to_owned(),
            config: self.config(),
            partitions: self
                .state
                .replicas()
                .into_iter()
                .map(|replica| Partition { replica }.describe())
                .collect(),
        }
    }
}

/// A handle on one partition of a topic on this broker.
#[derive(Debug, Clone)]
pub struct Partition {
    replica: Arc<Replica>,
}

impl Partition {
    pub fn topic(&self) -> &str {
        self.replica.topic()
    }

    pub fn id(&self) -> u32 {
        self.replica.partition()
    }

    pub fn log_start_offset(&self) -> u64 {
        self.replica.log().log_start_offset()
    }

    pub fn log_end_offset(&self) -> u64 {
        self.replica.log().log_end_offset()
    }

    pub fn high_watermark(&self) -> u64 {
        self.replica.high_watermark()
    }

    pub fn size_bytes(&self) -> u64 {
        self.replica.log().size_bytes()
    }

    /// The replica underneath, for code building its own broker on logbus.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    pub fn describe(&self) -> PartitionDescription {
        PartitionDescription {
            partition: self.id(),
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
            high_watermark: self.high_watermark(),
            size_bytes: self.size_bytes(),
            leader_epoch: self.replica.leader_epoch(),
        }
    }
}

/// What `describe_topic` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub config: TopicConfig,
    pub partitions: Vec<PartitionDescription>,
}

/// One partition's offsets and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionDescription {
    pub partition: u32,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    pub high_watermark: u64,
    pub size_bytes: u64,
    pub leader_epoch: i32,
}

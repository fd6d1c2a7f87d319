//! Topic and partition handles, and their descriptions.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{Broker, BrokerError, TopicConfig};
use crate::clock::Clock;
use crate::log::PartitionName;
use crate::partition::Replica;

/// A topic's shared state. `config` and `replicas` change only under the broker's admin lock.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub name: Arc<str>,
    pub config: RwLock<TopicConfig>,
    replicas: RwLock<Arc<Vec<Arc<Replica>>>>,
    pub deleted: AtomicBool,
}

impl TopicState {
    /// Opens (creating as needed) the partitions of a topic under `data_dir`.
    pub(crate) fn open(
        data_dir: &Path,
        name: &str,
        config: TopicConfig,
        clock: &Arc<dyn Clock>,
    ) -> Result<TopicState, BrokerError> {
        let replicas = (0..config.partitions)
            .map(|partition| open_replica(data_dir, name, partition, &config, clock))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TopicState {
            name: Arc::from(name),
            config: RwLock::new(config),
            replicas: RwLock::new(Arc::new(replicas)),
            deleted: AtomicBool::new(false),
        })
    }

    pub(crate) fn replicas(&self) -> Arc<Vec<Arc<Replica>>> {
        Arc::clone(&self.replicas.read())
    }

    /// Each partition's leader epoch.
    pub(crate) fn leader_epochs(&self) -> Vec<i32> {
        self.replicas()
            .iter()
            .map(|replica| replica.leader_epoch())
            .collect()
    }

    pub(crate) fn partition_count(&self) -> u32 {
        self.replicas.read().len() as u32
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
            .ok_or_else(|| BrokerError::UnknownPartition {
                topic: self.name.to_string(),
                partition,
            })
    }

    /// Adds partitions up to `partitions`; returns the new configuration to store.
    pub(crate) fn grow(
        &self,
        data_dir: &Path,
        partitions: u32,
        clock: &Arc<dyn Clock>,
    ) -> Result<TopicConfig, BrokerError> {
        let mut config = self.config.read().clone();
        if partitions < config.partitions {
            return Err(BrokerError::PartitionsCannotShrink {
                current: config.partitions,
                requested: partitions,
            });
        }
        config.partitions = partitions;
        config.validate(config.replication_factor)?;
        let mut replicas: Vec<Arc<Replica>> = self.replicas().to_vec();
        for partition in replicas.len() as u32..partitions {
            replicas.push(open_replica(
                data_dir, &self.name, partition, &config, clock,
            )?);
        }
        *self.replicas.write() = Arc::new(replicas);
        *self.config.write() = config.clone();
        Ok(config)
    }

    /// Marks the topic and its replicas deleted and returns the replicas.
    pub(crate) fn mark_deleted(&self) -> Vec<Arc<Replica>> {
        self.deleted.store(true, Ordering::Release);
        let replicas = self.replicas().to_vec();
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
                .iter()
                .map(|replica| {
                    Partition {
                        replica: Arc::clone(replica),
                    }
                    .describe()
                })
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

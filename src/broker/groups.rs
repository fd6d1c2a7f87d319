//! The broker's group coordinator: made on first use, it serves the groups whose
//! `__consumer_offsets` partitions this broker leads, as a Kafka broker does.
//!
//! - The offsets topic is created on first use anywhere in the cluster: compacted, 50
//!   partitions, replicated over min(3, live brokers) (Kafka's
//!   `offsets.topic.replication.factor` is 3).
//! - Leadership moves coordination: a [`LeadershipListener`] on the replica manager loads a
//!   partition when this broker becomes its leader (its groups answer
//!   `CoordinatorLoadInProgress` meanwhile) and forgets it when the broker stops leading it
//!   (its groups then answer `NotCoordinator`).
//! - Commits and group metadata are appended through the leader with `acks=all` and
//!   acknowledged once the in-sync replicas have them, so a new leader holds every commit a
//!   client was told of.
//! - [`Broker::find_group_coordinator`] is Kafka's FindCoordinator: the coordinator of the
//!   leader of the group's offsets partition.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::broker::BrokerInner;
use super::{Broker, BrokerError, CleanupPolicy, TopicConfig};
use crate::group::records::offsets_partition_for;
use crate::group::{
    BlockingCoordinator, CoordinatorConfig, GroupCoordinator, GroupError, OffsetsLog,
    OffsetsLogError, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS,
};
use crate::log::LogRead;
use crate::partition::{PartitionError, Replica};
use crate::record::RecordBatch;
use crate::replication::{AckLevel, LeadershipListener, ReplicaManager, ReplicationError};

/// Kafka's `offsets.topic.segment.bytes`.
const OFFSETS_SEGMENT_BYTES: u32 = 100 << 20;
/// Kafka's `offsets.topic.replication.factor`; a smaller cluster replicates over all it has.
const OFFSETS_REPLICATION_FACTOR: usize = 3;

/// `__consumer_offsets` as this broker's coordinator sees it: appends go through the leader
/// path with `acks=all` (returning once the ISR has the batch); loads read this broker's
/// replica to its log end, since everything a new leader holds is what it replicates next.
///
/// Holds its broker weakly: the broker owns the coordinator that owns this log.
#[derive(Debug)]
pub struct BrokerOffsetsLog {
    broker: Weak<BrokerInner>,
    partitions: u32,
}

impl BrokerOffsetsLog {
    fn broker(&self, partition: u32) -> Result<Broker, OffsetsLogError> {
        self.broker
            .upgrade()
            .map(|inner| Broker { inner })
            .ok_or(OffsetsLogError::NotLeader { partition })
    }

    fn replica(&self, partition: u32) -> Result<Arc<Replica>, OffsetsLogError> {
        self.broker(partition)?
            .replica(OFFSETS_TOPIC, partition)
            .map_err(|_| OffsetsLogError::UnknownPartition { partition })
    }
}

/// What the leader path's errors mean to the coordinator.
fn offsets_log_error(error: BrokerError, partition: u32) -> OffsetsLogError {
    match error {
        BrokerError::Replication(ReplicationError::NotLeader { .. }) => {
            OffsetsLogError::NotLeader { partition }
        }
        BrokerError::Replication(other) => OffsetsLogError::Replication(other),
        BrokerError::Partition(error) => OffsetsLogError::Partition(error),
        // `append` and `wait_append` report nothing else than an unknown topic or partition.
        _ => OffsetsLogError::UnknownPartition { partition },
    }
}

impl OffsetsLog for BrokerOffsetsLog {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn append(&self, partition: u32, batch: &RecordBatch) -> Result<u64, OffsetsLogError> {
        let broker = self.broker(partition)?;
        let pending = broker
            .append(OFFSETS_TOPIC, partition, batch, AckLevel::All)
            .map_err(|error| offsets_log_error(error, partition))?;
        broker
            .wait_append(OFFSETS_TOPIC, partition, &pending)
            .map_err(|error| offsets_log_error(error, partition))?;
        Ok(pending.result.last_offset)
    }

    fn read(
        &self,
        partition: u32,
        from: u64,
        max_bytes: usize,
    ) -> Result<LogRead, OffsetsLogError> {
        let replica = self.replica(partition)?;
        Ok(replica
            .log()
            .read(from, max_bytes)
            .map_err(PartitionError::from)?)
    }

    fn start_offset(&self, partition: u32) -> Result<u64, OffsetsLogError> {
        Ok(self.replica(partition)?.log().log_start_offset())
    }
}

/// Moves the coordinator's partitions with this broker's leadership of them.
struct Leadership {
    coordinator: Arc<BlockingCoordinator>,
    /// Weak: the replica manager holds this listener.
    manager: Weak<ReplicaManager>,
    broker_id: i32,
    /// The leader epoch each partition was loaded for. Its lock orders loads against
    /// resignations: a load checks under it that the leadership still holds, and a later
    /// resignation waits for it.
    loaded: Mutex<BTreeMap<u32, i32>>,
}

impl Leadership {
    fn leads(&self, partition: u32, leader_epoch: i32) -> bool {
        self.manager
            .upgrade()
            .and_then(|manager| manager.partition(OFFSETS_TOPIC, partition))
            .is_some_and(|local| local.leader() == (self.broker_id, leader_epoch))
    }

    /// Loads `partition` for `leader_epoch`, unless already loaded for it or no longer led.
    fn take_over(&self, partition: u32, leader_epoch: i32) -> Result<(), GroupError> {
        let mut loaded = self.loaded.lock();
        if loaded.get(&partition) == Some(&leader_epoch) || !self.leads(partition, leader_epoch) {
            return Ok(());
        }
        loaded.insert(partition, leader_epoch);
        self.coordinator.take_over(partition)
    }

    /// Loads every partition this broker leads now (roles taken before the listener was set).
    fn take_over_led(&self, partitions: u32) -> Result<(), GroupError> {
        let Some(manager) = self.manager.upgrade() else {
            return Ok(());
        };
        let mut first_error = Ok(());
        for partition in 0..partitions {
            let Some(local) = manager.partition(OFFSETS_TOPIC, partition) else {
                continue;
            };
            let (leader, epoch) = local.leader();
            if leader != self.broker_id {
                continue;
            }
            if let (Err(error), Ok(())) = (self.take_over(partition, epoch), &first_error) {
                first_error = Err(error);
            }
        }
        first_error
    }
}

impl LeadershipListener for Leadership {
    fn became_leader(&self, partition: u32, leader_epoch: i32) {
        // A failed load leaves the partition's groups answering `CoordinatorNotAvailable`;
        // the next leader epoch loads again.
        let _ = self.take_over(partition, leader_epoch);
    }

    fn resigned(&self, partition: u32) {
        let mut loaded = self.loaded.lock();
        loaded.remove(&partition);
        self.coordinator.resign(partition);
    }
}

/// The configuration of `__consumer_offsets`: Kafka's (`offsets.topic.num.partitions` 50,
/// `cleanup.policy` compact, `offsets.topic.segment.bytes` 100 MiB), with no time or size
/// retention: only compaction may remove offsets.
fn offsets_topic_config(replication_factor: u16) -> TopicConfig {
    TopicConfig {
        partitions: OFFSETS_TOPIC_PARTITIONS,
        replication_factor,
        min_insync_replicas: 1,
        retention_ms: None,
        retention_bytes: None,
        segment_bytes: OFFSETS_SEGMENT_BYTES,
        cleanup_policy: CleanupPolicy::Compact,
        ..TopicConfig::default()
    }
}

impl Broker {
    /// The group coordinator of this broker, created on first use (with `__consumer_offsets`
    /// if the cluster has none yet). It serves the groups of the offsets partitions this
    /// broker leads, loading each as it takes it over; the others answer `NotCoordinator`
    /// (see [`Broker::find_group_coordinator`]).
    ///
    /// # Errors
    /// `Io`, `Coordination` and log errors creating the offsets topic; `Group(Corrupt)` when
    /// a stored record does not decode (the groups of that partition then answer
    /// `CoordinatorNotAvailable`).
    pub fn group_coordinator(&self) -> Result<Arc<BlockingCoordinator>, BrokerError> {
        let mut slot = self.inner.groups.lock();
        if let Some(coordinator) = slot.as_ref() {
            return Ok(Arc::clone(coordinator));
        }
        let partitions = self.ensure_offsets_topic()?;
        let log = Arc::new(BrokerOffsetsLog {
            broker: Arc::downgrade(&self.inner),
            partitions,
        });
        let config = CoordinatorConfig {
            offsets_topic_partitions: partitions,
            ..CoordinatorConfig::default()
        };
        let clock = Arc::clone(&self.inner.store.clock);
        let core = GroupCoordinator::new(config, clock.now_ms());
        let coordinator = Arc::new(BlockingCoordinator::new(core, log, clock));
        let leadership = Arc::new(Leadership {
            coordinator: Arc::clone(&coordinator),
            manager: Arc::downgrade(&self.inner.replication),
            broker_id: self.inner.id,
            loaded: Mutex::new(BTreeMap::new()),
        });
        // Listen first, then load what is led already: a change in between is either seen
        // by the listener or already in the roles read.
        self.inner
            .replication
            .set_leadership_listener(OFFSETS_TOPIC, Arc::clone(&leadership) as _);
        // Loading under the slot's lock: callers racing to first use wait for a loaded
        // coordinator rather than get one answering `CoordinatorLoadInProgress`.
        let loaded = leadership.take_over_led(partitions);
        *slot = Some(Arc::clone(&coordinator));
        loaded.map(|()| coordinator).map_err(BrokerError::from)
    }

    /// Kafka's FindCoordinator: the group coordinator of the broker that leads `group`'s
    /// partition of `__consumer_offsets` (creating the topic if the cluster has none yet).
    ///
    /// # Errors
    /// `Group(CoordinatorNotAvailable)` while the partition has no leader or its leader is
    /// not open in this process; as [`Broker::group_coordinator`].
    pub fn find_group_coordinator(
        &self,
        group: &str,
    ) -> Result<Arc<BlockingCoordinator>, BrokerError> {
        let leader = self.group_coordinator_id(group)?;
        self.peer(leader)
            .ok_or_else(|| {
                BrokerError::Group(GroupError::CoordinatorNotAvailable {
                    group: group.to_owned(),
                })
            })?
            .group_coordinator()
    }

    /// The id of the broker coordinating `group`: the leader of its `__consumer_offsets`
    /// partition (the topic is created if the cluster has none yet).
    ///
    /// # Errors
    /// `Group(CoordinatorNotAvailable)` while the partition has no leader; errors creating
    /// the topic.
    pub fn group_coordinator_id(&self, group: &str) -> Result<i32, BrokerError> {
        let partitions = self.ensure_offsets_topic()?;
        let partition = offsets_partition_for(group, partitions);
        self.leader_of(OFFSETS_TOPIC, partition).ok_or_else(|| {
            BrokerError::Group(GroupError::CoordinatorNotAvailable {
                group: group.to_owned(),
            })
        })
    }

    /// Creates `__consumer_offsets` if the cluster does not have it; returns its partition
    /// count (from the cluster's metadata, so a broker holding none of it knows it too).
    fn ensure_offsets_topic(&self) -> Result<u32, BrokerError> {
        let session = self.inner.replication.session();
        if let Some(assignment) =
            crate::replication::read_assignment(session.as_ref(), OFFSETS_TOPIC)?
        {
            return Ok(assignment.partitions.len() as u32);
        }
        let live = crate::replication::live_broker_ids(session.as_ref())?.len();
        let replication_factor = live.clamp(1, OFFSETS_REPLICATION_FACTOR) as u16;
        let config = offsets_topic_config(replication_factor);
        // `validate` refuses `Compact` until the log cleaner lands (the compaction work); the
        // internal topic is created compacted now so its stored configuration is already
        // right, and is checked with the policy aside.
        TopicConfig {
            cleanup_policy: CleanupPolicy::Delete,
            ..config.clone()
        }
        .validate(replication_factor)?;
        match self.create_validated_topic(OFFSETS_TOPIC, config) {
            Ok(topic) => Ok(topic.partition_count()),
            // Another broker created it meanwhile.
            Err(BrokerError::TopicExists { .. }) => Ok(crate::replication::read_assignment(
                session.as_ref(),
                OFFSETS_TOPIC,
            )?
            .map_or(OFFSETS_TOPIC_PARTITIONS, |a| a.partitions.len() as u32)),
            Err(other) => Err(other),
        }
    }
}

//! The consumer: reads assigned partitions from positions it keeps, below each high watermark,
//! and blocks in `poll` until an append wakes it or the timeout passes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::group_member::{AssignmentStrategy, GroupMember};
use crate::broker::{Broker, BrokerError};
use crate::group::GroupError;
pub use crate::group::TopicPartition;
use crate::log::LogError;
use crate::partition::{Notifier, PartitionError, Replica};
use crate::record::{DecodeError, Headers, TimestampType};

/// Where to start when a partition has no valid position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    Earliest,
    /// Kafka's default.
    #[default]
    Latest,
    /// Fail with `NoOffset` or `OffsetOutOfRange` instead.
    None,
}

/// Consumer configuration, with Kafka's names.
///
/// ## Defaults (Kafka's)
/// - `max_poll_records`: 500
/// - `fetch_max_bytes`: 50 MiB (per poll); `max_partition_fetch_bytes`: 1 MiB (per partition read)
/// - `auto_offset_reset`: `Latest`
/// - `group_id`: none (no group: `assign` only, no commits); `group_instance_id`: none (a
///   dynamic member); `client_id`: `"consumer"`
/// - `session_timeout_ms`: 45000; `heartbeat_interval_ms`: 3000; `max_poll_interval_ms`: 300000
///   (also the rebalance timeout sent to the coordinator)
/// - `enable_auto_commit`: true; `auto_commit_interval_ms`: 5000
/// - `partition_assignment_strategy`: `[range, cooperative-sticky]` (Kafka 3.x: range is used
///   until every member also lists cooperative-sticky first)
/// - `retry_backoff_ms`: 100 (the wait before finding the group coordinator again after it
///   moved); `default_api_timeout_ms`: 60000 (how long a commit, join or offset fetch keeps
///   finding it)
///
/// ## Not in Kafka
/// - `poll_spin_us`: 10. How long `poll` spins, waiting for an append, before it parks its
///   thread. Records of a burst arrive microseconds apart, and each park costs the appending
///   thread a system call and this one a 5-10 us wake-up. Set it above the gap between records
///   to busy-poll: the lowest latency (p50 3 us instead of 9.6-9.8 at 10 k records/s on the
///   project's VM, `cargo bench --bench bus`), at the cost of a core kept busy while waiting.
///   0 parks at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub max_poll_records: usize,
    pub fetch_max_bytes: usize,
    pub max_partition_fetch_bytes: usize,
    pub auto_offset_reset: OffsetReset,
    pub group_id: Option<String>,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    pub max_poll_interval_ms: u32,
    pub enable_auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub partition_assignment_strategy: Vec<AssignmentStrategy>,
    pub retry_backoff_ms: u64,
    pub default_api_timeout_ms: u64,
    pub poll_spin_us: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_poll_records: 500,
            fetch_max_bytes: 50 << 20,
            max_partition_fetch_bytes: 1 << 20,
            auto_offset_reset: OffsetReset::Latest,
            group_id: None,
            group_instance_id: None,
            client_id: "consumer".to_owned(),
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            partition_assignment_strategy: vec![
                AssignmentStrategy::range(),
                AssignmentStrategy::cooperative_sticky(),
            ],
            retry_backoff_ms: 100,
            default_api_timeout_ms: 60_000,
            poll_spin_us: 10,
        }
    }
}

/// A record as a consumer sees it; key, value and headers share the log's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Headers,
}

/// Why a consumer call failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("poll with no partitions assigned")]
    NoAssignment,
    #[error("partition {0} is not assigned to this consumer")]
    NotAssigned(TopicPartition),
    #[error("unknown topic {topic}")]
    UnknownTopic { topic: String },
    #[error("unknown partition {0}")]
    UnknownPartition(TopicPartition),
    /// No position and `auto_offset_reset` is `None`.
    #[error("no offset for {0} and auto_offset_reset is none")]
    NoOffset(TopicPartition),
    /// The position left the log (retention removed it) and `auto_offset_reset` is `None`.
    #[error("offset {offset} is out of range for {partition}")]
    OffsetOutOfRange {
        partition: TopicPartition,
        offset: u64,
    },
    #[error("partition {0} was deleted")]
    Deleted(TopicPartition),
    /// A batch on disk does not decode (or is compressed with a codec not built yet).
    #[error("undecodable batch in {partition} at offset {offset}: {source}")]
    Decode {
        partition: TopicPartition,
        offset: u64,
        #[source]
        source: DecodeError,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Partition(PartitionError),
    /// The group coordinator refused (a stale generation, a fenced member, ...).
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A group operation on a consumer configured without `group_id`.
    #[error("the consumer has no group_id")]
    NoGroupId,
    /// The broker could not serve groups (the offsets topic failed to open).
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

#[derive(Debug)]
pub(super) struct Assigned {
    pub(super) partition: TopicPartition,
    topic: Arc<str>,
    replica: Arc<Replica>,
    pub(super) position: Option<u64>,
    paused: bool,
    /// Records already read past what earlier polls returned.
    buffered: VecDeque<ConsumerRecord>,
}

/// Reads assigned partitions. Not `Sync`: one thread polls, as with Kafka's consumer.
#[derive(Debug)]
pub struct Consumer {
    pub(super) broker: Broker,
    pub(super) config: ConsumerConfig,
    pub(super) assigned: Vec<Assigned>,
    pub(super) notifier: Arc<Notifier>,
    /// Where the next poll starts its round over the partitions, for fairness.
    next_partition: usize,
    /// When the partitions' leaders were last looked up.
    routes_checked: Option<Instant>,
    /// Group membership and commits, made on first use (see `group_member.rs`).
    pub(super) group: Option<Box<GroupMember>>,
}

/// How often a polling consumer looks up its partitions' leaders again.
pub(super) const ROUTE_CHECK_MS: u64 = 100;

impl Consumer {
    pub fn new(broker: &Broker) -> Consumer {
        Self::with_config(broker, ConsumerConfig::default())
    }

    pub fn with_config(broker: &Broker, config: ConsumerConfig) -> Consumer {
        let notifier = Notifier::with_spin(Duration::from_micros(config.poll_spin_us));
        Consumer {
            broker: broker.clone(),
            config,
            assigned: Vec::new(),
            notifier,
            next_partition: 0,
            routes_checked: None,
            group: None,
        }
    }

    /// Replaces the assignment. Positions of partitions kept are kept; new ones start unset.
    ///
    /// # Errors
    /// `UnknownTopic`, `UnknownPartition`; the assignment is unchanged on error.
    pub fn assign(
        &mut self,
        partitions: impl IntoIterator<Item = TopicPartition>,
    ) -> Result<(), ConsumeError> {
        let mut next = Vec::new();
        for partition in partitions {
            if next
                .iter()
                .any(|assigned: &Assigned| assigned.partition == partition)
            {
                continue;
            }
            let replica = self
                .broker
                .replica_for_reading(&partition.topic, partition.partition)
                .map_err(|error| match error {
                    BrokerError::UnknownPartition { .. } => {
                        ConsumeError::UnknownPartition(partition.clone())
                    }
                    _ => ConsumeError::UnknownTopic {
                        topic: partition.topic.clone(),
                    },
                })?;
            let kept = self
                .assigned
                .iter()
                .position(|assigned| assigned.partition == partition)
                .map(|at| self.assigned.swap_remove(at));
            next.push(kept.unwrap_or(Assigned {
                topic: Arc::from(replica.topic()),
                partition,
                replica,
                position: None,
                paused: false,
                buffered: VecDeque::new(),
            }));
        }
        for dropped in &self.assigned {
            dropped.replica.unregister_waiter(&self.notifier);
        }
        for assigned in &next {
            assigned.replica.register_waiter(&self.notifier);
        }
        self.assigned = next;
        self.next_partition = 0;
        Ok(())
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned
            .iter()
            .map(|assigned| assigned.partition.clone())
            .collect()
    }

    /// Returns available records from unpaused partitions, waiting up to `timeout` for an append
    /// when there are none.
    ///
    /// With a `group_id`, poll also runs the group side on this thread: it (re)joins when the
    /// group rebalances or the subscription changes, calls the rebalance listener, starts new
    /// partitions from their committed offsets, heartbeats and auto-commits.
    ///
    /// # Errors
    /// `NoAssignment` (neither assigned nor subscribed); `NoOffset`/`OffsetOutOfRange` with
    /// `auto_offset_reset` `None`; `Deleted`; `Decode`; `Group` when the coordinator refuses
    /// (a fenced static member) or rejoining failed repeatedly.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ConsumeError> {
        if self.config.group_id.is_some() {
            return self.poll_in_group(timeout);
        }
        if self.assigned.is_empty() {
            return Err(ConsumeError::NoAssignment);
        }
        let deadline = Instant::now() + timeout;
        loop {
            self.notifier.reset();
            self.follow_leaders();
            let records = self.fetch()?;
            // Waits are cut into slices so that a leader that moved (whose appends wake no one
            // here) is looked up again.
            let slice = (Instant::now() + Duration::from_millis(ROUTE_CHECK_MS)).min(deadline);
            if !records.is_empty() || !self.notifier.wait_until(slice) && Instant::now() >= deadline
            {
                return Ok(records);
            }
        }
    }

    /// Moves reads of partitions whose leader changed (or whose replica closed) to the replica
    /// the cluster now serves them from; at most every `ROUTE_CHECK_MS`.
    pub(super) fn follow_leaders(&mut self) {
        if self
            .routes_checked
            .is_some_and(|at| at.elapsed() < Duration::from_millis(ROUTE_CHECK_MS))
        {
            return;
        }
        self.routes_checked = Some(Instant::now());
        for assigned in &mut self.assigned {
            let tp = &assigned.partition;
            let Ok(replica) = self.broker.replica_for_reading(&tp.topic, tp.partition) else {
                continue;
            };
            if !Arc::ptr_eq(&replica, &assigned.replica) {
                assigned.replica.unregister_waiter(&self.notifier);
                replica.register_waiter(&self.notifier);
                assigned.replica = replica;
            }
        }
    }

    pub(super) fn fetch(&mut self) -> Result<Vec<ConsumerRecord>, ConsumeError> {
        let mut records = Vec::new();
        let mut budget_bytes = self.config.fetch_max_bytes;
        let count = self.assigned.len();
        for step in 0..count {
            let at = (self.next_partition + step) % count;
            if self.assigned[at].paused {
                continue;
            }
            let wanted = self.config.max_poll_records - records.len();
            let taken = self.take_from(at, wanted, &mut budget_bytes)?;
            records.extend(taken);
            if records.len() == self.config.max_poll_records || budget_bytes == 0 {
                self.next_partition = (at + 1) % count;
                break;
            }
        }
        Ok(records)
    }

    /// Up to `wanted` records from one partition: what is buffered first, then one read.
    fn take_from(
        &mut self,
        at: usize,
        wanted: usize,
        budget_bytes: &mut usize,
    ) -> Result<Vec<ConsumerRecord>, ConsumeError> {
        // A read that only reset the position (auto_offset_reset after the position left the
        // log) is followed by one read from the new position: otherwise the poll would wait for
        // an append while records sit at the reset position.
        if self.assigned[at].buffered.is_empty()
            && self.read_into_buffer(at, budget_bytes)? == Fetched::Reset
        {
            self.read_into_buffer(at, budget_bytes)?;
        }
        let assigned = &mut self.assigned[at];
        let take = wanted.min(assigned.buffered.len());
        let taken: Vec<ConsumerRecord> = assigned.buffered.drain(..take).collect();
        if let Some(last) = taken.last() {
            assigned.position = Some(last.offset + 1);
        }
        Ok(taken)
    }

    fn read_into_buffer(
        &mut self,
        at: usize,
        budget_bytes: &mut usize,
    ) -> Result<Fetched, ConsumeError> {
        let position = self.position_or_reset(at)?;
        let max_bytes = self
            .config
            .max_partition_fetch_bytes
            .min(*budget_bytes)
            .max(1);
        let assigned = &self.assigned[at];
        let read = match assigned.replica.read_committed(position, max_bytes) {
            Ok(read) => read,
            Err(PartitionError::Log(LogError::OffsetOutOfRange { .. })) => {
                let reset = self.reset_position(at, OutOfRange::Yes)?;
                self.assigned[at].position = Some(reset);
                return Ok(Fetched::Reset);
            }
            Err(PartitionError::Deleted { .. }) => {
                return Err(ConsumeError::Deleted(assigned.partition.clone()))
            }
            Err(PartitionError::Log(LogError::Closed)) => {
                // The replica's broker stopped: read from wherever the partition lives now.
                self.routes_checked = None;
                return Ok(Fetched::Read);
            }
            Err(PartitionError::Log(error)) => return Err(error.into()),
            Err(other) => return Err(ConsumeError::Partition(other)),
        };
        *budget_bytes = budget_bytes.saturating_sub(read.bytes.len());
        let partition = assigned.partition.clone();
        let decode_error = |source| ConsumeError::Decode {
            partition: partition.clone(),
            offset: position,
            source,
        };
        let assigned = &mut self.assigned[at];
        for batch in read.batches() {
            let batch = batch.map_err(decode_error)?;
            let header = *batch.header();
            if header.attributes.is_control {
                continue;
            }
            for record in batch.records().map_err(decode_error)? {
                let record = record.map_err(decode_error)?;
                if (record.offset as u64) < position {
                    continue;
                }
                assigned.buffered.push_back(ConsumerRecord {
                    topic: Arc::clone(&assigned.topic),
                    partition: assigned.partition.partition,
                    offset: record.offset as u64,
                    timestamp: record.timestamp,
                    timestamp_type: header.attributes.timestamp_type,
                    key: record.key,
                    value: record.value,
                    headers: record.headers,
                });
            }
            // A batch of only control records still moves the position past it.
            if assigned.buffered.is_empty() {
                assigned.position = Some(header.next_offset() as u64);
            }
        }
        Ok(Fetched::Read)
    }

    fn position_or_reset(&mut self, at: usize) -> Result<u64, ConsumeError> {
        if let Some(position) = self.assigned[at].position {
            return Ok(position);
        }
        let position = self.reset_position(at, OutOfRange::No)?;
        self.assigned[at].position = Some(position);
        Ok(position)
    }

    fn reset_position(&self, at: usize, out_of_range: OutOfRange) -> Result<u64, ConsumeError> {
        let assigned = &self.assigned[at];
        let replica = &assigned.replica;
        match self.config.auto_offset_reset {
            OffsetReset::Earliest => Ok(replica.log().log_start_offset()),
            OffsetReset::Latest => Ok(replica.high_watermark()),
            OffsetReset::None => match (out_of_range, assigned.position) {
                (OutOfRange::Yes, Some(offset)) => Err(ConsumeError::OffsetOutOfRange {
                    partition: assigned.partition.clone(),
                    offset,
                }),
                _ => Err(ConsumeError::NoOffset(assigned.partition.clone())),
            },
        }
    }

    fn index_of(&self, partition: &TopicPartition) -> Result<usize, ConsumeError> {
        self.assigned
            .iter()
            .position(|assigned| &assigned.partition == partition)
            .ok_or_else(|| ConsumeError::NotAssigned(partition.clone()))
    }

    /// Sets the next offset to read.
    ///
    /// # Errors
    /// `NotAssigned`.
    pub fn seek(&mut self, partition: &TopicPartition, offset: u64) -> Result<(), ConsumeError> {
        let at = self.index_of(partition)?;
        let assigned = &mut self.assigned[at];
        assigned.position = Some(offset);
        assigned.buffered.clear();
        Ok(())
    }

    /// Moves to the log start of each partition.
    ///
    /// # Errors
    /// `NotAssigned`.
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumeError> {
        for partition in partitions {
            let at = self.index_of(partition)?;
            let offset = self.assigned[at].replica.log().log_start_offset();
            self.seek(partition, offset)?;
        }
        Ok(())
    }

    /// Moves to the end (the high watermark) of each partition.
    ///
    /// # Errors
    /// `NotAssigned`.
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumeError> {
        for partition in partitions {
            let at = self.index_of(partition)?;
            let offset = self.assigned[at].replica.high_watermark();
            self.seek(partition, offset)?;
        }
        Ok(())
    }

    /// The offset the next record read from `partition` will have (resetting it if unset).
    ///
    /// # Errors
    /// `NotAssigned`, `NoOffset`.
    pub fn position(&mut self, partition: &TopicPartition) -> Result<u64, ConsumeError> {
        let at = self.index_of(partition)?;
        self.position_or_reset(at)
    }

    /// Stops returning records from `partitions` until resumed.
    ///
    /// # Errors
    /// `NotAssigned`.
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumeError> {
        self.set_paused(partitions, true)
    }

    /// Resumes paused partitions.
    ///
    /// # Errors
    /// `NotAssigned`.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumeError> {
        self.set_paused(partitions, false)
    }

    fn set_paused(
        &mut self,
        partitions: &[TopicPartition],
        paused: bool,
    ) -> Result<(), ConsumeError> {
        let indexes = partitions
            .iter()
            .map(|partition| self.index_of(partition))
            .collect::<Result<Vec<_>, _>>()?;
        for at in indexes {
            self.assigned[at].paused = paused;
        }
        Ok(())
    }

    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assigned
            .iter()
            .filter(|assigned| assigned.paused)
            .map(|assigned| assigned.partition.clone())
            .collect()
    }

    /// For each partition, the first offset with a timestamp at or after the given one, and that
    /// timestamp; `None` when every record is older.
    ///
    /// # Errors
    /// `UnknownTopic`, `UnknownPartition`, `Log`.
    pub fn offsets_for_times(
        &self,
        query: &HashMap<TopicPartition, i64>,
    ) -> Result<HashMap<TopicPartition, Option<(u64, i64)>>, ConsumeError> {
        let mut answers = HashMap::new();
        for (partition, &timestamp) in query {
            let replica = self.replica_of(partition)?;
            let found = replica
                .log()
                .offset_for_timestamp(timestamp)?
                .filter(|&(offset, _)| offset < replica.high_watermark());
            answers.insert(partition.clone(), found);
        }
        Ok(answers)
    }

    /// Log start offsets.
    ///
    /// # Errors
    /// `UnknownTopic`, `UnknownPartition`.
    pub fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, u64>, ConsumeError> {
        partitions
            .iter()
            .map(|partition| {
                Ok((
                    partition.clone(),
                    self.replica_of(partition)?.log().log_start_offset(),
                ))
            })
            .collect()
    }

    /// End offsets (high watermarks).
    ///
    /// # Errors
    /// `UnknownTopic`, `UnknownPartition`.
    pub fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, u64>, ConsumeError> {
        partitions
            .iter()
            .map(|partition| {
                Ok((
                    partition.clone(),
                    self.replica_of(partition)?.high_watermark(),
                ))
            })
            .collect()
    }

    fn replica_of(&self, partition: &TopicPartition) -> Result<Arc<Replica>, ConsumeError> {
        self.broker
            .replica_for_reading(&partition.topic, partition.partition)
            .map_err(|error| match error {
                BrokerError::UnknownPartition { .. } => {
                    ConsumeError::UnknownPartition(partition.clone())
                }
                _ => ConsumeError::UnknownTopic {
                    topic: partition.topic.clone(),
                },
            })
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.close_group();
        for assigned in &self.assigned {
            assigned.replica.unregister_waiter(&self.notifier);
        }
    }
}

/// What one read of a partition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetched {
    /// Read from the position (perhaps nothing, at the end).
    Read,
    /// Only moved an out-of-range position by `auto_offset_reset`.
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutOfRange {
    Yes,
    No,
}

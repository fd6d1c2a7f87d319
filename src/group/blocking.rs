//! The coordinator for threads: one lock around the state machine, time from the injected
//! clock, JoinGroup and SyncGroup calls that wait (on a condition variable) until the rebalance
//! completes, and records stored through the [`OffsetsLog`] outside the lock, in the order the
//! state machine produced them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::coordinator::{GroupCoordinator, OffsetsRecord};
use super::load::load_partition;
use super::messages::{
    CommitRequest, GroupDescription, GroupListing, JoinRequest, JoinResponse, JoinStatus,
    MemberRef, SyncRequest,
};
use super::{GroupError, OffsetAndMetadata, OffsetsLog, OffsetsLogError, TopicPartition};
use crate::clock::Clock;
use crate::record::{BatchBuilder, BatchSpec, RecordBatch};

/// The state machine and a counter of its changes, so a waiter cannot miss one.
#[derive(Debug)]
struct Shared {
    core: GroupCoordinator,
    version: u64,
}

/// Tickets per offsets partition: appends happen in the order the tickets were issued (under
/// the state lock), so the log holds records in the order the state machine made them.
#[derive(Debug, Default)]
struct Turns {
    /// Per partition: (next ticket to issue, next ticket to serve).
    tickets: Mutex<BTreeMap<u32, (u64, u64)>>,
    served: Condvar,
}

impl Turns {
    fn issue(&self, partition: u32) -> u64 {
        let mut tickets = self.tickets.lock();
        let entry = tickets.entry(partition).or_default();
        entry.0 += 1;
        entry.0 - 1
    }

    fn wait(&self, partition: u32, ticket: u64) {
        let mut tickets = self.tickets.lock();
        while tickets.get(&partition).map_or(0, |entry| entry.1) != ticket {
            self.served.wait(&mut tickets);
        }
    }

    fn done(&self, partition: u32) {
        if let Some(entry) = self.tickets.lock().get_mut(&partition) {
            entry.1 += 1;
        }
        self.served.notify_all();
    }
}

/// Records of one partition, holding a ticket.
struct Pending {
    partition: u32,
    ticket: u64,
    records: Vec<OffsetsRecord>,
}

/// A thread-safe group coordinator over an [`OffsetsLog`]. Calls that wait do so on a condition
/// variable until the state machine changes or its next deadline (by the injected clock)
/// passes; with a manual clock, call [`BlockingCoordinator::tick`] after moving it.
#[derive(Debug)]
pub struct BlockingCoordinator {
    shared: Mutex<Shared>,
    changed: Condvar,
    turns: Turns,
    log: Arc<dyn OffsetsLog>,
    clock: Arc<dyn Clock>,
}

impl BlockingCoordinator {
    /// Wraps `core`, which must use as many partitions as `log` has.
    ///
    /// # Panics
    /// If the partition counts differ.
    pub fn new(core: GroupCoordinator, log: Arc<dyn OffsetsLog>, clock: Arc<dyn Clock>) -> Self {
        assert_eq!(
            core.config().offsets_topic_partitions,
            log.partitions(),
            "the coordinator and its log agree on the partitions"
        );
        BlockingCoordinator {
            shared: Mutex::new(Shared { core, version: 0 }),
            changed: Condvar::new(),
            turns: Turns::default(),
            log,
            clock,
        }
    }

    /// Reads `partition` from its start and serves its groups (a coordinator taking over).
    ///
    /// # Errors
    /// `Storage` when the partition cannot be read, `Corrupt` for records that do not decode;
    /// the partition's groups then answer `CoordinatorNotAvailable`.
    pub fn take_over(&self, partition: u32) -> Result<(), GroupError> {
        self.shared.lock().core.begin_load(partition);
        let loaded = load_partition(self.log.as_ref(), partition);
        let mut shared = self.shared.lock();
        let result = match loaded {
            Ok(loaded) => {
                shared
                    .core
                    .finish_load(partition, loaded, self.clock.now_ms());
                Ok(())
            }
            Err(error) => {
                shared.core.fail_load(partition);
                Err(error)
            }
        };
        shared.version += 1;
        drop(shared);
        self.changed.notify_all();
        result
    }

    /// Stops serving `partition` (this node no longer leads it): its groups are forgotten
    /// here and their calls, waiting ones included, answer `NotCoordinator`.
    pub fn resign(&self, partition: u32) {
        self.shared.lock().core.resign(partition);
        self.changed_now();
    }

    /// Stops serving every partition (the node is going away).
    pub fn resign_all(&self) {
        let mut shared = self.shared.lock();
        for partition in 0..self.log.partitions() {
            shared.core.resign(partition);
        }
        drop(shared);
        self.changed_now();
    }

    /// Wakes every waiter to look at a state that changed outside `run`.
    fn changed_now(&self) {
        self.shared.lock().version += 1;
        self.changed.notify_all();
    }

    /// Takes over every partition of the log; a partition that fails does not stop the others.
    ///
    /// # Errors
    /// As [`BlockingCoordinator::take_over`], for the first partition that fails.
    pub fn take_over_all(&self) -> Result<(), GroupError> {
        let mut first_error = Ok(());
        for partition in 0..self.log.partitions() {
            if let (Err(error), Ok(())) = (self.take_over(partition), &first_error) {
                first_error = Err(error);
            }
        }
        first_error
    }

    /// Runs `op` on the state machine at the clock's time, after expiring what is due, then
    /// stores the records it produced and wakes waiters.
    fn run<T>(
        &self,
        op: impl FnOnce(&mut GroupCoordinator, i64) -> Result<T, GroupError>,
    ) -> Result<T, GroupError> {
        let mut shared = self.shared.lock();
        let now_ms = self.clock.now_ms();
        shared.core.tick(now_ms);
        let result = op(&mut shared.core, now_ms);
        let pending = self.issue(&mut shared);
        shared.version += 1;
        drop(shared);
        self.changed.notify_all();
        let stored = self.store(pending);
        let value = result?;
        stored.map(|()| value)
    }

    /// Takes the outbox and a ticket per partition it touches (called under the state lock).
    fn issue(&self, shared: &mut MutexGuard<'_, Shared>) -> Vec<Pending> {
        let mut by_partition: BTreeMap<u32, Vec<OffsetsRecord>> = BTreeMap::new();
        for record in shared.core.take_outbox() {
            by_partition
                .entry(record.partition)
                .or_default()
                .push(record);
        }
        by_partition
            .into_iter()
            .map(|(partition, records)| Pending {
                partition,
                ticket: self.turns.issue(partition),
                records,
            })
            .collect()
    }

    /// Appends each partition's records in ticket order; every ticket is served even after an
    /// error, so no later append waits forever.
    fn store(&self, pending: Vec<Pending>) -> Result<(), GroupError> {
        let mut first_error = Ok(());
        for batch in pending {
            self.turns.wait(batch.partition, batch.ticket);
            let appended = self.append(batch.partition, &batch.records);
            self.turns.done(batch.partition);
            if let (Err(error), Ok(())) = (appended, &first_error) {
                first_error = Err(error);
            }
        }
        first_error
    }

    fn append(&self, partition: u32, records: &[OffsetsRecord]) -> Result<(), GroupError> {
        let batch = encode_batch(records, self.clock.now_ms());
        self.log
            .append(partition, &batch)
            .map(|_| ())
            .map_err(|source| GroupError::Storage { partition, source })
    }

    /// Expires members and completes phases whose deadline passed, and wakes waiters.
    ///
    /// # Errors
    /// `Storage` when a group's new state cannot be stored.
    pub fn tick(&self) -> Result<(), GroupError> {
        self.run(|_, _| Ok(()))
    }

    /// Waits for the state machine to change after `version`, or for its next deadline, or
    /// for `until`, whichever comes first.
    fn wait_for_change(&self, version: u64, until: Instant) {
        let mut shared = self.shared.lock();
        if shared.version != version {
            return;
        }
        let now_ms = self.clock.now_ms();
        let deadline = shared
            .core
            .next_deadline_ms()
            .map(|at| {
                Instant::now() + Duration::from_millis(at.saturating_sub(now_ms).max(0) as u64)
            })
            .map_or(until, |at| at.min(until));
        self.changed.wait_until(&mut shared, deadline);
    }

    fn version(&self) -> u64 {
        self.shared.lock().version
    }

    /// JoinGroup, waiting until the rebalance completes (at most the rebalance timeout, which
    /// the coordinator enforces).
    ///
    /// # Errors
    /// As [`GroupCoordinator::join`]; `UnknownMemberId` when the member is dropped while
    /// waiting.
    pub fn join(&self, request: &JoinRequest) -> Result<JoinResponse, GroupError> {
        let member_id = match self.run(|core, now| core.join(request, now))? {
            JoinStatus::Joined(response) => return Ok(response),
            JoinStatus::Pending { member_id } => member_id,
        };
        let instance = request.group_instance_id.as_deref();
        loop {
            let version = self.version();
            let polled =
                self.run(|core, _| core.poll_join(&request.group_id, &member_id, instance))?;
            if let Some(response) = polled {
                return Ok(response);
            }
            self.wait_for_change(version + 1, far_future());
        }
    }

    /// SyncGroup, waiting for the leader's assignment.
    ///
    /// # Errors
    /// As [`GroupCoordinator::sync`]; `Storage` when the leader's assignment cannot be stored.
    pub fn sync(&self, request: &SyncRequest) -> Result<Bytes, GroupError> {
        if let Some(assignment) = self.run(|core, now| core.sync(request, now))? {
            return Ok(assignment);
        }
        loop {
            let version = self.version();
            if let Some(assignment) = self.run(|core, _| core.poll_sync(&request.member))? {
                return Ok(assignment);
            }
            self.wait_for_change(version + 1, far_future());
        }
    }

    /// Heartbeat.
    ///
    /// # Errors
    /// As [`GroupCoordinator::heartbeat`].
    pub fn heartbeat(&self, member: &MemberRef) -> Result<(), GroupError> {
        self.run(|core, now| core.heartbeat(member, now))
    }

    /// LeaveGroup.
    ///
    /// # Errors
    /// As [`GroupCoordinator::leave`].
    pub fn leave(
        &self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        self.run(|core, now| core.leave(group, member_id, instance_id, now))
    }

    /// OffsetCommit: validated, stored in `__consumer_offsets` (replicated: acknowledged by
    /// the in-sync replicas), then visible to `committed`. A commit that fails never moves an
    /// offset.
    ///
    /// # Errors
    /// As [`GroupCoordinator::prepare_commit`]; `NotCoordinator` when this node stopped
    /// leading the group's offsets partition before the append was acknowledged (the client
    /// finds the new coordinator and commits again); `Storage` when the append fails
    /// otherwise.
    pub fn commit_offsets(&self, request: &CommitRequest) -> Result<(), GroupError> {
        let (records, partition, ticket) = {
            let mut shared = self.shared.lock();
            let now_ms = self.clock.now_ms();
            let records = shared.core.prepare_commit(request, now_ms)?;
            let partition = shared.core.partition_for(&request.member.group_id);
            (records, partition, self.turns.issue(partition))
        };
        self.turns.wait(partition, ticket);
        let appended = if records.is_empty() {
            Ok(())
        } else {
            self.append(partition, &records)
        };
        if appended.is_ok() {
            let mut shared = self.shared.lock();
            shared.core.apply_commit(request, self.clock.now_ms());
            shared.version += 1;
        }
        self.turns.done(partition);
        appended.map_err(|error| moved_coordinator(error, &request.member.group_id))
    }

    /// OffsetFetch.
    ///
    /// # Errors
    /// As [`GroupCoordinator::committed`].
    pub fn committed(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, GroupError> {
        self.shared.lock().core.committed(group, partitions)
    }

    /// DescribeGroups.
    ///
    /// # Errors
    /// As [`GroupCoordinator::describe`].
    pub fn describe(&self, group: &str) -> Result<GroupDescription, GroupError> {
        self.run(|core, _| core.describe(group))
    }

    /// ListGroups.
    pub fn list(&self) -> Vec<GroupListing> {
        self.shared.lock().core.list()
    }

    /// Deletes an Empty group: tombstones for its offsets and its metadata.
    ///
    /// # Errors
    /// `GroupIdNotFound`, `NonEmptyGroup`, `Storage`.
    pub fn delete(&self, group: &str) -> Result<(), GroupError> {
        self.run(|core, _| core.delete(group))
    }

    /// Replaces the committed offsets of an Empty group (an admin reset). The group must exist
    /// and have no members.
    ///
    /// # Errors
    /// `GroupIdNotFound`, `NonEmptyGroup`, and as [`BlockingCoordinator::commit_offsets`].
    pub fn reset_offsets(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    ) -> Result<(), GroupError> {
        self.shared.lock().core.check_empty(group)?;
        self.commit_offsets(&CommitRequest {
            member: MemberRef::standalone(group),
            offsets,
        })
    }

    /// The offsets partition of `group`.
    pub fn partition_for(&self, group: &str) -> u32 {
        self.shared.lock().core.partition_for(group)
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

/// An append refused because this node no longer leads the partition is Kafka's
/// `NOT_COORDINATOR` to the client.
fn moved_coordinator(error: GroupError, group: &str) -> GroupError {
    match error {
        GroupError::Storage {
            partition,
            source: OffsetsLogError::NotLeader { .. },
        } => GroupError::NotCoordinator {
            group: group.to_owned(),
            partition,
        },
        other => other,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// One batch of the records, timestamped `now_ms`.
fn encode_batch(records: &[OffsetsRecord], now_ms: i64) -> RecordBatch {
    let bytes: usize = records
        .iter()
        .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len) + 32)
        .sum();
    let mut builder = BatchBuilder::with_capacity(BatchSpec::default(), bytes);
    for record in records {
        builder.append(now_ms, Some(&record.key), record.value.as_deref(), &[]);
    }
    builder.finish()
}

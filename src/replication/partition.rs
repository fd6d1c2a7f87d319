//! One partition replica's part in replication: leader or follower, the leader's view of its
//! followers, the ISR, and when an append counts as committed.
//!
//! All role state sits behind one lock. A leader's append holds it, so a role change (which
//! also takes it) is ordered against every append: an append made under epoch `e` is judged
//! by the rules of `e`, and an acknowledgement is only given while the replica still leads `e`.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::error::ReplicationError;
use super::state::{PartitionState, UNKNOWN_BROKER_EPOCH};
use super::transport::{FetchedData, ReplicaError};
use crate::log::LogError;
use crate::partition::{AppendResult, PartitionError, Replica};
use crate::record::{Batches, RecordBatch};

/// How many replicas must have an append before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckLevel {
    /// The leader's log only.
    Leader,
    /// Every in-sync replica (and at least `min_insync_replicas` of them).
    #[default]
    All,
}

/// Replication settings of one partition (from its topic's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSettings {
    pub min_insync_replicas: u16,
    pub unclean_leader_election: bool,
}

impl Default for PartitionSettings {
    fn default() -> Self {
        PartitionSettings {
            min_insync_replicas: 1,
            unclean_leader_election: false,
        }
    }
}

/// A follower as its leader sees it.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// The follower's log end as of its last fetch in this epoch; `None` before its first.
    log_end: Option<u64>,
    /// When the follower last had everything the leader had (Kafka's `lastCaughtUpTimeMs`).
    last_caught_up_ms: i64,
    /// The leader's log end and the time at the follower's previous fetch.
    last_fetch_leader_end: u64,
    last_fetch_ms: i64,
    /// The registration epoch the follower fetched under (recorded when it joins the ISR).
    broker_epoch: i64,
}

#[derive(Debug, Clone)]
struct Leading {
    epoch: i32,
    /// The ISR as last written to the coordinator (with each member's registration epoch),
    /// and that node's version.
    isr: Vec<i32>,
    isr_broker_epochs: Vec<i64>,
    zk_version: i32,
    controller_epoch: i32,
    followers: BTreeMap<i32, Progress>,
    /// The log end when this epoch began: a follower below it has not caught up with the
    /// epoch and may not join the ISR.
    epoch_start_offset: u64,
    /// An ISR change proposed and not yet written, with the members' registration epochs.
    proposed_isr: Option<(Vec<i32>, Vec<i64>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Following {
    leader: i32,
    epoch: i32,
    /// Set when the follower starts following this leader: before fetching, it must find
    /// where its log and the leader's diverge (KIP-101/279) and cut its log there.
    needs_truncation: bool,
}

#[derive(Debug, Clone)]
enum Role {
    /// Not yet told, or the partition has no leader.
    Idle {
        leader: i32,
        epoch: i32,
    },
    Leader(Box<Leading>),
    Follower(Following),
}

/// Test-only switches that plant known replication bugs, so that tests can show they catch
/// them. All off by default; never set outside tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// A new follower truncates to its high watermark instead of asking the leader (KIP-101).
    pub truncate_to_high_watermark: bool,
    /// `AckLevel::All` acknowledges as soon as the leader has appended.
    pub ack_before_replication: bool,
    /// Leader epochs are ignored: a follower of a new leader keeps its log as it is (no
    /// OffsetForLeaderEpoch divergence check), and a leader serves fetches of any epoch.
    pub skip_epoch_check: bool,
}

/// A pending acknowledgement of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingAppend {
    pub result: AppendResult,
    pub leader_epoch: i32,
    pub acks: AckLevel,
    pub deadline_ms: i64,
}

/// Where a follower should fetch from next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchTarget {
    pub leader: i32,
    pub epoch: i32,
    pub needs_truncation: bool,
    pub fetch_offset: u64,
    pub latest_local_epoch: Option<i32>,
}

/// A replica under replication.
#[derive(Debug)]
pub struct ReplicatedPartition {
    replica: Arc<Replica>,
    broker_id: i32,
    state: Mutex<PartitionRoleState>,
    bugs: PlantedBugs,
}

#[derive(Debug)]
struct PartitionRoleState {
    role: Role,
    settings: PartitionSettings,
}

impl ReplicatedPartition {
    pub fn new(
        replica: Arc<Replica>,
        broker_id: i32,
        settings: PartitionSettings,
        bugs: PlantedBugs,
    ) -> ReplicatedPartition {
        ReplicatedPartition {
            replica,
            broker_id,
            state: Mutex::new(PartitionRoleState {
                role: Role::Idle {
                    leader: super::state::NO_LEADER,
                    epoch: -1,
                },
                settings,
            }),
            bugs,
        }
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    pub fn set_settings(&self, settings: PartitionSettings) {
        self.state.lock().settings = settings;
    }

    pub fn settings(&self) -> PartitionSettings {
        self.state.lock().settings
    }

    /// The leader and epoch this replica believes in (itself when leading).
    pub fn leader(&self) -> (i32, i32) {
        match &self.state.lock().role {
            Role::Idle { leader, epoch } => (*leader, *epoch),
            Role::Leader(leading) => (self.broker_id, leading.epoch),
            Role::Follower(following) => (following.leader, following.epoch),
        }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.state.lock().role, Role::Leader(_))
    }

    /// The ISR a leader works with (the written one); empty when not leading.
    pub fn isr(&self) -> Vec<i32> {
        match &self.state.lock().role {
            Role::Leader(leading) => leading.isr.clone(),
            _ => Vec::new(),
        }
    }

    /// Applies a partition state read from (or written to) the coordinator. Returns whether
    /// the role changed.
    ///
    /// A state naming this broker leader under an older registration (`broker_epoch` is the
    /// current one) is not taken: this process did not lead that epoch, and its log may lack
    /// what that leader acknowledged. It waits for the controller to elect again.
    pub fn apply_state(
        &self,
        state: &PartitionState,
        replicas: &[i32],
        broker_epoch: i64,
        now_ms: i64,
    ) -> bool {
        let stale_self = state.leader == self.broker_id
            && state.member_epoch(self.broker_id).is_some_and(|recorded| {
                recorded != UNKNOWN_BROKER_EPOCH && recorded != broker_epoch
            });
        let mut guard = self.state.lock();
        if stale_self {
            let epoch = match &guard.role {
                Role::Leader(leading) => leading.epoch,
                _ => state.leader_epoch,
            };
            let changed = !matches!(guard.role, Role::Idle { .. });
            guard.role = Role::Idle {
                leader: super::state::NO_LEADER,
                epoch: epoch.max(state.leader_epoch),
            };
            return changed;
        }
        let current_epoch = match &guard.role {
            Role::Idle { epoch, .. } => *epoch,
            Role::Leader(leading) => leading.epoch,
            Role::Follower(following) => following.epoch,
        };
        if state.leader_epoch < current_epoch {
            return false;
        }
        if state.leader_epoch == current_epoch {
            // Same epoch: only the ISR (and its version) can have moved.
            if let Role::Leader(leading) = &mut guard.role {
                if state.leader == self.broker_id && state.zk_version > leading.zk_version {
                    leading.isr.clone_from(&state.isr);
                    leading.isr_broker_epochs = member_epochs(state);
                    leading.zk_version = state.zk_version;
                    leading.controller_epoch = state.controller_epoch;
                    leading.proposed_isr = None;
                    let leading = leading.clone();
                    drop(guard);
                    self.maybe_advance_high_watermark(&leading);
                }
            }
            return false;
        }
        self.replica.set_leader_epoch(state.leader_epoch);
        guard.role = if state.leader == self.broker_id {
            Role::Leader(Box::new(self.new_leading(state, replicas, now_ms)))
        } else if state.leader == super::state::NO_LEADER {
            Role::Idle {
                leader: state.leader,
                epoch: state.leader_epoch,
            }
        } else {
            Role::Follower(Following {
                leader: state.leader,
                epoch: state.leader_epoch,
                needs_truncation: true,
            })
        };
        if let Role::Leader(leading) = &guard.role {
            let leading = (**leading).clone();
            drop(guard);
            self.maybe_advance_high_watermark(&leading);
        }
        true
    }

    fn new_leading(&self, state: &PartitionState, replicas: &[i32], now_ms: i64) -> Leading {
        let log_end = self.replica.log().log_end_offset();
        let followers = replicas
            .iter()
            .filter(|&&id| id != self.broker_id)
            .map(|&id| {
                (
                    id,
                    Progress {
                        log_end: None,
                        // An ISR member gets a full lag window to show up (as in Kafka).
                        last_caught_up_ms: now_ms,
                        last_fetch_leader_end: log_end,
                        last_fetch_ms: now_ms,
                        broker_epoch: UNKNOWN_BROKER_EPOCH,
                    },
                )
            })
            .collect();
        Leading {
            epoch: state.leader_epoch,
            isr: state.isr.clone(),
            isr_broker_epochs: member_epochs(state),
            zk_version: state.zk_version,
            controller_epoch: state.controller_epoch,
            followers,
            epoch_start_offset: log_end,
            proposed_isr: None,
        }
    }

    /// Appends a producer's batch as leader.
    ///
    /// # Errors
    /// `NotLeader` (with the leader this replica knows of); `NotEnoughReplicas` when `acks` is
    /// `All` and the ISR is smaller than `min_insync_replicas`; the partition's errors.
    pub fn append(
        &self,
        batch: &RecordBatch,
        acks: AckLevel,
        now_ms: i64,
        timeout_ms: u64,
    ) -> Result<PendingAppend, ReplicationError> {
        let guard = self.state.lock();
        let Role::Leader(leading) = &guard.role else {
            return Err(self.not_leader(&guard.role));
        };
        let min_isr = guard.settings.min_insync_replicas;
        if acks == AckLevel::All && leading.isr.len() < usize::from(min_isr) {
            return Err(ReplicationError::NotEnoughReplicas {
                isr: leading.isr.len(),
                min_insync_replicas: min_isr,
            });
        }
        let result = self.replica.append_as_leader(batch, leading.epoch)?;
        let pending = PendingAppend {
            result,
            leader_epoch: leading.epoch,
            acks,
            deadline_ms: now_ms.saturating_add(timeout_ms as i64),
        };
        if leading.isr.len() <= 1 || result.duplicate {
            // Worked out under the lock, moved (waking readers) after it.
            let candidate = self.high_watermark_candidate(leading);
            drop(guard);
            self.advance_high_watermark_to(candidate);
        }
        Ok(pending)
    }

    /// Whether `pending` is acknowledged yet: `None` while it waits, `Some(Ok)` once committed
    /// as its ack level asks, `Some(Err)` when it never will be (leadership lost: the append
    /// may or may not survive, so the producer must retry; or the deadline passed).
    pub fn poll_append(
        &self,
        pending: &PendingAppend,
        now_ms: i64,
    ) -> Option<Result<(), ReplicationError>> {
        let guard = self.state.lock();
        let Role::Leader(leading) = &guard.role else {
            return Some(Err(self.not_leader(&guard.role)));
        };
        if leading.epoch != pending.leader_epoch {
            return Some(Err(self.not_leader(&guard.role)));
        }
        let committed = match pending.acks {
            AckLevel::Leader => true,
            AckLevel::All if self.bugs.ack_before_replication => true,
            AckLevel::All => self.replica.high_watermark() > pending.result.last_offset,
        };
        if committed {
            let min_isr = guard.settings.min_insync_replicas;
            if pending.acks == AckLevel::All && leading.isr.len() < usize::from(min_isr) {
                return Some(Err(ReplicationError::NotEnoughReplicasAfterAppend {
                    isr: leading.isr.len(),
                    min_insync_replicas: min_isr,
                }));
            }
            return Some(Ok(()));
        }
        if now_ms >= pending.deadline_ms {
            return Some(Err(ReplicationError::Timeout {
                offset: pending.result.last_offset,
            }));
        }
        None
    }

    fn not_leader(&self, role: &Role) -> ReplicationError {
        let (leader, epoch) = match role {
            Role::Idle { leader, epoch } => (*leader, *epoch),
            Role::Leader(leading) => (self.broker_id, leading.epoch),
            Role::Follower(following) => (following.leader, following.epoch),
        };
        ReplicationError::NotLeader {
            topic: self.replica.topic().to_owned(),
            partition: self.replica.partition(),
            leader: (leader >= 0).then_some(leader),
            leader_epoch: epoch,
        }
    }

    /// Serves a follower's fetch: records its progress, grows the ISR proposal or the high
    /// watermark as that allows, and returns the batches from its fetch offset.
    ///
    /// # Errors
    /// `NotLeaderOrFollower`, `FencedLeaderEpoch`, `UnknownLeaderEpoch`, `OffsetOutOfRange`,
    /// `KafkaStorageError`.
    pub fn serve_fetch(
        &self,
        replica_id: i32,
        replica_broker_epoch: i64,
        fetch_offset: u64,
        current_leader_epoch: i32,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<FetchedData, ReplicaError> {
        let mut guard = self.state.lock();
        let Role::Leader(leading) = &mut guard.role else {
            return Err(ReplicaError::NotLeaderOrFollower);
        };
        if !self.bugs.skip_epoch_check {
            check_epoch(current_leader_epoch, leading.epoch)?;
        }
        let log_end = self.replica.log().log_end_offset();
        if fetch_offset > log_end || fetch_offset < self.replica.log().log_start_offset() {
            return Err(ReplicaError::OffsetOutOfRange);
        }
        let Some(progress) = leading.followers.get_mut(&replica_id) else {
            return Err(ReplicaError::NotLeaderOrFollower);
        };
        if fetch_offset >= log_end {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= progress.last_fetch_leader_end {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.last_fetch_leader_end = log_end;
        progress.last_fetch_ms = now_ms;
        progress.log_end = Some(fetch_offset);
        progress.broker_epoch = replica_broker_epoch;
        let high_watermark = self.replica.high_watermark();
        if !leading.isr.contains(&replica_id)
            && leading.proposed_isr.is_none()
            && fetch_offset >= high_watermark
            && fetch_offset >= leading.epoch_start_offset
        {
            let mut isr = leading.isr.clone();
            let mut epochs = leading.isr_broker_epochs.clone();
            isr.push(replica_id);
            epochs.push(replica_broker_epoch);
            leading.proposed_isr = Some((isr, epochs));
        }
        let leading = (**leading).clone();
        drop(guard);
        self.maybe_advance_high_watermark(&leading);
        let read =
            self.replica
                .log()
                .read(fetch_offset, max_bytes)
                .map_err(|error| match error {
                    LogError::OffsetOutOfRange { .. } => ReplicaError::OffsetOutOfRange,
                    _ => ReplicaError::KafkaStorageError,
                })?;
        Ok(FetchedData {
            high_watermark: self.replica.high_watermark(),
            log_start_offset: read.log_start_offset,
            log_end_offset: read.log_end_offset,
            records: read.bytes,
        })
    }

    /// Answers OffsetForLeaderEpoch as leader.
    ///
    /// # Errors
    /// `NotLeaderOrFollower`, `FencedLeaderEpoch`, `UnknownLeaderEpoch`.
    pub fn serve_end_offset(
        &self,
        current_leader_epoch: i32,
        epoch: i32,
    ) -> Result<Option<(i32, u64)>, ReplicaError> {
        let guard = self.state.lock();
        let Role::Leader(leading) = &guard.role else {
            return Err(ReplicaError::NotLeaderOrFollower);
        };
        if !self.bugs.skip_epoch_check {
            check_epoch(current_leader_epoch, leading.epoch)?;
        }
        Ok(self.replica.log().end_offset_for_epoch(epoch))
    }

    /// The high watermark as the lowest log end in the ISR (and any member being added), moved
    /// forward only.
    fn maybe_advance_high_watermark(&self, leading: &Leading) {
        self.advance_high_watermark_to(self.high_watermark_candidate(leading));
    }

    fn advance_high_watermark_to(&self, candidate: Option<u64>) {
        if let Some(candidate) = candidate.filter(|&at| at > self.replica.high_watermark()) {
            self.replica.advance_high_watermark(candidate);
        }
    }

    /// The lowest log end in the ISR (and any member being added), or `None` while a member's
    /// log end is unknown.
    fn high_watermark_candidate(&self, leading: &Leading) -> Option<u64> {
        let mut candidate = self.replica.log().log_end_offset();
        let members = leading
            .isr
            .iter()
            .chain(leading.proposed_isr.iter().flat_map(|(isr, _)| isr));
        for id in members.filter(|&&id| id != self.broker_id) {
            match leading
                .followers
                .get(id)
                .and_then(|progress| progress.log_end)
            {
                Some(log_end) => candidate = candidate.min(log_end),
                None => return None,
            }
        }
        Some(candidate)
    }

    /// The ISR change this leader wants written now, if any: a proposed addition, or the
    /// removal of followers that have not caught up for `lag_max_ms`. The returned state
    /// carries the version to write against.
    pub fn isr_change(&self, now_ms: i64, lag_max_ms: u64) -> Option<PartitionState> {
        let mut guard = self.state.lock();
        let Role::Leader(leading) = &mut guard.role else {
            return None;
        };
        let (isr, isr_broker_epochs) = match leading.proposed_isr.clone() {
            Some(proposal) => proposal,
            None => {
                let lagging = |id: &i32| {
                    *id != self.broker_id
                        && leading.followers.get(id).is_none_or(|progress| {
                            now_ms - progress.last_caught_up_ms > lag_max_ms as i64
                        })
                };
                if !leading.isr.iter().any(lagging) {
                    return None;
                }
                let kept: (Vec<i32>, Vec<i64>) = leading
                    .isr
                    .iter()
                    .zip(&leading.isr_broker_epochs)
                    .filter(|(id, _)| !lagging(id))
                    .map(|(id, epoch)| (*id, *epoch))
                    .unzip();
                leading.proposed_isr = Some(kept.clone());
                kept
            }
        };
        Some(PartitionState {
            leader: self.broker_id,
            leader_epoch: leading.epoch,
            isr,
            isr_broker_epochs,
            controller_epoch: leading.controller_epoch,
            zk_version: leading.zk_version,
        })
    }

    /// The outcome of writing an ISR change: `Some(state)` as written (with its new version),
    /// or `None` when the write lost a race (the caller rereads the coordinator).
    pub fn isr_change_done(&self, written: Option<&PartitionState>) {
        let mut guard = self.state.lock();
        let Role::Leader(leading) = &mut guard.role else {
            return;
        };
        leading.proposed_isr = None;
        if let Some(state) = written {
            if state.leader_epoch == leading.epoch {
                leading.isr.clone_from(&state.isr);
                leading.isr_broker_epochs = member_epochs(state);
                leading.zk_version = state.zk_version;
            }
        }
        let leading = (**leading).clone();
        drop(guard);
        self.maybe_advance_high_watermark(&leading);
    }

    /// Whether the control thread's clock drives anything here: following a leader, or leading
    /// other replicas (whose lag decides the ISR) or an ISR change not yet written. A leader
    /// alone in its ISR has nothing a timer must do.
    pub(crate) fn needs_ticks(&self) -> bool {
        match &self.state.lock().role {
            Role::Leader(leading) => {
                leading.isr.len() > 1
                    || !leading.followers.is_empty()
                    || leading.proposed_isr.is_some()
            }
            Role::Follower(_) => true,
            Role::Idle { .. } => false,
        }
    }

    /// Where a follower fetches next; `None` when not following.
    pub(crate) fn fetch_target(&self) -> Option<FetchTarget> {
        let guard = self.state.lock();
        let Role::Follower(following) = &guard.role else {
            return None;
        };
        let log = self.replica.log();
        Some(FetchTarget {
            leader: following.leader,
            epoch: following.epoch,
            needs_truncation: following.needs_truncation,
            fetch_offset: log.log_end_offset(),
            latest_local_epoch: log.leader_epochs().last().map(|entry| entry.epoch),
        })
    }

    /// Cuts the follower's log where it diverges from the leader's, given the leader's answer
    /// for the follower's latest epoch (KIP-279): to the end of the largest common epoch on
    /// whichever side ends first. With no answer possible (empty logs), nothing is cut.
    ///
    /// # Errors
    /// The partition's errors.
    pub(crate) fn truncate_for_leader(
        &self,
        expected_epoch: i32,
        answer: Option<(i32, u64)>,
    ) -> Result<(), PartitionError> {
        let mut guard = self.state.lock();
        let Role::Follower(following) = &mut guard.role else {
            return Ok(());
        };
        if following.epoch != expected_epoch || !following.needs_truncation {
            return Ok(());
        }
        let log = self.replica.log();
        let log_end = log.log_end_offset();
        let (target, complete) = if self.bugs.truncate_to_high_watermark {
            (self.replica.high_watermark(), true)
        } else if self.bugs.skip_epoch_check {
            (log_end, true)
        } else {
            truncation_point(log, answer)
        };
        if target < log_end {
            self.replica.truncate_to(target)?;
        }
        following.needs_truncation = !complete;
        Ok(())
    }

    /// Makes the follower find its divergence point again before its next fetch (after the
    /// leader said its fetch offset is out of range).
    pub(crate) fn require_truncation(&self, expected_epoch: i32) {
        if let Role::Follower(following) = &mut self.state.lock().role {
            if following.epoch == expected_epoch {
                following.needs_truncation = true;
            }
        }
    }

    /// Appends a fetch response's batches and takes the leader's high watermark (up to the
    /// local log end).
    ///
    /// # Errors
    /// The partition's errors; a batch that does not decode is `Corrupt` input from the peer.
    pub(crate) fn append_fetched(
        &self,
        expected_epoch: i32,
        data: &FetchedData,
    ) -> Result<(), PartitionError> {
        let guard = self.state.lock();
        let Role::Follower(following) = &guard.role else {
            return Ok(());
        };
        if following.epoch != expected_epoch || following.needs_truncation {
            return Ok(());
        }
        let log = self.replica.log();
        for batch in Batches::new(data.records.clone()) {
            let batch = batch.map_err(LogError::from)?;
            // A leader answers from the fetch offset, so a batch below the log end is one the
            // follower already has (a repeated fetch); skip it.
            if (batch.header().base_offset as u64) < log.log_end_offset() {
                continue;
            }
            self.replica.append_from_leader(&batch)?;
        }
        let high_watermark = data.high_watermark.min(log.log_end_offset());
        self.replica.advance_high_watermark(high_watermark);
        Ok(())
    }
}

/// The ISR members' registration epochs, one per member (unknown where the state has none).
fn member_epochs(state: &PartitionState) -> Vec<i64> {
    state
        .isr
        .iter()
        .map(|&id| state.member_epoch(id).unwrap_or(UNKNOWN_BROKER_EPOCH))
        .collect()
}

fn check_epoch(requested: i32, current: i32) -> Result<(), ReplicaError> {
    match requested.cmp(&current) {
        std::cmp::Ordering::Less => Err(ReplicaError::FencedLeaderEpoch),
        std::cmp::Ordering::Greater => Err(ReplicaError::UnknownLeaderEpoch),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Where a follower's log stops agreeing with the leader's, from the leader's answer for the
/// follower's latest epoch, and whether that is final (Kafka's `getOffsetTruncationState`):
/// - the follower holds the epoch the leader named: cut at the earlier of the two ends of it;
/// - it holds only older epochs: cut at the end of its largest one below, and ask again with
///   that epoch (one step is not enough: that older epoch may end earlier on the leader);
/// - it holds no epoch at or below it, or the leader holds none at or below the follower's
///   latest: nothing it holds is known to be on the leader; cut everything.
fn truncation_point(log: &crate::log::Log, answer: Option<(i32, u64)>) -> (u64, bool) {
    let log_end = log.log_end_offset();
    let Some((leader_epoch, leader_end)) = answer else {
        return (log.log_start_offset(), true);
    };
    match log.end_offset_for_epoch(leader_epoch) {
        Some((epoch, local_end)) if epoch == leader_epoch => {
            (leader_end.min(local_end).min(log_end), true)
        }
        Some((_, local_end)) => (local_end.min(log_end), false),
        None => (log.log_start_offset().min(leader_end), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Log, LogConfig, NewRecord};

    /// A log whose epochs start where `epochs` says, one record per offset up to `end`.
    fn log_with_epochs(dir: &std::path::Path, epochs: &[(i32, u64)], end: u64) -> Log {
        let log = Log::open(dir.join("t-0"), LogConfig::default()).expect("open");
        for offset in 0..end {
            let epoch = epochs
                .iter()
                .rev()
                .find(|(_, start)| *start <= offset)
                .map_or(0, |(epoch, _)| *epoch);
            let record = NewRecord {
                timestamp: 0,
                key: None,
                value: Some(b"x"),
                headers: &[],
            };
            log.append_records(&[record], epoch).expect("append");
        }
        log
    }

    #[test]
    fn a_follower_missing_the_leaders_epoch_cuts_in_steps() {
        // Follower epochs 0@0, 2@10, log end 20; the leader has 0@0, 1@5, 3@8. Asked for
        // epoch 2, the leader answers (1, 8): the follower never had epoch 1, so one step
        // cannot tell where epoch 0 ended on the leader.
        let dir = tempfile::tempdir().expect("tempdir");
        let follower = log_with_epochs(dir.path(), &[(0, 0), (2, 10)], 20);
        assert_eq!(truncation_point(&follower, Some((1, 8))), (10, false));
        follower.truncate_to(10).expect("truncate");
        // Asked again for its latest epoch, 0, the leader answers (0, 5).
        assert_eq!(truncation_point(&follower, Some((0, 5))), (5, true));
    }

    #[test]
    fn a_follower_holding_the_leaders_epoch_cuts_at_the_earlier_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let follower = log_with_epochs(dir.path(), &[(0, 0), (1, 4)], 9);
        assert_eq!(truncation_point(&follower, Some((1, 7))), (7, true));
        assert_eq!(truncation_point(&follower, Some((1, 12))), (9, true));
        assert_eq!(truncation_point(&follower, Some((0, 3))), (3, true));
        // The leader holds no epoch at or below ours: nothing here is known to be there.
        assert_eq!(truncation_point(&follower, None), (0, true));
    }
}

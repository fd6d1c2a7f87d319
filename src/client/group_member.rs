//! The consumer's group side: `subscribe` (topics or a pattern), membership kept by `poll`,
//! rebalance listeners called on the polling thread, and offset commits (sync, async, auto).
//!
//! A consumer with a `group_id` commits its offsets to the group coordinator; with `assign` it
//! commits as a standalone consumer (generation -1, allowed while the group has no members).
//! With `subscribe` it joins the group: `poll` rejoins when the heartbeat reports a rebalance,
//! when the subscription's topics change (a pattern matching a new topic) or when a subscribed
//! topic gains partitions.
//!
//! The coordinator is found through a [`CoordinatorLink`]: the leader of the group's
//! `__consumer_offsets` partition, found again (with backoff) when it moves, as after a broker
//! failure.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::consumer::ROUTE_CHECK_MS;
use super::coordinator_link::{coordinator_moved, CoordinatorLink};
use super::heartbeat::{BeatEvent, Heartbeat};
use super::pattern::TopicPattern;
use super::{ConsumeError, Consumer, ConsumerRecord, TopicPartition};
use crate::group::{
    Assignor, CommitRequest, CooperativeSticky, GroupError, MemberRef, OffsetAndMetadata, Range,
    RebalanceProtocol, RoundRobin,
};

/// An assignor in `partition_assignment_strategy`; two are equal when their names are.
#[derive(Debug, Clone)]
pub struct AssignmentStrategy(pub Arc<dyn Assignor>);

impl AssignmentStrategy {
    pub fn range() -> Self {
        AssignmentStrategy(Arc::new(Range))
    }

    pub fn round_robin() -> Self {
        AssignmentStrategy(Arc::new(RoundRobin))
    }

    pub fn cooperative_sticky() -> Self {
        AssignmentStrategy(Arc::new(CooperativeSticky))
    }
}

impl PartialEq for AssignmentStrategy {
    fn eq(&self, other: &Self) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for AssignmentStrategy {}

/// Told of partitions the consumer gains and gives up, on the polling thread inside `poll`
/// (and `commit`-free: commit from the callback with the consumer it is given). A listener must
/// not call `poll`.
pub trait RebalanceListener: Send {
    /// Before partitions are taken away in a rebalance (after the auto-commit of what poll
    /// returned): the last chance to commit them.
    fn on_partitions_revoked(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]);

    /// After a rebalance, with the partitions newly assigned (cooperative) or all of them
    /// (eager); positions start from the committed offsets.
    fn on_partitions_assigned(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]);

    /// The membership was lost (session expired, fenced, poll interval exceeded): the
    /// partitions may already belong to another member, so committing them would fail.
    fn on_partitions_lost(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]);
}

/// The group identity of a consumer, as Kafka's `groupMetadata()` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// A commit callback: the offsets committed, or why not.
pub type CommitCallback =
    Box<dyn FnOnce(Result<&BTreeMap<TopicPartition, OffsetAndMetadata>, &ConsumeError>) + Send>;

/// The outcome of a commit, kept for its callback.
pub(super) type CommitResult = Result<BTreeMap<TopicPartition, OffsetAndMetadata>, ConsumeError>;

/// What the consumer subscribed to.
#[derive(Debug, Clone)]
pub(super) enum Subscribed {
    Nothing,
    Topics(BTreeSet<String>),
    Pattern(TopicPattern),
}

/// A consumer's membership and commit state.
pub(super) struct GroupMember {
    pub link: Arc<CoordinatorLink>,
    pub group_id: String,
    pub subscribed: Subscribed,
    /// The topics the subscription names now (a pattern resolved against the broker).
    pub topics: BTreeSet<String>,
    /// Partition counts of the topics watched (the group's, for the leader), when last joined.
    pub watched: BTreeMap<String, Option<u32>>,
    pub member_id: String,
    pub generation: i32,
    pub owned: BTreeSet<TopicPartition>,
    pub rejoin: bool,
    pub heartbeat: Heartbeat,
    pub listener: Option<Box<dyn RebalanceListener>>,
    pub next_auto_commit_ms: i64,
    /// What auto-commit last stored, to skip commits that would change nothing.
    pub last_committed: BTreeMap<TopicPartition, u64>,
    /// Async commit callbacks waiting to run on the polling thread, in commit order.
    pub callbacks: VecDeque<(CommitCallback, CommitResult)>,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember")
            .field("group_id", &self.group_id)
            .field("member_id", &self.member_id)
            .field("generation", &self.generation)
            .field("owned", &self.owned)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// The group member, made on first use; its coordinator is found (and
    /// `__consumer_offsets` created if needed) on its first call.
    pub(super) fn group_member(&mut self) -> Result<&mut GroupMember, ConsumeError> {
        if self.group.is_none() {
            let group_id = self
                .config
                .group_id
                .clone()
                .ok_or(ConsumeError::NoGroupId)?;
            let link = Arc::new(CoordinatorLink::new(
                self.broker.clone(),
                group_id.clone(),
                self.config.retry_backoff_ms,
                self.config.default_api_timeout_ms,
            ));
            let heartbeat = Heartbeat::start(
                Arc::clone(&link),
                Arc::clone(self.broker.clock()),
                Arc::clone(&self.notifier),
                self.config.heartbeat_interval_ms,
                self.config.max_poll_interval_ms,
            );
            let now_ms = self.broker.clock().now_ms();
            self.group = Some(Box::new(GroupMember {
                link,
                group_id,
                subscribed: Subscribed::Nothing,
                topics: BTreeSet::new(),
                watched: BTreeMap::new(),
                member_id: String::new(),
                generation: -1,
                owned: BTreeSet::new(),
                rejoin: false,
                heartbeat,
                listener: None,
                next_auto_commit_ms: now_ms + self.config.auto_commit_interval_ms as i64,
                last_committed: BTreeMap::new(),
                callbacks: VecDeque::new(),
            }));
        }
        // Just made, or there already.
        Ok(self.group.as_mut().expect("the group member exists"))
    }

    /// Subscribes to `topics` (replacing any earlier subscription); the group assigns the
    /// partitions at the next `poll`. Topics that do not exist yet are picked up when created.
    ///
    /// # Errors
    /// `NoGroupId`; `Broker` when the group coordinator cannot start.
    pub fn subscribe<I, S>(&mut self, topics: I) -> Result<(), ConsumeError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let topics = topics.into_iter().map(Into::into).collect();
        self.set_subscription(Subscribed::Topics(topics))
    }

    /// Subscribes to every topic matching `pattern` (a glob: `*` any run, `?` one character;
    /// see [`TopicPattern`]), re-evaluated at each poll so topics created later join.
    ///
    /// # Errors
    /// As [`Consumer::subscribe`].
    pub fn subscribe_pattern(&mut self, pattern: &str) -> Result<(), ConsumeError> {
        self.set_subscription(Subscribed::Pattern(TopicPattern::new(pattern)))
    }

    /// Sets the listener told of partition changes (replacing any earlier one).
    ///
    /// # Errors
    /// As [`Consumer::subscribe`].
    pub fn set_rebalance_listener(
        &mut self,
        listener: impl RebalanceListener + 'static,
    ) -> Result<(), ConsumeError> {
        self.group_member()?.listener = Some(Box::new(listener));
        Ok(())
    }

    fn set_subscription(&mut self, subscribed: Subscribed) -> Result<(), ConsumeError> {
        if self
            .group
            .as_ref()
            .is_none_or(|g| matches!(g.subscribed, Subscribed::Nothing))
        {
            self.assign(Vec::new())?;
        }
        let group = self.group_member()?;
        group.subscribed = subscribed;
        group.rejoin = true;
        Ok(())
    }

    /// Leaves the group (after committing, with auto-commit) and drops the subscription and
    /// the assignment.
    ///
    /// # Errors
    /// `Group` errors from the commit or the leave.
    pub fn unsubscribe(&mut self) -> Result<(), ConsumeError> {
        if self.group.is_none() {
            return self.assign(Vec::new());
        }
        self.auto_commit_now();
        let owned = self.take_owned();
        self.call_listener(ListenerCall::Revoked, &owned);
        self.assign(Vec::new())?;
        self.leave_group()?;
        if let Some(group) = self.group.as_mut() {
            group.subscribed = Subscribed::Nothing;
            group.topics.clear();
            group.rejoin = false;
        }
        Ok(())
    }

    /// The subscribed topics (a pattern's current matches).
    pub fn subscription(&self) -> Vec<String> {
        self.group
            .as_ref()
            .map(|g| g.topics.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The group identity, once the consumer is a member.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group = self.group.as_ref()?;
        Some(ConsumerGroupMetadata {
            group_id: group.group_id.clone(),
            generation_id: group.generation,
            member_id: group.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
        })
    }

    pub(super) fn is_subscribed(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| !matches!(g.subscribed, Subscribed::Nothing))
    }

    /// `poll` for a consumer with a `group_id`.
    pub(super) fn poll_in_group(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<ConsumerRecord>, ConsumeError> {
        let deadline = Instant::now() + timeout;
        self.group_member()?.heartbeat.polled();
        self.run_commit_callbacks();
        loop {
            self.notifier.reset();
            if self.is_subscribed() {
                self.ensure_active_group()?;
            } else if self.assigned.is_empty() {
                return Err(ConsumeError::NoAssignment);
            }
            self.seek_to_committed()?;
            self.maybe_auto_commit();
            self.follow_leaders();
            let records = if self.assigned.is_empty() {
                Vec::new()
            } else {
                self.fetch()?
            };
            if !records.is_empty() {
                return Ok(records);
            }
            if self.group.as_ref().is_some_and(|g| g.rejoin) {
                continue;
            }
            // Waits are cut into slices so that a leader that moved (whose appends wake no one
            // here) is looked up again, as in an assigned consumer's poll.
            let slice = (Instant::now() + Duration::from_millis(ROUTE_CHECK_MS)).min(deadline);
            if !self.notifier.wait_until(slice) && Instant::now() >= deadline {
                return Ok(records);
            }
            self.group_member()?.heartbeat.polled();
        }
    }

    /// Partitions without a position start from the group's committed offset, if any.
    fn seek_to_committed(&mut self) -> Result<(), ConsumeError> {
        let unset: Vec<TopicPartition> = self
            .assigned
            .iter()
            .filter(|a| a.position.is_none())
            .map(|a| a.partition.clone())
            .collect();
        if unset.is_empty() {
            return Ok(());
        }
        let group = self.group_member()?;
        let group_id = group.group_id.clone();
        let committed = group
            .link
            .call(|coordinator| coordinator.committed(&group_id, Some(&unset)))?;
        for (partition, offset) in committed {
            self.seek(&partition, offset.offset)?;
        }
        Ok(())
    }

    /// Where the consumer is: the position of every assigned partition that has one.
    pub(super) fn positions(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.assigned
            .iter()
            .filter_map(|a| {
                a.position
                    .map(|p| (a.partition.clone(), OffsetAndMetadata::new(p)))
            })
            .collect()
    }

    fn member_ref(&mut self) -> Result<MemberRef, ConsumeError> {
        let subscribed = self.is_subscribed();
        let instance = self.config.group_instance_id.clone();
        let group = self.group_member()?;
        Ok(if subscribed {
            MemberRef {
                group_id: group.group_id.clone(),
                member_id: group.member_id.clone(),
                group_instance_id: instance,
                generation_id: group.generation,
            }
        } else {
            MemberRef::standalone(group.group_id.clone())
        })
    }

    /// Commits the position of every assigned partition (what poll has returned) and waits.
    ///
    /// # Errors
    /// `NoGroupId`; `Group`: `IllegalGeneration`, `UnknownMemberId`, `FencedInstanceId`,
    /// `RebalanceInProgress` (the group moved on; the next poll rejoins), `Storage`; the
    /// coordinator's `NotCoordinator`, `CoordinatorNotAvailable` or
    /// `CoordinatorLoadInProgress` when no coordinator took it within
    /// `default_api_timeout_ms`.
    pub fn commit_sync(&mut self) -> Result<(), ConsumeError> {
        let offsets = self.positions();
        self.commit_offsets_sync(offsets)
    }

    /// Commits `offsets` (each the next offset to consume, with metadata) and waits.
    ///
    /// # Errors
    /// As [`Consumer::commit_sync`].
    pub fn commit_offsets_sync(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), ConsumeError> {
        self.run_commit_callbacks();
        let member = self.member_ref()?;
        let request = CommitRequest {
            member,
            offsets: offsets.into_iter().collect(),
        };
        let group = self.group_member()?;
        match group
            .link
            .call(|coordinator| coordinator.commit_offsets(&request))
        {
            Ok(()) => {
                for (partition, offset) in &request.offsets {
                    group
                        .last_committed
                        .insert(partition.clone(), offset.offset);
                }
                Ok(())
            }
            Err(error) => {
                if matches!(
                    error,
                    ConsumeError::Group(
                        GroupError::IllegalGeneration { .. }
                            | GroupError::UnknownMemberId { .. }
                            | GroupError::RebalanceInProgress { .. }
                    )
                ) {
                    group.rejoin = true;
                }
                Err(error)
            }
        }
    }

    /// Commits the current positions; `callback` runs on the polling thread at the next
    /// `poll`, `commit_sync` or close, in commit order, as Kafka's do. (The in-process
    /// coordinator stores the commit before this returns; the callback is what is deferred.)
    pub fn commit_async(
        &mut self,
        callback: impl FnOnce(Result<&BTreeMap<TopicPartition, OffsetAndMetadata>, &ConsumeError>)
            + Send
            + 'static,
    ) {
        let offsets = self.positions();
        self.commit_offsets_async(offsets, callback);
    }

    /// As [`Consumer::commit_async`], for the given offsets.
    pub fn commit_offsets_async(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        callback: impl FnOnce(Result<&BTreeMap<TopicPartition, OffsetAndMetadata>, &ConsumeError>)
            + Send
            + 'static,
    ) {
        let result = self.commit_offsets_sync(offsets.clone()).map(|()| offsets);
        match self.group.as_mut() {
            Some(group) => group.callbacks.push_back((Box::new(callback), result)),
            None => callback(result.as_ref()),
        }
    }

    pub(super) fn run_commit_callbacks(&mut self) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        let callbacks = std::mem::take(&mut group.callbacks);
        for (callback, result) in callbacks {
            callback(result.as_ref());
        }
    }

    /// The group's committed offsets for `partitions` (those without one are absent).
    ///
    /// # Errors
    /// `NoGroupId`; `Group` errors of the coordinator.
    pub fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, ConsumeError> {
        let group = self.group_member()?;
        let group_id = group.group_id.clone();
        group
            .link
            .call(|coordinator| coordinator.committed(&group_id, Some(partitions)))
    }

    /// How far `partition`'s position is behind its end (the high watermark); `None` before
    /// the position is known.
    ///
    /// # Errors
    /// `NotAssigned`, `UnknownTopic`, `UnknownPartition`.
    pub fn current_lag(&self, partition: &TopicPartition) -> Result<Option<u64>, ConsumeError> {
        let position = self
            .assigned
            .iter()
            .find(|a| &a.partition == partition)
            .ok_or_else(|| ConsumeError::NotAssigned(partition.clone()))?
            .position;
        let end = self.end_offsets(std::slice::from_ref(partition))?;
        Ok(position.map(|p| end[partition].saturating_sub(p)))
    }

    /// With auto-commit on, commits the positions when the interval has passed.
    fn maybe_auto_commit(&mut self) {
        if !self.config.enable_auto_commit {
            return;
        }
        let now_ms = self.broker.clock().now_ms();
        let interval_ms = self.config.auto_commit_interval_ms as i64;
        let Some(group) = self.group.as_mut() else {
            return;
        };
        if now_ms < group.next_auto_commit_ms {
            return;
        }
        group.next_auto_commit_ms = now_ms + interval_ms;
        self.auto_commit_now();
    }

    /// With auto-commit on, commits the positions that moved since the last commit. A failure
    /// is not reported (the next commit carries the positions again), as in Kafka.
    pub(super) fn auto_commit_now(&mut self) {
        if !self.config.enable_auto_commit || self.group.is_none() {
            return;
        }
        let positions = self.positions();
        let Some(group) = self.group.as_ref() else {
            return;
        };
        let moved: BTreeMap<TopicPartition, OffsetAndMetadata> = positions
            .into_iter()
            .filter(|(p, o)| group.last_committed.get(p) != Some(&o.offset))
            .collect();
        if !moved.is_empty() {
            let _ = self.commit_offsets_sync(moved);
        }
    }

    /// Leaves the group now (dynamic members; a static member only stops, so that a restart
    /// within its session gets its partitions back).
    fn leave_group(&mut self) -> Result<(), ConsumeError> {
        let instance = self.config.group_instance_id.clone();
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        group.heartbeat.set_member(None);
        let member_id = std::mem::take(&mut group.member_id);
        group.generation = -1;
        if member_id.is_empty() || instance.is_some() {
            return Ok(());
        }
        let group_id = group.group_id.clone();
        match group
            .link
            .call_once(|coordinator| coordinator.leave(&group_id, &member_id, None))
        {
            Ok(()) | Err(ConsumeError::Group(GroupError::UnknownMemberId { .. })) => Ok(()),
            // No coordinator to tell now: the member's session expires it instead.
            Err(error) if coordinator_moved(&error) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// On drop: commit (with auto-commit), leave the group, stop the heartbeat thread.
    pub(super) fn close_group(&mut self) {
        if self.group.is_none() {
            return;
        }
        self.auto_commit_now();
        self.run_commit_callbacks();
        let _ = self.leave_group();
        if let Some(group) = self.group.as_mut() {
            group.heartbeat.stop();
        }
    }

    pub(super) fn take_owned(&mut self) -> Vec<TopicPartition> {
        self.group
            .as_mut()
            .map(|g| std::mem::take(&mut g.owned).into_iter().collect())
            .unwrap_or_default()
    }

    /// Calls the listener, if any, with `partitions` (skipped when empty, except assignments).
    pub(super) fn call_listener(&mut self, call: ListenerCall, partitions: &[TopicPartition]) {
        if partitions.is_empty() && call != ListenerCall::Assigned {
            return;
        }
        let Some(mut listener) = self.group.as_mut().and_then(|g| g.listener.take()) else {
            return;
        };
        match call {
            ListenerCall::Revoked => listener.on_partitions_revoked(self, partitions),
            ListenerCall::Assigned => listener.on_partitions_assigned(self, partitions),
            ListenerCall::Lost => listener.on_partitions_lost(self, partitions),
        }
        if let Some(group) = self.group.as_mut() {
            group.listener.get_or_insert(listener);
        }
    }

    /// Applies what the heartbeat learned: a rebalance to join, or a membership lost.
    pub(super) fn handle_heartbeat_event(&mut self) -> Result<(), ConsumeError> {
        let Some(event) = self.group_member()?.heartbeat.take_event() else {
            return Ok(());
        };
        match event {
            BeatEvent::Rebalance => self.group_member()?.rejoin = true,
            BeatEvent::Lost(error) => self.lose_membership(&error),
            BeatEvent::PollTimeout => {
                let group = self.group_member()?.group_id.clone();
                self.lose_membership(&GroupError::RebalanceInProgress { group });
                // Left by the heartbeat thread: join as a new member.
                self.group_member()?.member_id.clear();
            }
        }
        Ok(())
    }

    /// The partitions are gone without a revocation: tell the listener, forget them, rejoin.
    pub(super) fn lose_membership(&mut self, error: &GroupError) {
        let lost = self.take_owned();
        self.call_listener(ListenerCall::Lost, &lost);
        let _ = self.assign(Vec::new());
        if let Some(group) = self.group.as_mut() {
            if matches!(error, GroupError::UnknownMemberId { .. }) {
                group.member_id.clear();
            }
            group.generation = -1;
            group.rejoin = true;
        }
    }
}

/// Which listener method to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListenerCall {
    Revoked,
    Assigned,
    Lost,
}

/// The rebalance protocol of a strategy list: cooperative only when every assignor supports it.
pub(super) fn rebalance_protocol(strategies: &[AssignmentStrategy]) -> RebalanceProtocol {
    if strategies.iter().all(|s| {
        s.0.supported_protocols()
            .contains(&RebalanceProtocol::Cooperative)
    }) {
        RebalanceProtocol::Cooperative
    } else {
        RebalanceProtocol::Eager
    }
}

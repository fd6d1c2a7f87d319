//! The group coordinator as a deterministic state machine: every call takes the time, nothing
//! runs on its own, and the records to store come out of [`GroupCoordinator::take_outbox`].
//! [`BlockingCoordinator`](super::BlockingCoordinator) wraps it for threads.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::group::{Group, JoinLimits, MemberIds};
use super::load::LoadedPartition;
use super::member::Member;
use super::messages::{
    CommitRequest, GroupDescription, GroupListing, JoinRequest, JoinResponse, JoinStatus,
    MemberDescription, MemberRef, Protocol, SyncRequest,
};
use super::records::{
    encode_group_key, encode_group_value, encode_offset_key, encode_offset_value,
    offsets_partition_for, GroupMetadataValue, MemberMetadata, OFFSETS_TOPIC_PARTITIONS,
};
use super::wire::check_string;
use super::{GroupError, GroupState, OffsetAndMetadata, TopicPartition};

/// Configuration of a group coordinator, with Kafka's broker setting names.
///
/// ## Defaults
/// - `offsets_topic_partitions`: 50 (`offsets.topic.num.partitions`)
/// - `min_session_timeout_ms`: 6000, `max_session_timeout_ms`: 1800000
/// - `initial_rebalance_delay_ms`: 0. Kafka's broker default is 3000, to let a fleet of
///   consumers starting together join one rebalance; an embedded bus usually starts its
///   consumers in one process, where the delay only slows the first poll.
/// - `max_commit_partitions`: 100000 partitions per commit request
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorConfig {
    pub offsets_topic_partitions: u32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: u32,
    pub max_commit_partitions: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            offsets_topic_partitions: OFFSETS_TOPIC_PARTITIONS,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 0,
            max_commit_partitions: 100_000,
        }
    }
}

/// A record for `__consumer_offsets`: a null value is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsRecord {
    pub partition: u32,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// Whether this coordinator serves a partition of `__consumer_offsets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ownership {
    NotOwned,
    Loading,
    Owned,
    /// Its load failed (unreadable or corrupt records): its groups are unavailable.
    Failed,
}

/// The coordinator of the groups whose offsets partitions it owns.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: CoordinatorConfig,
    groups: BTreeMap<String, Group>,
    ownership: Vec<Ownership>,
    outbox: Vec<OffsetsRecord>,
    ids: MemberIds,
}

impl GroupCoordinator {
    /// A coordinator owning no partition yet; `now_ms` makes member ids unique across restarts.
    ///
    /// # Panics
    /// If `config.offsets_topic_partitions` is 0.
    pub fn new(config: CoordinatorConfig, now_ms: i64) -> Self {
        assert!(
            config.offsets_topic_partitions > 0,
            "the offsets topic has partitions"
        );
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            ownership: vec![Ownership::NotOwned; config.offsets_topic_partitions as usize],
            outbox: Vec::new(),
            ids: MemberIds {
                prefix: now_ms,
                next: 0,
            },
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// The offsets partition of `group`.
    pub fn partition_for(&self, group: &str) -> u32 {
        offsets_partition_for(group, self.config.offsets_topic_partitions)
    }

    /// Marks `partition` as loading: what this coordinator held of it is forgotten (the load
    /// reads it all again) and its groups answer `CoordinatorLoadInProgress` until
    /// [`GroupCoordinator::finish_load`].
    pub fn begin_load(&mut self, partition: u32) {
        self.resign(partition);
        if let Some(state) = self.ownership.get_mut(partition as usize) {
            *state = Ownership::Loading;
        }
    }

    /// Installs what a partition held and starts serving it. Loaded members get a full session
    /// from `now_ms` to come back.
    pub fn finish_load(&mut self, partition: u32, loaded: LoadedPartition, now_ms: i64) {
        let LoadedPartition {
            groups,
            mut offsets,
        } = loaded;
        let names: BTreeSet<String> = groups.keys().chain(offsets.keys()).cloned().collect();
        for name in names {
            let mut group = match groups.get(&name) {
                Some(value) => group_from_value(&name, value, now_ms),
                None => Group::new(&name, now_ms),
            };
            group.offsets = offsets.remove(&name).unwrap_or_default();
            self.groups.insert(name, group);
        }
        if let Some(state) = self.ownership.get_mut(partition as usize) {
            *state = Ownership::Owned;
        }
    }

    /// Marks `partition` as failed to load: its groups answer `CoordinatorNotAvailable`.
    pub fn fail_load(&mut self, partition: u32) {
        if let Some(state) = self.ownership.get_mut(partition as usize) {
            *state = Ownership::Failed;
        }
    }

    /// Stops serving `partition` (its leadership moved): its groups are forgotten here.
    pub fn resign(&mut self, partition: u32) {
        let config = self.config;
        self.groups.retain(|name, _| {
            offsets_partition_for(name, config.offsets_topic_partitions) != partition
        });
        if let Some(state) = self.ownership.get_mut(partition as usize) {
            *state = Ownership::NotOwned;
        }
    }

    fn check_served(&self, group: &str) -> Result<(), GroupError> {
        if group.is_empty() || !check_string(group) {
            return Err(GroupError::InvalidGroupId {
                group: group.to_owned(),
            });
        }
        let partition = self.partition_for(group);
        match self.ownership[partition as usize] {
            Ownership::Owned => Ok(()),
            Ownership::Loading => Err(GroupError::CoordinatorLoadInProgress { partition }),
            Ownership::NotOwned => Err(GroupError::NotCoordinator {
                group: group.to_owned(),
                partition,
            }),
            Ownership::Failed => Err(GroupError::CoordinatorNotAvailable {
                group: group.to_owned(),
            }),
        }
    }

    fn limits(&self) -> JoinLimits {
        JoinLimits {
            min_session_timeout_ms: self.config.min_session_timeout_ms,
            max_session_timeout_ms: self.config.max_session_timeout_ms,
            initial_rebalance_delay_ms: i64::from(self.config.initial_rebalance_delay_ms),
        }
    }

    fn group_mut(&mut self, group: &str) -> Result<&mut Group, GroupError> {
        self.check_served(group)?;
        self.groups
            .get_mut(group)
            .ok_or_else(|| GroupError::UnknownMemberId {
                group: group.to_owned(),
                member_id: String::new(),
            })
    }

    /// JoinGroup. A new group is created; a member joining with an empty member id gets one,
    /// at once or (with `require_known_member_id`, dynamic members only) through a
    /// `MemberIdRequired` answer it joins again with.
    ///
    /// # Errors
    /// `InvalidGroupId`, `NotCoordinator`, `CoordinatorLoadInProgress`,
    /// `CoordinatorNotAvailable` (a group being deleted), `InvalidSessionTimeout`,
    /// `InconsistentGroupProtocol`, `MemberIdRequired`, `UnknownMemberId` (also for a member
    /// id that is neither a member nor pending), `FencedInstanceId`.
    pub fn join(&mut self, request: &JoinRequest, now_ms: i64) -> Result<JoinStatus, GroupError> {
        self.check_served(&request.group_id)?;
        if !request.member_id.is_empty() && !self.groups.contains_key(&request.group_id) {
            return Err(GroupError::UnknownMemberId {
                group: request.group_id.clone(),
                member_id: request.member_id.clone(),
            });
        }
        let limits = self.limits();
        let group = self
            .groups
            .entry(request.group_id.clone())
            .or_insert_with(|| Group::new(&request.group_id, now_ms));
        let status = group.join(request, limits, &mut self.ids, now_ms);
        self.flush_dirty();
        status
    }

    /// The JoinGroup response of a pending join; `None` while the rebalance goes on.
    ///
    /// # Errors
    /// `UnknownMemberId` when the member was dropped meanwhile; `FencedInstanceId`.
    pub fn poll_join(
        &mut self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<Option<JoinResponse>, GroupError> {
        self.group_mut(group)?.poll_join(member_id, instance_id)
    }

    /// SyncGroup: the member's assignment, or `None` until the leader has sent it.
    ///
    /// # Errors
    /// `UnknownMemberId`, `FencedInstanceId`, `IllegalGeneration`, `RebalanceInProgress`.
    pub fn sync(
        &mut self,
        request: &SyncRequest,
        now_ms: i64,
    ) -> Result<Option<Bytes>, GroupError> {
        let result = self
            .group_mut(&request.member.group_id)?
            .sync(request, now_ms);
        self.flush_dirty();
        result
    }

    /// A pending SyncGroup's answer.
    ///
    /// # Errors
    /// As [`GroupCoordinator::sync`].
    pub fn poll_sync(&mut self, member: &MemberRef) -> Result<Option<Bytes>, GroupError> {
        self.group_mut(&member.group_id)?.poll_sync(member)
    }

    /// Heartbeat.
    ///
    /// # Errors
    /// `RebalanceInProgress` (rejoin), `UnknownMemberId`, `IllegalGeneration`,
    /// `FencedInstanceId`, `CoordinatorNotAvailable`.
    pub fn heartbeat(&mut self, member: &MemberRef, now_ms: i64) -> Result<(), GroupError> {
        self.group_mut(&member.group_id)?.heartbeat(member, now_ms)
    }

    /// LeaveGroup, by member id or (empty member id) by static instance id.
    ///
    /// # Errors
    /// `UnknownMemberId`, `FencedInstanceId`.
    pub fn leave(
        &mut self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let result = self.group_mut(group)?.leave(member_id, instance_id, now_ms);
        self.flush_dirty();
        result
    }

    /// Expires members and ends rebalance phases whose time has come.
    pub fn tick(&mut self, now_ms: i64) {
        for group in self.groups.values_mut() {
            group.tick(now_ms);
        }
        self.flush_dirty();
    }

    /// When `tick` next has work, if ever.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.groups
            .values()
            .filter_map(Group::next_deadline_ms)
            .min()
    }

    /// Validates an offset commit and returns the records that carry it; apply them with
    /// [`GroupCoordinator::apply_commit`] once stored. A standalone commit (generation -1) to a
    /// group that does not exist creates it, Empty.
    ///
    /// # Errors
    /// `IllegalGeneration` (also for a member commit to a group that does not exist),
    /// `UnknownMemberId`, `FencedInstanceId`, `RebalanceInProgress`, `CoordinatorNotAvailable`,
    /// `TooLarge`.
    pub fn prepare_commit(
        &mut self,
        request: &CommitRequest,
        now_ms: i64,
    ) -> Result<Vec<OffsetsRecord>, GroupError> {
        let member = &request.member;
        self.check_served(&member.group_id)?;
        self.check_commit_size(request)?;
        match self.groups.get(&member.group_id) {
            Some(group) => group.validate_commit(member)?,
            None if member.generation_id < 0 => {
                let group = Group::new(&member.group_id, now_ms);
                self.groups.insert(member.group_id.clone(), group);
            }
            None => {
                return Err(GroupError::IllegalGeneration {
                    group: member.group_id.clone(),
                    generation: member.generation_id,
                    current: -1,
                })
            }
        }
        let partition = self.partition_for(&member.group_id);
        Ok(request
            .offsets
            .iter()
            .map(|(tp, offset)| OffsetsRecord {
                partition,
                key: encode_offset_key(&member.group_id, tp),
                value: Some(encode_offset_value(&stamped(offset, now_ms))),
            })
            .collect())
    }

    fn check_commit_size(&self, request: &CommitRequest) -> Result<(), GroupError> {
        if request.offsets.len() > self.config.max_commit_partitions {
            return Err(GroupError::TooLarge {
                field: "commit partitions",
            });
        }
        let fits = request
            .offsets
            .iter()
            .all(|(tp, offset)| check_string(&tp.topic) && check_string(&offset.metadata));
        if fits && offset_fits(request) {
            Ok(())
        } else {
            Err(GroupError::TooLarge {
                field: "topic or metadata",
            })
        }
    }

    /// Applies a stored commit to the offsets cache.
    pub fn apply_commit(&mut self, request: &CommitRequest, now_ms: i64) {
        if let Some(group) = self.groups.get_mut(&request.member.group_id) {
            for (tp, offset) in &request.offsets {
                group.offsets.insert(tp.clone(), stamped(offset, now_ms));
            }
        }
    }

    /// The committed offsets of `group`: all of them, or those of `partitions` that have one.
    /// A group that does not exist has none.
    ///
    /// # Errors
    /// `InvalidGroupId`, `NotCoordinator`, `CoordinatorLoadInProgress`.
    pub fn committed(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, GroupError> {
        self.check_served(group)?;
        let Some(group) = self.groups.get(group) else {
            return Ok(BTreeMap::new());
        };
        Ok(match partitions {
            None => group.offsets.clone(),
            Some(partitions) => partitions
                .iter()
                .filter_map(|tp| group.offsets.get(tp).map(|o| (tp.clone(), o.clone())))
                .collect(),
        })
    }

    /// DescribeGroups.
    ///
    /// # Errors
    /// `GroupIdNotFound`, `NotCoordinator`, `CoordinatorLoadInProgress`.
    pub fn describe(&self, group: &str) -> Result<GroupDescription, GroupError> {
        self.check_served(group)?;
        let found = self
            .groups
            .get(group)
            .ok_or_else(|| GroupError::GroupIdNotFound {
                group: group.to_owned(),
            })?;
        Ok(describe_group(found))
    }

    /// ListGroups: every group this coordinator serves, by id.
    pub fn list(&self) -> Vec<GroupListing> {
        self.groups
            .values()
            .map(|group| GroupListing {
                group_id: group.id.clone(),
                state: group.state,
                protocol_type: group.protocol_type.clone(),
            })
            .collect()
    }

    /// Deletes an Empty group and its offsets; the tombstones come out of the outbox.
    ///
    /// # Errors
    /// `GroupIdNotFound`, `NonEmptyGroup`, `NotCoordinator`, `CoordinatorLoadInProgress`.
    pub fn delete(&mut self, group: &str) -> Result<(), GroupError> {
        self.check_empty(group)?;
        let partition = self.partition_for(group);
        if let Some(removed) = self.groups.remove(group) {
            for tp in removed.offsets.keys() {
                self.outbox
                    .push(tombstone(partition, encode_offset_key(group, tp)));
            }
        }
        self.outbox
            .push(tombstone(partition, encode_group_key(group)));
        Ok(())
    }

    /// Checks that `group` exists and has no members (for deletion and offset resets).
    ///
    /// # Errors
    /// `GroupIdNotFound`, `NonEmptyGroup`, `NotCoordinator`, `CoordinatorLoadInProgress`.
    pub fn check_empty(&self, group: &str) -> Result<(), GroupError> {
        self.check_served(group)?;
        match self.groups.get(group) {
            None => Err(GroupError::GroupIdNotFound {
                group: group.to_owned(),
            }),
            Some(found) if found.state != GroupState::Empty => Err(GroupError::NonEmptyGroup {
                group: group.to_owned(),
            }),
            Some(_) => Ok(()),
        }
    }

    /// The records to store since the last call, in order.
    pub fn take_outbox(&mut self) -> Vec<OffsetsRecord> {
        std::mem::take(&mut self.outbox)
    }

    /// Queues a group metadata record for every group whose stored form changed.
    fn flush_dirty(&mut self) {
        let partitions = self.config.offsets_topic_partitions;
        for group in self.groups.values_mut().filter(|group| group.dirty) {
            group.dirty = false;
            self.outbox.push(OffsetsRecord {
                partition: offsets_partition_for(&group.id, partitions),
                key: encode_group_key(&group.id),
                value: Some(encode_group_value(&group_value(group))),
            });
        }
    }
}

fn offset_fits(request: &CommitRequest) -> bool {
    request
        .offsets
        .iter()
        .all(|(_, offset)| i64::try_from(offset.offset).is_ok())
}

fn stamped(offset: &OffsetAndMetadata, now_ms: i64) -> OffsetAndMetadata {
    OffsetAndMetadata {
        commit_timestamp_ms: if offset.commit_timestamp_ms < 0 {
            now_ms
        } else {
            offset.commit_timestamp_ms
        },
        ..offset.clone()
    }
}

fn tombstone(partition: u32, key: Vec<u8>) -> OffsetsRecord {
    OffsetsRecord {
        partition,
        key,
        value: None,
    }
}

fn describe_group(group: &Group) -> GroupDescription {
    let protocol = group.protocol.clone().unwrap_or_default();
    GroupDescription {
        group_id: group.id.clone(),
        state: group.state,
        generation_id: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol: group.protocol.clone(),
        leader: group.leader.clone(),
        members: group
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}

/// The stored form of a group.
fn group_value(group: &Group) -> GroupMetadataValue {
    let protocol = group.protocol.clone().unwrap_or_default();
    GroupMetadataValue {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation: group.generation,
        protocol: group.protocol.clone(),
        leader: group.leader.clone(),
        current_state_timestamp_ms: group.state_since_ms,
        members: group
            .members
            .values()
            .map(|m| MemberMetadata {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}

/// A loaded group: Stable with its members (each given a fresh session), or Empty.
fn group_from_value(name: &str, value: &GroupMetadataValue, now_ms: i64) -> Group {
    let mut group = Group::new(name, now_ms);
    group.generation = value.generation;
    group.protocol_type = (!value.protocol_type.is_empty()).then(|| value.protocol_type.clone());
    group.protocol.clone_from(&value.protocol);
    group.leader.clone_from(&value.leader);
    // Members without a protocol cannot be Stable: such a record (not one Kafka writes) loads
    // as an Empty group.
    let members = if value.protocol.is_some() {
        value.members.as_slice()
    } else {
        &[]
    };
    for (order, stored) in members.iter().enumerate() {
        let protocols = value
            .protocol
            .iter()
            .map(|name| Protocol {
                name: name.clone(),
                metadata: stored.subscription.clone(),
            })
            .collect();
        group.add_loaded_member(Member {
            id: stored.member_id.clone(),
            instance_id: stored.group_instance_id.clone(),
            client_id: stored.client_id.clone(),
            client_host: stored.client_host.clone(),
            session_timeout_ms: stored.session_timeout_ms,
            rebalance_timeout_ms: stored.rebalance_timeout_ms,
            protocols,
            assignment: stored.assignment.clone(),
            heartbeat_deadline_ms: now_ms + i64::from(stored.session_timeout_ms),
            joined: false,
            join_response: None,
            synced: true,
            join_order: order as u64,
        });
    }
    if !group.members.is_empty() {
        group.state = GroupState::Stable;
    }
    group
}

//! One group's membership state machine: join, sync, heartbeat, leave and expiry, with
//! generations, as Kafka's classic group coordinator runs them. Time comes in as `now_ms`.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::member::Member;
use super::messages::{
    JoinRequest, JoinResponse, JoinStatus, JoinedMember, MemberRef, Protocol, SyncRequest,
};
use super::protocol::Subscription;
use super::{GroupError, GroupState, OffsetAndMetadata, TopicPartition};

/// Fresh member ids: `<client id>-<coordinator start ms, hex>-<counter>`, unique across restarts
/// of the coordinator (Kafka uses a random UUID; this stays deterministic).
#[derive(Debug)]
pub(crate) struct MemberIds {
    pub prefix: i64,
    pub next: u64,
}

impl MemberIds {
    /// A member id that `group` neither has nor holds pending (a loaded group may hold ids
    /// from a coordinator started at the same clock reading, as with a manual clock).
    fn fresh(&mut self, client_id: &str, group: &Group) -> String {
        loop {
            self.next += 1;
            let id = format!("{client_id}-{:x}-{}", self.prefix, self.next);
            if !group.members.contains_key(&id) && !group.pending.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Limits the group applies to joins.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JoinLimits {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i64,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    pub state_since_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out by a `MemberIdRequired` answer (KIP-394), not members yet, each
    /// with when it is forgotten unless it joins: the join time plus its session timeout.
    pub pending: BTreeMap<String, i64>,
    /// Static members: instance id to the member id holding it.
    pub instances: BTreeMap<String, String>,
    /// PreparingRebalance: when members that have not rejoined are dropped. CompletingRebalance:
    /// when members that have not synced are dropped.
    pub deadline_ms: Option<i64>,
    /// A group that was Empty completes its first join no earlier than this.
    pub join_not_before_ms: i64,
    pub offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    /// The group's metadata changed in a way that must be stored.
    pub dirty: bool,
    next_join_order: u64,
}

impl Group {
    pub fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_owned(),
            state: GroupState::Empty,
            state_since_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            instances: BTreeMap::new(),
            deadline_ms: None,
            join_not_before_ms: now_ms,
            offsets: BTreeMap::new(),
            dirty: false,
            next_join_order: 0,
        }
    }

    pub fn add_loaded_member(&mut self, member: Member) {
        if let Some(instance) = &member.instance_id {
            self.instances.insert(instance.clone(), member.id.clone());
        }
        self.next_join_order = self.next_join_order.max(member.join_order + 1);
        self.members.insert(member.id.clone(), member);
    }

    fn become_state(&mut self, next: GroupState, now_ms: i64) {
        assert!(
            self.state.can_become(next),
            "group {}: {} cannot become {}",
            self.id,
            self.state,
            next
        );
        self.state = next;
        self.state_since_ms = now_ms;
    }

    fn unknown_member(&self, member_id: &str) -> GroupError {
        GroupError::UnknownMemberId {
            group: self.id.clone(),
            member_id: member_id.to_owned(),
        }
    }

    /// The member a request comes from, fencing old holders of a static instance id.
    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            if let Some(holder) = self.instances.get(instance) {
                if holder != member_id {
                    return Err(GroupError::FencedInstanceId {
                        group: self.id.clone(),
                        instance_id: instance.to_owned(),
                    });
                }
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(self.unknown_member(member_id))
        }
    }

    fn check_generation(&self, generation: i32) -> Result<(), GroupError> {
        if generation == self.generation {
            Ok(())
        } else {
            Err(GroupError::IllegalGeneration {
                group: self.id.clone(),
                generation,
                current: self.generation,
            })
        }
    }

    fn check_alive(&self) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable {
                group: self.id.clone(),
            });
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // JoinGroup

    pub fn join(
        &mut self,
        request: &JoinRequest,
        limits: JoinLimits,
        ids: &mut MemberIds,
        now_ms: i64,
    ) -> Result<JoinStatus, GroupError> {
        self.check_alive()?;
        check_join_request(request, limits)?;
        if !self.accepts(request) {
            return Err(GroupError::InconsistentGroupProtocol {
                group: self.id.clone(),
            });
        }
        let instance = request.group_instance_id.as_deref();
        let member_id = if request.member_id.is_empty() {
            match instance.and_then(|i| self.instances.get(i).cloned()) {
                Some(old_id) => self.rejoin_static(&old_id, request, ids, now_ms),
                // Static members skip the round, as in Kafka: their instance id already
                // names them, so a lost response leaves no orphan.
                None if request.require_known_member_id && instance.is_none() => {
                    return Err(self.add_pending(request, ids, now_ms));
                }
                None => {
                    let id = ids.fresh(&request.client_id, self);
                    self.add_member(id, request, limits, now_ms)
                }
            }
        } else if instance.is_none() && self.pending.remove(&request.member_id).is_some() {
            self.add_member(request.member_id.clone(), request, limits, now_ms)
        } else {
            self.check_member(&request.member_id, instance)?;
            self.rejoin(request, now_ms)
        };
        self.try_complete_join(now_ms);
        Ok(self.join_status(&member_id))
    }

    fn join_status(&mut self, member_id: &str) -> JoinStatus {
        match self
            .members
            .get_mut(member_id)
            .and_then(|m| m.join_response.take())
        {
            Some(response) => JoinStatus::Joined(response),
            None => JoinStatus::Pending {
                member_id: member_id.to_owned(),
            },
        }
    }

    /// The JoinGroup response of a member whose join was pending, once the rebalance completed.
    pub fn poll_join(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<Option<JoinResponse>, GroupError> {
        self.check_alive()?;
        self.check_member(member_id, instance_id)?;
        Ok(match self.join_status(member_id) {
            JoinStatus::Joined(response) => Some(response),
            JoinStatus::Pending { .. } => None,
        })
    }

    /// Whether the group can take this member: same protocol type, and a protocol every
    /// member (counting this one, as it now asks) supports.
    fn accepts(&self, request: &JoinRequest) -> bool {
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.id != request.member_id)
            .filter(|m| m.instance_id.is_none() || m.instance_id != request.group_instance_id)
            .collect();
        if others.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(request.protocol_type.as_str())
            && request
                .protocols
                .iter()
                .any(|p| others.iter().all(|m| m.supports(&p.name)))
    }

    /// Hands out a member id to join again with and holds it pending for one session: no
    /// member, no rebalance.
    fn add_pending(
        &mut self,
        request: &JoinRequest,
        ids: &mut MemberIds,
        now_ms: i64,
    ) -> GroupError {
        let id = ids.fresh(&request.client_id, self);
        let forget_at_ms = now_ms + i64::from(request.session_timeout_ms);
        self.pending.insert(id.clone(), forget_at_ms);
        GroupError::MemberIdRequired {
            group: self.id.clone(),
            member_id: id,
        }
    }

    fn add_member(
        &mut self,
        id: String,
        request: &JoinRequest,
        limits: JoinLimits,
        now_ms: i64,
    ) -> String {
        let member = Member::from_request(id.clone(), request, self.next_join_order, now_ms);
        self.next_join_order += 1;
        if let Some(instance) = &request.group_instance_id {
            self.instances.insert(instance.clone(), id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        self.members.insert(id.clone(), member);
        match self.state {
            GroupState::Empty => {
                self.join_not_before_ms = now_ms + limits.initial_rebalance_delay_ms;
                self.prepare_rebalance(now_ms);
            }
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now_ms),
            GroupState::PreparingRebalance | GroupState::Dead => {}
        }
        self.mark_joined(&id);
        id
    }

    fn mark_joined(&mut self, member_id: &str) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.joined = true;
        }
    }

    fn rejoin(&mut self, request: &JoinRequest, now_ms: i64) -> String {
        let id = request.member_id.clone();
        let Some(member) = self.members.get_mut(&id) else {
            return id;
        };
        let changed = member.update(request);
        member.heartbeat(now_ms);
        member.join_response = None;
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        // A follower rejoining unchanged gets the current generation back; a leader rejoining a
        // Stable group means to rebalance (its metadata view changed).
        let leads_stable_group = is_leader && self.state == GroupState::Stable;
        let answer_now = !(changed || leads_stable_group);
        match self.state {
            GroupState::PreparingRebalance => self.mark_joined(&id),
            GroupState::CompletingRebalance | GroupState::Stable if answer_now => {
                let response = self.response_for(&id, false);
                if let Some(member) = self.members.get_mut(&id) {
                    member.join_response = Some(response);
                }
            }
            _ => {
                self.prepare_rebalance(now_ms);
                self.mark_joined(&id);
            }
        }
        id
    }

    /// A static member rejoining with an empty member id (a restart): it takes a new member id,
    /// fencing the old one, and keeps its assignment with no rebalance when the group is Stable
    /// and its protocols are unchanged (KIP-345).
    fn rejoin_static(
        &mut self,
        old_id: &str,
        request: &JoinRequest,
        ids: &mut MemberIds,
        now_ms: i64,
    ) -> String {
        let new_id = ids.fresh(&request.client_id, self);
        let Some(mut member) = self.members.remove(old_id) else {
            return new_id;
        };
        let changed = self.subscription_changed(&member, request);
        member.update(request);
        member.id.clone_from(&new_id);
        member.heartbeat(now_ms);
        member.join_response = None;
        self.members.insert(new_id.clone(), member);
        if let Some(instance) = &request.group_instance_id {
            self.instances.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        match self.state {
            GroupState::Stable if !changed => {
                self.dirty = true;
                let response = self.response_for(&new_id, true);
                if let Some(member) = self.members.get_mut(&new_id) {
                    member.join_response = Some(response);
                }
            }
            GroupState::PreparingRebalance => self.mark_joined(&new_id),
            _ => {
                self.prepare_rebalance(now_ms);
                self.mark_joined(&new_id);
            }
        }
        new_id
    }

    /// Whether a restarted static member asks for something else than before: another set of
    /// protocols, or (consumer groups) other topics under the group's protocol. Its owned
    /// partitions and generation in the subscription do not count, as in Kafka.
    fn subscription_changed(&self, member: &Member, request: &JoinRequest) -> bool {
        let names = |protocols: &[Protocol]| -> Vec<String> {
            protocols.iter().map(|p| p.name.clone()).collect()
        };
        if names(&member.protocols) != names(&request.protocols) {
            return true;
        }
        let Some(protocol) = self.protocol.as_deref() else {
            return true;
        };
        let topics = |metadata: &[u8]| {
            Subscription::decode(metadata).ok().map(|mut s| {
                s.topics.sort();
                s.topics
            })
        };
        let before = topics(&member.metadata(protocol));
        let after = request
            .protocols
            .iter()
            .find(|p| p.name == protocol)
            .and_then(|p| topics(&p.metadata));
        before.is_none() || before != after
    }

    fn prepare_rebalance(&mut self, now_ms: i64) {
        self.become_state(GroupState::PreparingRebalance, now_ms);
        // A JoinGroup response not yet collected stays: its member syncs with it, learns of
        // this rebalance (RebalanceInProgress) and rejoins, as with Kafka's pushed responses.
        for member in self.members.values_mut() {
            member.joined = false;
            member.synced = false;
        }
        let rebalance_timeout_ms = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        self.deadline_ms = Some(now_ms + rebalance_timeout_ms);
    }

    /// Completes the join phase once every member has rejoined and no pending member id is
    /// still on its way back (Kafka waits for those too, so that a member in the middle of
    /// its KIP-394 round does not cost a second rebalance right after this one).
    fn try_complete_join(&mut self, now_ms: i64) {
        if self.state == GroupState::PreparingRebalance
            && self.members.values().all(|m| m.joined)
            && self.pending.is_empty()
            && now_ms >= self.join_not_before_ms
        {
            self.complete_join(now_ms);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, the generation moves on, the
    /// leader gets every member's metadata.
    fn complete_join(&mut self, now_ms: i64) {
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.joined)
            .map(|m| m.id.clone())
            .collect();
        for id in absent {
            self.remove_member(&id);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.become_state(GroupState::Empty, now_ms);
            self.protocol = None;
            self.leader = None;
            self.deadline_ms = None;
            self.dirty = true;
            return;
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.join_order)
                .map(|m| m.id.clone());
        }
        self.become_state(GroupState::CompletingRebalance, now_ms);
        let sync_timeout_ms = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        self.deadline_ms = Some(now_ms + sync_timeout_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.response_for(&id, false);
            if let Some(member) = self.members.get_mut(&id) {
                member.heartbeat(now_ms);
                member.join_response = Some(response);
            }
        }
    }

    fn response_for(&self, member_id: &str, skip_assignment: bool) -> JoinResponse {
        let leader_id = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if leader_id == member_id {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            generation_id: self.generation,
            protocol_name: self.protocol.clone(),
            leader_id,
            member_id: member_id.to_owned(),
            members,
            skip_assignment,
        }
    }

    /// Kafka's vote: each member votes for its most preferred protocol that every member
    /// supports; the most votes win, ties going to the earlier in the leader's preference.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().min_by_key(|m| m.join_order)?;
        let candidates: Vec<&Protocol> = first
            .protocols
            .iter()
            .filter(|p| self.members.values().all(|m| m.supports(&p.name)))
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(choice) = member
                .protocols
                .iter()
                .find(|p| candidates.iter().any(|c| c.name == p.name))
            {
                *votes.entry(choice.name.as_str()).or_default() += 1;
            }
        }
        let most = votes.values().copied().max()?;
        candidates
            .iter()
            .find(|c| votes.get(c.name.as_str()) == Some(&most))
            .map(|c| c.name.clone())
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(member) = self.members.remove(member_id) {
            if let Some(instance) = member.instance_id {
                if self.instances.get(&instance).map(String::as_str) == Some(member_id) {
                    self.instances.remove(&instance);
                }
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    /// A member left or expired: the others rebalance.
    fn drop_member(&mut self, member_id: &str, now_ms: i64) {
        self.remove_member(member_id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now_ms),
            _ => {}
        }
        self.try_complete_join(now_ms);
    }

    // -----------------------------------------------------------------------------------------
    // SyncGroup, Heartbeat, LeaveGroup

    fn check_request(&self, member: &MemberRef) -> Result<(), GroupError> {
        self.check_alive()?;
        self.check_member(&member.member_id, member.group_instance_id.as_deref())?;
        self.check_generation(member.generation_id)
    }

    /// The member's assignment once the leader has synced; `None` while waiting for it.
    pub fn sync(
        &mut self,
        request: &SyncRequest,
        now_ms: i64,
    ) -> Result<Option<Bytes>, GroupError> {
        self.check_request(&request.member)?;
        let id = request.member.member_id.clone();
        if let Some(member) = self.members.get_mut(&id) {
            member.heartbeat(now_ms);
            member.synced = true;
        }
        if self.state == GroupState::CompletingRebalance && self.leader.as_deref() == Some(&id) {
            let assignments: BTreeMap<&str, &Bytes> = request
                .assignments
                .iter()
                .map(|(member, bytes)| (member.as_str(), bytes))
                .collect();
            for member in self.members.values_mut() {
                member.assignment = assignments
                    .get(member.id.as_str())
                    .map(|bytes| (*bytes).clone())
                    .unwrap_or_default();
            }
            self.become_state(GroupState::Stable, now_ms);
            self.deadline_ms = None;
            self.dirty = true;
        }
        self.poll_sync(&request.member)
    }

    /// As [`Group::sync`], for a member already waiting.
    pub fn poll_sync(&self, member: &MemberRef) -> Result<Option<Bytes>, GroupError> {
        self.check_request(member)?;
        match self.state {
            GroupState::Stable => Ok(self
                .members
                .get(&member.member_id)
                .map(|m| m.assignment.clone())),
            GroupState::CompletingRebalance => Ok(None),
            _ => Err(GroupError::RebalanceInProgress {
                group: self.id.clone(),
            }),
        }
    }

    pub fn heartbeat(&mut self, member: &MemberRef, now_ms: i64) -> Result<(), GroupError> {
        self.check_request(member)?;
        if let Some(found) = self.members.get_mut(&member.member_id) {
            found.heartbeat(now_ms);
        }
        if self.state == GroupState::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress {
                group: self.id.clone(),
            });
        }
        Ok(())
    }

    /// LeaveGroup by member id, or by instance id alone (an empty `member_id`).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        self.check_alive()?;
        if instance_id.is_none() && self.pending.remove(member_id).is_some() {
            self.try_complete_join(now_ms);
            return Ok(());
        }
        let id = match (member_id.is_empty(), instance_id) {
            (true, Some(instance)) => self
                .instances
                .get(instance)
                .cloned()
                .ok_or_else(|| self.unknown_member(member_id))?,
            _ => {
                self.check_member(member_id, instance_id)?;
                member_id.to_owned()
            }
        };
        self.drop_member(&id, now_ms);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Time

    /// Members exempt from session expiry: those waiting for their JoinGroup response.
    fn expirable(&self, member: &Member) -> bool {
        !(self.state == GroupState::PreparingRebalance && member.joined)
    }

    /// Expires members and pending member ids whose session ran out and ends phases whose
    /// deadline passed.
    pub fn tick(&mut self, now_ms: i64) {
        self.pending
            .retain(|_, forget_at_ms| *forget_at_ms > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| self.expirable(m) && m.heartbeat_deadline_ms <= now_ms)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            self.drop_member(&id, now_ms);
        }
        let due = self.deadline_ms.is_some_and(|deadline| deadline <= now_ms);
        match self.state {
            GroupState::PreparingRebalance if due && now_ms >= self.join_not_before_ms => {
                self.complete_join(now_ms)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now_ms),
            GroupState::CompletingRebalance if due => self.expire_unsynced(now_ms),
            _ => {}
        }
    }

    fn expire_unsynced(&mut self, now_ms: i64) {
        let unsynced: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.synced)
            .map(|m| m.id.clone())
            .collect();
        for id in unsynced {
            self.remove_member(&id);
        }
        self.prepare_rebalance(now_ms);
        self.try_complete_join(now_ms);
    }

    /// The earliest time `tick` has something to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let sessions = self
            .members
            .values()
            .filter(|m| self.expirable(m))
            .map(|m| m.heartbeat_deadline_ms);
        let phase = match self.state {
            GroupState::PreparingRebalance => self
                .deadline_ms
                .map(|deadline| deadline.max(self.join_not_before_ms)),
            GroupState::CompletingRebalance => self.deadline_ms,
            _ => None,
        };
        let pending = self.pending.values().copied();
        sessions.chain(pending).chain(phase).min()
    }

    // -----------------------------------------------------------------------------------------
    // Offsets

    /// Kafka's checks before an offset commit: a standalone commit (generation < 0) only to an
    /// Empty group; otherwise a current member of the current generation, not while the
    /// generation's assignment is being distributed.
    pub fn validate_commit(&self, member: &MemberRef) -> Result<(), GroupError> {
        self.check_alive()?;
        if member.generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if member.generation_id >= 0
            || !member.member_id.is_empty()
            || member.group_instance_id.is_some()
        {
            self.check_member(&member.member_id, member.group_instance_id.as_deref())?;
            self.check_generation(member.generation_id)?;
        } else {
            return Err(self.unknown_member(&member.member_id));
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress {
                group: self.id.clone(),
            });
        }
        Ok(())
    }
}

fn check_join_request(request: &JoinRequest, limits: JoinLimits) -> Result<(), GroupError> {
    let timeout_ms = request.session_timeout_ms;
    if timeout_ms < limits.min_session_timeout_ms || timeout_ms > limits.max_session_timeout_ms {
        return Err(GroupError::InvalidSessionTimeout {
            timeout_ms,
            min_ms: limits.min_session_timeout_ms,
            max_ms: limits.max_session_timeout_ms,
        });
    }
    if request.protocols.is_empty() || request.protocol_type.is_empty() {
        return Err(GroupError::InconsistentGroupProtocol {
            group: request.group_id.clone(),
        });
    }
    let fits = |text: &str| super::wire::check_string(text);
    let names_fit = fits(&request.client_id)
        && fits(&request.client_host)
        && fits(&request.protocol_type)
        && request.group_instance_id.as_deref().is_none_or(fits)
        && request.protocols.iter().all(|p| fits(&p.name));
    if !names_fit {
        return Err(GroupError::TooLarge {
            field: "join request string",
        });
    }
    Ok(())
}

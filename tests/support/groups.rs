//! Test members that drive a `GroupCoordinator` step by step, as the consumer would: join,
//! sync (the leader runs the assignor), heartbeat, rejoin on `RebalanceInProgress`, revoke
//! per the rebalance protocol.
#![allow(
    dead_code,
    reason = "each test binary uses a part of the support module"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use logbus::group::protocol::{MemberAssignment, Subscription, CONSUMER_PROTOCOL_TYPE};
use logbus::group::{
    Assignor, CoordinatorConfig, GroupCoordinator, GroupError, JoinRequest, JoinResponse,
    JoinStatus, LoadedPartition, MemberRef, MemberSubscription, Protocol, RebalanceProtocol,
    SyncRequest, TopicPartition,
};

pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 30_000;

/// A coordinator serving every partition, nothing loaded.
pub fn coordinator() -> GroupCoordinator {
    let config = CoordinatorConfig {
        offsets_topic_partitions: 4,
        ..CoordinatorConfig::default()
    };
    let mut core = GroupCoordinator::new(config, 0);
    for partition in 0..4 {
        core.finish_load(partition, LoadedPartition::default(), 0);
    }
    core
}

pub fn join_request(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    protocols: Vec<Protocol>,
) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_owned),
        client_id: "client".into(),
        client_host: "localhost".into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: CONSUMER_PROTOCOL_TYPE.into(),
        protocols,
        require_known_member_id: false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Out,
    Joining,
    Syncing,
    /// Cooperative: holds the partitions it must revoke until its next step, as an
    /// application still processing them would.
    Revoking,
    Stable,
}

/// One member as a consumer runs it.
#[derive(Debug)]
pub struct TestMember {
    pub group: String,
    pub member_id: String,
    pub instance: Option<String>,
    pub generation: i32,
    pub phase: Phase,
    pub owned: Vec<TopicPartition>,
    pub assignor: Arc<dyn Assignor>,
    pub topics: Vec<String>,
    pub partitions: BTreeMap<String, u32>,
    /// The assignment to keep once the revocation is done.
    pub pending: Vec<TopicPartition>,
}

impl TestMember {
    pub fn new(
        group: &str,
        assignor: Arc<dyn Assignor>,
        partitions: BTreeMap<String, u32>,
    ) -> Self {
        TestMember {
            group: group.into(),
            member_id: String::new(),
            instance: None,
            generation: -1,
            phase: Phase::Out,
            owned: Vec::new(),
            assignor,
            topics: partitions.keys().cloned().collect(),
            partitions,
            pending: Vec::new(),
        }
    }

    pub fn cooperative(&self) -> bool {
        self.assignor
            .supported_protocols()
            .contains(&RebalanceProtocol::Cooperative)
    }

    pub fn member_ref(&self) -> MemberRef {
        MemberRef {
            group_id: self.group.clone(),
            member_id: self.member_id.clone(),
            group_instance_id: self.instance.clone(),
            generation_id: self.generation,
        }
    }

    fn protocols(&self) -> Vec<Protocol> {
        let subscription = Subscription {
            topics: self.topics.clone(),
            user_data: None,
            owned_partitions: self.owned.clone(),
            generation: self.generation,
        };
        vec![Protocol {
            name: self.assignor.name().into(),
            metadata: Bytes::from(subscription.encode()),
        }]
    }

    /// Starts a (re)join; eager members give up everything first.
    pub fn join(&mut self, core: &mut GroupCoordinator, now: i64) -> Result<(), GroupError> {
        if !self.cooperative() {
            self.owned.clear();
        }
        let request = join_request(
            &self.group,
            &self.member_id,
            self.instance.as_deref(),
            self.protocols(),
        );
        self.phase = Phase::Joining;
        match core.join(&request, now) {
            Ok(JoinStatus::Joined(response)) => self.joined(core, response, now),
            Ok(JoinStatus::Pending { member_id }) => {
                self.member_id = member_id;
                Ok(())
            }
            Err(error) => self.lost(error),
        }
    }

    /// Membership gone: partitions are lost, the member starts over.
    pub fn lost(&mut self, error: GroupError) -> Result<(), GroupError> {
        self.owned.clear();
        self.phase = Phase::Out;
        if matches!(
            error,
            GroupError::UnknownMemberId { .. } | GroupError::FencedInstanceId { .. }
        ) {
            self.member_id.clear();
        }
        self.generation = -1;
        Err(error)
    }

    fn joined(
        &mut self,
        core: &mut GroupCoordinator,
        response: JoinResponse,
        now: i64,
    ) -> Result<(), GroupError> {
        self.member_id = response.member_id.clone();
        self.generation = response.generation_id;
        self.phase = Phase::Syncing;
        let assignments = if response.is_leader() && !response.skip_assignment {
            self.assign(&response)
        } else {
            Vec::new()
        };
        let request = SyncRequest {
            member: self.member_ref(),
            assignments,
        };
        match core.sync(&request, now) {
            Ok(Some(bytes)) => self.synced(&bytes),
            Ok(None) => Ok(()),
            Err(error) => self.rejoin_after(core, error, now),
        }
    }

    fn assign(&self, response: &JoinResponse) -> Vec<(String, Bytes)> {
        let members: Vec<MemberSubscription> = response
            .members
            .iter()
            .map(|m| {
                let subscription = Subscription::decode(&m.metadata).expect("our own encoding");
                MemberSubscription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    topics: subscription.topics,
                    owned_partitions: subscription.owned_partitions,
                    generation: subscription.generation,
                }
            })
            .collect();
        self.assignor
            .assign(&self.partitions, &members)
            .into_iter()
            .map(|(member, partitions)| {
                let bytes = MemberAssignment {
                    partitions,
                    user_data: None,
                }
                .encode();
                (member, Bytes::from(bytes))
            })
            .collect()
    }

    fn synced(&mut self, bytes: &[u8]) -> Result<(), GroupError> {
        let assignment = MemberAssignment::decode(bytes).expect("our own encoding");
        let revoked = self
            .owned
            .iter()
            .any(|p| !assignment.partitions.contains(p));
        if revoked && self.cooperative() {
            // Still holding the revoked partitions; the next step lets go and rejoins at once
            // (KIP-429) so they can be reassigned.
            for partition in &assignment.partitions {
                if !self.owned.contains(partition) {
                    self.owned.push(partition.clone());
                }
            }
            self.pending = assignment.partitions;
            self.phase = Phase::Revoking;
            return Ok(());
        }
        self.owned = assignment.partitions;
        self.phase = Phase::Stable;
        Ok(())
    }

    fn rejoin_after(
        &mut self,
        core: &mut GroupCoordinator,
        error: GroupError,
        now: i64,
    ) -> Result<(), GroupError> {
        match error {
            GroupError::RebalanceInProgress { .. } | GroupError::IllegalGeneration { .. } => {
                if matches!(error, GroupError::IllegalGeneration { .. }) {
                    self.owned.clear();
                }
                self.join(core, now)
            }
            other => self.lost(other),
        }
    }

    /// One step of the member's loop: collect a pending response, or heartbeat.
    pub fn step(&mut self, core: &mut GroupCoordinator, now: i64) -> Result<(), GroupError> {
        match self.phase {
            Phase::Out => self.join(core, now),
            Phase::Joining => {
                match core.poll_join(&self.group, &self.member_id, self.instance.as_deref()) {
                    Ok(Some(response)) => self.joined(core, response, now),
                    Ok(None) => Ok(()),
                    Err(error) => self.lost(error),
                }
            }
            Phase::Syncing => match core.poll_sync(&self.member_ref()) {
                Ok(Some(bytes)) => self.synced(&bytes),
                Ok(None) => Ok(()),
                Err(error) => self.rejoin_after(core, error, now),
            },
            Phase::Revoking => {
                self.owned = std::mem::take(&mut self.pending);
                self.join(core, now)
            }
            Phase::Stable => match core.heartbeat(&self.member_ref(), now) {
                Ok(()) => Ok(()),
                Err(error) => self.rejoin_after(core, error, now),
            },
        }
    }

    pub fn leave(&mut self, core: &mut GroupCoordinator, now: i64) {
        let _ = core.leave(&self.group, &self.member_id, self.instance.as_deref(), now);
        self.owned.clear();
        self.phase = Phase::Out;
        self.member_id.clear();
        self.generation = -1;
    }
}

/// Steps every live member until all are Stable in one generation (or `rounds` run out).
pub fn settle(
    core: &mut GroupCoordinator,
    members: &mut [TestMember],
    now: i64,
    rounds: usize,
) -> bool {
    for _ in 0..rounds {
        for member in members.iter_mut() {
            let _ = member.step(core, now);
        }
        let generations: Vec<i32> = members.iter().map(|m| m.generation).collect();
        if members.iter().all(|m| m.phase == Phase::Stable)
            && generations.windows(2).all(|w| w[0] == w[1])
        {
            return true;
        }
    }
    false
}

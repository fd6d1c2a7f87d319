//! The member's side of a rebalance, run inside `poll`: JoinGroup (the subscription of every
//! configured assignor), the leader's assignment, SyncGroup, and the listener calls. Eager
//! members revoke everything before joining; cooperative members keep their partitions, revoke
//! only those the new assignment moves away, and rejoin at once so they can be reassigned.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::group_member::{rebalance_protocol, ListenerCall, Subscribed};
use super::{ConsumeError, Consumer, TopicPartition};
use crate::group::protocol::{MemberAssignment, Subscription, CONSUMER_PROTOCOL_TYPE};
use crate::group::{
    GroupError, JoinRequest, JoinResponse, MemberRef, MemberSubscription, Protocol,
    RebalanceProtocol, SyncRequest,
};

/// Join and sync rounds one poll tries before giving the error to the application.
const MAX_REBALANCE_ROUNDS: usize = 10;

/// What one join-and-sync round ended with.
enum Round {
    Done,
    /// Cooperative: partitions were revoked, rejoin so they can move.
    Again,
}

impl Consumer {
    /// Rejoins when needed: a rebalance reported by the heartbeat, a new subscription, topics
    /// matching a pattern, or partitions added to a watched topic.
    pub(super) fn ensure_active_group(&mut self) -> Result<(), ConsumeError> {
        self.handle_heartbeat_event()?;
        self.refresh_topics()?;
        let group = self.group_member()?;
        let needed = group.rejoin || group.member_id.is_empty() || group.generation < 0;
        let watched = group.watched.clone();
        if needed || self.partition_counts(watched.keys()) != watched {
            self.rebalance()?;
        }
        Ok(())
    }

    /// Resolves a pattern subscription against the broker's topics; a change means rejoin.
    fn refresh_topics(&mut self) -> Result<(), ConsumeError> {
        let all = self.broker.list_topics();
        let group = self.group_member()?;
        let topics: BTreeSet<String> = match &group.subscribed {
            Subscribed::Nothing => BTreeSet::new(),
            Subscribed::Topics(topics) => topics.clone(),
            Subscribed::Pattern(pattern) => {
                all.into_iter().filter(|t| pattern.matches(t)).collect()
            }
        };
        if topics != group.topics {
            group.topics = topics;
            group.rejoin = true;
        }
        Ok(())
    }

    /// Partition counts of `topics` (`None` for a topic that does not exist).
    fn partition_counts<'a>(
        &self,
        topics: impl Iterator<Item = &'a String>,
    ) -> BTreeMap<String, Option<u32>> {
        topics
            .map(|t| {
                (
                    t.clone(),
                    self.broker.topic(t).ok().map(|t| t.partition_count()),
                )
            })
            .collect()
    }

    fn rebalance(&mut self) -> Result<(), ConsumeError> {
        let mut last_error = None;
        for _ in 0..MAX_REBALANCE_ROUNDS {
            match self.rebalance_round() {
                Ok(Round::Done) => return Ok(()),
                Ok(Round::Again) => {}
                Err(ConsumeError::Group(error)) if rejoinable(&error) => {
                    if !matches!(error, GroupError::RebalanceInProgress { .. }) {
                        self.lose_membership(&error);
                    }
                    last_error = Some(error);
                }
                Err(other) => return Err(other),
            }
        }
        Err(last_error.map_or(ConsumeError::NoAssignment, ConsumeError::Group))
    }

    fn protocol(&self) -> RebalanceProtocol {
        rebalance_protocol(&self.config.partition_assignment_strategy)
    }

    fn rebalance_round(&mut self) -> Result<Round, ConsumeError> {
        if self.protocol() == RebalanceProtocol::Eager {
            self.revoke_all();
        }
        let request = self.join_request()?;
        let group = self.group_member()?;
        group.heartbeat.set_member(None);
        group.rejoin = false;
        let link = std::sync::Arc::clone(&group.link);
        let response = link.call(|coordinator| coordinator.join(&request))?;
        let group = self.group_member()?;
        group.member_id.clone_from(&response.member_id);
        group.generation = response.generation_id;
        let assignments = if response.is_leader() && !response.skip_assignment {
            self.leader_assignments(&response)?
        } else {
            self.watch_own_topics()?;
            Vec::new()
        };
        let member = MemberRef {
            group_id: request.group_id.clone(),
            member_id: response.member_id.clone(),
            group_instance_id: request.group_instance_id.clone(),
            generation_id: response.generation_id,
        };
        let sync = SyncRequest {
            member: member.clone(),
            assignments,
        };
        let bytes = link.call(|coordinator| coordinator.sync(&sync))?;
        let assignment =
            MemberAssignment::decode(&bytes).map_err(|failure| GroupError::Corrupt {
                what: "member assignment",
                partition: link
                    .coordinator()
                    .map_or(0, |c| c.partition_for(&request.group_id)),
                offset: 0,
                reason: failure.0,
            })?;
        self.install_assignment(assignment.partitions, member)
    }

    /// Eager protocol: commit, tell the listener, drop every partition before joining.
    fn revoke_all(&mut self) {
        if self.group.as_ref().is_some_and(|g| !g.owned.is_empty()) {
            self.auto_commit_now();
            let owned = self.take_owned();
            self.call_listener(ListenerCall::Revoked, &owned);
            // Only dropping partitions: no lookup can fail.
            let _ = self.assign(Vec::new());
        }
    }

    fn join_request(&mut self) -> Result<JoinRequest, ConsumeError> {
        let cooperative = self.protocol() == RebalanceProtocol::Cooperative;
        let config = self.config.clone();
        let group = self.group_member()?;
        let subscription = Subscription {
            topics: group.topics.iter().cloned().collect(),
            user_data: None,
            owned_partitions: if cooperative {
                group.owned.iter().cloned().collect()
            } else {
                Vec::new()
            },
            generation: group.generation,
        };
        let metadata = Bytes::from(subscription.encode());
        Ok(JoinRequest {
            group_id: group.group_id.clone(),
            member_id: group.member_id.clone(),
            group_instance_id: config.group_instance_id.clone(),
            client_id: config.client_id.clone(),
            client_host: "localhost".to_owned(),
            session_timeout_ms: clamp_i32(config.session_timeout_ms),
            rebalance_timeout_ms: clamp_i32(config.max_poll_interval_ms),
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
            protocols: config
                .partition_assignment_strategy
                .iter()
                .map(|s| Protocol {
                    name: s.0.name().to_owned(),
                    metadata: metadata.clone(),
                })
                .collect(),
            // The in-process call cannot lose its response: no member-id round.
            require_known_member_id: false,
        })
    }

    fn watch_own_topics(&mut self) -> Result<(), ConsumeError> {
        let topics = self.group_member()?.topics.clone();
        let counts = self.partition_counts(topics.iter());
        self.group_member()?.watched = counts;
        Ok(())
    }

    /// The leader runs the chosen assignor over every member's subscription and the topics'
    /// partition counts, and watches all the group's topics for new partitions.
    fn leader_assignments(
        &mut self,
        response: &JoinResponse,
    ) -> Result<Vec<(String, Bytes)>, ConsumeError> {
        let members = response
            .members
            .iter()
            .map(|m| {
                let subscription =
                    Subscription::decode(&m.metadata).map_err(|failure| GroupError::Corrupt {
                        what: "member subscription",
                        partition: 0,
                        offset: 0,
                        reason: failure.0,
                    })?;
                Ok(MemberSubscription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    topics: subscription.topics,
                    owned_partitions: subscription.owned_partitions,
                    generation: subscription.generation,
                })
            })
            .collect::<Result<Vec<_>, GroupError>>()?;
        let topics: BTreeSet<String> = members.iter().flat_map(|m| m.topics.clone()).collect();
        let watched = self.partition_counts(topics.iter());
        let partitions_per_topic: BTreeMap<String, u32> = watched
            .iter()
            .filter_map(|(t, count)| count.map(|c| (t.clone(), c)))
            .collect();
        let name = response.protocol_name.clone().unwrap_or_default();
        let assignor = self
            .config
            .partition_assignment_strategy
            .iter()
            .find(|s| s.0.name() == name)
            .ok_or_else(|| GroupError::InconsistentGroupProtocol {
                group: response.member_id.clone(),
            })?
            .0
            .clone();
        self.group_member()?.watched = watched;
        Ok(assignor
            .assign(&partitions_per_topic, &members)
            .into_iter()
            .map(|(member, partitions)| {
                let bytes = MemberAssignment {
                    partitions,
                    user_data: None,
                }
                .encode();
                (member, Bytes::from(bytes))
            })
            .collect())
    }

    /// Takes the new assignment: revokes what it drops (cooperative), assigns what it adds,
    /// starts heartbeats.
    fn install_assignment(
        &mut self,
        partitions: Vec<TopicPartition>,
        member: MemberRef,
    ) -> Result<Round, ConsumeError> {
        let new: BTreeSet<TopicPartition> = partitions.into_iter().collect();
        let owned = self.group_member()?.owned.clone();
        let revoked: Vec<TopicPartition> = owned.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&owned).cloned().collect();
        if !revoked.is_empty() {
            self.auto_commit_now();
            self.call_listener(ListenerCall::Revoked, &revoked);
        }
        self.assign(new.iter().cloned())?;
        let group = self.group_member()?;
        group.owned = new;
        group.heartbeat.set_member(Some(member));
        self.call_listener(ListenerCall::Assigned, &added);
        if revoked.is_empty() || self.protocol() == RebalanceProtocol::Eager {
            Ok(Round::Done)
        } else {
            Ok(Round::Again)
        }
    }
}

/// Errors after which a member rejoins (perhaps as a new member) instead of failing the poll.
fn rejoinable(error: &GroupError) -> bool {
    matches!(
        error,
        GroupError::RebalanceInProgress { .. }
            | GroupError::IllegalGeneration { .. }
            | GroupError::UnknownMemberId { .. }
    )
}

fn clamp_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

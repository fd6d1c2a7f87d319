//! `ConsumerGroups`: the admin view and control of consumer groups, as Kafka's
//! `kafka-consumer-groups` tool gives it: list, describe (members and their partitions), lag,
//! delete, and offset resets. Deleting and resetting need a group without members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Broker, BrokerError};
use crate::group::protocol::{MemberAssignment, Subscription};
use crate::group::{
    BlockingCoordinator, GroupError, GroupListing, GroupState, OffsetAndMetadata, TopicPartition,
};

/// Where an offset reset moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start.
    Earliest,
    /// The end (the high watermark).
    Latest,
    /// The first offset with a timestamp at or after this one (ms); the end when none is.
    Timestamp(i64),
    /// This offset, clamped to the partition's start and end.
    Offset(u64),
}

/// A member of a consumer group, its consumer protocol data decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topics: Vec<String>,
    pub assignment: Vec<TopicPartition>,
}

/// A consumer group as `describe` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    /// The assignor in use.
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<ConsumerGroupMember>,
}

/// One partition's committed offset, log end and the distance between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: TopicPartition,
    /// `None` when the group never committed for the partition.
    pub committed: Option<u64>,
    /// The high watermark: the end a consumer can read to.
    pub log_end_offset: u64,
    /// `log_end_offset - committed`; `None` without a commit.
    pub lag: Option<u64>,
    /// The member assigned the partition now, if any.
    pub member_id: Option<String>,
}

/// A group's lag: each partition it committed for or is assigned, and their sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    pub group_id: String,
    pub partitions: Vec<PartitionLag>,
    pub total_lag: u64,
}

/// The admin handle on this broker's consumer groups.
#[derive(Debug, Clone)]
pub struct ConsumerGroups {
    broker: Broker,
    coordinator: Arc<BlockingCoordinator>,
}

impl Broker {
    /// The admin handle on consumer groups.
    ///
    /// # Errors
    /// As [`Broker::group_coordinator`].
    pub fn consumer_groups(&self) -> Result<ConsumerGroups, BrokerError> {
        Ok(ConsumerGroups {
            broker: self.clone(),
            coordinator: self.group_coordinator()?,
        })
    }
}

impl ConsumerGroups {
    /// Every group, by id.
    pub fn list(&self) -> Vec<GroupListing> {
        self.coordinator.list()
    }

    /// The group's state, generation, assignor and members with their partitions.
    ///
    /// # Errors
    /// `Group(GroupIdNotFound)`; `Group(Corrupt)` when a member's protocol data does not decode.
    pub fn describe(&self, group: &str) -> Result<ConsumerGroupDescription, BrokerError> {
        let description = self.coordinator.describe(group)?;
        let corrupt = |reason: &'static str| GroupError::Corrupt {
            what: "member protocol data",
            partition: self.coordinator.partition_for(group),
            offset: 0,
            reason,
        };
        let members = description
            .members
            .iter()
            .map(|member| {
                let subscription =
                    Subscription::decode(&member.metadata).map_err(|failure| corrupt(failure.0))?;
                let assignment = MemberAssignment::decode(&member.assignment)
                    .map_err(|failure| corrupt(failure.0))?;
                Ok(ConsumerGroupMember {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    subscribed_topics: subscription.topics,
                    assignment: assignment.partitions,
                })
            })
            .collect::<Result<Vec<_>, GroupError>>()?;
        Ok(ConsumerGroupDescription {
            group_id: description.group_id,
            state: description.state,
            generation_id: description.generation_id,
            protocol_type: description.protocol_type,
            protocol: description.protocol,
            leader: description.leader,
            members,
        })
    }

    /// The committed offsets of `group`.
    ///
    /// # Errors
    /// `Group` errors of the coordinator.
    pub fn committed(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, BrokerError> {
        Ok(self.coordinator.committed(group, None)?)
    }

    /// Lag per partition the group committed for or is assigned, and in total.
    ///
    /// # Errors
    /// `Group(GroupIdNotFound)`; `UnknownTopic` for a committed topic deleted since.
    pub fn lag(&self, group: &str) -> Result<GroupLag, BrokerError> {
        let description = self.describe(group)?;
        let committed = self.committed(group)?;
        let owners: BTreeMap<&TopicPartition, &str> = description
            .members
            .iter()
            .flat_map(|m| m.assignment.iter().map(move |p| (p, m.member_id.as_str())))
            .collect();
        let partitions: BTreeSet<&TopicPartition> =
            committed.keys().chain(owners.keys().copied()).collect();
        let mut lags = Vec::new();
        for partition in partitions {
            let log_end_offset = self
                .broker
                .replica(&partition.topic, partition.partition)?
                .high_watermark();
            let offset = committed.get(partition).map(|o| o.offset);
            lags.push(PartitionLag {
                partition: partition.clone(),
                committed: offset,
                log_end_offset,
                lag: offset.map(|o| log_end_offset.saturating_sub(o)),
                member_id: owners.get(partition).map(|m| (*m).to_owned()),
            });
        }
        Ok(GroupLag {
            group_id: group.to_owned(),
            total_lag: lags.iter().filter_map(|l| l.lag).sum(),
            partitions: lags,
        })
    }

    /// Deletes an Empty group and its committed offsets.
    ///
    /// # Errors
    /// `Group(GroupIdNotFound)`, `Group(NonEmptyGroup)`, `Group(Storage)`.
    pub fn delete(&self, group: &str) -> Result<(), BrokerError> {
        Ok(self.coordinator.delete(group)?)
    }

    /// Moves the committed offsets of `partitions` per `spec` and returns where each went. The
    /// group must exist and be Empty.
    ///
    /// # Errors
    /// `Group(GroupIdNotFound)`, `Group(NonEmptyGroup)`, `UnknownTopic`, `UnknownPartition`,
    /// log errors looking up a timestamp.
    pub fn reset_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, u64>, BrokerError> {
        let mut targets = BTreeMap::new();
        for partition in partitions {
            targets.insert(partition.clone(), self.resolve(partition, spec)?);
        }
        let offsets = targets
            .iter()
            .map(|(p, &offset)| (p.clone(), OffsetAndMetadata::new(offset)))
            .collect();
        self.coordinator.reset_offsets(group, offsets)?;
        Ok(targets)
    }

    fn resolve(&self, partition: &TopicPartition, spec: OffsetSpec) -> Result<u64, BrokerError> {
        let replica = self.broker.replica(&partition.topic, partition.partition)?;
        let start = replica.log().log_start_offset();
        let end = replica.high_watermark();
        Ok(match spec {
            OffsetSpec::Earliest => start,
            OffsetSpec::Latest => end,
            OffsetSpec::Offset(offset) => offset.clamp(start, end),
            OffsetSpec::Timestamp(timestamp) => replica
                .log()
                .offset_for_timestamp(timestamp)?
                .map_or(end, |(offset, _)| offset.min(end)),
        })
    }
}

//! Partition assignors: how a group's leader divides the subscribed partitions among members,
//! as Kafka's `range`, `roundrobin` and `cooperative-sticky` assignors do.
//!
//! An assignor sees every member's subscription (topics, and the partitions it owned in the
//! generation it names) and the partition count of each subscribed topic, and returns each
//! member's partitions. It is pure: the same input gives the same output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use super::TopicPartition;

/// How members give up partitions during a rebalance (KIP-429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining.
    Eager,
    /// Members keep their partitions across a rebalance; a partition that moves is first revoked
    /// (assigned to nobody) in one generation and assigned in the next.
    Cooperative,
}

/// One member's input to an assignor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    /// Static members' instance id (KIP-345); assignors that sort members use it first, so a
    /// restarted static member lands where it was.
    pub group_instance_id: Option<String>,
    pub topics: Vec<String>,
    /// The partitions the member owned in `generation` (cooperative protocol; empty for eager).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation `owned_partitions` belong to; -1 when unknown.
    pub generation: i32,
}

impl MemberSubscription {
    /// A member subscribed to `topics`, owning nothing.
    pub fn new(member_id: impl Into<String>, topics: &[&str]) -> Self {
        MemberSubscription {
            member_id: member_id.into(),
            group_instance_id: None,
            topics: topics.iter().map(|topic| (*topic).to_owned()).collect(),
            owned_partitions: Vec::new(),
            generation: -1,
        }
    }

    fn subscribes(&self, topic: &str) -> bool {
        self.topics.iter().any(|subscribed| subscribed == topic)
    }
}

/// Each member's assigned partitions, sorted, by member id.
pub type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// Divides partitions among members.
pub trait Assignor: Send + Sync + Debug {
    /// The protocol name members announce (`range`, `roundrobin`, `cooperative-sticky`).
    fn name(&self) -> &'static str;

    /// The rebalance protocols the assignor supports, preferred last.
    fn supported_protocols(&self) -> &'static [RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    /// Assigns every partition of `partitions_per_topic` that some member subscribes to. Every
    /// member of `members` has an entry in the result, perhaps empty. Topics missing from
    /// `partitions_per_topic` (not created yet) are skipped.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> Assignment;
}

/// Kafka's `range` assignor: per topic, the members subscribed to it, sorted by (instance id,
/// member id), each get a contiguous range; the first `partitions % members` get one more.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range;

/// Kafka's `roundrobin` assignor: all subscribed topic-partitions, sorted, dealt in turn to the
/// members sorted by (instance id, member id), skipping members not subscribed to the topic.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobin;

impl Assignor for Range {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> Assignment {
        let mut assignment = empty_assignment(members);
        for (topic, &count) in partitions_per_topic {
            let subscribed: Vec<&MemberSubscription> = sorted_members(members)
                .into_iter()
                .filter(|member| member.subscribes(topic))
                .collect();
            if subscribed.is_empty() {
                continue;
            }
            let per_member = count / subscribed.len() as u32;
            let extra = count % subscribed.len() as u32;
            let mut next = 0;
            for (at, member) in subscribed.iter().enumerate() {
                let length = per_member + u32::from((at as u32) < extra);
                let owned = assignment.entry(member.member_id.clone()).or_default();
                owned.extend((next..next + length).map(|p| TopicPartition::new(topic, p)));
                next += length;
            }
        }
        sort_each(assignment)
    }
}

impl Assignor for RoundRobin {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> Assignment {
        let mut assignment = empty_assignment(members);
        let sorted = sorted_members(members);
        if sorted.is_empty() {
            return assignment;
        }
        let mut turn = 0;
        for partition in subscribed_partitions(partitions_per_topic, members) {
            // Some member subscribes to the topic (subscribed_partitions says so): the scan
            // finds it within one round.
            for _ in 0..sorted.len() {
                let member = sorted[turn % sorted.len()];
                turn += 1;
                if member.subscribes(&partition.topic) {
                    assignment
                        .entry(member.member_id.clone())
                        .or_default()
                        .push(partition);
                    break;
                }
            }
        }
        sort_each(assignment)
    }
}

/// Every member with an empty list.
pub(crate) fn empty_assignment(members: &[MemberSubscription]) -> Assignment {
    members
        .iter()
        .map(|member| (member.member_id.clone(), Vec::new()))
        .collect()
}

/// Members sorted as Kafka sorts them for range and round robin: static members by instance id
/// first, then by member id.
fn sorted_members(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| {
        let key =
            |m: &MemberSubscription| (m.group_instance_id.is_none(), m.group_instance_id.clone());
        key(a)
            .cmp(&key(b))
            .then_with(|| a.member_id.cmp(&b.member_id))
    });
    sorted
}

/// The partitions of every topic some member subscribes to, sorted by topic then partition.
pub(crate) fn subscribed_partitions(
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &[MemberSubscription],
) -> Vec<TopicPartition> {
    let topics: BTreeSet<&str> = members
        .iter()
        .flat_map(|member| member.topics.iter().map(String::as_str))
        .collect();
    topics
        .into_iter()
        .filter_map(|topic| partitions_per_topic.get_key_value(topic))
        .flat_map(|(topic, &count)| (0..count).map(move |p| TopicPartition::new(topic, p)))
        .collect()
}

pub(crate) fn sort_each(mut assignment: Assignment) -> Assignment {
    for partitions in assignment.values_mut() {
        partitions.sort();
    }
    assignment
}

/// The assignor named `name` among the built-in ones.
pub fn builtin_assignor(name: &str) -> Option<std::sync::Arc<dyn Assignor>> {
    match name {
        "range" => Some(std::sync::Arc::new(Range)),
        "roundrobin" => Some(std::sync::Arc::new(RoundRobin)),
        "cooperative-sticky" => Some(std::sync::Arc::new(super::CooperativeSticky)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(entries: &[(&str, u32)]) -> BTreeMap<String, u32> {
        entries
            .iter()
            .map(|(topic, count)| ((*topic).to_owned(), *count))
            .collect()
    }

    fn tps(topic: &str, partitions: &[u32]) -> Vec<TopicPartition> {
        partitions
            .iter()
            .map(|&p| TopicPartition::new(topic, p))
            .collect()
    }

    #[test]
    fn range_gives_the_first_members_the_remainder_per_topic() {
        let members = [
            MemberSubscription::new("c1", &["t0", "t1"]),
            MemberSubscription::new("c0", &["t0", "t1"]),
        ];
        let assignment = Range.assign(&topics(&[("t0", 3), ("t1", 3)]), &members);
        let mut c0 = tps("t0", &[0, 1]);
        c0.extend(tps("t1", &[0, 1]));
        let mut c1 = tps("t0", &[2]);
        c1.extend(tps("t1", &[2]));
        assert_eq!(assignment["c0"], c0);
        assert_eq!(assignment["c1"], c1);
    }

    #[test]
    fn round_robin_deals_sorted_partitions_in_turn() {
        let members = [
            MemberSubscription::new("c0", &["t0", "t1"]),
            MemberSubscription::new("c1", &["t0", "t1"]),
        ];
        let assignment = RoundRobin.assign(&topics(&[("t0", 3), ("t1", 3)]), &members);
        let mut c0 = tps("t0", &[0, 2]);
        c0.extend(tps("t1", &[1]));
        let mut c1 = tps("t0", &[1]);
        c1.extend(tps("t1", &[0, 2]));
        assert_eq!(assignment["c0"], c0);
        assert_eq!(assignment["c1"], c1);
    }

    #[test]
    fn round_robin_skips_members_not_subscribed() {
        let members = [
            MemberSubscription::new("c0", &["t0"]),
            MemberSubscription::new("c1", &["t0", "t1"]),
        ];
        let assignment = RoundRobin.assign(&topics(&[("t0", 1), ("t1", 2)]), &members);
        assert_eq!(assignment["c0"], tps("t0", &[0]));
        assert_eq!(assignment["c1"], tps("t1", &[0, 1]));
    }

    #[test]
    fn static_members_sort_by_instance_id() {
        let mut first = MemberSubscription::new("zzz", &["t"]);
        first.group_instance_id = Some("a".into());
        let second = MemberSubscription::new("aaa", &["t"]);
        let assignment = Range.assign(&topics(&[("t", 3)]), &[second, first]);
        assert_eq!(assignment["zzz"], tps("t", &[0, 1]));
        assert_eq!(assignment["aaa"], tps("t", &[2]));
    }

    #[test]
    fn builtin_names_resolve() {
        for name in ["range", "roundrobin", "cooperative-sticky"] {
            assert_eq!(builtin_assignor(name).unwrap().name(), name);
        }
        assert!(builtin_assignor("sticky-ish").is_none());
    }
}

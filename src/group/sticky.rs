//! Kafka's `cooperative-sticky` assignor (KIP-429 on top of KIP-54's sticky assignor).
//!
//! 1. Each partition keeps its valid owner: the member that claims it in the newest generation
//!    (two claims in that same generation cancel each other), if the member still subscribes to
//!    its topic and the partition still exists.
//! 2. Partitions without an owner go, in order, to the least loaded member subscribed to them.
//! 3. While a member holds two more partitions than another member that could take one of them,
//!    one moves. Each move lowers the sum of squared counts, so this ends; with equal
//!    subscriptions it ends with counts differing by at most one, having moved no partition that
//!    a balanced assignment could have left where it was.
//! 4. Cooperative protocol: a partition whose owner changes is left out of this generation (its
//!    owner revokes it); the owner rejoins at once and the next generation assigns it.

use std::collections::{BTreeMap, BTreeSet};

use super::assignor::{
    empty_assignment, sort_each, subscribed_partitions, Assignment, Assignor, MemberSubscription,
    RebalanceProtocol,
};
use super::TopicPartition;

/// Kafka's `cooperative-sticky` assignor; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeSticky;

impl Assignor for CooperativeSticky {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> &'static [RebalanceProtocol] {
        &[RebalanceProtocol::Eager, RebalanceProtocol::Cooperative]
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> Assignment {
        let owners = valid_owners(partitions_per_topic, members);
        let target = sticky_assignment(partitions_per_topic, members, &owners);
        withhold_moving_partitions(target, &owners)
    }
}

/// The balanced, sticky assignment before the cooperative adjustment: what the group converges
/// to once every revocation has happened.
pub fn sticky_assignment(
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &[MemberSubscription],
    owners: &BTreeMap<TopicPartition, String>,
) -> Assignment {
    let mut state = Balancer::new(members);
    for (partition, owner) in owners {
        state.give(owner, partition.clone());
    }
    for partition in subscribed_partitions(partitions_per_topic, members) {
        if owners.contains_key(&partition) {
            continue;
        }
        if let Some(member) = state.least_loaded_taker(&partition.topic, usize::MAX) {
            state.give(&member, partition);
        }
    }
    state.balance();
    sort_each(state.into_assignment())
}

/// The owner each partition keeps (step 1 of the module docs).
pub fn valid_owners(
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &[MemberSubscription],
) -> BTreeMap<TopicPartition, String> {
    let mut claims: BTreeMap<TopicPartition, (i32, Option<&str>)> = BTreeMap::new();
    for member in members {
        for partition in &member.owned_partitions {
            let exists = partitions_per_topic
                .get(&partition.topic)
                .is_some_and(|&count| partition.partition < count);
            if !exists || !member.topics.contains(&partition.topic) {
                continue;
            }
            let claim = (member.generation, Some(member.member_id.as_str()));
            claims
                .entry(partition.clone())
                .and_modify(|held| match held.0.cmp(&member.generation) {
                    std::cmp::Ordering::Less => *held = claim,
                    std::cmp::Ordering::Equal => held.1 = None,
                    std::cmp::Ordering::Greater => {}
                })
                .or_insert(claim);
        }
    }
    claims
        .into_iter()
        .filter_map(|(partition, (_, owner))| owner.map(|owner| (partition, owner.to_owned())))
        .collect()
}

/// Step 4: leaves out every partition assigned away from its current owner.
fn withhold_moving_partitions(
    mut assignment: Assignment,
    owners: &BTreeMap<TopicPartition, String>,
) -> Assignment {
    for (member, partitions) in assignment.iter_mut() {
        partitions.retain(|partition| owners.get(partition).is_none_or(|owner| owner == member));
    }
    assignment
}

/// Counts and partitions per member while assigning.
struct Balancer<'a> {
    members: &'a [MemberSubscription],
    assignment: Assignment,
}

impl<'a> Balancer<'a> {
    fn new(members: &'a [MemberSubscription]) -> Self {
        Balancer {
            members,
            assignment: empty_assignment(members),
        }
    }

    fn count(&self, member: &str) -> usize {
        self.assignment.get(member).map_or(0, Vec::len)
    }

    fn give(&mut self, member: &str, partition: TopicPartition) {
        self.assignment
            .entry(member.to_owned())
            .or_default()
            .push(partition);
    }

    /// The member subscribed to `topic` with the fewest partitions (ties: smallest id), if it has
    /// fewer than `below`.
    fn least_loaded_taker(&self, topic: &str, below: usize) -> Option<String> {
        self.members
            .iter()
            .filter(|member| member.topics.iter().any(|t| t == topic))
            .map(|member| (self.count(&member.member_id), &member.member_id))
            .filter(|(count, _)| *count < below)
            .min()
            .map(|(_, member)| member.clone())
    }

    /// Step 3: one move at a time from the most loaded member able to give.
    fn balance(&mut self) {
        while self.move_one() {}
    }

    fn move_one(&mut self) -> bool {
        let mut by_load: Vec<(usize, String)> = self
            .assignment
            .iter()
            .map(|(member, partitions)| (partitions.len(), member.clone()))
            .collect();
        by_load.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (count, giver) in by_load {
            let partitions = self.assignment[&giver].clone();
            for (at, partition) in partitions.iter().enumerate().rev() {
                if let Some(taker) = self.least_loaded_taker(&partition.topic, count - 1) {
                    let moved = self
                        .assignment
                        .get_mut(&giver)
                        .map(|owned| owned.remove(at));
                    if let Some(moved) = moved {
                        self.give(&taker, moved);
                    }
                    return true;
                }
            }
        }
        false
    }

    fn into_assignment(self) -> Assignment {
        self.assignment
    }
}

/// How many partitions changed owner from `before` to `after` (a partition with no owner in
/// either counts when the other has one).
pub fn moved_partitions(before: &Assignment, after: &Assignment) -> usize {
    let owner_map = |assignment: &Assignment| -> BTreeMap<TopicPartition, String> {
        assignment
            .iter()
            .flat_map(|(member, partitions)| {
                partitions.iter().map(move |p| (p.clone(), member.clone()))
            })
            .collect()
    };
    let (before, after) = (owner_map(before), owner_map(after));
    let all: BTreeSet<&TopicPartition> = before.keys().chain(after.keys()).collect();
    all.into_iter()
        .filter(|partition| before.get(*partition) != after.get(*partition))
        .count()
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

    fn owning(id: &str, generation: i32, owned: &[u32]) -> MemberSubscription {
        MemberSubscription {
            owned_partitions: owned.iter().map(|&p| TopicPartition::new("t", p)).collect(),
            generation,
            ..MemberSubscription::new(id, &["t"])
        }
    }

    #[test]
    fn a_new_member_takes_partitions_only_after_their_owner_revoked_them() {
        let counts = topics(&[("t", 4)]);
        let members = [owning("a", 1, &[0, 1, 2, 3]), owning("b", -1, &[])];
        let first = CooperativeSticky.assign(&counts, &members);
        assert_eq!(first["a"].len(), 2, "a keeps two");
        assert!(first["b"].is_empty(), "b waits for the revocation");
        let kept: Vec<u32> = first["a"].iter().map(|p| p.partition).collect();
        let members = [owning("a", 2, &kept), owning("b", 2, &[])];
        let second = CooperativeSticky.assign(&counts, &members);
        assert_eq!(second["a"], first["a"]);
        assert_eq!(second["b"].len(), 2);
    }

    #[test]
    fn newest_generation_wins_and_equal_claims_cancel() {
        let counts = topics(&[("t", 2)]);
        let members = [owning("a", 3, &[0, 1]), owning("b", 2, &[0])];
        let owners = valid_owners(&counts, &members);
        assert_eq!(owners[&TopicPartition::new("t", 0)], "a");
        let members = [owning("a", 3, &[0]), owning("b", 3, &[0])];
        assert!(valid_owners(&counts, &members).is_empty());
    }

    #[test]
    fn unsubscribed_and_vanished_partitions_are_not_kept() {
        let counts = topics(&[("t", 1)]);
        let mut member = owning("a", 1, &[0, 5]);
        assert_eq!(
            valid_owners(&counts, std::slice::from_ref(&member)).len(),
            1
        );
        member.topics = vec!["other".into()];
        assert!(valid_owners(&counts, &[member]).is_empty());
    }
}

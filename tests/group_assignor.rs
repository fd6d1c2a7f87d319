//! Properties of the assignors: every subscribed partition owned once by a subscriber, balance,
//! and cooperative-sticky moving the fewest partitions over membership changes.

use std::collections::{BTreeMap, BTreeSet};

use logbus::group::{
    moved_partitions, sticky_assignment, valid_owners, Assignment, Assignor, CooperativeSticky,
    MemberSubscription, Range, RoundRobin, TopicPartition,
};
use proptest::prelude::*;

const TOPICS: [&str; 3] = ["a", "b", "c"];

fn counts(partitions: &[u32]) -> BTreeMap<String, u32> {
    TOPICS
        .iter()
        .zip(partitions)
        .map(|(topic, &count)| ((*topic).to_owned(), count))
        .collect()
}

fn member(id: usize, topics: &[&str]) -> MemberSubscription {
    MemberSubscription::new(format!("member-{id:02}"), topics)
}

/// Each member subscribes to a non-empty subset of the topics (bit mask).
fn members_strategy() -> impl Strategy<Value = Vec<MemberSubscription>> {
    proptest::collection::vec(1u8..8, 1..8).prop_map(|masks| {
        masks
            .iter()
            .enumerate()
            .map(|(id, mask)| {
                let topics: Vec<&str> = TOPICS
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| mask & (1 << bit) != 0)
                    .map(|(_, topic)| *topic)
                    .collect();
                member(id, &topics)
            })
            .collect()
    })
}

fn assert_each_partition_owned_once(
    counts: &BTreeMap<String, u32>,
    members: &[MemberSubscription],
    assignment: &Assignment,
) {
    let mut owners: BTreeMap<TopicPartition, &str> = BTreeMap::new();
    for (member_id, partitions) in assignment {
        let subscription = members.iter().find(|m| &m.member_id == member_id).unwrap();
        for partition in partitions {
            assert!(
                subscription.topics.contains(&partition.topic),
                "{member_id} got {partition} without subscribing"
            );
            assert!(
                owners.insert(partition.clone(), member_id).is_none(),
                "{partition} assigned twice"
            );
        }
    }
    for (topic, &count) in counts {
        if members.iter().any(|m| m.topics.contains(topic)) {
            for p in 0..count {
                assert!(
                    owners.contains_key(&TopicPartition::new(topic, p)),
                    "{topic}-{p} unowned"
                );
            }
        }
    }
    assert_eq!(assignment.len(), members.len(), "every member has an entry");
}

fn spread(assignment: &Assignment) -> usize {
    let sizes: Vec<usize> = assignment.values().map(Vec::len).collect();
    sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_subscribed_partition_has_exactly_one_subscribed_owner(
        partitions in proptest::collection::vec(0u32..12, 3),
        members in members_strategy(),
    ) {
        let counts = counts(&partitions);
        let assignors: [&dyn Assignor; 3] = [&Range, &RoundRobin, &CooperativeSticky];
        for assignor in assignors {
            let assignment = assignor.assign(&counts, &members);
            assert_each_partition_owned_once(&counts, &members, &assignment);
        }
    }

    #[test]
    fn equal_subscriptions_are_balanced(
        partitions in proptest::collection::vec(0u32..20, 3),
        member_count in 1usize..10,
    ) {
        let counts = counts(&partitions);
        let members: Vec<MemberSubscription> =
            (0..member_count).map(|id| member(id, &TOPICS)).collect();
        prop_assert!(spread(&RoundRobin.assign(&counts, &members)) <= 1);
        prop_assert!(spread(&CooperativeSticky.assign(&counts, &members)) <= 1);
        // Range balances each topic on its own.
        let range = Range.assign(&counts, &members);
        for topic in TOPICS {
            let per_topic: Assignment = range
                .iter()
                .map(|(m, ps)| (m.clone(), ps.iter().filter(|p| p.topic == topic).cloned().collect()))
                .collect();
            prop_assert!(spread(&per_topic) <= 1);
        }
    }

    /// A group settled on a sticky assignment loses `leaving` members and gains `joining` ones:
    /// the new target moves exactly the partitions that must move (those of members gone, and
    /// those above what a balanced assignment lets a survivor keep), never more than a fresh
    /// range or round-robin assignment would, and the cooperative protocol reaches it in two
    /// generations without assigning a partition its owner still holds.
    #[test]
    fn cooperative_sticky_moves_the_fewest_partitions(
        partitions in proptest::collection::vec(1u32..16, 3),
        before in 1usize..8,
        leaving in proptest::collection::btree_set(0usize..8, 0..4),
        joining in 0usize..4,
    ) {
        let counts = counts(&partitions);
        let first: Vec<MemberSubscription> = (0..before).map(|id| member(id, &TOPICS)).collect();
        let settled = sticky_assignment(&counts, &first, &BTreeMap::new());
        let mut next: Vec<MemberSubscription> = first
            .iter()
            .enumerate()
            .filter(|(id, _)| !leaving.contains(id))
            .map(|(_, m)| MemberSubscription {
                owned_partitions: settled[&m.member_id].clone(),
                generation: 1,
                ..m.clone()
            })
            .collect();
        next.extend((0..joining).map(|j| member(100 + j, &TOPICS)));
        prop_assume!(!next.is_empty());
        let owners = valid_owners(&counts, &next);
        let target = sticky_assignment(&counts, &next, &owners);
        assert_each_partition_owned_once(&counts, &next, &target);
        prop_assert!(spread(&target) <= 1);

        let moves = moved_partitions(&settled, &target);
        prop_assert_eq!(moves, minimum_moves(&settled, &next, &counts));
        // Against a fresh balanced assignment (range is balanced per topic only, so it can move
        // less by leaving the group unbalanced).
        let fresh = RoundRobin.assign(&counts, &next);
        prop_assert!(moves <= moved_partitions(&settled, &fresh));
        cooperative_rounds_reach_a_balanced_sticky_assignment(&counts, next)?;
    }
}

/// The fewest owner changes any balanced assignment needs: partitions of departed members, and
/// each survivor's excess over its quota, the larger quotas going to the largest owners.
fn minimum_moves(
    settled: &Assignment,
    next: &[MemberSubscription],
    counts: &BTreeMap<String, u32>,
) -> usize {
    let total: usize = counts.values().map(|&c| c as usize).sum();
    let (floor, extra) = (total / next.len(), total % next.len());
    let survivors: BTreeSet<&str> = next.iter().map(|m| m.member_id.as_str()).collect();
    let departed: usize = settled
        .iter()
        .filter(|(m, _)| !survivors.contains(m.as_str()))
        .map(|(_, ps)| ps.len())
        .sum();
    let mut owned: Vec<usize> = next.iter().map(|m| m.owned_partitions.len()).collect();
    owned.sort_unstable_by(|a, b| b.cmp(a));
    let excess: usize = owned
        .iter()
        .enumerate()
        .map(|(rank, &count)| count.saturating_sub(floor + usize::from(rank < extra)))
        .sum();
    departed + excess
}

fn cooperative_rounds_reach_a_balanced_sticky_assignment(
    counts: &BTreeMap<String, u32>,
    members: Vec<MemberSubscription>,
) -> Result<(), TestCaseError> {
    let round_one = CooperativeSticky.assign(counts, &members);
    for (member_id, partitions) in &round_one {
        for partition in partitions {
            let held_elsewhere = members
                .iter()
                .any(|m| &m.member_id != member_id && m.owned_partitions.contains(partition));
            prop_assert!(
                !held_elsewhere,
                "{partition} given to {member_id} before its revocation"
            );
        }
    }
    let second: Vec<MemberSubscription> = members
        .into_iter()
        .map(|m| MemberSubscription {
            owned_partitions: round_one[&m.member_id].clone(),
            generation: 2,
            ..m
        })
        .collect();
    let round_two = CooperativeSticky.assign(counts, &second);
    assert_each_partition_owned_once(counts, &second, &round_two);
    prop_assert!(spread(&round_two) <= 1);
    for m in &second {
        let kept: BTreeSet<&TopicPartition> = round_two[&m.member_id].iter().collect();
        prop_assert!(
            m.owned_partitions.iter().all(|p| kept.contains(p)),
            "round two moved an owned partition"
        );
    }
    Ok(())
}

//! Replica assignment: Kafka's rack-unaware round robin with a shifting start.
//!
//! Partition `p`'s first replica is broker `(start + p) % n` of the sorted live brokers; the
//! others follow at a distance that shifts by one after every `n` partitions, so that the
//! followers of one broker's leaders spread over all the others rather than always the next
//! one. Kafka picks `start` and the first shift at random; here both come from a hash of the
//! topic name, so an assignment is reproducible (a seeded simulation replays it) and different
//! topics still start on different brokers.

/// The replicas of each of `partitions` partitions, `replication_factor` each, over `brokers`
/// (sorted and deduplicated here). `None` when there are fewer brokers than the factor or
/// the factor is zero.
pub fn assign_replicas(
    topic: &str,
    partitions: u32,
    replication_factor: u16,
    brokers: &[i32],
) -> Option<Vec<Vec<i32>>> {
    let mut brokers = brokers.to_vec();
    brokers.sort_unstable();
    brokers.dedup();
    let n = brokers.len();
    let factor = usize::from(replication_factor);
    if factor == 0 || factor > n {
        return None;
    }
    let seed = fnv1a(topic.as_bytes());
    let start = (seed % n as u64) as usize;
    let mut shift = ((seed >> 32) % n as u64) as usize;
    let mut assignment = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions as usize {
        if partition > 0 && partition % n == 0 {
            shift += 1;
        }
        let first = (partition + start) % n;
        let mut replicas = Vec::with_capacity(factor);
        replicas.push(brokers[first]);
        for j in 0..factor - 1 {
            replicas.push(brokers[replica_index(first, shift, j, n)]);
        }
        assignment.push(replicas);
    }
    Some(assignment)
}

/// Kafka's `replicaIndex`: the j-th follower sits `1 + (shift + j) % (n - 1)` brokers after the
/// first replica, so it is never the first replica itself.
fn replica_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    let distance = 1 + (shift + j) % (n - 1);
    (first + distance) % n
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_more_replicas_than_brokers() {
        assert_eq!(assign_replicas("t", 3, 4, &[1, 2, 3]), None);
        assert_eq!(assign_replicas("t", 3, 0, &[1, 2, 3]), None);
    }

    #[test]
    fn leaders_rotate_over_brokers() {
        let assignment = assign_replicas("orders", 6, 3, &[3, 1, 2]).expect("assign");
        let mut leaders: Vec<i32> = assignment.iter().map(|replicas| replicas[0]).collect();
        leaders.sort_unstable();
        assert_eq!(leaders, vec![1, 1, 2, 2, 3, 3]);
    }

    proptest! {
        #[test]
        fn replicas_are_distinct_live_and_balanced(
            topic in "[a-z]{1,12}",
            partitions in 1u32..60,
            brokers in proptest::collection::btree_set(0i32..20, 1..8),
            factor in 1u16..5,
        ) {
            let brokers: Vec<i32> = brokers.into_iter().collect();
            let Some(assignment) = assign_replicas(&topic, partitions, factor, &brokers) else {
                prop_assert!(usize::from(factor) > brokers.len());
                return Ok(());
            };
            prop_assert_eq!(assignment.len(), partitions as usize);
            let mut leader_counts = std::collections::HashMap::new();
            for replicas in &assignment {
                prop_assert_eq!(replicas.len(), usize::from(factor));
                let mut unique = replicas.clone();
                unique.sort_unstable();
                unique.dedup();
                prop_assert_eq!(unique.len(), replicas.len());
                prop_assert!(replicas.iter().all(|id| brokers.contains(id)));
                *leader_counts.entry(replicas[0]).or_insert(0u32) += 1;
            }
            let most = leader_counts.values().max().copied().unwrap_or(0);
            let least = if leader_counts.len() < brokers.len().min(partitions as usize) {
                0
            } else {
                leader_counts.values().min().copied().unwrap_or(0)
            };
            prop_assert!(most - least <= 1, "leaders unbalanced: {:?}", leader_counts);
        }
    }
}

//! The states of a classic consumer group, with Kafka's names and transitions.

/// Where a group is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; the group may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join: the generation is about to change.
    PreparingRebalance,
    /// The generation has changed; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment and heartbeats.
    Stable,
    /// Being deleted, or its offsets partition moved away.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state, as `kafka-consumer-groups --describe` prints it.
    pub fn kafka_name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Whether Kafka's group state machine allows `self -> next`.
    pub fn can_become(self, next: GroupState) -> bool {
        use GroupState::{CompletingRebalance, Dead, Empty, PreparingRebalance, Stable};
        match next {
            Dead => true,
            PreparingRebalance => matches!(self, Stable | CompletingRebalance | Empty),
            CompletingRebalance => self == PreparingRebalance,
            Stable => self == CompletingRebalance,
            Empty => self == PreparingRebalance,
        }
    }
}

impl std::fmt::Display for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kafka_name())
    }
}

#[cfg(test)]
mod tests {
    use super::GroupState::*;

    #[test]
    fn transitions_follow_kafka() {
        assert!(Empty.can_become(PreparingRebalance));
        assert!(!Empty.can_become(Stable));
        assert!(PreparingRebalance.can_become(CompletingRebalance));
        assert!(PreparingRebalance.can_become(Empty));
        assert!(!Stable.can_become(CompletingRebalance));
        assert!(CompletingRebalance.can_become(Stable));
        assert!(Stable.can_become(Dead));
    }
}

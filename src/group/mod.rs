//! Consumer groups: the partition assignors.

mod assignor;
mod sticky;
mod topic_partition;

pub use assignor::{
    builtin_assignor, Assignment, Assignor, MemberSubscription, Range, RebalanceProtocol,
    RoundRobin,
};
pub use sticky::{moved_partitions, sticky_assignment, valid_owners, CooperativeSticky};
pub use topic_partition::TopicPartition;

//! Consumer groups: the group coordinator (join, sync, heartbeat, leave, generations, expiry),
//! the partition assignors, and committed offsets kept in the internal compacted topic
//! `__consumer_offsets` in Kafka's record schema.
//!
//! - [`GroupCoordinator`]: the deterministic state machine; every call takes the time.
//! - [`BlockingCoordinator`]: the same for threads, with waits on a condition variable and
//!   storage through an [`OffsetsLog`].
//! - [`Assignor`] with [`Range`], [`RoundRobin`] and [`CooperativeSticky`].
//! - [`records`]: the `__consumer_offsets` key and value formats; [`protocol`]: the consumer
//!   protocol's subscription and assignment.

mod assignor;
mod blocking;
mod coordinator;
mod error;
#[allow(clippy::module_inception)]
mod group;
mod load;
mod member;
mod messages;
mod offsets_log;
pub mod protocol;
pub mod records;
mod state;
mod sticky;
mod topic_partition;
mod wire;

pub use assignor::{
    builtin_assignor, Assignment, Assignor, MemberSubscription, Range, RebalanceProtocol,
    RoundRobin,
};
pub use blocking::BlockingCoordinator;
pub use coordinator::{CoordinatorConfig, GroupCoordinator, OffsetsRecord};
pub use error::{DecodeFailure, GroupError, OffsetsLogError};
pub use load::{load_partition, LoadedPartition};
pub use messages::{
    CommitRequest, GroupDescription, GroupListing, JoinRequest, JoinResponse, JoinStatus,
    JoinedMember, MemberDescription, MemberRef, Protocol, SyncRequest,
};
pub use offsets_log::{MemoryOffsetsLog, OffsetsLog};
pub use records::{OffsetAndMetadata, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS};
pub use state::GroupState;
pub use sticky::{moved_partitions, sticky_assignment, valid_owners, CooperativeSticky};
pub use topic_partition::TopicPartition;

//! A broker: one node with a data directory, its topics and partitions, and topic
//! administration. The producer and consumer talk to it.

#[allow(clippy::module_inception)]
mod broker;
mod cluster;
mod config;
mod error;
mod group_admin;
mod groups;
mod metadata;
mod registry;
mod store;
mod topic;

pub use broker::{Broker, BrokerConfig, Drive};
pub use config::{CleanupPolicy, TopicConfig, MAX_PARTITIONS};
pub use error::BrokerError;
pub use group_admin::{
    ConsumerGroupDescription, ConsumerGroupMember, ConsumerGroups, GroupLag, OffsetSpec,
    PartitionLag,
};
pub use groups::BrokerOffsetsLog;
pub use registry::BROKER_SESSION_TIMEOUT_MS;
pub(crate) use topic::TopicState;
pub use topic::{Partition, PartitionDescription, Topic, TopicDescription};

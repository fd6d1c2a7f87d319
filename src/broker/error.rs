use std::path::PathBuf;

use crate::log::LogError;
use crate::partition::PartitionError;

/// Errors from opening a broker and administering its topics.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {path} is locked by another broker")]
    Locked { path: PathBuf },
    #[error("unknown topic {topic}")]
    UnknownTopic { topic: String },
    #[error("unknown partition {topic}-{partition}")]
    UnknownPartition { topic: String, partition: u32 },
    #[error("topic {topic} already exists")]
    TopicExists { topic: String },
    #[error("invalid partition count {requested}: must be 1..={max}")]
    InvalidPartitions { requested: u32, max: u32 },
    #[error("partition count can only grow: topic has {current}, {requested} requested")]
    PartitionsCannotShrink { current: u32, requested: u32 },
    #[error("replication factor {requested} needs that many live brokers; {live_brokers} live")]
    InvalidReplicationFactor { requested: u16, live_brokers: u16 },
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("invalid property line {line:?}")]
    InvalidProperty { line: String },
    #[error("broker id {broker_id} is registered by another live broker")]
    BrokerIdInUse { broker_id: i32 },
    #[error("coordinator: {0}")]
    Coordination(#[source] crate::coordinator::CoordError),
    #[error("broker is closed")]
    Closed,
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Partition(#[from] PartitionError),
    #[error(transparent)]
    Replication(#[from] crate::replication::ReplicationError),
    #[error(transparent)]
    Group(#[from] crate::group::GroupError),
}

impl BrokerError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BrokerError {
        let path = path.into();
        move |source| BrokerError::Io { path, source }
    }
}

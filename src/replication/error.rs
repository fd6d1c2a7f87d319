use crate::coordinator::CoordError;
use crate::partition::PartitionError;

use super::state::StateError;
use super::transport::TransportError;

/// Errors of replicated appends and of the replication machinery.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// This broker does not lead the partition; `leader` is the leader it knows of.
    #[error(
        "broker is not the leader of {topic}-{partition} (leader {leader:?}, epoch {leader_epoch})"
    )]
    NotLeader {
        topic: String,
        partition: u32,
        leader: Option<i32>,
        leader_epoch: i32,
    },
    /// `acks=All` with fewer in-sync replicas than `min_insync_replicas`: nothing was appended.
    #[error("not enough in-sync replicas: {isr} of at least {min_insync_replicas}")]
    NotEnoughReplicas {
        isr: usize,
        min_insync_replicas: u16,
    },
    /// The append reached the high watermark only after the ISR had shrunk below
    /// `min_insync_replicas`: it is in the log, but not acknowledged.
    #[error("appended, but the ISR shrank to {isr}, below {min_insync_replicas}")]
    NotEnoughReplicasAfterAppend {
        isr: usize,
        min_insync_replicas: u16,
    },
    /// The append was not replicated before its deadline: it may or may not survive.
    #[error("append at offset {offset} was not replicated in time")]
    Timeout { offset: u64 },
    /// The partition has no leader (no live in-sync replica, and unclean election is off).
    #[error("partition {topic}-{partition} is offline: no live in-sync replica")]
    Offline { topic: String, partition: u32 },
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownTopicOrPartition { topic: String, partition: u32 },
    #[error("coordinator entry {path}: {source}")]
    BadState {
        path: String,
        #[source]
        source: StateError,
    },
    #[error(transparent)]
    Partition(#[from] PartitionError),
    #[error("coordinator: {0}")]
    Coordination(#[from] CoordError),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl ReplicationError {
    /// Whether a producer should refresh its view of the leader and retry.
    pub fn is_retriable(&self) -> bool {
        if let ReplicationError::Partition(PartitionError::Log(crate::log::LogError::Closed)) = self
        {
            // The replica's broker is stopping: another will lead.
            return true;
        }
        matches!(
            self,
            ReplicationError::NotLeader { .. }
                | ReplicationError::NotEnoughReplicas { .. }
                | ReplicationError::NotEnoughReplicasAfterAppend { .. }
                | ReplicationError::Timeout { .. }
                | ReplicationError::Offline { .. }
                | ReplicationError::Transport(_)
        )
    }
}

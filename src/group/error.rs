use crate::partition::PartitionError;

/// Errors from the group coordinator, named after Kafka's error codes so a Kafka user knows them.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The request names a generation other than the group's current one.
    #[error("group {group}: generation {generation} is not the current generation {current}")]
    IllegalGeneration {
        group: String,
        generation: i32,
        current: i32,
    },
    /// The member id is not (or no longer) a member of the group.
    #[error("group {group}: unknown member id {member_id:?}")]
    UnknownMemberId { group: String, member_id: String },
    /// JoinGroup v4+ with an empty member id (KIP-394): join again with `member_id`, which the
    /// coordinator holds as pending for one session timeout.
    #[error("group {group}: member id required, join again as {member_id:?}")]
    MemberIdRequired { group: String, member_id: String },
    /// The group is rebalancing: rejoin.
    #[error("group {group} is rebalancing")]
    RebalanceInProgress { group: String },
    /// Another member now holds this static instance id (KIP-345).
    #[error("group {group}: instance id {instance_id} is fenced by a newer member")]
    FencedInstanceId { group: String, instance_id: String },
    /// The coordinator is shutting the group down, or its partition failed to load.
    #[error("coordinator for group {group} is not available")]
    CoordinatorNotAvailable { group: String },
    /// This coordinator does not own the group's `__consumer_offsets` partition.
    #[error("not the coordinator of group {group} (offsets partition {partition})")]
    NotCoordinator { group: String, partition: u32 },
    /// The group's `__consumer_offsets` partition is still being read.
    #[error("offsets partition {partition} is loading")]
    CoordinatorLoadInProgress { partition: u32 },
    #[error("group {group} does not exist")]
    GroupIdNotFound { group: String },
    /// Deleting or resetting a group that still has members.
    #[error("group {group} still has members")]
    NonEmptyGroup { group: String },
    /// The joining member shares no protocol (or a different protocol type) with the group.
    #[error("group {group}: no protocol in common with the members")]
    InconsistentGroupProtocol { group: String },
    #[error("session timeout {timeout_ms} ms is outside {min_ms}..={max_ms}")]
    InvalidSessionTimeout {
        timeout_ms: i32,
        min_ms: i32,
        max_ms: i32,
    },
    #[error("invalid group id {group:?}")]
    InvalidGroupId { group: String },
    /// A field too long for Kafka's 16-bit string lengths, or too many members or partitions.
    #[error("request field {field} is too large")]
    TooLarge { field: &'static str },
    /// A record of `__consumer_offsets` (or a protocol payload) does not decode.
    #[error("corrupt {what} at offset {offset} of offsets partition {partition}: {reason}")]
    Corrupt {
        what: &'static str,
        partition: u32,
        offset: u64,
        reason: &'static str,
    },
    /// Appending to or reading `__consumer_offsets` failed; nothing was applied.
    #[error("offsets partition {partition}: {source}")]
    Storage {
        partition: u32,
        #[source]
        source: OffsetsLogError,
    },
}

/// Errors of an [`OffsetsLog`](super::OffsetsLog).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum OffsetsLogError {
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// This node does not lead the partition (the replicated implementation).
    #[error("not the leader of offsets partition {partition}")]
    NotLeader { partition: u32 },
    /// The replicated append was not acknowledged: too few in-sync replicas, its wait timed
    /// out, or the leadership moved while it waited (the records may or may not survive).
    #[error(transparent)]
    Replication(#[from] crate::replication::ReplicationError),
    #[error("offsets partition {partition} does not exist")]
    UnknownPartition { partition: u32 },
    /// A record to append does not fit a batch.
    #[error("offsets batch too large: {size_bytes} bytes")]
    TooLarge { size_bytes: usize },
}

/// Why bytes of a `__consumer_offsets` record or a consumer protocol payload do not decode,
/// without their position (the caller knows where it read them; see `GroupError::Corrupt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeFailure(pub &'static str);

//! Kafka's error codes, and which of ours each of our errors becomes.

use crate::broker::BrokerError;
use crate::group::GroupError;
use crate::log::LogError;
use crate::partition::PartitionError;
use crate::replication::{ReplicaError, ReplicationError};

pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const NONE: i16 = 0;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const NOT_ENOUGH_REPLICAS: i16 = 19;
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const INVALID_GROUP_ID: i16 = 24;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_CONFIG: i16 = 40;
pub const NOT_CONTROLLER: i16 = 41;
pub const INVALID_REQUEST: i16 = 42;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const NON_EMPTY_GROUP: i16 = 68;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const FENCED_LEADER_EPOCH: i16 = 74;
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
pub const STALE_BROKER_EPOCH: i16 = 77;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const FENCED_INSTANCE_ID: i16 = 82;
pub const INVALID_RECORD: i16 = 87;
pub const UNKNOWN_TOPIC_ID: i16 = 100;

pub fn code_of_log(error: &LogError) -> i16 {
    match error {
        LogError::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        LogError::RecordTooLarge { .. } => MESSAGE_TOO_LARGE,
        LogError::InvalidBatch(_) => CORRUPT_MESSAGE,
        LogError::InvalidRecord { .. } => INVALID_RECORD,
        LogError::InvalidTopicName { .. } => INVALID_TOPIC_EXCEPTION,
        LogError::StaleLeaderEpoch { .. } => FENCED_LEADER_EPOCH,
        // A replica whose broker is stopping: the client looks for the new leader.
        LogError::Closed => NOT_LEADER_OR_FOLLOWER,
        LogError::Io { .. } | LogError::FlushFailed | LogError::Corrupt { .. } => {
            KAFKA_STORAGE_ERROR
        }
        _ => UNKNOWN_SERVER_ERROR,
    }
}

pub fn code_of_partition(error: &PartitionError) -> i16 {
    match error {
        PartitionError::Log(error) => code_of_log(error),
        PartitionError::OutOfOrderSequence { .. } => OUT_OF_ORDER_SEQUENCE_NUMBER,
        PartitionError::ProducerFenced { .. } => INVALID_PRODUCER_EPOCH,
        PartitionError::Deleted { .. } => UNKNOWN_TOPIC_OR_PARTITION,
    }
}

pub fn code_of_replication(error: &ReplicationError) -> i16 {
    match error {
        ReplicationError::NotLeader { .. } => NOT_LEADER_OR_FOLLOWER,
        ReplicationError::NotEnoughReplicas { .. } => NOT_ENOUGH_REPLICAS,
        ReplicationError::NotEnoughReplicasAfterAppend { .. } => NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ReplicationError::Timeout { .. } => REQUEST_TIMED_OUT,
        ReplicationError::Offline { .. } => LEADER_NOT_AVAILABLE,
        ReplicationError::UnknownTopicOrPartition { .. } => UNKNOWN_TOPIC_OR_PARTITION,
        ReplicationError::Partition(error) => code_of_partition(error),
        _ => UNKNOWN_SERVER_ERROR,
    }
}

pub fn code_of_group(error: &GroupError) -> i16 {
    match error {
        GroupError::IllegalGeneration { .. } => ILLEGAL_GENERATION,
        GroupError::UnknownMemberId { .. } => UNKNOWN_MEMBER_ID,
        GroupError::RebalanceInProgress { .. } => REBALANCE_IN_PROGRESS,
        GroupError::FencedInstanceId { .. } => FENCED_INSTANCE_ID,
        GroupError::MemberIdRequired { .. } => MEMBER_ID_REQUIRED,
        GroupError::CoordinatorNotAvailable { .. } => COORDINATOR_NOT_AVAILABLE,
        GroupError::NotCoordinator { .. } => NOT_COORDINATOR,
        GroupError::CoordinatorLoadInProgress { .. } => COORDINATOR_LOAD_IN_PROGRESS,
        GroupError::GroupIdNotFound { .. } => GROUP_ID_NOT_FOUND,
        GroupError::NonEmptyGroup { .. } => NON_EMPTY_GROUP,
        GroupError::InconsistentGroupProtocol { .. } => INCONSISTENT_GROUP_PROTOCOL,
        GroupError::InvalidSessionTimeout { .. } => INVALID_SESSION_TIMEOUT,
        GroupError::InvalidGroupId { .. } => INVALID_GROUP_ID,
        GroupError::TooLarge { .. } => INVALID_REQUEST,
        GroupError::Corrupt { .. } => COORDINATOR_NOT_AVAILABLE,
        GroupError::Storage { .. } => COORDINATOR_NOT_AVAILABLE,
    }
}

pub fn code_of_broker(error: &BrokerError) -> i16 {
    match error {
        BrokerError::UnknownTopic { .. } | BrokerError::UnknownPartition { .. } => {
            UNKNOWN_TOPIC_OR_PARTITION
        }
        BrokerError::TopicExists { .. } => TOPIC_ALREADY_EXISTS,
        BrokerError::InvalidPartitions { .. } | BrokerError::PartitionsCannotShrink { .. } => {
            INVALID_PARTITIONS
        }
        BrokerError::InvalidReplicationFactor { .. } => INVALID_REPLICATION_FACTOR,
        BrokerError::InvalidConfig(_) | BrokerError::InvalidProperty { .. } => INVALID_CONFIG,
        BrokerError::Log(error) => code_of_log(error),
        BrokerError::Partition(error) => code_of_partition(error),
        BrokerError::Replication(error) => code_of_replication(error),
        BrokerError::Group(error) => code_of_group(error),
        BrokerError::Closed => NOT_LEADER_OR_FOLLOWER,
        BrokerError::Io { .. } => KAFKA_STORAGE_ERROR,
        _ => UNKNOWN_SERVER_ERROR,
    }
}

/// The code a leader answers a replica's fetch or epoch query with.
pub fn code_of_replica(error: ReplicaError) -> i16 {
    match error {
        ReplicaError::NotLeaderOrFollower => NOT_LEADER_OR_FOLLOWER,
        ReplicaError::FencedLeaderEpoch => FENCED_LEADER_EPOCH,
        ReplicaError::UnknownLeaderEpoch => UNKNOWN_LEADER_EPOCH,
        ReplicaError::OffsetOutOfRange => OFFSET_OUT_OF_RANGE,
        ReplicaError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        ReplicaError::KafkaStorageError => KAFKA_STORAGE_ERROR,
    }
}

/// The error a follower reads from a leader's code (`None` for `NONE`). A code outside the
/// ones a leader answers replicas with reads as `NotLeaderOrFollower`: the follower then
/// rereads the partition's state, which is right whatever went wrong on the leader.
pub fn replica_error_of(code: i16) -> Option<ReplicaError> {
    match code {
        NONE => None,
        FENCED_LEADER_EPOCH => Some(ReplicaError::FencedLeaderEpoch),
        UNKNOWN_LEADER_EPOCH => Some(ReplicaError::UnknownLeaderEpoch),
        OFFSET_OUT_OF_RANGE => Some(ReplicaError::OffsetOutOfRange),
        UNKNOWN_TOPIC_OR_PARTITION => Some(ReplicaError::UnknownTopicOrPartition),
        KAFKA_STORAGE_ERROR => Some(ReplicaError::KafkaStorageError),
        _ => Some(ReplicaError::NotLeaderOrFollower),
    }
}

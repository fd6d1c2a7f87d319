//! The coordinator's requests and responses, shaped like Kafka's JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit and DescribeGroups, minus the wire.

use bytes::Bytes;

use super::{GroupState, OffsetAndMetadata, TopicPartition};

/// One protocol (assignor) a member supports, with its metadata (a consumer protocol
/// subscription for consumer groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

/// JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty for a member joining for the first time (the coordinator makes one up).
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// How long the coordinator waits for every member to rejoin; consumers send
    /// `max_poll_interval_ms`.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// In order of preference.
    pub protocols: Vec<Protocol>,
    /// JoinGroup v4 and later (KIP-394): a dynamic member joining with an empty member id is
    /// not added at once but answered `MemberIdRequired` with an id to join again with, so a
    /// client whose first response is lost leaves no orphan member behind. The in-process
    /// consumer sends `false` (it cannot lose a response); a Kafka-protocol front end sets it
    /// for JoinGroup v4+.
    pub require_known_member_id: bool,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// The JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: String,
    pub member_id: String,
    /// Every member, for the leader only; empty for the others.
    pub members: Vec<JoinedMember>,
    /// A static leader rejoining with nothing changed keeps the current assignment (KIP-814):
    /// it must not compute a new one.
    pub skip_assignment: bool,
}

impl JoinResponse {
    pub fn is_leader(&self) -> bool {
        self.leader_id == self.member_id
    }
}

/// What `join` answers at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinStatus {
    /// The rebalance completed (or none was needed).
    Joined(JoinResponse),
    /// The member is in the group as `member_id` and waits for the others; ask again with
    /// `poll_join`.
    Pending { member_id: String },
}

/// Who sends a SyncGroup, Heartbeat or OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
}

impl MemberRef {
    /// A standalone consumer (no membership) committing for `group_id`: generation -1.
    pub fn standalone(group_id: impl Into<String>) -> Self {
        MemberRef {
            group_id: group_id.into(),
            member_id: String::new(),
            group_instance_id: None,
            generation_id: -1,
        }
    }
}

/// SyncGroup: the leader sends every member's assignment; the others send none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub member: MemberRef,
    pub assignments: Vec<(String, Bytes)>,
}

/// OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    pub member: MemberRef,
    pub offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
}

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's metadata for the group's protocol.
    pub metadata: Bytes,
    /// The assignment bytes (a consumer protocol assignment for consumer groups).
    pub assignment: Bytes,
}

/// DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberDescription>,
}

/// ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
}

//! One member of a group as the coordinator keeps it.

use bytes::Bytes;

use super::messages::{JoinRequest, JoinResponse, Protocol};

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<Protocol>,
    /// The leader's assignment for this member in the current generation.
    pub assignment: Bytes,
    /// Session expiry: the last heartbeat (or join, sync) plus the session timeout.
    pub heartbeat_deadline_ms: i64,
    /// Joined the rebalance in progress (and so waits for its response, exempt from expiry).
    pub joined: bool,
    /// The JoinGroup response waiting to be collected.
    pub join_response: Option<JoinResponse>,
    /// Sent SyncGroup in the current generation.
    pub synced: bool,
    /// When the member joined the group, to pick a leader as Kafka does (the first to join).
    pub join_order: u64,
}

impl Member {
    pub fn from_request(id: String, request: &JoinRequest, join_order: u64, now_ms: i64) -> Self {
        Member {
            id,
            instance_id: request.group_instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocols: request.protocols.clone(),
            assignment: Bytes::new(),
            heartbeat_deadline_ms: now_ms + i64::from(request.session_timeout_ms),
            joined: true,
            join_response: None,
            synced: false,
            join_order,
        }
    }

    /// Takes the request's timeouts and protocols; returns whether the protocols changed.
    pub fn update(&mut self, request: &JoinRequest) -> bool {
        self.session_timeout_ms = request.session_timeout_ms;
        self.rebalance_timeout_ms = request.rebalance_timeout_ms;
        self.client_id.clone_from(&request.client_id);
        self.client_host.clone_from(&request.client_host);
        let changed = self.protocols != request.protocols;
        self.protocols.clone_from(&request.protocols);
        changed
    }

    pub fn heartbeat(&mut self, now_ms: i64) {
        self.heartbeat_deadline_ms = now_ms + i64::from(self.session_timeout_ms);
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }
}

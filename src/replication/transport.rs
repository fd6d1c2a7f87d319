//! Traffic between brokers: follower fetches, end offsets for leader epochs, the controller's
//! leader-and-ISR notices and controlled shutdown, behind the [`Transport`] trait.
//!
//! [`InProcessNetwork`] carries them between brokers of one process, with faults a test can
//! inject: links cut one way or both ways (a request over a cut link is never delivered; a
//! response over a cut link is lost after the request took effect, as on a real network),
//! lossy links that drop a seeded share of messages, and added latency. A network transport
//! (the `kafka` feature's `KafkaTransport`) implements the same trait without touching
//! replication.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;

/// Why a broker-to-broker call did not complete.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No route to the broker: it is down, unknown, or the link is cut. The request did not
    /// take effect.
    #[error("broker {to} is unreachable from broker {from}")]
    Unreachable { from: i32, to: i32 },
    /// The request was delivered but its response was lost; it may have taken effect.
    #[error("response from broker {to} to broker {from} was lost")]
    ResponseLost { from: i32, to: i32 },
}

/// Per-partition errors in replication responses (Kafka's error codes of the same names).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    #[error("not the leader or a follower of this partition")]
    NotLeaderOrFollower,
    /// The requester's leader epoch is older than the leader's.
    #[error("fenced leader epoch")]
    FencedLeaderEpoch,
    /// The requester's leader epoch is newer than the leader's (the leader has not heard yet).
    #[error("unknown leader epoch")]
    UnknownLeaderEpoch,
    #[error("offset out of range")]
    OffsetOutOfRange,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// The leader's log failed (for example after a failed fsync).
    #[error("storage error on the leader")]
    KafkaStorageError,
}

/// A follower's fetch: one request for every partition it follows on the receiving leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub replica_id: i32,
    /// The follower's registration epoch (the creation zxid of its `/brokers/ids/<id>`), which
    /// the leader records when the follower joins the ISR (KIP-903).
    pub replica_broker_epoch: i64,
    /// How long the leader may wait for data when none of the partitions has any.
    pub max_wait_ms: u64,
    /// Bytes per partition at most (at least one whole batch is returned).
    pub max_partition_bytes: usize,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    pub topic: Arc<str>,
    pub partition: u32,
    /// The follower's log end: everything before it is in the follower's log.
    pub fetch_offset: u64,
    pub current_leader_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    pub partitions: Vec<FetchedPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub topic: Arc<str>,
    pub partition: u32,
    pub result: Result<FetchedData, ReplicaError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedData {
    pub high_watermark: u64,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    /// Whole batches from the fetch offset, as they lie in the leader's log.
    pub records: Bytes,
}

/// KIP-101/279's OffsetForLeaderEpoch: where did the leader's copy of an epoch end?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRequest {
    pub replica_id: i32,
    pub partitions: Vec<EpochQuery>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochQuery {
    pub topic: Arc<str>,
    pub partition: u32,
    pub current_leader_epoch: i32,
    /// The follower's latest epoch.
    pub leader_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochResponse {
    pub partitions: Vec<EpochAnswer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochAnswer {
    pub topic: Arc<str>,
    pub partition: u32,
    /// The largest epoch at or below the one asked for and its end offset on the leader, or
    /// `None` when the leader holds no such epoch.
    pub result: Result<Option<(i32, u64)>, ReplicaError>,
}

/// The controller tells a broker that partition states changed (the coordinator holds them;
/// the broker rereads). Notices only speed things up: brokers also watch the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsrNotice {
    pub controller_id: i32,
    pub controller_epoch: i32,
    pub partitions: Vec<(Arc<str>, u32)>,
}

/// What a broker serves to its peers. Implemented by the replica manager.
pub trait ReplicaService: Send + Sync {
    fn handle_fetch(&self, request: FetchRequest) -> FetchResponse;
    fn handle_end_offsets(&self, request: EpochRequest) -> EpochResponse;
    fn handle_leader_and_isr(&self, notice: LeaderAndIsrNotice);
    /// On the controller: moves leadership away from `broker_id` and takes it out of every
    /// ISR; returns how many partitions it still leads (0 when it may stop). Not the
    /// controller: `None`.
    fn handle_controlled_shutdown(&self, broker_id: i32) -> Option<u32>;
}

/// Carries requests between brokers.
///
/// Contract: a call either reaches the peer's [`ReplicaService`] once and returns its answer,
/// or fails with [`TransportError`]; `Unreachable` guarantees the request had no effect,
/// `ResponseLost` does not. Calls may block (for a fetch, up to its `max_wait_ms`).
pub trait Transport: Send + Sync {
    /// # Errors
    /// `Unreachable`, `ResponseLost`.
    fn fetch(
        &self,
        from: i32,
        to: i32,
        request: FetchRequest,
    ) -> Result<FetchResponse, TransportError>;
    /// # Errors
    /// `Unreachable`, `ResponseLost`.
    fn end_offsets(
        &self,
        from: i32,
        to: i32,
        request: EpochRequest,
    ) -> Result<EpochResponse, TransportError>;
    /// # Errors
    /// `Unreachable`, `ResponseLost`.
    fn leader_and_isr(
        &self,
        from: i32,
        to: i32,
        notice: LeaderAndIsrNotice,
    ) -> Result<(), TransportError>;
    /// # Errors
    /// `Unreachable`, `ResponseLost`.
    fn controlled_shutdown(
        &self,
        from: i32,
        to: i32,
        broker_id: i32,
    ) -> Result<Option<u32>, TransportError>;

    /// Called by the broker that sends through this transport once its replica manager
    /// exists, before its first step. A transport that finds its peers in the coordinator
    /// reads them through the manager's session (which the manager renews when it expires).
    /// The default ignores it.
    fn bind(&self, local: Weak<super::ReplicaManager>) {
        let _ = local;
    }
}

/// Brokers of one process, and the faults between them.
#[derive(Default)]
pub struct InProcessNetwork {
    state: RwLock<NetworkState>,
}

#[derive(Default)]
struct NetworkState {
    services: HashMap<i32, Weak<dyn ReplicaService>>,
    /// Broker handles for clients that follow leaders across brokers of this process.
    endpoints: HashMap<i32, Weak<dyn std::any::Any + Send + Sync>>,
    /// Directed links (from, to) that drop everything.
    cut: HashSet<(i32, i32)>,
    delay_ms: HashMap<(i32, i32), u64>,
    /// Directed links that drop this percentage of messages (requests and responses alike).
    drop_percent: HashMap<(i32, i32), u8>,
    /// The generator deciding which messages a lossy link drops (xorshift, seedable).
    drop_state: u64,
}

impl std::fmt::Debug for InProcessNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.read();
        f.debug_struct("InProcessNetwork")
            .field("brokers", &state.services.keys().collect::<Vec<_>>())
            .field("cut", &state.cut)
            .finish_non_exhaustive()
    }
}

impl InProcessNetwork {
    pub fn new() -> Arc<InProcessNetwork> {
        Arc::new(InProcessNetwork::default())
    }

    /// Attaches broker `id`'s service (replacing an earlier one with that id, as a restarted
    /// broker does).
    pub fn attach(
        &self,
        id: i32,
        service: Weak<dyn ReplicaService>,
        endpoint: Weak<dyn std::any::Any + Send + Sync>,
    ) {
        let mut state = self.state.write();
        state.services.insert(id, service);
        state.endpoints.insert(id, endpoint);
    }

    /// The endpoint broker `id` attached, if it still lives.
    pub fn endpoint(&self, id: i32) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.state.read().endpoints.get(&id)?.upgrade()
    }

    /// The ids of the brokers attached (open or not).
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.state.read().endpoints.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut(&self, from: i32, to: i32) {
        self.state.write().cut.insert((from, to));
    }

    /// Cuts both directions between `a` and `b`.
    pub fn partition(&self, a: i32, b: i32) {
        let mut state = self.state.write();
        state.cut.insert((a, b));
        state.cut.insert((b, a));
    }

    /// Restores the link from `from` to `to`.
    pub fn heal_link(&self, from: i32, to: i32) {
        self.state.write().cut.remove(&(from, to));
    }

    /// Restores every link and removes every delay and loss.
    pub fn heal(&self) {
        let mut state = self.state.write();
        state.cut.clear();
        state.delay_ms.clear();
        state.drop_percent.clear();
    }

    /// Makes the link from `from` to `to` drop `percent` of the messages crossing it (a
    /// request dropped has no effect; a response dropped is lost after the request took
    /// effect). Which ones follow from [`InProcessNetwork::seed_drops`].
    pub fn set_drop_percent(&self, from: i32, to: i32, percent: u8) {
        self.state
            .write()
            .drop_percent
            .insert((from, to), percent.min(100));
    }

    /// Seeds the choice of dropped messages, so that a seeded run drops the same ones.
    pub fn seed_drops(&self, seed: u64) {
        self.state.write().drop_state = seed | 1;
    }

    /// Whether the next message over `(from, to)` is lost.
    fn dropped(&self, from: i32, to: i32) -> bool {
        let mut state = self.state.write();
        let Some(&percent) = state.drop_percent.get(&(from, to)) else {
            return false;
        };
        let mut x = state.drop_state.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.drop_state = x;
        x % 100 < u64::from(percent)
    }

    /// Adds `delay_ms` of latency to each request from `from` to `to`.
    pub fn set_delay_ms(&self, from: i32, to: i32, delay_ms: u64) {
        self.state.write().delay_ms.insert((from, to), delay_ms);
    }

    fn route(&self, from: i32, to: i32) -> Result<Arc<dyn ReplicaService>, TransportError> {
        if self.dropped(from, to) {
            return Err(TransportError::Unreachable { from, to });
        }
        let (service, delay_ms) = {
            let state = self.state.read();
            if state.cut.contains(&(from, to)) {
                return Err(TransportError::Unreachable { from, to });
            }
            let service = state.services.get(&to).and_then(Weak::upgrade);
            (service, state.delay_ms.get(&(from, to)).copied())
        };
        if let Some(delay_ms) = delay_ms {
            // Simulated latency: the network's own time, not a test waiting for something.
            std::thread::sleep(Duration::from_millis(delay_ms));
        }
        service.ok_or(TransportError::Unreachable { from, to })
    }

    fn deliver<T>(&self, from: i32, to: i32, response: T) -> Result<T, TransportError> {
        if self.state.read().cut.contains(&(to, from)) || self.dropped(to, from) {
            return Err(TransportError::ResponseLost { from, to });
        }
        Ok(response)
    }
}

impl Transport for InProcessNetwork {
    fn fetch(
        &self,
        from: i32,
        to: i32,
        request: FetchRequest,
    ) -> Result<FetchResponse, TransportError> {
        let response = self.route(from, to)?.handle_fetch(request);
        self.deliver(from, to, response)
    }

    fn end_offsets(
        &self,
        from: i32,
        to: i32,
        request: EpochRequest,
    ) -> Result<EpochResponse, TransportError> {
        let response = self.route(from, to)?.handle_end_offsets(request);
        self.deliver(from, to, response)
    }

    fn leader_and_isr(
        &self,
        from: i32,
        to: i32,
        notice: LeaderAndIsrNotice,
    ) -> Result<(), TransportError> {
        self.route(from, to)?.handle_leader_and_isr(notice);
        self.deliver(from, to, ())
    }

    fn controlled_shutdown(
        &self,
        from: i32,
        to: i32,
        broker_id: i32,
    ) -> Result<Option<u32>, TransportError> {
        let remaining = self.route(from, to)?.handle_controlled_shutdown(broker_id);
        self.deliver(from, to, remaining)
    }
}

//! The `Coordinator` and `Session` traits: ZooKeeper's client API, synchronous and object-safe.

use std::sync::Arc;

use crossbeam::channel::Receiver;

use super::error::CoordError;
use super::types::{
    AddWatchMode, CreateMode, Event, Op, OpResult, SessionConfig, SessionId, Stat, Version, Watch,
    WatcherKind,
};

/// A coordination service with ZooKeeper's data model and guarantees: a tree of znodes, writes in
/// one global order, sessions whose ephemeral nodes go when they end, and watches.
///
/// Implementations: [`MemoryCoordinator`](super::MemoryCoordinator) (in-process, the reference)
/// and `ZooKeeperCoordinator` (a real ZooKeeper ensemble, behind the `zookeeper` feature). The generic conformance suite
/// (`coordinator::conformance`) runs against any of them.
pub trait Coordinator: Send + Sync {
    /// Opens a session. Its handle heartbeats on its own until stopped, closed or dropped.
    ///
    /// # Errors
    /// `BadArguments` for a zero timeout or event queue capacity; `ConnectionLoss` from a remote
    /// coordinator.
    fn session(&self, config: SessionConfig) -> Result<Arc<dyn Session>, CoordError>;

    /// Expires a live session now, as if its heartbeats had stopped for its whole timeout: its
    /// ephemeral nodes are deleted in one transaction, watches fire, and its handle receives
    /// `SessionEvent::Expired` and fails every later operation with `SessionExpired`.
    ///
    /// This is the hook tests use instead of advancing a clock; a ZooKeeper adapter implements it
    /// by reconnecting with the session's id and password and closing that connection.
    ///
    /// # Errors
    /// `SessionExpired` if the session is not live.
    fn expire_session(&self, session: SessionId) -> Result<(), CoordError>;
}

/// A session: every operation on the tree is made through one.
///
/// Operations of one session take effect in the order they are called (FIFO client order).
/// Every operation fails with `SessionExpired` once the session has expired or was closed, and
/// with `InvalidPath` for a malformed path, before anything else is checked.
///
/// Events (fired watches, then the session's end) arrive on [`Session::events`] in zxid order,
/// and an event is queued before the write that caused it returns, so the session sees the event
/// before it can read the change. The queue is bounded: a session that lets it fill up is
/// expired (`ExpiryReason::QueueOverflow`) rather than block writers.
///
/// Dropping the last handle closes the session.
pub trait Session: Send + Sync {
    /// The session's id.
    fn id(&self) -> SessionId;

    /// The negotiated session timeout.
    fn timeout_ms(&self) -> u64;

    /// The session's events. The channel is multi-consumer: each event goes to one receiver.
    fn events(&self) -> &Receiver<Event>;

    /// Creates a node and returns its path (with the sequence suffix, for a sequential mode:
    /// the parent's count of child creations as 10 digits, appended to `path`; ZooKeeper's
    /// reported `cversion` counts deletions too).
    ///
    /// # Errors
    /// `NodeExists`; `NoNode` if the parent is missing; `NoChildrenForEphemerals` if the parent
    /// is ephemeral; `DataTooLarge`; `InvalidPath` (the root included).
    fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String, CoordError>;

    /// Reads a node's data and stat; with [`Watch::Set`], leaves a one-shot data watch.
    ///
    /// # Errors
    /// `NoNode` (and no watch is left).
    fn get_data(&self, path: &str, watch: Watch) -> Result<(Vec<u8>, Stat), CoordError>;

    /// Replaces a node's data if its version matches; returns the new stat.
    ///
    /// # Errors
    /// `NoNode`; `BadVersion`; `DataTooLarge`.
    fn set_data(&self, path: &str, data: &[u8], version: Version) -> Result<Stat, CoordError>;

    /// Deletes a node if its version matches.
    ///
    /// # Errors
    /// `NoNode`; `BadVersion`; `NotEmpty` if it has children; `InvalidPath` for the root.
    fn delete(&self, path: &str, version: Version) -> Result<(), CoordError>;

    /// The node's stat, or `None`; with [`Watch::Set`], leaves a one-shot watch that fires on
    /// its creation, deletion or data change (whether or not it exists now).
    ///
    /// # Errors
    /// Only the common ones.
    fn exists(&self, path: &str, watch: Watch) -> Result<Option<Stat>, CoordError>;

    /// The names of a node's children, sorted, and its stat; with [`Watch::Set`], leaves a
    /// one-shot child watch (fires on a child's creation or deletion, or the node's deletion).
    ///
    /// # Errors
    /// `NoNode` (and no watch is left).
    fn get_children(&self, path: &str, watch: Watch) -> Result<(Vec<String>, Stat), CoordError>;

    /// Applies all of `ops` in one transaction, or none of them. Results are in op order.
    ///
    /// # Errors
    /// `MultiFailed { index, error }` naming the first op that fails and why.
    fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>, CoordError>;

    /// Waits until this session's view includes every write committed before the call.
    ///
    /// # Errors
    /// Only the common ones.
    fn sync(&self, path: &str) -> Result<(), CoordError>;

    /// Adds a persistent or persistent-recursive watch on `path` (which need not exist).
    ///
    /// # Errors
    /// Only the common ones.
    fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<(), CoordError>;

    /// Removes this session's watches of `kind` on `path`.
    ///
    /// # Errors
    /// `NoWatcher` if there was none of that kind.
    fn remove_watches(&self, path: &str, kind: WatcherKind) -> Result<(), CoordError>;

    /// Stops heartbeating: unless an operation touches it, the session expires once its timeout
    /// passes. Tests use it to play a client that hangs or dies.
    fn stop_heartbeat(&self);

    /// Closes the session: its ephemeral nodes are deleted in one transaction and its handle
    /// receives `SessionEvent::Closed`. Closing an ended session does nothing.
    ///
    /// # Errors
    /// `ConnectionLoss` from a remote coordinator.
    fn close(&self) -> Result<(), CoordError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::MemoryCoordinator;

    fn assert_send_sync<T: Send + Sync + ?Sized>() {}

    #[test]
    fn traits_are_object_safe_and_shareable_across_threads() {
        assert_send_sync::<dyn Coordinator>();
        assert_send_sync::<dyn Session>();
        let coordinator: Arc<dyn Coordinator> = Arc::new(MemoryCoordinator::new());
        let session: Arc<dyn Session> = coordinator
            .session(SessionConfig::default())
            .expect("session");
        let id = std::thread::spawn(move || session.id())
            .join()
            .expect("thread");
        assert_ne!(id, SessionId::NONE);
    }
}

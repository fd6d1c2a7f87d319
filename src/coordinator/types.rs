//! The value types of ZooKeeper's data model: ids, versions, modes, `Stat`, events and `multi` ops.

use std::fmt;

/// A transaction id: the position of a committed change in the coordinator's single global order.
///
/// ZooKeeper splits it into a 32-bit epoch and a 32-bit counter; the in-memory coordinator has one
/// epoch (0), so it is a plain counter. `Zxid(0)` is "before any change".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(pub i64);

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A session's id. `SessionId(0)` is never a live session: it is the `ephemeral_owner` of
/// non-ephemeral nodes, as in ZooKeeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionId(pub i64);

impl SessionId {
    /// The owner of persistent nodes.
    pub const NONE: SessionId = SessionId(0);
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The version a conditional write expects (ZooKeeper's `-1` is [`Version::Any`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Apply whatever the node's version.
    Any,
    /// Apply only if the node's version is exactly this.
    Exactly(i32),
}

/// How a node is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateMode {
    /// Lives until deleted.
    Persistent,
    /// Deleted when its session ends; cannot have children.
    Ephemeral,
    /// Persistent, with the parent's sequence counter appended to the name as 10 digits.
    PersistentSequential,
    /// Ephemeral, with the parent's sequence counter appended to the name as 10 digits.
    EphemeralSequential,
    /// Persistent, and deleted once its last child is deleted (a container that never had a
    /// child stays). ZooKeeper deletes it lazily from a reaper thread; the in-memory coordinator
    /// deletes it in the same transaction as its last child.
    Container,
}

impl CreateMode {
    /// Whether the node is owned by the creating session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether the parent's counter is appended to the name.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential | CreateMode::EphemeralSequential
        )
    }
}

/// A node's metadata, as ZooKeeper's `Stat` (without ACL version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stat {
    /// The zxid that created the node.
    pub czxid: Zxid,
    /// The zxid that last set the node's data (its creation, if never set).
    pub mzxid: Zxid,
    /// The zxid that last added or removed a child (its creation, if none).
    pub pzxid: Zxid,
    /// Creation time, milliseconds since the epoch of the coordinator's clock.
    pub ctime_ms: i64,
    /// Time of the last data change, milliseconds.
    pub mtime_ms: i64,
    /// Number of data changes.
    pub version: i32,
    /// Number of child changes (creations and deletions). The next sequence suffix is the
    /// number of creations, `(cversion + num_children) / 2`, as in ZooKeeper.
    pub cversion: i32,
    /// The owning session for an ephemeral node, [`SessionId::NONE`] otherwise.
    pub ephemeral_owner: SessionId,
    /// Length of the data in bytes.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
}

/// Whether a read also leaves a one-shot watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Watch {
    /// Only read.
    None,
    /// Read and leave a one-shot watch that fires on the next change.
    Set,
}

/// The kind of a watch added with `add_watch` (ZooKeeper 3.6's `addWatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddWatchMode {
    /// Fires on every change of the node's data, existence and children, until removed.
    Persistent,
    /// Fires on every change of the data or existence of the node and of every descendant,
    /// until removed. Never sends `NodeChildrenChanged`.
    PersistentRecursive,
}

/// Which watches `remove_watches` removes (ZooKeeper's `WatcherType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherKind {
    /// One-shot data and exists watches.
    Data,
    /// One-shot child watches.
    Children,
    /// Persistent watches.
    Persistent,
    /// Persistent recursive watches.
    PersistentRecursive,
    /// All of the above.
    Any,
}

/// What happened to a watched node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The node was created.
    NodeCreated,
    /// The node was deleted.
    NodeDeleted,
    /// The node's data was set.
    NodeDataChanged,
    /// A child was created or deleted.
    NodeChildrenChanged,
}

/// A watch that fired.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchedEvent {
    /// What happened.
    pub kind: EventType,
    /// The node it happened to.
    pub path: String,
    /// The transaction that caused it; `None` when the server does not say (ZooKeeper reports
    /// it from 3.9 on). [`MemoryCoordinator`](super::MemoryCoordinator) always does.
    pub zxid: Option<Zxid>,
}

/// Why a session ended without being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryReason {
    /// No heartbeat for the session timeout.
    Timeout,
    /// The session's event queue was full: its consumer fell behind.
    QueueOverflow,
    /// Expired on request (`Coordinator::expire_session`).
    Forced,
}

/// A change of a session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionEvent {
    /// The session expired; its ephemeral nodes are gone.
    Expired {
        /// Why.
        reason: ExpiryReason,
    },
    /// The session was closed by its owner; its ephemeral nodes are gone.
    Closed,
}

/// What a session's event channel carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// A watch fired.
    Watch(WatchedEvent),
    /// The session ended; it is the last event on the channel.
    Session(SessionEvent),
}

/// One operation of a `multi`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// Create a node.
    Create {
        /// The path (the prefix, for a sequential mode).
        path: String,
        /// The data.
        data: Vec<u8>,
        /// The mode.
        mode: CreateMode,
    },
    /// Delete a node.
    Delete {
        /// The path.
        path: String,
        /// The expected version.
        version: Version,
    },
    /// Set a node's data.
    SetData {
        /// The path.
        path: String,
        /// The new data.
        data: Vec<u8>,
        /// The expected version.
        version: Version,
    },
    /// Fail the `multi` unless the node exists at this version.
    Check {
        /// The path.
        path: String,
        /// The expected version.
        version: Version,
    },
}

impl Op {
    /// A create op.
    pub fn create(path: impl Into<String>, data: impl Into<Vec<u8>>, mode: CreateMode) -> Op {
        Op::Create {
            path: path.into(),
            data: data.into(),
            mode,
        }
    }

    /// A delete op.
    pub fn delete(path: impl Into<String>, version: Version) -> Op {
        Op::Delete {
            path: path.into(),
            version,
        }
    }

    /// A set-data op.
    pub fn set_data(path: impl Into<String>, data: impl Into<Vec<u8>>, version: Version) -> Op {
        Op::SetData {
            path: path.into(),
            data: data.into(),
            version,
        }
    }

    /// A check op.
    pub fn check(path: impl Into<String>, version: Version) -> Op {
        Op::Check {
            path: path.into(),
            version,
        }
    }
}

/// The result of one op of a successful `multi`, in op order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OpResult {
    /// The created path.
    Create {
        /// The path as created (with the sequence suffix, if any).
        path: String,
    },
    /// The node was deleted.
    Delete,
    /// The node's new stat.
    SetData {
        /// The stat after the write.
        stat: Stat,
    },
    /// The check passed.
    Check,
}

/// How a session is opened.
///
/// ## Defaults
/// - `timeout_ms`: 18 000 (Kafka's `zookeeper.session.timeout.ms`); a coordinator clamps it to
///   its own bounds (ZooKeeper: 2 to 20 ticks) and reports the negotiated value.
/// - `event_queue_capacity`: 10 000 events. A session whose consumer lets this many events pile
///   up is expired with [`ExpiryReason::QueueOverflow`] rather than block writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionConfig {
    /// Requested session timeout.
    pub timeout_ms: u64,
    /// Bound of the session's event queue.
    pub event_queue_capacity: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            timeout_ms: 18_000,
            event_queue_capacity: 10_000,
        }
    }
}

impl SessionConfig {
    /// Sets the requested timeout.
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Sets the event queue bound.
    pub fn with_event_queue_capacity(mut self, capacity: usize) -> Self {
        self.event_queue_capacity = capacity;
        self
    }
}

//! The coordinator: ZooKeeper's data model and guarantees behind the [`Coordinator`] trait.
//!
//! - A tree of znodes holding bytes (1 MiB at most by default), addressed by absolute paths.
//! - Persistent, ephemeral, sequential and container nodes; versions and [`Stat`]; conditional
//!   writes; `multi` transactions that apply all or nothing.
//! - [`Session`]s with a timeout: a live handle heartbeats on its own; when a session ends, its
//!   ephemeral nodes go in one transaction and watches fire.
//! - One-shot, persistent and persistent-recursive watches, delivered per session in zxid order
//!   on a bounded channel.
//!
//! [`MemoryCoordinator`] is the in-process reference implementation; [`recipes`] builds leader
//! election and locks on any `Coordinator`. With the `zookeeper` feature,
//! `ZooKeeperCoordinator` implements the same trait on a real ZooKeeper ensemble (3.8 or newer).
//!
//! # Where `MemoryCoordinator` differs from ZooKeeper
//! - Reads are linearizable too (ZooKeeper's reads are served by one server and may be stale,
//!   even after `sync`); `sync` therefore only validates its path.
//! - A container is deleted in the same transaction as its last child, not later by a reaper.
//! - A session whose event queue overflows (`SessionConfig::event_queue_capacity`, default
//!   10 000) is expired with `ExpiryReason::QueueOverflow`; ZooKeeper has no such bound.
//! - A live handle never misses a heartbeat; [`Session::stop_heartbeat`] plays a hung client.
//! - Session ids count up from 1; there is one epoch, so a zxid is a plain counter.
//!
//! # Durability
//! Not wired yet: it waits for the crate's log engine. Every committed change is a [`Txn`]
//! applied by [`DataTree::apply`]; [`encode_txn`] / [`decode_txn`] and [`encode_snapshot`] /
//! [`decode_snapshot`] are pure codecs with typed errors, and [`TxnObserver`] is where a log
//! will take each txn.
//!
//! # Example
//! ```
//! use logbus::coordinator::{
//!     Coordinator, CreateMode, Event, EventType, MemoryCoordinator, SessionConfig, Version, Watch,
//! };
//!
//! # fn main() -> Result<(), logbus::coordinator::CoordError> {
//! let coordinator = MemoryCoordinator::new();
//! let broker = coordinator.session(SessionConfig::default())?;
//! let observer = coordinator.session(SessionConfig::default())?;
//! broker.create("/brokers", b"", CreateMode::Persistent)?;
//! observer.get_children("/brokers", Watch::Set)?;
//! broker.create("/brokers/0", b"{\"port\":9092}", CreateMode::Ephemeral)?;
//! let Ok(Event::Watch(event)) = observer.events().try_recv() else { panic!("no event") };
//! assert_eq!((event.kind, event.path.as_str()), (EventType::NodeChildrenChanged, "/brokers"));
//! broker.close()?;
//! assert!(observer.exists("/brokers/0", Watch::None)?.is_none());
//! # let _ = Version::Any;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod codec;
#[doc(hidden)]
pub mod conformance;
mod durable;
mod error;
#[doc(hidden)]
pub mod linearizability;
mod memory;
mod path;
pub mod recipes;
mod session;
mod snapshot;
mod state;
mod tree;
mod txn;
mod types;
mod watches;
#[cfg(feature = "zookeeper")]
mod zookeeper;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use durable::DurabilityConfig;
pub use error::{CodecError, CoordError, PathError, StorageError};
pub use memory::{MemoryCoordinator, MemoryCoordinatorConfig, MemorySession};
pub use path::check as check_path;
pub use session::{Coordinator, Session};
pub use snapshot::{decode_snapshot, encode_snapshot, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_MAGIC};
pub use state::TxnObserver;
pub use tree::{Change, DataTree, Node};
pub use txn::{decode_txn, encode_txn, NodeKind, Txn, TxnOp, TXN_FORMAT_VERSION};
pub use types::{
    AddWatchMode, CreateMode, Event, EventType, ExpiryReason, Op, OpResult, SessionConfig,
    SessionEvent, SessionId, Stat, Version, Watch, WatchedEvent, WatcherKind, Zxid,
};
#[cfg(feature = "zookeeper")]
pub use zookeeper::{ZooKeeperConfig, ZooKeeperCoordinator, ZooKeeperSession};

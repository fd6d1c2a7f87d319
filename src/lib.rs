//! logbus: Kafka and ZooKeeper as a Rust library.
//!
//! An application links logbus in, opens a directory, and gets partitioned, durable, append-only
//! logs in Kafka's on-disk format, replicated across brokers with leader election, consumer
//! groups, and a coordinator with ZooKeeper's semantics, without running a server.
//!
//! # Layout
//! - [`record`]: Kafka's record batch v2 format, pure encode and decode.
//! - [`log`]: one partition's log on disk: segments, indexes, recovery, retention, compaction.
//! - [`partition`]: one replica: its log, high watermark, leader epoch, idempotent producers.
//! - [`replication`]: controller, leader and follower roles, ISR, the `Transport` between brokers.
//! - [`group`]: consumer groups: the group coordinator, assignors, committed offsets.
//! - [`broker`]: a node's facade: topics, its replicas, its background threads.
//! - [`client`]: the producer and the consumer.
//! - [`coordinator`]: the `Coordinator` trait with ZooKeeper's model, its in-memory
//!   implementation and the real-ZooKeeper adapter.
//! - [`clock`]: the injectable clock.
//!
//! # Example
//! ```
//! use logbus::log::{Log, LogConfig, NewRecord};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path().join("events-0"), LogConfig::default())?;
//! let record = NewRecord { timestamp: 1_700_000_000_000, key: Some(b"key"), value: Some(b"hello"), headers: &[] };
//! let appended = log.append_records(&[record], 0)?;
//! let read = log.read(appended.base_offset, 1 << 20)?;
//! for batch in read.batches() {
//!     for record in batch?.records()? {
//!         let record = record?;
//!         assert_eq!(record.value.as_deref(), Some(&b"hello"[..]));
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod broker;
pub mod client;
pub mod clock;
pub mod coordinator;
pub mod group;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod log;
pub mod partition;
pub mod record;
pub mod replication;

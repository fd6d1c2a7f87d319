//! One partition's log on disk, in Kafka's layout.
//!
//! A directory `<topic>-<partition>/` holds segments named by their base offset in 20 digits:
//! `.log` (record batches back to back), `.index` (sparse offset index) and `.timeindex` (sparse
//! time index); plus `leader-epoch-checkpoint`, `recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `cleaner-offset-checkpoint` (compacted logs), a clean-shutdown
//! marker and a `.lock` file. While a compaction pass swaps segments in, `.cleaned` and `.swap`
//! segment files and a `cleaner-swap-manifest` come and go (the protocol is in `swap.rs`).
//!
//! One writer appends (serialized by a lock inside [`Log`]); readers get whole batches as
//! zero-copy [`bytes::Bytes`] over memory-mapped segments and are only ever blocked by the brief
//! swap of the segment list on roll, retention, truncation or compaction.

mod checkpoint;
mod cleaner;
mod config;
mod crash;
mod epoch;
mod error;
mod index;
mod lock;
#[allow(clippy::module_inception)]
mod log;
mod maintenance;
mod mmap;
mod name;
mod offset_map;
mod recovery;
mod segment;
mod swap;

pub use checkpoint::write_atomic as write_file_atomic;
pub use cleaner::{CleanOutcome, CleanStats, CleanStep, CLEANER_CHECKPOINT};
pub use config::{CleanupPolicy, DirtyRatio, FlushPolicy, LogConfig};
pub use crash::CrashImage;
pub use epoch::EpochEntry;
pub use error::LogError;
pub use lock::{DirLock, LOCK_FILE};
pub use log::{AppendInfo, Log, LogRead, NewRecord};
pub use name::{validate_topic_name, PartitionName, MAX_TOPIC_NAME_CHARS};
pub(crate) use recovery::{read_offset_checkpoint, write_offset_checkpoint};
pub use recovery::{CLEAN_SHUTDOWN_FILE, LOG_START_CHECKPOINT, RECOVERY_POINT_CHECKPOINT};
pub use swap::CLEANER_SWAP_MANIFEST;

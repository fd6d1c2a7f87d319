//! A [`MemoryCoordinator`] that survives restarts: every committed txn is appended to a log on
//! the crate's own log engine before it is applied, and the tree is snapshotted from time to
//! time so the log can be trimmed.
//!
//! Layout of the directory:
//! - `txnlog-0/`: a log partition; each record is one txn (`encode_txn`), keyed by its zxid.
//! - `snapshot`: the tree (`encode_snapshot`) as of its last zxid, replaced atomically.
//!
//! Opening loads the snapshot, replays the txns after its zxid, then ends the former sessions
//! (one logged `CloseSession` txn per owner of ephemeral nodes): persistent nodes, data, versions
//! and sequence counters survive; sessions and ephemeral nodes do not, as in ZooKeeper.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::error::{CoordError, StorageError};
use super::memory::{MemoryCoordinator, MemoryCoordinatorConfig, Shared};
use super::snapshot::{decode_snapshot, encode_snapshot};
use super::state::TxnObserver;
use super::tree::DataTree;
use super::txn::{decode_txn, encode_txn, Txn};
use crate::clock::{Clock, SystemClock};
use crate::log::{write_file_atomic, FlushPolicy, Log, LogConfig, LogError, NewRecord};

const TXN_LOG_DIR: &str = "txnlog-0";
const SNAPSHOT_FILE: &str = "snapshot";

/// How a coordinator opened on a directory keeps its data.
///
/// ## Defaults
/// - `flush`: [`FlushPolicy::EveryAppend`]: a write returns once its txn is on disk, as
///   ZooKeeper's txn log does.
/// - `snapshot_every_txns`: 10 000 (ZooKeeper's `snapCount` is 100 000; the tree here is
///   metadata, so snapshots are cheap and replay stays short).
/// - `segment_bytes`: 64 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurabilityConfig {
    pub flush: FlushPolicy,
    pub snapshot_every_txns: u64,
    pub segment_bytes: u32,
}

impl Default for DurabilityConfig {
    fn default() -> Self {
        DurabilityConfig {
            flush: FlushPolicy::EveryAppend,
            snapshot_every_txns: 10_000,
            segment_bytes: 64 << 20,
        }
    }
}

fn storage_error(error: LogError) -> CoordError {
    CoordError::StorageFailed(StorageError(Arc::new(error)))
}

fn corrupt(path: &Path, position: u64, reason: String) -> CoordError {
    storage_error(LogError::Corrupt {
        path: path.to_owned(),
        position,
        reason,
    })
}

/// The txn log and the snapshot thread, owned by the coordinator.
pub(crate) struct Storage {
    shared: Arc<StorageShared>,
    snapshotter: Option<JoinHandle<()>>,
}

struct StorageShared {
    dir: PathBuf,
    log: Log,
    snapshot_every_txns: u64,
    since_snapshot: AtomicU64,
    /// `true` once the coordinator is dropped; the snapshot thread waits on `wake`.
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl TxnObserver for StorageShared {
    fn committed(&self, txn: &Txn) -> Result<(), CoordError> {
        let mut value = Vec::new();
        encode_txn(txn, &mut value);
        let key = txn.zxid.0.to_be_bytes();
        let record = NewRecord {
            timestamp: txn.time_ms.max(0),
            key: Some(&key),
            value: Some(&value),
            headers: &[],
        };
        self.log
            .append_records(&[record], 0)
            .map_err(storage_error)?;
        if self.since_snapshot.fetch_add(1, Ordering::AcqRel) + 1 >= self.snapshot_every_txns {
            self.wake.notify_one();
        }
        Ok(())
    }
}

impl MemoryCoordinator {
    /// Opens (creating if needed) a durable coordinator in `dir` on the system clock, with a
    /// background thread for session expiry and one for snapshots.
    ///
    /// # Errors
    /// `StorageFailed` when the directory is locked by another coordinator, a file is damaged
    /// (`Corrupt`), or I/O fails.
    pub fn open(dir: impl AsRef<Path>) -> Result<MemoryCoordinator, CoordError> {
        let config = MemoryCoordinatorConfig::default();
        let mut coordinator = Self::open_with(
            dir,
            Arc::new(SystemClock::new()),
            config,
            DurabilityConfig::default(),
        )?;
        coordinator.start_ticker();
        Ok(coordinator)
    }

    /// As [`MemoryCoordinator::open`] with `clock` and no expiry thread (expiry is checked on each
    /// operation and on `tick`, as with [`MemoryCoordinator::with_clock`]).
    ///
    /// # Errors
    /// As [`MemoryCoordinator::open`].
    pub fn open_with(
        dir: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
        config: MemoryCoordinatorConfig,
        durability: DurabilityConfig,
    ) -> Result<MemoryCoordinator, CoordError> {
        let dir = dir.as_ref().to_owned();
        std::fs::create_dir_all(&dir)
            .map_err(LogError::io(&dir))
            .map_err(storage_error)?;
        let log_config = LogConfig {
            flush: durability.flush,
            segment_bytes: durability.segment_bytes,
            retention_ms: None,
            max_message_bytes: (config.max_data_bytes as u32)
                .saturating_mul(2)
                .saturating_add(1 << 20),
            ..LogConfig::default()
        };
        let log = Log::open_with_clock(dir.join(TXN_LOG_DIR), log_config, Arc::clone(&clock))
            .map_err(storage_error)?;
        let tree = recover_tree(&dir, &log)?;
        let shared = Arc::new(StorageShared {
            dir,
            log,
            snapshot_every_txns: durability.snapshot_every_txns.max(1),
            since_snapshot: AtomicU64::new(0),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        let observer: Arc<dyn TxnObserver> = Arc::clone(&shared) as Arc<dyn TxnObserver>;
        let mut coordinator = MemoryCoordinator::with_clock(clock, config);
        coordinator.observe_txns(observer);
        let now_ms = coordinator.shared.now_ms();
        coordinator.shared.state.lock().restore(tree, now_ms);
        if let Some(error) = coordinator.shared.state.lock().failed.clone() {
            return Err(error);
        }
        let snapshotter =
            spawn_snapshotter(Arc::downgrade(&coordinator.shared), Arc::clone(&shared));
        coordinator.storage = Some(Storage {
            shared,
            snapshotter,
        });
        Ok(coordinator)
    }

    /// Writes a snapshot of the tree now and drops the txns it covers from the log.
    ///
    /// # Errors
    /// `StorageFailed` on I/O errors. A coordinator without a directory has nothing to do.
    pub fn snapshot_now(&self) -> Result<(), CoordError> {
        match &self.storage {
            Some(storage) => take_snapshot(&self.shared, &storage.shared),
            None => Ok(()),
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        *self.shared.stopped.lock() = true;
        self.shared.wake.notify_all();
        if let Some(snapshotter) = self.snapshotter.take() {
            let _ = snapshotter.join();
        }
    }
}

/// Loads the snapshot and replays the logged txns after it.
fn recover_tree(dir: &Path, log: &Log) -> Result<DataTree, CoordError> {
    let snapshot_path = dir.join(SNAPSHOT_FILE);
    let mut tree = match std::fs::read(&snapshot_path) {
        Ok(bytes) => decode_snapshot(&bytes)
            .map_err(|error| corrupt(&snapshot_path, 0, error.to_string()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => DataTree::new(),
        Err(error) => return Err(storage_error(LogError::io(&snapshot_path)(error))),
    };
    let log_path = log.dir().to_owned();
    let mut from = log.log_start_offset();
    let end = log.log_end_offset();
    while from < end {
        let read = log.read(from, 4 << 20).map_err(storage_error)?;
        let before = from;
        for batch in read.batches() {
            let batch = batch.map_err(|error| corrupt(&log_path, from, error.to_string()))?;
            for record in batch
                .records()
                .map_err(|error| corrupt(&log_path, from, error.to_string()))?
            {
                let record = record.map_err(|error| corrupt(&log_path, from, error.to_string()))?;
                let offset = record.offset as u64;
                let value = record.value.ok_or_else(|| {
                    corrupt(&log_path, offset, "txn record without a value".into())
                })?;
                let txn = decode_txn(&value)
                    .map_err(|error| corrupt(&log_path, offset, error.to_string()))?;
                replay(&mut tree, &txn).map_err(|reason| corrupt(&log_path, offset, reason))?;
                from = offset + 1;
            }
            from = from.max(batch.header().next_offset() as u64);
        }
        if from == before {
            break;
        }
    }
    Ok(tree)
}

/// Applies a logged txn unless the snapshot already holds it. Txns must follow each other.
fn replay(tree: &mut DataTree, txn: &Txn) -> Result<(), String> {
    let last = tree.last_zxid();
    if txn.zxid <= last {
        return Ok(());
    }
    if txn.zxid.0 != last.0 + 1 {
        return Err(format!("txn {} does not follow {}", txn.zxid, last));
    }
    tree.apply(txn);
    Ok(())
}

fn take_snapshot(coordinator: &Shared, storage: &StorageShared) -> Result<(), CoordError> {
    // Under the coordinator's lock no txn is between its append and its apply, so the tree and
    // the log end agree: the snapshot covers exactly the records below `covered`.
    let (tree, covered) = {
        let state = coordinator.state.lock();
        (state.tree.clone(), storage.log.log_end_offset())
    };
    let path = storage.dir.join(SNAPSHOT_FILE);
    write_file_atomic(&path, &encode_snapshot(&tree))
        .map_err(LogError::io(&path))
        .map_err(storage_error)?;
    storage.since_snapshot.store(0, Ordering::Release);
    storage
        .log
        .delete_records_before(covered)
        .map_err(storage_error)?;
    storage.log.apply_retention().map_err(storage_error)?;
    Ok(())
}

fn snapshot_due(storage: &StorageShared) -> bool {
    storage.since_snapshot.load(Ordering::Acquire) >= storage.snapshot_every_txns
}

fn spawn_snapshotter(
    coordinator: Weak<Shared>,
    storage: Arc<StorageShared>,
) -> Option<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("logbus-coordinator-snapshot".into())
        .spawn(move || loop {
            let stopping = {
                let mut stopped = storage.stopped.lock();
                while !*stopped && !snapshot_due(&storage) {
                    storage.wake.wait(&mut stopped);
                }
                *stopped
            };
            // On the way out, a due snapshot is still taken, so the next open replays little.
            if snapshot_due(&storage) {
                let Some(coordinator) = coordinator.upgrade() else {
                    return;
                };
                // A failed snapshot leaves the log untrimmed; the next one tries again.
                let _ = take_snapshot(&coordinator, &storage);
            }
            if stopping {
                return;
            }
        })
        .ok()
}

//! A partition replica on this broker.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::producer_state::{ProducerStates, SequenceCheck, SequenceError, SNAPSHOT_FILE};
use super::waiters::{Notifier, Waiters};
use crate::clock::Clock;
use crate::log::{Log, LogConfig, LogError, LogRead};
use crate::record::{stamp_log_append_time, BatchHeader, RecordBatch, TimestampType};

/// Errors appending to or reading from a replica.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error(transparent)]
    Log(#[from] LogError),
    /// An idempotent producer skipped sequence numbers: an earlier batch was lost.
    #[error("out of order sequence for producer {producer_id}: expected {expected}, received {received}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        received: i32,
    },
    /// A newer epoch of this producer id has written: this one is a zombie.
    #[error("producer {producer_id} epoch {epoch} is fenced by epoch {current_epoch}")]
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    /// The partition's topic was deleted while this handle was in use.
    #[error("partition {topic}-{partition} was deleted")]
    Deleted { topic: String, partition: u32 },
}

/// Where a producer's batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: u64,
    pub last_offset: u64,
    /// The broker's timestamp when the topic uses LogAppendTime.
    pub log_append_time: Option<i64>,
    /// The batch was a retry of one already in the log; the offsets are the original ones.
    pub duplicate: bool,
}

/// One replica of a partition.
#[derive(Debug)]
pub struct Replica {
    topic: Arc<str>,
    partition: u32,
    log: Log,
    timestamp_type: TimestampType,
    clock: Arc<dyn Clock>,
    high_watermark: AtomicU64,
    leader_epoch: AtomicI32,
    /// Producer state; holding this lock also serializes producer appends, so the sequence check
    /// and the append are one step.
    producers: Mutex<ProducerStates>,
    waiters: Waiters,
    /// Woken by every append (leaders waiting to serve a follower's fetch), where `waiters` is
    /// woken only when the high watermark moves.
    append_waiters: Waiters,
    deleted: AtomicBool,
    crashed: AtomicBool,
}

/// The file holding a replica's last checkpointed high watermark (Kafka's name).
pub const HIGH_WATERMARK_CHECKPOINT: &str = "replication-offset-checkpoint";

impl Replica {
    /// Opens the replica's log in `dir` (named `<topic>-<partition>`) and restores producer state
    /// from its snapshot and the batches after it.
    ///
    /// # Errors
    /// As [`Log::open`].
    pub fn open(
        dir: &Path,
        config: LogConfig,
        timestamp_type: TimestampType,
        clock: Arc<dyn Clock>,
    ) -> Result<Replica, PartitionError> {
        let log = Log::open_with_clock(dir, config, Arc::clone(&clock))?;
        let producers = restore_producer_states(&log)?;
        // A single replica's high watermark is its log end.
        let high_watermark = log.log_end_offset();
        let leader_epoch = log.leader_epochs().last().map_or(0, |entry| entry.epoch);
        Ok(Replica {
            topic: Arc::from(log.topic()),
            partition: log.partition(),
            log,
            timestamp_type,
            clock,
            high_watermark: AtomicU64::new(high_watermark),
            leader_epoch: AtomicI32::new(leader_epoch),
            producers: Mutex::new(producers),
            waiters: Waiters::default(),
            append_waiters: Waiters::default(),
            deleted: AtomicBool::new(false),
            crashed: AtomicBool::new(false),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> u32 {
        self.partition
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn high_watermark(&self) -> u64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Appends a batch from a producer as the only replica: [`Replica::append_as_leader`] at
    /// the replica's leader epoch, then the high watermark moves to the new log end.
    ///
    /// # Errors
    /// As [`Replica::append_as_leader`].
    pub fn append_producer_batch(
        &self,
        batch: &RecordBatch,
    ) -> Result<AppendResult, PartitionError> {
        let appended = self.append_as_leader(batch, self.leader_epoch())?;
        self.advance_high_watermark(appended.last_offset + 1);
        Ok(appended)
    }

    /// Appends a batch from a producer, stamped with `leader_epoch`: checks an idempotent
    /// producer's sequence (answering a retry with the original offsets) and stamps
    /// LogAppendTime when the topic uses it. The high watermark is the caller's to move.
    ///
    /// # Errors
    /// `Deleted`, `OutOfOrderSequence`, `ProducerFenced`, and the log's errors.
    pub fn append_as_leader(
        &self,
        batch: &RecordBatch,
        leader_epoch: i32,
    ) -> Result<AppendResult, PartitionError> {
        self.check_live()?;
        let header = *batch.header();
        let mut producers = self.producers.lock();
        if header.has_producer_id() {
            match producers.check(&header) {
                Ok(SequenceCheck::Append) => {}
                Ok(SequenceCheck::Duplicate(metadata)) => {
                    return Ok(AppendResult {
                        base_offset: metadata.base_offset,
                        last_offset: metadata.last_offset,
                        log_append_time: (self.timestamp_type == TimestampType::LogAppendTime)
                            .then_some(metadata.max_timestamp),
                        duplicate: true,
                    })
                }
                Err(error) => return Err(sequence_error(header.producer_id, error)),
            }
        }
        let (appended, log_append_time) = match self.timestamp_type {
            TimestampType::CreateTime => (self.log.append_batch(batch, leader_epoch)?, None),
            TimestampType::LogAppendTime => {
                let now_ms = self.clock.now_ms();
                let mut bytes = batch.as_bytes().to_vec();
                stamp_log_append_time(&mut bytes, now_ms);
                let stamped =
                    RecordBatch::from_bytes(Bytes::from(bytes)).map_err(LogError::from)?;
                (self.log.append_batch(&stamped, leader_epoch)?, Some(now_ms))
            }
        };
        // Remember the max timestamp as appended (the broker's stamp on a LogAppendTime topic),
        // so a retry is answered with the same timestamp as the original, as after a restart.
        let appended_header = BatchHeader {
            max_timestamp: appended.max_timestamp,
            ..header
        };
        producers.record(&appended_header, appended.base_offset, appended.last_offset);
        drop(producers);
        self.append_waiters.notify_all();
        Ok(AppendResult {
            base_offset: appended.base_offset,
            last_offset: appended.last_offset,
            log_append_time,
            duplicate: false,
        })
    }

    /// Appends a batch copied from the leader (a follower's path): offsets, epoch and
    /// timestamps as the leader wrote them; idempotent producer state follows, so that this
    /// replica deduplicates retries if it becomes leader.
    ///
    /// # Errors
    /// `Deleted`; `NonMonotonicOffset` and the log's other errors.
    pub fn append_from_leader(&self, batch: &RecordBatch) -> Result<(), PartitionError> {
        self.check_live()?;
        let header = *batch.header();
        let mut producers = self.producers.lock();
        self.log.append_replicated(batch)?;
        if header.has_producer_id() {
            producers.record(
                &header,
                header.base_offset as u64,
                header.last_offset() as u64,
            );
        }
        drop(producers);
        self.append_waiters.notify_all();
        Ok(())
    }

    /// Sets the leader epoch this replica appends with (when it becomes leader or follows a
    /// new one).
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
    }

    /// Lowers the high watermark to at most `offset` (at startup, from the checkpoint, before
    /// replication has said what is committed).
    pub fn restrict_high_watermark(&self, offset: u64) {
        self.high_watermark.fetch_min(offset, Ordering::AcqRel);
    }

    /// Writes the high watermark to the replica's `replication-offset-checkpoint` (Kafka keeps
    /// one such file per data directory; here each partition directory holds its own entry).
    ///
    /// # Errors
    /// `Io` writing the file.
    pub fn checkpoint_high_watermark(&self) -> Result<(), PartitionError> {
        let name = crate::log::PartitionName {
            topic: self.topic.to_string(),
            partition: self.partition,
        };
        crate::log::write_offset_checkpoint(
            self.log.dir(),
            HIGH_WATERMARK_CHECKPOINT,
            &name,
            self.high_watermark(),
        )?;
        Ok(())
    }

    /// The high watermark last checkpointed, if any.
    ///
    /// # Errors
    /// `Corrupt` for a malformed file; `Io`.
    pub fn checkpointed_high_watermark(&self) -> Result<Option<u64>, PartitionError> {
        let name = crate::log::PartitionName {
            topic: self.topic.to_string(),
            partition: self.partition,
        };
        Ok(crate::log::read_offset_checkpoint(
            self.log.dir(),
            HIGH_WATERMARK_CHECKPOINT,
            &name,
        )?)
    }

    /// Stops the replica as a crash would (see [`Log::simulate_crash`]): nothing more is
    /// written, not even the producer-state snapshot of a clean close.
    #[doc(hidden)]
    pub fn simulate_crash(&self) -> crate::log::CrashImage {
        self.crashed.store(true, Ordering::Release);
        self.waiters.notify_all();
        self.append_waiters.notify_all();
        self.log.simulate_crash()
    }

    pub fn register_append_waiter(&self, notifier: &Arc<Notifier>) {
        self.append_waiters.register(notifier);
    }

    pub fn unregister_append_waiter(&self, notifier: &Arc<Notifier>) {
        self.append_waiters.unregister(notifier);
    }

    /// Removes everything from the batch holding `offset` on (replication's truncation), with
    /// the producer state those batches made. Returns the new log end.
    ///
    /// # Errors
    /// `Deleted`, and as [`Log::truncate_to`].
    pub fn truncate_to(&self, offset: u64) -> Result<u64, PartitionError> {
        self.check_live()?;
        let mut producers = self.producers.lock();
        let end = self.log.truncate_to(offset)?;
        // Dropping the truncated batches can empty a producer's window of recent batches while
        // older ones of it remain, and a retry of those would then pass as new: replay the
        // headers instead (truncation is rare; the replay reads headers only).
        *producers = replay_producer_states(
            &self.log,
            ProducerStates::default(),
            self.log.log_start_offset(),
        )?;
        self.high_watermark.fetch_min(end, Ordering::AcqRel);
        Ok(end)
    }

    /// Moves the high watermark forward (never back) and wakes waiting readers.
    pub fn advance_high_watermark(&self, offset: u64) {
        self.high_watermark.fetch_max(offset, Ordering::AcqRel);
        self.waiters.notify_all();
    }

    /// Reads whole batches from `from`, only below the high watermark.
    ///
    /// # Errors
    /// `Deleted`; `OffsetOutOfRange` below the log start or above the high watermark.
    pub fn read_committed(&self, from: u64, max_bytes: usize) -> Result<LogRead, PartitionError> {
        self.check_live()?;
        let high_watermark = self.high_watermark();
        if from > high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset: from,
                log_start_offset: self.log.log_start_offset(),
                log_end_offset: high_watermark,
            }
            .into());
        }
        Ok(self.log.read_up_to(from, max_bytes, high_watermark)?)
    }

    pub fn register_waiter(&self, notifier: &Arc<Notifier>) {
        self.waiters.register(notifier);
    }

    pub fn unregister_waiter(&self, notifier: &Arc<Notifier>) {
        self.waiters.unregister(notifier);
    }

    /// Closes the log cleanly now (flush, clean-shutdown marker) and writes the producer-state
    /// snapshot; later appends fail with `Closed`.
    pub(crate) fn close(&self) {
        if self.is_deleted() || self.crashed.load(Ordering::Acquire) {
            return;
        }
        let snapshot = self.producers.lock().encode(self.log.log_end_offset());
        let _ = crate::log::write_file_atomic(&self.log.dir().join(SNAPSHOT_FILE), &snapshot);
        let _ = self.log.close_inner();
        self.crashed.store(true, Ordering::Release);
    }

    /// Marks the replica deleted: later calls fail with `Deleted`, waiters wake, the log closes.
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        let _ = self.log.close_inner();
        self.waiters.notify_all();
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    fn check_live(&self) -> Result<(), PartitionError> {
        if self.is_deleted() {
            return Err(PartitionError::Deleted {
                topic: self.topic.to_string(),
                partition: self.partition,
            });
        }
        Ok(())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if self.is_deleted() || self.crashed.load(Ordering::Acquire) {
            return;
        }
        // Best effort: without a snapshot the next open rebuilds producer state from the log.
        let snapshot = self.producers.lock().encode(self.log.log_end_offset());
        let _ = crate::log::write_file_atomic(&self.log.dir().join(SNAPSHOT_FILE), &snapshot);
    }
}

fn sequence_error(producer_id: i64, error: SequenceError) -> PartitionError {
    match error {
        SequenceError::OutOfOrder { expected, received } => PartitionError::OutOfOrderSequence {
            producer_id,
            expected,
            received,
        },
        SequenceError::Fenced {
            epoch,
            current_epoch,
        } => PartitionError::ProducerFenced {
            producer_id,
            epoch,
            current_epoch,
        },
    }
}

/// Loads the producer snapshot (valid only after a clean close, so it is consumed) and replays
/// the batch headers after it; without one, replays the whole log.
fn restore_producer_states(log: &Log) -> Result<ProducerStates, PartitionError> {
    let snapshot_path = log.dir().join(SNAPSHOT_FILE);
    let snapshot = ProducerStates::load_snapshot(log.dir());
    let _ = std::fs::remove_file(&snapshot_path);
    let log_end = log.log_end_offset();
    let (states, from) = match snapshot {
        Some((states, covered)) if covered <= log_end && covered >= log.log_start_offset() => {
            (states, covered)
        }
        _ => (ProducerStates::default(), log.log_start_offset()),
    };
    replay_producer_states(log, states, from)
}

/// Records the producer batches of `log` from `from` to its end into `states`.
fn replay_producer_states(
    log: &Log,
    mut states: ProducerStates,
    mut from: u64,
) -> Result<ProducerStates, PartitionError> {
    let log_end = log.log_end_offset();
    while from < log_end {
        let read = log.read(from, 8 << 20)?;
        let mut advanced = false;
        for batch in read.batches() {
            let batch = batch.map_err(LogError::from)?;
            let header = batch.header();
            states.record(
                header,
                header.base_offset as u64,
                header.last_offset() as u64,
            );
            from = header.next_offset() as u64;
            advanced = true;
        }
        if !advanced {
            break;
        }
    }
    Ok(states)
}

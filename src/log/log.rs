//! The `Log`: one partition's segments, one writer, many readers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::cleaner::CleanerState;
use super::epoch::{EpochCache, EpochEntry};
use super::lock::DirLock;
use super::name::PartitionName;
use super::segment::{ActiveFiles, Indexer, Segment};
use super::{recovery, LogConfig, LogError};
use crate::clock::{Clock, SystemClock};
use crate::record::{
    record_bytes_bound, stamp_offset_and_epoch, BatchBuilder, BatchHeader, BatchSpec, Batches,
    DecodeError, Header, RecordBatch,
};

/// A record to append: the log assigns its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
}

impl NewRecord<'_> {
    /// An upper bound of the bytes the record takes in a batch (varints at their widest).
    pub fn encoded_bytes_bound(&self) -> usize {
        record_bytes_bound(self.key, self.value, self.headers)
    }
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: u64,
    pub last_offset: u64,
    pub max_timestamp: i64,
}

/// Whole batches returned by [`Log::read`], sharing the log's memory (zero-copy).
#[derive(Debug, Clone)]
pub struct LogRead {
    /// Batches back to back, as they lie on disk. The first one holds the requested offset;
    /// empty at the log end.
    pub bytes: Bytes,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
}

impl LogRead {
    pub fn batches(&self) -> Batches {
        Batches::new(self.bytes.clone())
    }
}

/// The segments as readers see them: replaced whole (a brief swap) on roll, retention and
/// truncation; appends only publish new bytes in the last segment.
pub(crate) type SegmentList = Arc<Vec<Arc<Segment>>>;

/// One partition's log on disk. `Sync`: share it with `Arc`; appends are serialized by an
/// internal writer lock, and reads take no lock beyond cloning the segment list.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) name: PartitionName,
    pub(crate) config: LogConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) segments: RwLock<SegmentList>,
    pub(crate) log_start_offset: AtomicU64,
    /// Guards all writes, the active segment's files and the flush state.
    pub(crate) writer: Mutex<Writer>,
    /// Held for a whole cleaning pass (one at a time); taken before `writer`, never after.
    pub(crate) cleaner: Mutex<CleanerState>,
    pub(crate) closed: AtomicBool,
    /// Whether the last close before this open was clean (the marker was there).
    pub(crate) opened_clean: bool,
    pub(crate) _lock: DirLock,
}

/// State only the writer touches. Guarded by `Log::writer`.
#[derive(Debug)]
pub(crate) struct Writer {
    pub active: ActiveFiles,
    pub indexer: Indexer,
    /// When the active segment got its first batch (for `segment_ms`).
    pub active_since_ms: Option<i64>,
    pub epochs: EpochCache,
    pub flush: FlushState,
    /// Reused buffer for stamping ready-made batches.
    pub scratch: Vec<u8>,
    /// The cleaner checkpoint: offsets below it are compacted. Lowered by a truncation below it
    /// (before the truncation, on disk), raised by a cleaning pass.
    pub cleaner_checkpoint: u64,
}

#[derive(Debug)]
pub(crate) struct FlushState {
    pub unflushed_messages: u64,
    pub oldest_unflushed_ms: Option<i64>,
    /// Everything below this offset is on disk.
    pub recovery_point: u64,
    pub last_checkpoint_ms: i64,
    /// Set when an fsync failed: the log then refuses writes (no retry into a false success).
    pub failed: bool,
    /// Bytes of the active segment's file known to be on disk (synced, or found at open).
    pub durable_bytes: u64,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, named `<topic>-<partition>`, recovering it
    /// if it was not closed cleanly.
    ///
    /// # Errors
    /// `InvalidDirectoryName`/`InvalidTopicName`, `InvalidConfig`, `Locked` when another log
    /// holds the directory, `Corrupt` for damage before the recovery point, `Io`.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log, LogError> {
        Self::open_with_clock(dir, config, Arc::new(SystemClock::new()))
    }

    /// As [`Log::open`], with the clock that drives `segment_ms`, retention and timed flushes.
    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Log, LogError> {
        recovery::open(dir.as_ref(), config, clock)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn topic(&self) -> &str {
        &self.name.topic
    }

    pub fn partition(&self) -> u32 {
        self.name.partition
    }

    /// Whether the log is closed (or stopped by a failure or a simulated crash).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether the log was closed cleanly before this open (nothing written was lost to a
    /// crash, whatever the flush policy).
    pub fn opened_after_clean_shutdown(&self) -> bool {
        self.opened_clean
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub(crate) fn snapshot(&self) -> SegmentList {
        Arc::clone(&self.segments.read())
    }

    pub fn log_start_offset(&self) -> u64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> u64 {
        self.snapshot()
            .last()
            .expect("a log always has a segment")
            .next_offset()
    }

    /// Bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.snapshot().iter().map(|segment| segment.size()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.snapshot().len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.snapshot()
            .iter()
            .map(|segment| segment.base_offset)
            .collect()
    }

    /// Offsets below this are on disk.
    pub fn recovery_point(&self) -> u64 {
        self.writer.lock().flush.recovery_point
    }

    /// Encodes `records` into one batch at the log end, stamped with `leader_epoch`, and appends it.
    ///
    /// # Errors
    /// `InvalidBatch` when `records` is empty, `InvalidRecord` for a record without a key in a
    /// compacted log, `RecordTooLarge` above `max_message_bytes`, `StaleLeaderEpoch`,
    /// `FlushFailed` after a failed fsync, `Closed`, `Io`.
    pub fn append_records(
        &self,
        records: &[NewRecord<'_>],
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        if self.config.cleanup_policy.compacts() {
            if let Some(record_index) = records.iter().position(|record| record.key.is_none()) {
                return Err(missing_key(record_index));
            }
        }
        let mut writer = self.writer.lock();
        let spec = BatchSpec {
            base_offset: self.log_end_offset() as i64,
            partition_leader_epoch: leader_epoch,
            ..BatchSpec::default()
        };
        // Presized: growing a 10 KiB batch from empty would copy it several times.
        let estimate: usize = records.iter().map(NewRecord::encoded_bytes_bound).sum();
        let mut builder = BatchBuilder::with_capacity(spec, estimate);
        for record in records {
            builder.append(record.timestamp, record.key, record.value, record.headers);
        }
        let batch = builder.finish();
        check_one_record_per_offset(batch.header())?;
        self.append_locked(&mut writer, batch.as_bytes(), batch.header(), leader_epoch)
    }

    /// Appends a ready-made batch (the producer path): assigns its offsets from the log end and
    /// stamps `leader_epoch`; everything else is kept as sent.
    ///
    /// # Errors
    /// As [`Log::append_records`]; `InvalidBatch` when the batch holds no records or its record
    /// count does not match the offsets it spans, or (in a compacted log, which must read every
    /// key) when its records are compressed or do not decode.
    pub fn append_batch(
        &self,
        batch: &RecordBatch,
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        check_one_record_per_offset(batch.header())?;
        if self.config.cleanup_policy.compacts() {
            check_keys(batch)?;
        }
        let mut writer = self.writer.lock();
        let base_offset = self.log_end_offset() as i64;
        let mut scratch = std::mem::take(&mut writer.scratch);
        scratch.clear();
        scratch.extend_from_slice(batch.as_bytes());
        stamp_offset_and_epoch(&mut scratch, base_offset, leader_epoch);
        let header = BatchHeader {
            base_offset,
            partition_leader_epoch: leader_epoch,
            ..*batch.header()
        };
        let appended = self.append_locked(&mut writer, &scratch, &header, leader_epoch);
        writer.scratch = scratch;
        appended
    }

    /// Appends a batch copied from a leader (the replication path), keeping its offsets and leader
    /// epoch. Its base offset must be at or after the log end.
    ///
    /// # Errors
    /// `NonMonotonicOffset`, and as [`Log::append_records`].
    pub fn append_replicated(&self, batch: &RecordBatch) -> Result<AppendInfo, LogError> {
        let mut writer = self.writer.lock();
        let header = *batch.header();
        let log_end_offset = self.log_end_offset();
        if (header.base_offset as u64) < log_end_offset {
            return Err(LogError::NonMonotonicOffset {
                base_offset: header.base_offset as u64,
                log_end_offset,
            });
        }
        self.append_locked(
            &mut writer,
            batch.as_bytes(),
            &header,
            header.partition_leader_epoch,
        )
    }

    fn append_locked(
        &self,
        writer: &mut Writer,
        bytes: &[u8],
        header: &BatchHeader,
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        self.check_writable(writer)?;
        let max_bytes = self.config.max_message_bytes as usize;
        if bytes.len() > max_bytes {
            return Err(LogError::RecordTooLarge {
                size_bytes: bytes.len(),
                max_bytes,
            });
        }
        if let Some(latest_epoch) = writer.epochs.latest_epoch() {
            if leader_epoch < latest_epoch {
                return Err(LogError::StaleLeaderEpoch {
                    epoch: leader_epoch,
                    latest_epoch,
                });
            }
        }
        self.maybe_roll(writer, bytes.len(), header)?;
        let active = Arc::clone(self.snapshot().last().expect("a log always has a segment"));
        let position = active.size();
        active.write(&writer.active, position, bytes)?;
        writer
            .indexer
            .on_batch(&active.index_target(&writer.active), position, header)?;
        writer
            .epochs
            .assign(leader_epoch, header.base_offset as u64)?;
        let now_ms = self.clock.now_ms();
        writer.active_since_ms.get_or_insert(now_ms);
        active.set_last_batch(header.base_offset as u64, position);
        active.publish(
            position + bytes.len() as u64,
            header.next_offset() as u64,
            header.max_timestamp,
        );
        writer.flush.unflushed_messages += header.records_count.max(1) as u64;
        writer.flush.oldest_unflushed_ms.get_or_insert(now_ms);
        self.flush_by_policy(writer, now_ms)?;
        Ok(AppendInfo {
            base_offset: header.base_offset as u64,
            last_offset: header.last_offset() as u64,
            max_timestamp: header.max_timestamp,
        })
    }

    pub(crate) fn check_writable(&self, writer: &Writer) -> Result<(), LogError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        if writer.flush.failed {
            return Err(LogError::FlushFailed);
        }
        Ok(())
    }

    /// Reads whole batches starting with the one that holds `from`, up to about `max_bytes` (the
    /// first batch is returned whole even when larger, so a reader always makes progress).
    ///
    /// # Errors
    /// `OffsetOutOfRange` below the log start or above the log end; `Corrupt` when the bytes on
    /// disk do not hold a valid batch where the index points.
    pub fn read(&self, from: u64, max_bytes: usize) -> Result<LogRead, LogError> {
        self.read_up_to(from, max_bytes, u64::MAX)
    }

    /// As [`Log::read`], returning only batches that end below `max_offset` (for example the high
    /// watermark).
    ///
    /// # Errors
    /// As [`Log::read`].
    pub fn read_up_to(
        &self,
        from: u64,
        max_bytes: usize,
        max_offset: u64,
    ) -> Result<LogRead, LogError> {
        let segments = self.snapshot();
        let log_end_offset = segments
            .last()
            .expect("a log always has a segment")
            .next_offset();
        let log_start_offset = self.log_start_offset();
        if from < log_start_offset || from > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: from,
                log_start_offset,
                log_end_offset,
            });
        }
        let first = segments
            .partition_point(|segment| segment.base_offset <= from)
            .saturating_sub(1);
        for segment in &segments[first..] {
            if let Some(bytes) = read_segment(segment, from, max_bytes, max_offset)? {
                return Ok(LogRead {
                    bytes,
                    log_start_offset,
                    log_end_offset,
                });
            }
        }
        Ok(LogRead {
            bytes: Bytes::new(),
            log_start_offset,
            log_end_offset,
        })
    }

    /// The leader epochs and where each starts.
    pub fn leader_epochs(&self) -> Vec<EpochEntry> {
        self.writer.lock().epochs.entries().to_vec()
    }

    /// The largest epoch at or below `epoch` and the offset where it ends (KIP-101's
    /// OffsetForLeaderEpoch), or `None` when the log holds no such epoch.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
        let writer = self.writer.lock();
        writer.epochs.end_offset_for(epoch, self.log_end_offset())
    }
}

/// Kafka's leader-side check of a new batch (`LogValidator`): at least one record, and one record
/// per offset it spans. Without it an empty `append_records(&[])` took an offset that holds no
/// record (and a batch claiming more offsets than records left holes), breaking "one offset, one
/// record". Replicated batches are exempt: a leader's compacted batches may have gaps.
fn check_one_record_per_offset(header: &BatchHeader) -> Result<(), LogError> {
    let count = i64::from(header.records_count);
    if count <= 0 || i64::from(header.last_offset_delta) + 1 != count {
        return Err(LogError::InvalidBatch(DecodeError::InvalidField {
            field: "records_count",
            value: count,
        }));
    }
    Ok(())
}

/// Kafka refuses a record without a key in a compacted topic (`InvalidRecordException`): the
/// cleaner keeps the latest record per key, and a keyless record has none.
fn missing_key(record_index: usize) -> LogError {
    LogError::InvalidRecord {
        record_index,
        reason: "a compacted log takes only records with a key",
    }
}

/// Checks that every record of a batch bound for a compacted log has a key.
fn check_keys(batch: &RecordBatch) -> Result<(), LogError> {
    for (record_index, record) in batch.records()?.enumerate() {
        if record?.key.is_none() {
            return Err(missing_key(record_index));
        }
    }
    Ok(())
}

/// Reads from the batch holding `from` in one segment; `None` when the segment ends before it.
fn read_segment(
    segment: &Segment,
    from: u64,
    max_bytes: usize,
    max_offset: u64,
) -> Result<Option<Bytes>, LogError> {
    let Some((start, first)) = segment.find_batch(from)? else {
        return Ok(None);
    };
    let bytes = segment.published()?;
    let mut end = start;
    let mut header = first;
    loop {
        let total = header.total_bytes() as u64;
        let within_bytes = end == start || (end - start + total) as usize <= max_bytes;
        if !within_bytes || header.next_offset() as u64 > max_offset {
            break;
        }
        end += total;
        if end as usize >= bytes.len() {
            break;
        }
        header = segment.header_at(bytes, end)?;
    }
    segment.bytes(start, end).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::segment::HEADERS_SCANNED;

    /// A log of 2000 one-record batches, record `i` at offset `i` with timestamp `i`.
    fn one_record_batches(name: &str) -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path().join(name), LogConfig::default()).unwrap();
        let value = [7u8; 100];
        for i in 0..2_000 {
            let record = NewRecord {
                timestamp: i,
                key: None,
                value: Some(&value),
                headers: &[],
            };
            log.append_records(&[record], 0).unwrap();
        }
        (dir, log)
    }

    /// A read at the log end while a batch is half appended (its index entry written, the batch
    /// not yet published) finds nothing and decodes no header. It used to take that entry for a
    /// corrupt one and scan the whole segment from its start. Reads of the last batch and of
    /// earlier ones still find theirs.
    #[test]
    fn a_read_at_the_end_during_an_append_does_not_scan_the_segment() {
        let (_dir, log) = one_record_batches("tail-0");
        let end = log.log_end_offset();
        {
            // What the writer has done when a reader comes between its index entry and its
            // publish (see `append_locked`).
            let writer = log.writer.lock();
            let active = Arc::clone(log.snapshot().last().unwrap());
            let relative = (end - active.base_offset) as u32;
            active
                .index
                .append(&writer.active.index, relative, active.size() as u32)
                .unwrap();
        }
        HEADERS_SCANNED.with(|scanned| scanned.set(0));
        let read = log.read(end, 1 << 20).unwrap();
        assert!(read.bytes.is_empty());
        assert_eq!(HEADERS_SCANNED.with(|scanned| scanned.get()), 0);
        // The last batch written is found without the index (a consumer at the end reads
        // there), and an earlier one by the entries before it.
        let read = log.read(end - 1, 1 << 20).unwrap();
        let first = read.batches().next().unwrap().unwrap();
        assert_eq!(first.header().base_offset as u64, end - 1);
        assert_eq!(HEADERS_SCANNED.with(|scanned| scanned.get()), 0);
        let read = log.read(end - 10, 1 << 20).unwrap();
        let first = read.batches().next().unwrap().unwrap();
        assert_eq!(first.header().base_offset as u64, end - 10);
        let scanned = HEADERS_SCANNED.with(|scanned| scanned.get());
        assert!((1..100).contains(&scanned), "{scanned} headers scanned");
    }

    /// A lookup by time while a batch is half appended (its time index entry written, the batch
    /// not yet published) starts from the entry before that one. It used to take the entry for
    /// a corrupt one and scan the whole segment.
    #[test]
    fn a_lookup_by_time_during_an_append_does_not_scan_the_segment() {
        let (_dir, log) = one_record_batches("times-0");
        let end = log.log_end_offset();
        {
            // The next batch's largest timestamp equals the largest published one, and it is
            // larger than the last entry's, so the indexer writes an entry for it.
            let writer = log.writer.lock();
            let active = Arc::clone(log.snapshot().last().unwrap());
            let relative = (end - active.base_offset) as u32;
            active
                .time_index
                .append(&writer.active.time_index, 1_999, relative)
                .unwrap();
        }
        HEADERS_SCANNED.with(|scanned| scanned.set(0));
        assert_eq!(
            log.offset_for_timestamp(1_999).unwrap(),
            Some((1_999, 1_999))
        );
        let scanned = HEADERS_SCANNED.with(|scanned| scanned.get());
        assert!((1..100).contains(&scanned), "{scanned} headers scanned");
        assert_eq!(
            log.offset_for_timestamp(1_000).unwrap(),
            Some((1_000, 1_000))
        );
        assert_eq!(log.offset_for_timestamp(2_000).unwrap(), None);
    }
}

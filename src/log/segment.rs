//! One segment: a `.log` file of batches and its two sparse indexes.
//!
//! The active segment's files are pre-allocated (sparsely) to their capacity and mapped once;
//! the writer appends with `pwrite` and then publishes the new size, so readers see only whole
//! batches. A sealed segment is trimmed to its size and mapped lazily on first read, so a log of
//! many segments holds no descriptors or mappings for segments nobody reads.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::index::{remove_if_exists, OffsetIndex, TimeIndex, TimestampOffset};
use super::mmap::Mapping;
use super::LogError;
use crate::record::BatchHeader;

/// Timestamp meaning "no batch yet" (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub(crate) const NO_TIMESTAMP: i64 = -1;
/// Marks a sealed segment's largest timestamp as not loaded yet.
const UNKNOWN_TIMESTAMP: i64 = i64::MIN;

pub(crate) fn log_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}.log"))
}

#[cfg(test)]
thread_local! {
    /// Batch headers `find_batch` decoded on this thread: lets tests bound the work of a read.
    pub(crate) static HEADERS_SCANNED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The write handles of the active segment, owned by the log's writer.
#[derive(Debug)]
pub(crate) struct ActiveFiles {
    pub log: File,
    pub index: File,
    pub time_index: File,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: u64,
    pub path: PathBuf,
    mapping: OnceLock<Arc<Mapping>>,
    /// Bytes the mapping covers: the capacity of an active segment, the size of a sealed one.
    mapped_len: usize,
    /// Published bytes: every byte below is part of a whole, valid batch.
    size: AtomicU64,
    /// The offset after the last published batch (for a sealed segment, the next segment's base).
    next_offset: AtomicU64,
    max_timestamp: AtomicI64,
    /// The last batch appended: its offset relative to `base_offset` in the high half, its
    /// position in the low half (`NO_LAST_BATCH` when unknown). A consumer at the end of the log
    /// reads from there: the read finds it without the index lookup and header scan.
    last_batch: AtomicU64,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
}

const NO_LAST_BATCH: u64 = u64::MAX;

impl Segment {
    /// Creates an empty active segment, replacing (by unlinking) any files of that base offset.
    pub(crate) fn create(
        dir: &Path,
        base_offset: u64,
        capacity: usize,
        index_capacity: usize,
    ) -> Result<(Segment, ActiveFiles), LogError> {
        let path = log_path(dir, base_offset);
        remove_if_exists(&path)?;
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(LogError::io(&path))?;
        Self::activate(
            dir,
            base_offset,
            log,
            0,
            capacity,
            index_capacity,
            Fresh::Yes,
        )
    }

    /// Turns the existing last segment into the active one: its log file, holding `size` valid
    /// bytes, is cut to them and pre-allocated again; its indexes keep their entries.
    pub(crate) fn reopen_active(
        dir: &Path,
        base_offset: u64,
        size: u64,
        capacity: usize,
        index_capacity: usize,
        indexes: Fresh,
    ) -> Result<(Segment, ActiveFiles), LogError> {
        let path = log_path(dir, base_offset);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(LogError::io(&path))?;
        // Nobody reads this file yet, so cutting bytes beyond the valid ones is safe.
        log.set_len(size).map_err(LogError::io(&path))?;
        Self::activate(
            dir,
            base_offset,
            log,
            size,
            capacity.max(size as usize),
            index_capacity,
            indexes,
        )
    }

    fn activate(
        dir: &Path,
        base_offset: u64,
        log: File,
        size: u64,
        capacity: usize,
        index_capacity: usize,
        fresh: Fresh,
    ) -> Result<(Segment, ActiveFiles), LogError> {
        let path = log_path(dir, base_offset);
        log.set_len(capacity as u64).map_err(LogError::io(&path))?;
        let mapping = Mapping::map(&log, capacity).map_err(LogError::io(&path))?;
        let ((index, index_file), (time_index, time_file)) = match fresh {
            Fresh::Yes => (
                OffsetIndex::create(dir, base_offset, index_capacity)?,
                TimeIndex::create(dir, base_offset, index_capacity)?,
            ),
            Fresh::No => (
                OffsetIndex::reopen_active(dir, base_offset, index_capacity)?,
                TimeIndex::reopen_active(dir, base_offset, index_capacity)?,
            ),
        };
        let segment = Segment {
            base_offset,
            path,
            mapping: OnceLock::from(mapping),
            mapped_len: capacity,
            size: AtomicU64::new(size),
            next_offset: AtomicU64::new(base_offset),
            max_timestamp: AtomicI64::new(NO_TIMESTAMP),
            last_batch: AtomicU64::new(NO_LAST_BATCH),
            index,
            time_index,
        };
        let files = ActiveFiles {
            log,
            index: index_file,
            time_index: time_file,
        };
        Ok((segment, files))
    }

    /// A sealed segment of `size` bytes whose indexes are on disk; nothing is mapped yet.
    pub(crate) fn sealed(
        dir: &Path,
        base_offset: u64,
        size: u64,
        index: OffsetIndex,
        time_index: TimeIndex,
    ) -> Segment {
        Segment {
            base_offset,
            path: log_path(dir, base_offset),
            mapping: OnceLock::new(),
            mapped_len: size as usize,
            size: AtomicU64::new(size),
            next_offset: AtomicU64::new(base_offset),
            max_timestamp: AtomicI64::new(UNKNOWN_TIMESTAMP),
            last_batch: AtomicU64::new(NO_LAST_BATCH),
            index,
            time_index,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub(crate) fn set_next_offset(&self, next_offset: u64) {
        self.next_offset.store(next_offset, Ordering::Release);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// Capacity of the mapping (only meaningful for the active segment).
    pub(crate) fn capacity(&self) -> usize {
        self.mapped_len
    }

    /// Makes bytes up to `size` readable, with `next_offset` after them.
    pub(crate) fn publish(&self, size: u64, next_offset: u64, max_timestamp: i64) {
        assert!(
            size as usize <= self.mapped_len,
            "publishing past the mapping"
        );
        self.max_timestamp
            .fetch_max(max_timestamp, Ordering::AcqRel);
        self.size.store(size, Ordering::Release);
        self.next_offset.store(next_offset, Ordering::Release);
    }

    /// Notes that the batch at `position` starting at `base_offset` is the last one written
    /// (before it is published: a reader checks the position against what it sees published).
    pub(crate) fn set_last_batch(&self, base_offset: u64, position: u64) {
        let packed = match (
            u32::try_from(base_offset - self.base_offset),
            u32::try_from(position),
        ) {
            (Ok(relative), Ok(position)) => u64::from(relative) << 32 | u64::from(position),
            _ => NO_LAST_BATCH,
        };
        self.last_batch.store(packed, Ordering::Release);
    }

    /// The last batch written, if it starts at `offset` and is within `bytes` (published).
    fn last_batch_at(&self, bytes: &[u8], offset: u64) -> Option<(u64, BatchHeader)> {
        let packed = self.last_batch.load(Ordering::Acquire);
        if packed == NO_LAST_BATCH || self.base_offset + (packed >> 32) != offset {
            return None;
        }
        let position = packed & u64::from(u32::MAX);
        if position >= bytes.len() as u64 {
            return None;
        }
        let header = self.header_at(bytes, position).ok()?;
        (header.base_offset as u64 == offset).then_some((position, header))
    }

    pub(crate) fn set_max_timestamp(&self, max_timestamp: i64) {
        self.max_timestamp.store(max_timestamp, Ordering::Release);
    }

    /// The largest timestamp in the segment, `NO_TIMESTAMP` when empty. For a sealed segment it
    /// is the last time index entry (Kafka keeps it there on sealing).
    pub(crate) fn max_timestamp(&self) -> Result<i64, LogError> {
        let known = self.max_timestamp.load(Ordering::Acquire);
        if known != UNKNOWN_TIMESTAMP {
            return Ok(known);
        }
        let last = self.time_index.last(self.base_offset)?;
        let loaded = last.map_or(NO_TIMESTAMP, |entry| entry.timestamp);
        self.max_timestamp.store(loaded, Ordering::Release);
        Ok(loaded)
    }

    fn mapping(&self) -> Result<&Arc<Mapping>, LogError> {
        if let Some(mapping) = self.mapping.get() {
            return Ok(mapping);
        }
        let file = File::open(&self.path).map_err(LogError::io(&self.path))?;
        let mapping = Mapping::map(&file, self.mapped_len).map_err(LogError::io(&self.path))?;
        Ok(self.mapping.get_or_init(|| mapping))
    }

    /// All published bytes.
    pub(crate) fn published(&self) -> Result<&[u8], LogError> {
        let size = self.size() as usize;
        Ok(self.mapping()?.slice(0, size))
    }

    /// Published bytes `start..end` as zero-copy `Bytes`.
    pub(crate) fn bytes(&self, start: u64, end: u64) -> Result<Bytes, LogError> {
        Ok(self.mapping()?.bytes(start as usize, end as usize))
    }

    /// The header of the batch at `position`, checked to fit in the published bytes.
    pub(crate) fn header_at(&self, bytes: &[u8], position: u64) -> Result<BatchHeader, LogError> {
        header_at(&self.path, bytes, position)
    }

    /// Position and header of the first batch whose last offset is at or after `offset`, or
    /// `None` when the segment ends first.
    pub(crate) fn find_batch(&self, offset: u64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        // Loaded before the bytes: every batch below it is in them.
        let published_end = self.next_offset();
        let bytes = self.published()?;
        if let Some(found) = self.last_batch_at(bytes, offset) {
            return Ok(Some(found));
        }
        let entry = self.index.lookup(self.base_offset, offset)?;
        let mut position = u64::from(entry.position);
        // The index comes from disk and a clean open checks only its last entries (`looks_valid`):
        // an entry that does not point at a batch holding its offset would make this scan skip
        // records, or the whole segment, silently. Such an entry is ignored: scan from the start.
        // Found by fuzz/fuzz_targets/index_lookup.rs; pinned in tests/fuzz_regressions.rs.
        // The writer adds a batch's index entry before it publishes the batch, so a read at the
        // log end can find an entry for the batch being appended, past the bytes it sees. Every
        // published batch ends before that entry's offset, so before `offset`. Without this
        // check the entry failed the test below and each such read scanned the whole segment:
        // with one-record batches a tailing consumer fell milliseconds behind. (A corrupt entry
        // pointing past the bytes at a published offset still falls through to the scan.)
        if position >= bytes.len() as u64 && entry.offset >= published_end && position != 0 {
            return Ok(None);
        }
        if position != 0 && !self.holds_offset_at(bytes, position, entry.offset) {
            position = 0;
        }
        while (position as usize) < bytes.len() {
            #[cfg(test)]
            HEADERS_SCANNED.with(|scanned| scanned.set(scanned.get() + 1));
            let header = self.header_at(bytes, position)?;
            if header.last_offset() as u64 >= offset {
                return Ok(Some((position, header)));
            }
            position += header.total_bytes() as u64;
        }
        Ok(None)
    }

    /// Whether the batch holding a time index entry's offset has the entry's timestamp as its
    /// largest, as every entry the indexer writes does.
    pub(crate) fn time_entry_holds(&self, entry: TimestampOffset) -> Result<bool, LogError> {
        if entry.offset < self.base_offset {
            return Ok(false);
        }
        Ok(self.find_batch(entry.offset)?.is_some_and(|(_, header)| {
            header.base_offset as u64 <= entry.offset && header.max_timestamp == entry.timestamp
        }))
    }

    /// Whether a whole batch starts at `position` and holds `offset`.
    fn holds_offset_at(&self, bytes: &[u8], position: u64, offset: u64) -> bool {
        self.header_at(bytes, position).is_ok_and(|header| {
            header.base_offset as u64 <= offset && offset <= header.last_offset() as u64
        })
    }

    /// Writes `batch` at the end of the active segment (not yet published).
    pub(crate) fn write(
        &self,
        files: &ActiveFiles,
        position: u64,
        batch: &[u8],
    ) -> Result<(), LogError> {
        assert!(
            position as usize + batch.len() <= self.mapped_len,
            "write past the pre-allocated segment"
        );
        files
            .log
            .write_all_at(batch, position)
            .map_err(LogError::io(&self.path))
    }

    /// Seals the active segment: flushes it, trims every file to its contents.
    pub(crate) fn seal(&self, files: &ActiveFiles, indexer: &Indexer) -> Result<(), LogError> {
        indexer.finish(&self.index_target(files))?;
        self.index.trim_and_sync(&files.index)?;
        self.time_index.trim_and_sync(&files.time_index)?;
        // Only unpublished bytes are cut, so readers of the mapping are unaffected.
        files
            .log
            .set_len(self.size())
            .map_err(LogError::io(&self.path))?;
        files.log.sync_data().map_err(LogError::io(&self.path))
    }
}

/// The index files a batch's entries go to: an active segment's, or ones being rebuilt.
pub(crate) struct IndexTarget<'a> {
    pub base_offset: u64,
    pub index: &'a OffsetIndex,
    pub time_index: &'a TimeIndex,
    pub index_file: &'a File,
    pub time_file: &'a File,
}

impl Segment {
    pub(crate) fn index_target<'a>(&'a self, files: &'a ActiveFiles) -> IndexTarget<'a> {
        IndexTarget {
            base_offset: self.base_offset,
            index: &self.index,
            time_index: &self.time_index,
            index_file: &files.index,
            time_file: &files.time_index,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Fresh {
    /// Start empty indexes (replacing any files by unlinking them).
    Yes,
    /// Keep the entries the index files hold.
    No,
}

/// Decodes the batch header at `position` of `bytes` and checks that the whole batch lies inside.
pub(crate) fn header_at(path: &Path, bytes: &[u8], position: u64) -> Result<BatchHeader, LogError> {
    let corrupt = |reason: String| LogError::Corrupt {
        path: path.to_owned(),
        position,
        reason,
    };
    let rest = bytes
        .get(position as usize..)
        .ok_or_else(|| corrupt("position past the end".into()))?;
    let header = BatchHeader::decode(rest).map_err(|error| corrupt(error.to_string()))?;
    if header.total_bytes() > rest.len() {
        return Err(corrupt(format!(
            "batch of {} bytes runs past the end ({} left)",
            header.total_bytes(),
            rest.len()
        )));
    }
    Ok(header)
}

/// Adds sparse index entries as batches are written, as Kafka does: an offset index entry (the
/// batch's last offset and its position) once more than `index_interval_bytes` were written since
/// the last one, and with it a time index entry when the largest timestamp grew.
#[derive(Debug, Clone)]
pub(crate) struct Indexer {
    interval_bytes: u64,
    bytes_since_entry: u64,
    pub max_timestamp: i64,
    offset_of_max_timestamp: u64,
    last_time_entry: i64,
}

impl Indexer {
    /// An indexer continuing after the entries `time_index` already holds.
    pub(crate) fn new(
        interval_bytes: u32,
        base_offset: u64,
        time_index: &TimeIndex,
    ) -> Result<Indexer, LogError> {
        let last = time_index.last(base_offset)?;
        Ok(Indexer {
            interval_bytes: u64::from(interval_bytes),
            bytes_since_entry: 0,
            max_timestamp: last.map_or(NO_TIMESTAMP, |entry| entry.timestamp),
            offset_of_max_timestamp: last.map_or(base_offset, |entry| entry.offset),
            last_time_entry: last.map_or(NO_TIMESTAMP, |entry| entry.timestamp),
        })
    }

    /// Accounts for a batch that is already indexed (scanned after the last index entry on a
    /// clean open), so the next entry lands where it would have.
    pub(crate) fn skip_batch(&mut self, header: &BatchHeader) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset() as u64;
        }
        self.bytes_since_entry += header.total_bytes() as u64;
    }

    /// Accounts for the batch written at `position`.
    pub(crate) fn on_batch(
        &mut self,
        target: &IndexTarget<'_>,
        position: u64,
        header: &BatchHeader,
    ) -> Result<(), LogError> {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset() as u64;
        }
        if self.bytes_since_entry > self.interval_bytes {
            let relative = (header.last_offset() as u64 - target.base_offset) as u32;
            target
                .index
                .append(target.index_file, relative, position as u32)?;
            self.append_time_entry(target)?;
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += header.total_bytes() as u64;
        Ok(())
    }

    fn append_time_entry(&mut self, target: &IndexTarget<'_>) -> Result<(), LogError> {
        if self.max_timestamp > self.last_time_entry {
            let relative = (self.offset_of_max_timestamp - target.base_offset) as u32;
            target
                .time_index
                .append(target.time_file, self.max_timestamp, relative)?;
            self.last_time_entry = self.max_timestamp;
        }
        Ok(())
    }

    /// Records the segment's largest timestamp in the time index before it is sealed.
    pub(crate) fn finish(&self, target: &IndexTarget<'_>) -> Result<(), LogError> {
        self.clone().append_time_entry(target)
    }

    /// Whether the index files have room for the entries another batch may add.
    pub(crate) fn has_room(segment: &Segment) -> bool {
        !segment.index.is_full() && !segment.time_index.is_full()
    }
}

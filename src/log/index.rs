//! The sparse offset index (`.index`) and the time index (`.timeindex`), laid out as Kafka lays
//! them out.
//!
//! ```text
//! .index      8-byte entries: relative offset u32 (offset - segment base), file position u32
//! .timeindex 12-byte entries: timestamp i64, relative offset u32
//! ```
//!
//! Both are big-endian, sorted, and sparse: one entry per `index_interval_bytes` of log. A lookup
//! returns the largest entry at or below the target and the caller scans forward from there. The
//! active segment's files are pre-allocated to `segment_index_bytes` (sparse) and trimmed to their
//! entries when the segment is sealed. Entries carry no checksum: after a crash they are rebuilt
//! from the log.

use std::fs::{File, OpenOptions};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::mmap::Mapping;
use super::LogError;

pub(crate) const OFFSET_ENTRY_BYTES: usize = 8;
pub(crate) const TIME_ENTRY_BYTES: usize = 12;

/// A file of fixed-size entries: appended by one writer with `pwrite`, read through a mapping up to
/// the published count.
#[derive(Debug)]
struct EntryFile {
    path: PathBuf,
    entry_bytes: usize,
    mapping: OnceLock<Arc<Mapping>>,
    /// Number of published entries.
    count: AtomicUsize,
    /// Entries the file can hold: the pre-allocated size for an active segment, else `count`.
    capacity: usize,
}

impl EntryFile {
    /// Reopens an existing entry file of the active segment for appending: keeps its whole
    /// entries, extends it back to `capacity_bytes` and maps it.
    fn reopen_active(
        path: PathBuf,
        entry_bytes: usize,
        capacity_bytes: usize,
    ) -> Result<(Self, File), LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(LogError::io(&path))?;
        let len = file.metadata().map_err(LogError::io(&path))?.len() as usize;
        let count = len / entry_bytes;
        let capacity = (capacity_bytes / entry_bytes).max(count + 1);
        let mapped = capacity * entry_bytes;
        file.set_len(mapped as u64).map_err(LogError::io(&path))?;
        let mapping = Mapping::map(&file, mapped).map_err(LogError::io(&path))?;
        let entries = EntryFile {
            path,
            entry_bytes,
            mapping: OnceLock::from(mapping),
            count: AtomicUsize::new(count),
            capacity,
        };
        Ok((entries, file))
    }

    /// Creates an empty entry file pre-allocated (sparsely) to `capacity_bytes`, truncating any
    /// file already there. Returns the handle the writer appends with.
    fn create(
        path: PathBuf,
        entry_bytes: usize,
        capacity_bytes: usize,
    ) -> Result<(Self, File), LogError> {
        let capacity = capacity_bytes / entry_bytes;
        // Unlink rather than truncate an old file: a reader may still map it (see `mmap`).
        remove_if_exists(&path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(LogError::io(&path))?;
        let len = (capacity * entry_bytes) as u64;
        file.set_len(len).map_err(LogError::io(&path))?;
        let mapping = Mapping::map(&file, len as usize).map_err(LogError::io(&path))?;
        let entries = EntryFile {
            path,
            entry_bytes,
            mapping: OnceLock::from(mapping),
            count: AtomicUsize::new(0),
            capacity,
        };
        Ok((entries, file))
    }

    /// Opens an existing, sealed entry file; it is mapped on first use. Returns `None` when the
    /// file is missing or its length is not a whole number of entries.
    fn open_sealed(path: PathBuf, entry_bytes: usize) -> Option<Self> {
        let len = std::fs::metadata(&path).ok()?.len() as usize;
        if !len.is_multiple_of(entry_bytes) {
            return None;
        }
        let count = len / entry_bytes;
        Some(EntryFile {
            path,
            entry_bytes,
            mapping: OnceLock::new(),
            count: AtomicUsize::new(count),
            capacity: count,
        })
    }

    fn mapping(&self) -> Result<&Arc<Mapping>, LogError> {
        if let Some(mapping) = self.mapping.get() {
            return Ok(mapping);
        }
        let file = File::open(&self.path).map_err(LogError::io(&self.path))?;
        let len = self.capacity * self.entry_bytes;
        let mapping = Mapping::map(&file, len).map_err(LogError::io(&self.path))?;
        Ok(self.mapping.get_or_init(|| mapping))
    }

    fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Full when one slot is left: sealing may add a last time index entry.
    fn is_full(&self) -> bool {
        self.len() + 1 >= self.capacity
    }

    /// The published entries as one slice.
    fn entries(&self) -> Result<&[u8], LogError> {
        let count = self.len();
        Ok(self.mapping()?.slice(0, count * self.entry_bytes))
    }

    /// Writes `entry` after the published ones, then publishes it.
    fn append(&self, file: &File, entry: &[u8]) -> Result<(), LogError> {
        assert_eq!(entry.len(), self.entry_bytes);
        let count = self.len();
        assert!(count < self.capacity, "appending to a full index");
        file.write_all_at(entry, (count * self.entry_bytes) as u64)
            .map_err(LogError::io(&self.path))?;
        self.count.store(count + 1, Ordering::Release);
        Ok(())
    }

    /// Cuts the file to its published entries and forces it to disk (on sealing a segment).
    fn trim_and_sync(&self, file: &File) -> Result<(), LogError> {
        let len = (self.len() * self.entry_bytes) as u64;
        file.set_len(len).map_err(LogError::io(&self.path))?;
        file.sync_all().map_err(LogError::io(&self.path))
    }
}

/// Removes `path`, treating a missing file as done.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(LogError::io(path)(error)),
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    let mut raw = [0; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(raw)
}

/// Index of `index`'s largest entry whose key is at or below `target`, by binary search over
/// sorted keys.
fn floor_entry(
    entries: &[u8],
    entry_bytes: usize,
    target: i64,
    key: impl Fn(&[u8]) -> i64,
) -> Option<usize> {
    let count = entries.len() / entry_bytes;
    let at = |i: usize| key(&entries[i * entry_bytes..(i + 1) * entry_bytes]);
    // Number of entries with key <= target; the entries are sorted by key.
    let (mut low, mut high) = (0, count);
    while low < high {
        let mid = low + (high - low) / 2;
        if at(mid) <= target {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low.checked_sub(1)
}

/// The sparse offset index of one segment.
/// What tells the two sparse indexes apart: their file's extension and entry size.
pub(crate) trait IndexKind {
    const EXTENSION: &'static str;
    const ENTRY_BYTES: usize;
}

/// The offset index: relative offset and file position.
#[derive(Debug)]
pub(crate) struct Offsets;

impl IndexKind for Offsets {
    const EXTENSION: &'static str = "index";
    const ENTRY_BYTES: usize = OFFSET_ENTRY_BYTES;
}

/// The time index: timestamp and relative offset.
#[derive(Debug)]
pub(crate) struct Timestamps;

impl IndexKind for Timestamps {
    const EXTENSION: &'static str = "timeindex";
    const ENTRY_BYTES: usize = TIME_ENTRY_BYTES;
}

/// One segment's sparse index of kind `K`.
#[derive(Debug)]
pub(crate) struct SparseIndex<K> {
    entries: EntryFile,
    kind: PhantomData<K>,
}

/// The sparse offset index of one segment.
pub(crate) type OffsetIndex = SparseIndex<Offsets>;
/// The sparse time index of one segment.
pub(crate) type TimeIndex = SparseIndex<Timestamps>;

impl<K: IndexKind> SparseIndex<K> {
    fn wrap(entries: EntryFile) -> Self {
        SparseIndex {
            entries,
            kind: PhantomData,
        }
    }

    pub(crate) fn path(dir: &Path, base_offset: u64) -> PathBuf {
        dir.join(format!("{base_offset:020}.{}", K::EXTENSION))
    }

    /// A new, empty index, pre-allocated to `capacity_bytes`, and the handle to append with.
    pub(crate) fn create(
        dir: &Path,
        base_offset: u64,
        capacity_bytes: usize,
    ) -> Result<(Self, File), LogError> {
        let (entries, file) =
            EntryFile::create(Self::path(dir, base_offset), K::ENTRY_BYTES, capacity_bytes)?;
        Ok((Self::wrap(entries), file))
    }

    /// A new, empty index at `path` (the cleaner writes its indexes under a temporary name),
    /// pre-allocated to `capacity_bytes`, and the handle to append with.
    pub(crate) fn create_at(
        path: PathBuf,
        capacity_bytes: usize,
    ) -> Result<(Self, File), LogError> {
        let (entries, file) = EntryFile::create(path, K::ENTRY_BYTES, capacity_bytes)?;
        Ok((Self::wrap(entries), file))
    }

    /// The existing index of a sealed segment, mapped on first use; `None` when it is missing
    /// or not a whole number of entries.
    pub(crate) fn open_sealed(dir: &Path, base_offset: u64) -> Option<Self> {
        EntryFile::open_sealed(Self::path(dir, base_offset), K::ENTRY_BYTES).map(Self::wrap)
    }

    /// The existing index of the active segment, reopened for appending.
    pub(crate) fn reopen_active(
        dir: &Path,
        base_offset: u64,
        capacity_bytes: usize,
    ) -> Result<(Self, File), LogError> {
        let (entries, file) =
            EntryFile::reopen_active(Self::path(dir, base_offset), K::ENTRY_BYTES, capacity_bytes)?;
        Ok((Self::wrap(entries), file))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries.is_full()
    }

    pub(crate) fn trim_and_sync(&self, file: &File) -> Result<(), LogError> {
        self.entries.trim_and_sync(file)
    }
}

/// One offset index entry, in absolute terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetPosition {
    pub offset: u64,
    pub position: u32,
}

impl SparseIndex<Offsets> {
    pub(crate) fn append(
        &self,
        file: &File,
        relative_offset: u32,
        position: u32,
    ) -> Result<(), LogError> {
        let mut entry = [0; OFFSET_ENTRY_BYTES];
        entry[..4].copy_from_slice(&relative_offset.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.entries.append(file, &entry)
    }

    pub(crate) fn entry(&self, i: usize, base_offset: u64) -> Result<OffsetPosition, LogError> {
        let entries = self.entries.entries()?;
        let at = i * OFFSET_ENTRY_BYTES;
        Ok(OffsetPosition {
            offset: base_offset + u64::from(be_u32(entries, at)),
            position: be_u32(entries, at + 4),
        })
    }

    pub(crate) fn lookup(&self, base_offset: u64, offset: u64) -> Result<OffsetPosition, LogError> {
        let entries = self.entries.entries()?;
        let target = offset.saturating_sub(base_offset).min(u64::from(u32::MAX)) as i64;
        let found = floor_entry(entries, OFFSET_ENTRY_BYTES, target, |entry| {
            i64::from(be_u32(entry, 0))
        });
        match found {
            Some(i) => self.entry(i, base_offset),
            None => Ok(OffsetPosition {
                offset: base_offset,
                position: 0,
            }),
        }
    }

    pub(crate) fn looks_valid(&self, base_offset: u64, log_bytes: u64) -> Result<bool, LogError> {
        let count = self.len();
        if count == 0 {
            return Ok(true);
        }
        let last = self.entry(count - 1, base_offset)?;
        if u64::from(last.position) >= log_bytes {
            return Ok(false);
        }
        if count >= 2 {
            let before = self.entry(count - 2, base_offset)?;
            if before.offset >= last.offset || before.position >= last.position {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// One time index entry, in absolute terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimestampOffset {
    pub timestamp: i64,
    pub offset: u64,
}

impl SparseIndex<Timestamps> {
    pub(crate) fn append(
        &self,
        file: &File,
        timestamp: i64,
        relative_offset: u32,
    ) -> Result<(), LogError> {
        let mut entry = [0; TIME_ENTRY_BYTES];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&relative_offset.to_be_bytes());
        self.entries.append(file, &entry)
    }

    pub(crate) fn entry(&self, i: usize, base_offset: u64) -> Result<TimestampOffset, LogError> {
        let entries = self.entries.entries()?;
        let at = i * TIME_ENTRY_BYTES;
        Ok(TimestampOffset {
            timestamp: be_i64(entries, at),
            offset: base_offset + u64::from(be_u32(entries, at + 8)),
        })
    }

    pub(crate) fn last(&self, base_offset: u64) -> Result<Option<TimestampOffset>, LogError> {
        match self.len() {
            0 => Ok(None),
            count => self.entry(count - 1, base_offset).map(Some),
        }
    }

    pub(crate) fn lookup(
        &self,
        base_offset: u64,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, LogError> {
        let entries = self.entries.entries()?;
        match floor_entry(entries, TIME_ENTRY_BYTES, timestamp, |entry| {
            be_i64(entry, 0)
        }) {
            Some(i) => self.entry(i, base_offset).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn looks_valid(&self, base_offset: u64) -> Result<bool, LogError> {
        let count = self.len();
        if count < 2 {
            return Ok(true);
        }
        let last = self.entry(count - 1, base_offset)?;
        let before = self.entry(count - 2, base_offset)?;
        Ok(before.timestamp < last.timestamp && before.offset < last.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_finds_the_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (index, file) = OffsetIndex::create(dir.path(), 100, 80).unwrap();
        for (relative, position) in [(0, 0), (10, 4096), (25, 8200)] {
            index.append(&file, relative, position).unwrap();
        }
        assert_eq!(
            index.lookup(100, 99).unwrap(),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(
            index.lookup(100, 109).unwrap(),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(
            index.lookup(100, 110).unwrap(),
            OffsetPosition {
                offset: 110,
                position: 4096
            }
        );
        assert_eq!(
            index.lookup(100, 1000).unwrap(),
            OffsetPosition {
                offset: 125,
                position: 8200
            }
        );
        assert!(index.looks_valid(100, 9000).unwrap());
        assert!(!index.looks_valid(100, 8200).unwrap());
    }

    #[test]
    fn sealed_index_is_trimmed_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let (index, file) = TimeIndex::create(dir.path(), 0, 120).unwrap();
        index.append(&file, 1000, 0).unwrap();
        index.append(&file, 2000, 7).unwrap();
        index.trim_and_sync(&file).unwrap();
        drop((index, file));
        let index = TimeIndex::open_sealed(dir.path(), 0).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(
            index.lookup(0, 1500).unwrap(),
            Some(TimestampOffset {
                timestamp: 1000,
                offset: 0
            })
        );
        assert_eq!(index.lookup(0, 999).unwrap(), None);
        assert!(index.looks_valid(0).unwrap());
    }

    #[test]
    fn zero_filled_tail_fails_the_sanity_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = OffsetIndex::path(dir.path(), 0);
        let mut bytes = vec![0u8; 32];
        bytes[..8].copy_from_slice(&[0, 0, 0, 5, 0, 0, 16, 0]);
        std::fs::write(&path, bytes).unwrap();
        let index = OffsetIndex::open_sealed(dir.path(), 0).unwrap();
        assert!(!index.looks_valid(0, 1 << 20).unwrap());
        std::fs::write(&path, [0u8; 7]).unwrap();
        assert!(OffsetIndex::open_sealed(dir.path(), 0).is_none());
    }
}

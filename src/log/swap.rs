//! Writing cleaned segments, swapping them into a log atomically, and finishing or undoing an
//! interrupted swap when a log opens.
//!
//! The protocol is Kafka's (`.cleaned`, then `.swap`, then the final names), with one file more:
//! a pass replaces several segments at once, and a crash must leave all of them old or all new
//! (an old segment next to a new one can bring back a value a tombstone deleted), so a manifest
//! names the segments a swap replaces and the ones it brings.
//!
//! 1. The cleaner writes each new segment as `<base>.log.cleaned`, `<base>.index.cleaned` and
//!    `<base>.timeindex.cleaned`, and fsyncs them.
//! 2. `cleaner-swap-manifest` is written atomically (temporary file, fsync, rename, directory
//!    fsync, which also makes the `.cleaned` names durable): Kafka's checkpoint text with one
//!    `old <base>` line per replaced segment and one `new <base>` line per new one.
//! 3. Every `.cleaned` file is renamed to `.swap`, then the directory is fsynced. The swap is
//!    committed once the manifest is there and no `.cleaned` file is left.
//! 4. Under the writer lock: the replaced segments are mapped (readers holding them keep reading
//!    the old bytes), each new segment's `.swap` files are renamed to their final names (the
//!    indexes first, the log last), replacing an old segment of the same base; old segments that
//!    no new one replaces are deleted; the directory is fsynced; the in-memory segment list is
//!    swapped.
//! 5. The manifest is deleted and the directory fsynced; then the cleaner checkpoint moves on.
//!
//! When a log opens: no manifest means no pass committed, and every `.cleaned` and `.swap` file
//! is deleted; a manifest with a `.cleaned` file left means the pass did not commit either: the
//! manifest is deleted first (so an interrupted rollback is still a rollback), then the files; a
//! manifest and no `.cleaned` file is a committed swap, finished as in step 4 and 5.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checkpoint::{format_entries, parse_entries, sync_dir, write_atomic};
use super::cleaner::CleanStep;
use super::index::{remove_if_exists, OffsetIndex, TimeIndex};
use super::log::{Log, Writer};
use super::maintenance::{map_before_unlink, remove_segment_files};
use super::recovery::rebuilt_index_bytes;
use super::segment::{log_path, IndexTarget, Indexer, Segment};
use super::{LogConfig, LogError};
use crate::record::BatchHeader;

/// The record of a committed swap: the segments it replaces and the ones it brings.
pub const CLEANER_SWAP_MANIFEST: &str = "cleaner-swap-manifest";
const CLEANED_SUFFIX: &str = ".cleaned";
const SWAP_SUFFIX: &str = ".swap";
/// A manifest holds a line of at most 26 bytes per segment; more than this is not a manifest.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The cleaned log file is written through a buffer of this size (Kafka's
/// `log.cleaner.io.buffer.size` is 512 KiB, shared by reading and writing).
const WRITE_BUFFER_BYTES: usize = 256 << 10;

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The files of the segment at `base`, in the order a swap renames them: the log last, so a
/// segment whose log is in place has its indexes in place too.
fn segment_files(dir: &Path, base: u64) -> [PathBuf; 3] {
    [
        OffsetIndex::path(dir, base),
        TimeIndex::path(dir, base),
        log_path(dir, base),
    ]
}

/// A new segment written and synced under its `.cleaned` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanedSegment {
    pub base_offset: u64,
    pub size: u64,
    pub max_timestamp: i64,
}

/// Writes the batches a cleaning pass keeps into new segments under `.cleaned` names. A new
/// segment starts when the current one would pass `segment_bytes`, its index is full, or an
/// offset would not fit the index's 32-bit relative offsets. On error the caller removes what
/// was written with [`remove_leftovers`].
pub(crate) struct CleanedWriter<'a> {
    dir: &'a Path,
    config: &'a LogConfig,
    done: Vec<CleanedSegment>,
    current: OpenCleaned,
}

struct OpenCleaned {
    base_offset: u64,
    log_path: PathBuf,
    log: BufWriter<File>,
    position: u64,
    index: OffsetIndex,
    index_file: File,
    time_index: TimeIndex,
    time_file: File,
    indexer: Indexer,
}

impl<'a> CleanedWriter<'a> {
    /// Starts the first new segment at `base_offset`, the first replaced segment's base: the log
    /// keeps its first offset even when the pass keeps nothing.
    pub(crate) fn new(
        dir: &'a Path,
        config: &'a LogConfig,
        base_offset: u64,
    ) -> Result<Self, LogError> {
        Ok(CleanedWriter {
            dir,
            config,
            done: Vec::new(),
            current: OpenCleaned::create(dir, config, base_offset)?,
        })
    }

    /// Appends a whole batch.
    pub(crate) fn write(&mut self, header: &BatchHeader, bytes: &[u8]) -> Result<(), LogError> {
        if self.current.must_roll(self.config, header, bytes.len()) {
            let next = OpenCleaned::create(self.dir, self.config, header.base_offset as u64)?;
            let finished = std::mem::replace(&mut self.current, next).finish()?;
            self.done.push(finished);
        }
        self.current.write(header, bytes)
    }

    /// Bytes written so far.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.done.iter().map(|segment| segment.size).sum::<u64>() + self.current.position
    }

    /// Flushes and fsyncs the last segment; returns every segment written, in offset order.
    pub(crate) fn finish(mut self) -> Result<Vec<CleanedSegment>, LogError> {
        let last = self.current.finish()?;
        self.done.push(last);
        Ok(self.done)
    }
}

impl OpenCleaned {
    fn create(dir: &Path, config: &LogConfig, base_offset: u64) -> Result<Self, LogError> {
        let [index_path, time_path, log_path] =
            segment_files(dir, base_offset).map(|path| with_suffix(&path, CLEANED_SUFFIX));
        remove_if_exists(&log_path)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&log_path)
            .map_err(LogError::io(&log_path))?;
        let capacity = rebuilt_index_bytes(config, u64::from(config.segment_bytes));
        let (index, index_file) = OffsetIndex::create_at(index_path, capacity)?;
        let (time_index, time_file) = TimeIndex::create_at(time_path, capacity)?;
        let indexer = Indexer::new(config.index_interval_bytes, base_offset, &time_index)?;
        Ok(OpenCleaned {
            base_offset,
            log_path,
            log: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            position: 0,
            index,
            index_file,
            time_index,
            time_file,
            indexer,
        })
    }

    /// Whether the batch must go to a new segment. A batch larger than `segment_bytes` still
    /// goes into an empty one, as the log's roll does.
    fn must_roll(&self, config: &LogConfig, header: &BatchHeader, batch_bytes: usize) -> bool {
        let span = header.last_offset() as u64 - self.base_offset;
        let too_far = span > u64::from(u32::MAX);
        if self.position == 0 {
            return too_far;
        }
        too_far
            || self.position + batch_bytes as u64 > u64::from(config.segment_bytes)
            || self.index.is_full()
            || self.time_index.is_full()
    }

    fn target(&self) -> IndexTarget<'_> {
        IndexTarget {
            base_offset: self.base_offset,
            index: &self.index,
            time_index: &self.time_index,
            index_file: &self.index_file,
            time_file: &self.time_file,
        }
    }

    fn write(&mut self, header: &BatchHeader, bytes: &[u8]) -> Result<(), LogError> {
        let target = IndexTarget {
            base_offset: self.base_offset,
            index: &self.index,
            time_index: &self.time_index,
            index_file: &self.index_file,
            time_file: &self.time_file,
        };
        self.indexer.on_batch(&target, self.position, header)?;
        self.log
            .write_all(bytes)
            .map_err(LogError::io(&self.log_path))?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn finish(self) -> Result<CleanedSegment, LogError> {
        self.indexer.finish(&self.target())?;
        self.index.trim_and_sync(&self.index_file)?;
        self.time_index.trim_and_sync(&self.time_file)?;
        let file = self
            .log
            .into_inner()
            .map_err(|error| LogError::io(&self.log_path)(error.into_error()))?;
        file.sync_data().map_err(LogError::io(&self.log_path))?;
        Ok(CleanedSegment {
            base_offset: self.base_offset,
            size: self.position,
            max_timestamp: self.indexer.max_timestamp,
        })
    }
}

/// What a swap replaces: base offsets of the old segments and of the new ones, both increasing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub old: Vec<u64>,
    pub new: Vec<u64>,
}

impl Manifest {
    fn encode(&self) -> String {
        let lines: Vec<String> = self
            .old
            .iter()
            .map(|base| format!("old {base}"))
            .chain(self.new.iter().map(|base| format!("new {base}")))
            .collect();
        format_entries(&lines)
    }

    fn parse(path: &Path, text: &str) -> Result<Manifest, LogError> {
        let corrupt = |reason: String| LogError::Corrupt {
            path: path.to_owned(),
            position: 0,
            reason,
        };
        let mut manifest = Manifest {
            old: Vec::new(),
            new: Vec::new(),
        };
        for line in parse_entries(text).map_err(corrupt)? {
            let (role, base) = line
                .split_once(' ')
                .ok_or_else(|| corrupt(format!("malformed entry {line:?}")))?;
            let base: u64 = base
                .parse()
                .map_err(|_| corrupt(format!("malformed offset in {line:?}")))?;
            match role {
                "old" => manifest.old.push(base),
                "new" => manifest.new.push(base),
                _ => return Err(corrupt(format!("malformed entry {line:?}"))),
            }
        }
        let increasing = |bases: &[u64]| bases.windows(2).all(|pair| pair[0] < pair[1]);
        // The first new segment always starts where the first old one did.
        if manifest.old.is_empty()
            || manifest.new.first() != manifest.old.first()
            || !increasing(&manifest.old)
            || !increasing(&manifest.new)
        {
            return Err(corrupt(
                "bases must increase and both lists start at the same base".to_owned(),
            ));
        }
        Ok(manifest)
    }

    fn is_new(&self, base: u64) -> bool {
        self.new.binary_search(&base).is_ok()
    }
}

impl Log {
    /// Steps 2 to 5 of the protocol for a pass that wrote `cleaned` to replace `replaced` (the
    /// first segments of the list, unchanged since the pass read them). The caller holds the
    /// writer lock. Before the commit an error undoes the pass; after it, the log refuses writes
    /// (its files and its segment list may disagree) until it is reopened, which finishes the
    /// swap.
    pub(crate) fn swap_in_cleaned(
        &self,
        writer: &mut Writer,
        replaced: &[Arc<Segment>],
        cleaned: &[CleanedSegment],
        observe: &mut dyn FnMut(CleanStep),
    ) -> Result<(), LogError> {
        let manifest = Manifest {
            old: replaced.iter().map(|segment| segment.base_offset).collect(),
            new: cleaned.iter().map(|segment| segment.base_offset).collect(),
        };
        if let Err(error) = self.commit_swap(&manifest, observe) {
            // Best effort: what is left is undone when the log next opens.
            let _ = roll_back(&self.dir);
            return Err(error);
        }
        let replacing = self.replace_segments(replaced, cleaned, &manifest, observe);
        self.fail_on_error(writer, replacing)
    }

    /// Steps 2 and 3: manifest, renames to `.swap`, directory fsync.
    fn commit_swap(
        &self,
        manifest: &Manifest,
        observe: &mut dyn FnMut(CleanStep),
    ) -> Result<(), LogError> {
        let path = self.dir.join(CLEANER_SWAP_MANIFEST);
        write_atomic(&path, manifest.encode().as_bytes()).map_err(LogError::io(&path))?;
        observe(CleanStep::ManifestWritten);
        for &base in &manifest.new {
            for path in segment_files(&self.dir, base) {
                let cleaned = with_suffix(&path, CLEANED_SUFFIX);
                fs::rename(&cleaned, with_suffix(&path, SWAP_SUFFIX))
                    .map_err(LogError::io(&cleaned))?;
                observe(CleanStep::RenamedToSwap);
            }
        }
        sync_dir(&self.dir).map_err(LogError::io(&self.dir))?;
        observe(CleanStep::Committed);
        Ok(())
    }

    /// Steps 4 and 5.
    fn replace_segments(
        &self,
        replaced: &[Arc<Segment>],
        cleaned: &[CleanedSegment],
        manifest: &Manifest,
        observe: &mut dyn FnMut(CleanStep),
    ) -> Result<(), LogError> {
        // Renaming over or unlinking a file leaves existing mappings valid: map first.
        for segment in replaced {
            map_before_unlink(segment);
        }
        put_new_files_in_place(&self.dir, manifest, observe)?;
        let current = self.snapshot();
        let next_base = current[replaced.len()].base_offset;
        let mut segments = open_cleaned(&self.dir, cleaned, next_base)?;
        segments.extend(current[replaced.len()..].iter().cloned());
        *self.segments.write() = Arc::new(segments);
        observe(CleanStep::SegmentsSwapped);
        remove_manifest(&self.dir)?;
        observe(CleanStep::ManifestRemoved);
        Ok(())
    }
}

/// Renames the new segments' `.swap` files to their final names and deletes the old segments no
/// new one replaces, then fsyncs the directory. Idempotent: a file already renamed or deleted is
/// skipped, so a swap interrupted here is finished by running it again.
fn put_new_files_in_place(
    dir: &Path,
    manifest: &Manifest,
    observe: &mut dyn FnMut(CleanStep),
) -> Result<(), LogError> {
    for &base in &manifest.new {
        for path in segment_files(dir, base) {
            let swap = with_suffix(&path, SWAP_SUFFIX);
            match fs::rename(&swap, &path) {
                Ok(()) => observe(CleanStep::RenamedIntoPlace),
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => return Err(LogError::io(&swap)(error)),
            }
        }
        let log = log_path(dir, base);
        if !log.exists() {
            return Err(LogError::Corrupt {
                path: dir.join(CLEANER_SWAP_MANIFEST),
                position: 0,
                reason: format!("new segment {base} of a committed swap is missing"),
            });
        }
    }
    for &base in manifest.old.iter().filter(|&&base| !manifest.is_new(base)) {
        remove_segment_files(dir, base)?;
        observe(CleanStep::OldSegmentDeleted);
    }
    sync_dir(dir).map_err(LogError::io(dir))
}

/// The new segments as sealed segments of the log, the last one ending at `next_base`.
fn open_cleaned(
    dir: &Path,
    cleaned: &[CleanedSegment],
    next_base: u64,
) -> Result<Vec<Arc<Segment>>, LogError> {
    let mut segments = Vec::with_capacity(cleaned.len());
    for (i, new) in cleaned.iter().enumerate() {
        let base = new.base_offset;
        let missing = |path: PathBuf| LogError::Corrupt {
            path,
            position: 0,
            reason: "the index of a cleaned segment is missing or malformed".to_owned(),
        };
        let index = OffsetIndex::open_sealed(dir, base)
            .ok_or_else(|| missing(OffsetIndex::path(dir, base)))?;
        let time_index =
            TimeIndex::open_sealed(dir, base).ok_or_else(|| missing(TimeIndex::path(dir, base)))?;
        let segment = Segment::sealed(dir, base, new.size, index, time_index);
        segment.set_next_offset(
            cleaned
                .get(i + 1)
                .map_or(next_base, |next| next.base_offset),
        );
        segment.set_max_timestamp(new.max_timestamp);
        segments.push(Arc::new(segment));
    }
    Ok(segments)
}

fn remove_manifest(dir: &Path) -> Result<(), LogError> {
    remove_if_exists(&dir.join(CLEANER_SWAP_MANIFEST))?;
    sync_dir(dir).map_err(LogError::io(dir))
}

/// Undoes a pass that did not commit: the manifest first, then the new segments' files.
fn roll_back(dir: &Path) -> Result<(), LogError> {
    remove_manifest(dir)?;
    remove_leftovers(dir)
}

/// Removes the files of a pass that failed, unless its swap committed (then they are the log's
/// data, and opening the log finishes the swap).
pub(crate) fn abandon_pass(dir: &Path) -> Result<(), LogError> {
    if dir.join(CLEANER_SWAP_MANIFEST).exists() {
        return Ok(());
    }
    remove_leftovers(dir)
}

/// Deletes every `.cleaned` and `.swap` file of the directory (a pass that did not commit).
pub(crate) fn remove_leftovers(dir: &Path) -> Result<(), LogError> {
    for path in files_with_suffixes(dir, &[CLEANED_SUFFIX, SWAP_SUFFIX])? {
        remove_if_exists(&path)?;
    }
    Ok(())
}

fn files_with_suffixes(dir: &Path, suffixes: &[&str]) -> Result<Vec<PathBuf>, LogError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io(dir))? {
        let path = entry.map_err(LogError::io(dir))?.path();
        let matches = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| suffixes.iter().any(|suffix| name.ends_with(suffix)));
        if matches {
            found.push(path);
        }
    }
    Ok(found)
}

/// Finishes a committed swap a crash interrupted, or undoes one that did not commit (see the
/// module documentation). Runs when a log opens, before anything else reads the directory.
///
/// # Errors
/// `Corrupt` for a manifest that does not parse or names a new segment that is missing; `Io`.
pub(crate) fn finish_interrupted_swap(dir: &Path) -> Result<(), LogError> {
    let Some(manifest) = read_manifest(dir)? else {
        return remove_leftovers(dir);
    };
    if !files_with_suffixes(dir, &[CLEANED_SUFFIX])?.is_empty() {
        return roll_back(dir);
    }
    put_new_files_in_place(dir, &manifest, &mut |_| {})?;
    remove_manifest(dir)
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>, LogError> {
    let path = dir.join(CLEANER_SWAP_MANIFEST);
    let corrupt = |reason: &str| LogError::Corrupt {
        path: path.clone(),
        position: 0,
        reason: reason.to_owned(),
    };
    let size = match fs::metadata(&path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(LogError::io(&path)(error)),
    };
    if size > MAX_MANIFEST_BYTES {
        return Err(corrupt("manifest is larger than any swap writes"));
    }
    let bytes = fs::read(&path).map_err(LogError::io(&path))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("manifest is not UTF-8 text"))?;
    Manifest::parse(&path, text).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_malformed_ones_are_corrupt() {
        let manifest = Manifest {
            old: vec![0, 100, 250],
            new: vec![0, 180],
        };
        let text = manifest.encode();
        assert_eq!(text, "0\n5\nold 0\nold 100\nold 250\nnew 0\nnew 180\n");
        let path = Path::new("m");
        assert_eq!(Manifest::parse(path, &text).unwrap(), manifest);
        for bad in [
            "",
            "0\n1\nold x\n",
            "0\n1\nsome 3\n",
            "0\n2\nold 5\nnew 6\n",
            "0\n2\nold 5\nold 5\n",
            "0\n1\nnew 0\n",
            "0\n3\nold 0\nnew 0\n",
        ] {
            assert!(
                matches!(Manifest::parse(path, bad), Err(LogError::Corrupt { .. })),
                "{bad:?}"
            );
        }
    }
}

//! Opening a log: lock, clean up, load segments, and recover after an unclean shutdown.
//!
//! With the clean-shutdown marker the indexes are trusted and only the bytes after the active
//! segment's last index entry are read (to find the log end): opening costs the same whatever the
//! log's size. Without it, every batch from the segment holding the recovery point onward is
//! validated (length, CRC, increasing offsets) and indexes are rebuilt; the first invalid batch
//! ends the log (a torn tail) unless it lies before the recovery point, where bytes were flushed:
//! that is reported as `Corrupt` and nothing is cut.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::checkpoint::{format_entries, parse_entries, sync_dir, write_atomic};
use super::cleaner::{CleanerState, CLEANER_CHECKPOINT};
use super::epoch::EpochCache;
use super::index::{remove_if_exists, OffsetIndex, TimeIndex, TIME_ENTRY_BYTES};
use super::lock::DirLock;
use super::log::{FlushState, Log, Writer};
use super::maintenance::remove_segment_files;
use super::mmap::Mapping;
use super::name::PartitionName;
use super::segment::{log_path, ActiveFiles, Fresh, IndexTarget, Indexer, Segment, NO_TIMESTAMP};
use super::swap::finish_interrupted_swap;
use super::{LogConfig, LogError};
use crate::clock::Clock;
use crate::record::{validate, BatchHeader};

/// Present after a clean close; removed on open.
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
/// Offset below which everything was flushed (Kafka's file name and format).
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// The log start offset after DeleteRecords or retention (Kafka's file name and format).
pub const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Suffixes of files a crash may leave behind mid-operation; removed on open.
const LEFTOVER_SUFFIXES: &[&str] = &[".tmp", ".truncating", ".deleted", ".swap", ".cleaned"];

pub(crate) fn open(dir: &Path, config: LogConfig, clock: Arc<dyn Clock>) -> Result<Log, LogError> {
    config.validate()?;
    let dir_name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let name = PartitionName::parse(dir_name)?;
    fs::create_dir_all(dir).map_err(LogError::io(dir))?;
    let lock = DirLock::acquire(dir).map_err(|error| match error.kind() {
        std::io::ErrorKind::WouldBlock => LogError::Locked {
            path: dir.to_owned(),
        },
        _ => LogError::io(dir)(error),
    })?;
    let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
    finish_interrupted_swap(dir)?;
    let bases = clean_up_and_list(dir)?;
    let recovery_point =
        read_offset_checkpoint(dir, RECOVERY_POINT_CHECKPOINT, &name)?.unwrap_or(0);
    let stored_start = read_offset_checkpoint(dir, LOG_START_CHECKPOINT, &name)?;
    let loaded = load_segments(
        dir,
        &config,
        &bases,
        clean,
        recovery_point,
        stored_start.unwrap_or(0),
    )?;
    let log_end = loaded.active.next_offset();
    let first_base = loaded.sealed.first().unwrap_or(&loaded.active).base_offset;
    let log_start = stored_start
        .unwrap_or(first_base)
        .max(first_base)
        .min(log_end);
    // A truncation lowers the cleaner checkpoint before it cuts, and recovery never cuts below
    // a cleaned segment, so one past the log end is not to be trusted: calling offsets clean
    // that were never compacted could let a tombstone expire over older values of its key. The
    // whole log counts as dirty instead (the next pass maps it all).
    let cleaner_checkpoint = read_offset_checkpoint(dir, CLEANER_CHECKPOINT, &name)?
        .filter(|&checkpoint| checkpoint <= log_end)
        .unwrap_or(0);
    let mut epochs = EpochCache::load(dir)?;
    epochs.truncate_from_end(log_end)?;
    epochs.truncate_from_start(log_start)?;

    // Whatever recovery kept is forced to disk now, so the recovery point can be the log end.
    loaded
        .files
        .log
        .sync_data()
        .map_err(LogError::io(&loaded.active.path))?;
    write_offset_checkpoint(dir, RECOVERY_POINT_CHECKPOINT, &name, log_end)?;
    let active_durable_bytes = loaded.active.size();
    remove_if_exists(&dir.join(CLEAN_SHUTDOWN_FILE))?;
    sync_dir(dir).map_err(LogError::io(dir))?;

    // The active segment's age counts from its first batch, as Kafka's does, so a log reopened
    // more often than `segment_ms` still rolls (and retention can then delete old data). A
    // timestamp from the future counts as now.
    let active_since_ms = loaded
        .active
        .find_batch(loaded.active.base_offset)?
        .map(|(_, first)| first.max_timestamp.min(clock.now_ms()));
    let mut segments = loaded.sealed;
    segments.push(loaded.active);
    let writer = Writer {
        active: loaded.files,
        indexer: loaded.indexer,
        active_since_ms,
        epochs,
        flush: FlushState {
            unflushed_messages: 0,
            oldest_unflushed_ms: None,
            recovery_point: log_end,
            last_checkpoint_ms: clock.now_ms(),
            failed: false,
            durable_bytes: active_durable_bytes,
        },
        scratch: Vec::new(),
        cleaner_checkpoint,
    };
    Ok(Log {
        dir: dir.to_owned(),
        name,
        config,
        clock,
        segments: RwLock::new(Arc::new(segments)),
        log_start_offset: AtomicU64::new(log_start),
        writer: Mutex::new(writer),
        cleaner: Mutex::new(CleanerState::default()),
        closed: AtomicBool::new(false),
        opened_clean: clean,
        _lock: lock,
    })
}

struct Loaded {
    sealed: Vec<Arc<Segment>>,
    active: Arc<Segment>,
    files: ActiveFiles,
    indexer: Indexer,
}

/// Removes leftovers of interrupted operations and index files without a log, and returns the
/// base offsets of the segments, sorted.
fn clean_up_and_list(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io(dir))? {
        let path = entry.map_err(LogError::io(dir))?.path();
        let Some(file_name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        if LEFTOVER_SUFFIXES
            .iter()
            .any(|suffix| file_name.ends_with(suffix))
        {
            remove_if_exists(&path)?;
            continue;
        }
        let Some((stem, extension)) = file_name.split_once('.') else {
            continue;
        };
        let Some(base) = parse_base(stem) else {
            continue;
        };
        match extension {
            "log" => bases.push(base),
            "index" | "timeindex" => index_files.push((base, path)),
            _ => {}
        }
    }
    bases.sort_unstable();
    for (base, path) in index_files {
        if bases.binary_search(&base).is_err() {
            remove_if_exists(&path)?;
        }
    }
    Ok(bases)
}

fn parse_base(stem: &str) -> Option<u64> {
    (stem.len() == 20 && stem.bytes().all(|byte| byte.is_ascii_digit()))
        .then(|| stem.parse().ok())?
}

fn load_segments(
    dir: &Path,
    config: &LogConfig,
    bases: &[u64],
    clean: bool,
    recovery_point: u64,
    empty_base: u64,
) -> Result<Loaded, LogError> {
    if bases.is_empty() {
        let (segment, files) = Segment::create(
            dir,
            empty_base,
            config.segment_bytes as usize,
            config.segment_index_bytes as usize,
        )?;
        segment.set_next_offset(empty_base);
        let indexer = Indexer::new(config.index_interval_bytes, empty_base, &segment.time_index)?;
        return Ok(Loaded {
            sealed: Vec::new(),
            active: Arc::new(segment),
            files,
            indexer,
        });
    }
    let scan_from = if clean {
        bases.len() - 1
    } else {
        bases
            .partition_point(|&base| base <= recovery_point)
            .saturating_sub(1)
    };
    let mut sealed = Vec::new();
    let mut last = bases.len() - 1;
    for (i, &base) in bases[..bases.len() - 1].iter().enumerate() {
        let next_base = bases[i + 1];
        if i >= scan_from {
            let scan =
                validate_segment(&log_path(dir, base), base, Some(next_base), recovery_point)?;
            // A sealed segment ends where the next one starts (a roll starts the next segment at
            // the log end). One that ends earlier was cut by a `truncate_to` that crashed before
            // unlinking the later segments: they were truncated away, and kept they came back
            // after a hole of missing offsets. (A compacted segment may end early too, its last
            // records removed, but the cleaner keeps the recovery point past every segment it
            // writes, so none is checked here unless a truncation reached into it.)
            if scan.torn || scan.next_offset < next_base {
                // The tail after the recovery point is cut here; later segments were never flushed.
                for &later in &bases[i + 1..] {
                    remove_segment_files(dir, later)?;
                }
                last = i;
                break;
            }
        }
        sealed.push(Arc::new(open_sealed(dir, config, base, next_base)?));
    }
    let (active, files, indexer) = open_active(
        dir,
        config,
        bases[last],
        clean || last < scan_from,
        recovery_point,
    )?;
    Ok(Loaded {
        sealed,
        active: Arc::new(active),
        files,
        indexer,
    })
}

/// Opens a sealed segment, rebuilding its indexes when they are missing or fail the sanity check.
fn open_sealed(
    dir: &Path,
    config: &LogConfig,
    base: u64,
    next_base: u64,
) -> Result<Segment, LogError> {
    let path = log_path(dir, base);
    let size = fs::metadata(&path).map_err(LogError::io(&path))?.len();
    let index = OffsetIndex::open_sealed(dir, base)
        .filter(|index| index.looks_valid(base, size).unwrap_or(false));
    let time_index =
        TimeIndex::open_sealed(dir, base).filter(|index| index.looks_valid(base).unwrap_or(false));
    let segment = match (index, time_index) {
        (Some(index), Some(time_index)) => Segment::sealed(dir, base, size, index, time_index),
        _ => rebuild_sealed(dir, config, base, size, next_base)?,
    };
    segment.set_next_offset(next_base);
    Ok(segment)
}

/// Validates a sealed segment whose indexes are unusable and writes new ones. Any invalid batch
/// is corruption: a sealed segment was flushed when it was sealed.
fn rebuild_sealed(
    dir: &Path,
    config: &LogConfig,
    base: u64,
    size: u64,
    next_base: u64,
) -> Result<Segment, LogError> {
    let path = log_path(dir, base);
    validate_segment(&path, base, Some(next_base), u64::MAX)?;
    let entries_needed = (size / u64::from(config.index_interval_bytes) + 2) as usize;
    let capacity = (config.segment_index_bytes as usize).max(entries_needed * 12);
    let (index, index_file) = OffsetIndex::create(dir, base, capacity)?;
    let (time_index, time_file) = TimeIndex::create(dir, base, capacity)?;
    let segment = Segment::sealed(dir, base, size, index, time_index);
    let files = ActiveFiles {
        log: fs::File::open(&path).map_err(LogError::io(&path))?,
        index: index_file,
        time_index: time_file,
    };
    let mut indexer = Indexer::new(config.index_interval_bytes, base, &segment.time_index)?;
    index_batches(&segment, &files, &mut indexer, 0)?;
    indexer.finish(&segment.index_target(&files))?;
    segment.index.trim_and_sync(&files.index)?;
    segment.time_index.trim_and_sync(&files.time_index)?;
    segment.set_max_timestamp(indexer.max_timestamp);
    Ok(segment)
}

/// Opens the last segment for appending. `trusted` means its indexes are good (clean shutdown);
/// otherwise it is validated, cut after its last valid batch, and indexed afresh.
fn open_active(
    dir: &Path,
    config: &LogConfig,
    base: u64,
    trusted: bool,
    recovery_point: u64,
) -> Result<(Segment, ActiveFiles, Indexer), LogError> {
    let path = log_path(dir, base);
    let capacity = config.segment_bytes as usize;
    let index_capacity = config.segment_index_bytes as usize;
    if trusted {
        let size = fs::metadata(&path).map_err(LogError::io(&path))?.len();
        let (segment, files) =
            Segment::reopen_active(dir, base, size, capacity, index_capacity, Fresh::No)?;
        if segment.index.looks_valid(base, size.max(1))? && segment.time_index.looks_valid(base)? {
            let mut indexer = Indexer::new(config.index_interval_bytes, base, &segment.time_index)?;
            let start = segment.index.lookup(base, u64::MAX)?.position;
            let (next_offset, max_timestamp) =
                skip_indexed(&segment, &mut indexer, u64::from(start))?;
            segment.publish(size, next_offset.unwrap_or(base), max_timestamp);
            return Ok((segment, files, indexer));
        }
    }
    let scan = validate_segment(&path, base, None, recovery_point)?;
    let (segment, files) = Segment::reopen_active(
        dir,
        base,
        scan.valid_bytes,
        capacity,
        rebuilt_index_bytes(config, scan.valid_bytes),
        Fresh::Yes,
    )?;
    let mut indexer = Indexer::new(config.index_interval_bytes, base, &segment.time_index)?;
    let (_, max_timestamp) = index_batches(&segment, &files, &mut indexer, 0)?;
    segment.publish(scan.valid_bytes, scan.next_offset, max_timestamp);
    Ok((segment, files, indexer))
}

/// Index file bytes for rebuilding the indexes of an active segment of `log_bytes`: the configured
/// size, or more when the segment was written under another config (a larger
/// `segment_index_bytes` or a larger `index_interval_bytes`). Sized for `segment_index_bytes`
/// alone, the rebuild overflowed the index and panicked ("appending to a full index") on open and
/// in `truncate_to`. One entry per `index_interval_bytes`, one more at sealing, one spare.
pub(crate) fn rebuilt_index_bytes(config: &LogConfig, log_bytes: u64) -> usize {
    let entries_needed = (log_bytes / u64::from(config.index_interval_bytes) + 2) as usize;
    (config.segment_index_bytes as usize).max(entries_needed * TIME_ENTRY_BYTES)
}

/// Reads the headers from `start` (the last index entry) to the end without indexing them.
fn skip_indexed(
    segment: &Segment,
    indexer: &mut Indexer,
    start: u64,
) -> Result<(Option<u64>, i64), LogError> {
    let bytes = segment.published()?;
    let mut position = start;
    let mut next_offset = None;
    while (position as usize) < bytes.len() {
        let header = segment.header_at(bytes, position)?;
        indexer.skip_batch(&header);
        next_offset = Some(header.next_offset() as u64);
        position += header.total_bytes() as u64;
    }
    Ok((next_offset, indexer.max_timestamp))
}

/// Indexes every batch of `segment`'s published bytes from `start`. Returns the offset after the
/// last batch and the largest timestamp.
pub(crate) fn index_batches(
    segment: &Segment,
    files: &ActiveFiles,
    indexer: &mut Indexer,
    start: u64,
) -> Result<(Option<u64>, i64), LogError> {
    let bytes = segment.published()?;
    let target: IndexTarget<'_> = segment.index_target(files);
    let mut position = start;
    let mut next_offset = None;
    let mut max_timestamp = NO_TIMESTAMP;
    while (position as usize) < bytes.len() {
        let header = segment.header_at(bytes, position)?;
        indexer.on_batch(&target, position, &header)?;
        max_timestamp = max_timestamp.max(header.max_timestamp);
        next_offset = Some(header.next_offset() as u64);
        position += header.total_bytes() as u64;
    }
    Ok((next_offset, max_timestamp))
}

struct Scan {
    valid_bytes: u64,
    next_offset: u64,
    torn: bool,
}

/// Validates every batch of a segment file: CRC, length, offsets increasing from the segment's
/// base and below the next segment's. Stops at the first invalid batch: a torn tail when it lies
/// at or after `recovery_point`, `Corrupt` before it.
fn validate_segment(
    path: &Path,
    base: u64,
    next_base: Option<u64>,
    recovery_point: u64,
) -> Result<Scan, LogError> {
    let file = fs::File::open(path).map_err(LogError::io(path))?;
    let len = file.metadata().map_err(LogError::io(path))?.len() as usize;
    let mapping = Mapping::map(&file, len).map_err(LogError::io(path))?;
    // Nothing else maps or writes this file while the log is being opened.
    let bytes = mapping.slice(0, len);
    let mut position = 0;
    let mut expected = base;
    while position < len {
        match check_batch(&bytes[position..], expected, base, next_base) {
            Ok(header) => {
                position += header.total_bytes();
                expected = header.next_offset() as u64;
            }
            Err(reason) if expected < recovery_point => {
                return Err(LogError::Corrupt {
                    path: path.to_owned(),
                    position: position as u64,
                    reason,
                });
            }
            Err(_) => {
                return Ok(Scan {
                    valid_bytes: position as u64,
                    next_offset: expected,
                    torn: true,
                })
            }
        }
    }
    Ok(Scan {
        valid_bytes: position as u64,
        next_offset: expected,
        torn: false,
    })
}

fn check_batch(
    bytes: &[u8],
    expected: u64,
    base: u64,
    next_base: Option<u64>,
) -> Result<BatchHeader, String> {
    let header = validate(bytes, usize::MAX).map_err(|error| error.to_string())?;
    let first = header.base_offset as u64;
    let last = header.last_offset() as u64;
    if first < expected {
        return Err(format!(
            "batch offset {first} is below the previous batch's end {expected}"
        ));
    }
    if last - base > u64::from(u32::MAX) {
        return Err(format!(
            "batch offset {last} is too far from the segment base {base}"
        ));
    }
    if next_base.is_some_and(|next| last >= next) {
        return Err(format!("batch offset {last} reaches into the next segment"));
    }
    Ok(header)
}

/// Writes a single-partition checkpoint in Kafka's format: `0`, `1`, `<topic> <partition> <offset>`.
pub(crate) fn write_offset_checkpoint(
    dir: &Path,
    file: &str,
    name: &PartitionName,
    offset: u64,
) -> Result<(), LogError> {
    let path = dir.join(file);
    let text = format_entries(&[format!("{} {} {offset}", name.topic, name.partition)]);
    write_atomic(&path, text.as_bytes()).map_err(LogError::io(&path))
}

/// Reads the offset for this partition from a checkpoint; `None` when the file is missing.
pub(crate) fn read_offset_checkpoint(
    dir: &Path,
    file: &str,
    name: &PartitionName,
) -> Result<Option<u64>, LogError> {
    let path = dir.join(file);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // Bytes that are not UTF-8 are damaged contents, not an I/O failure: report them as
        // `Corrupt` like any other malformed checkpoint (`read_to_string` says `InvalidData`).
        Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
            return Err(LogError::Corrupt {
                path,
                position: 0,
                reason: "checkpoint is not UTF-8 text".to_owned(),
            })
        }
        Err(error) => return Err(LogError::io(&path)(error)),
    };
    let corrupt = |reason: String| LogError::Corrupt {
        path: path.clone(),
        position: 0,
        reason,
    };
    for line in parse_entries(&text).map_err(corrupt)? {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [topic, partition, offset] = fields[..] {
            if topic == name.topic && partition == name.partition.to_string() {
                return offset
                    .parse()
                    .map(Some)
                    .map_err(|_| corrupt(format!("malformed offset {offset:?}")));
            }
        } else {
            return Err(corrupt(format!("malformed entry {line:?}")));
        }
    }
    Ok(None)
}

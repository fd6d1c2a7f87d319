//! Log compaction, as Kafka's log cleaner does it: keep the latest record of each key.
//!
//! The log is split at the *cleaner checkpoint* (`cleaner-offset-checkpoint`, Kafka's format):
//! below it the *clean* section, already compacted; from it to the first uncleanable segment the
//! *dirty* section. The active segment, and a segment holding a record younger than
//! `min_compaction_lag_ms` (and every later one), are never cleaned. A pass runs when the dirty
//! bytes are at least `min_cleanable_dirty_ratio` of the cleanable bytes, or when a kept
//! tombstone's delete horizon has passed:
//!
//! 1. The batch headers of the whole log are walked to find each producer's last batch, and to
//!    count the dirty records (which sizes the key map).
//! 2. The dirty section is read into an [`OffsetMap`]: key hash to latest offset. When the map is
//!    full the pass covers only the prefix mapped so far, ending at `end`.
//! 3. Every segment from the log's first to the one holding `end - 1` is rewritten, batch by
//!    batch, into new segments ([`CleanedWriter`]): a record below `end` goes when the map holds
//!    a later offset for its key, or when it is a tombstone whose batch's delete horizon has
//!    passed. Records at or after `end`, records without a key, and whole batches that are
//!    compressed, transactional or control batches are kept as they are.
//! 4. The new segments replace the old ones atomically ([`super::swap`]) and the checkpoint
//!    moves to `end`.
//!
//! Offsets never change: a rewritten batch keeps its base offset, its last offset delta and its
//! producer fields ([`crate::record::filter_batch`]), so it spans the same offsets with gaps
//! where records went. A batch left without records is dropped, unless it is the last batch of
//! its producer in the log: that one stays as an empty header (as Kafka keeps it), so rebuilding
//! producer state from the log still finds each producer's epoch and last sequence.
//!
//! Tombstones follow KIP-534: the first pass whose map covers a tombstone's batch stamps a
//! delete horizon (that pass's time plus `delete_retention_ms`) into the batch, and the first
//! pass after the horizon removes it. By then every older record of its key is gone (the pass
//! that stamped it removed them), so removing it cannot bring one back. Readers that started
//! before the horizon had `delete_retention_ms` to see it.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::log::{Log, SegmentList};
use super::offset_map::{KeyHash, OffsetMap};
use super::recovery::write_offset_checkpoint;
use super::segment::Segment;
use super::swap::{abandon_pass, remove_leftovers, CleanedSegment, CleanedWriter};
use super::LogError;
use crate::record::{
    filter_batch, BatchHeader, Compression, FilterOptions, FilterResult, Filtered, Record,
    RecordBatch,
};

/// The offset below which the log is compacted (Kafka's file name and format).
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Producers tracked per byte of `cleaner_dedupe_buffer_bytes` (about a quarter of the buffer
/// again, at roughly 32 bytes a map entry); past this every producer batch is kept.
const BUFFER_BYTES_PER_PRODUCER: u64 = 128;

/// What a call to [`Log::clean`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanOutcome {
    /// Nothing: the log is not compacted, or a pass is not due.
    #[default]
    NotDue,
    /// A pass ran and its segments replaced the old ones.
    Cleaned,
    /// A pass ran but the segments it read changed meanwhile (retention, truncation, another
    /// thread's `delete_records_before`): its output was discarded and nothing changed.
    Aborted,
}

/// What a cleaning pass read, wrote and removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanStats {
    pub outcome: CleanOutcome,
    /// Bytes of batches read, for the key map and for the rewrite.
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Records the rewrite looked at.
    pub records_read: u64,
    /// Records removed, tombstones included.
    pub records_removed: u64,
    pub tombstones_removed: u64,
    /// Distinct keys in the pass's map.
    pub keys_mapped: usize,
    pub segments_replaced: usize,
    pub segments_written: usize,
    /// The cleaner checkpoint after the call: the first offset not yet compacted.
    pub first_dirty_offset: u64,
}

/// A point of the swap protocol where the files on disk change, reported to the observer of
/// [`Log::clean_observed`] (crash tests copy the directory at each).
#[doc(hidden)]
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanStep {
    /// Every new segment is written and synced under `.cleaned` names.
    CleanedWritten,
    ManifestWritten,
    /// One `.cleaned` file was renamed to `.swap`.
    RenamedToSwap,
    /// The directory was synced with every `.swap` in place: the swap is committed.
    Committed,
    /// One `.swap` file was renamed to its final name.
    RenamedIntoPlace,
    OldSegmentDeleted,
    SegmentsSwapped,
    ManifestRemoved,
    CheckpointWritten,
}

/// The cleaner's own state, guarded by `Log::cleaner` (held for a whole pass, so one pass runs
/// at a time).
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    horizon: TombstoneHorizon,
}

/// The earliest delete horizon among the tombstones the cleaned section keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum TombstoneHorizon {
    /// Not known since the log opened: found by walking the batch headers.
    #[default]
    Unknown,
    None,
    At(i64),
}

impl TombstoneHorizon {
    fn earliest(self, horizon: i64) -> TombstoneHorizon {
        match self {
            TombstoneHorizon::At(at) if at <= horizon => self,
            _ => TombstoneHorizon::At(horizon),
        }
    }
}

/// The segments a pass may clean and how much of them is dirty.
struct Plan {
    segments: SegmentList,
    /// The cleanable segments are `segments[..cleanable]`; `segments[cleanable]` exists (the
    /// active segment at the latest) and starts the uncleanable part.
    cleanable: usize,
    first_dirty: u64,
}

impl Plan {
    fn cleanable_end(&self) -> u64 {
        self.segments[self.cleanable].base_offset
    }

    /// Dirty bytes, and their share of the cleanable bytes (0 when there are none). A segment
    /// counts as dirty when any of its offsets is.
    fn dirty_bytes_and_ratio(&self) -> (u64, f64) {
        let (dirty, total) =
            self.segments[..self.cleanable]
                .iter()
                .fold((0, 0), |(dirty, total), segment| {
                    let is_dirty = segment.next_offset() > self.first_dirty;
                    (
                        dirty + if is_dirty { segment.size() } else { 0 },
                        total + segment.size(),
                    )
                });
        let ratio = if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        };
        (dirty, ratio)
    }
}

impl Log {
    /// Runs one cleaning pass if the log is compacted and a pass is due: the dirty section is at
    /// least `min_cleanable_dirty_ratio` of the cleanable bytes, or a kept tombstone's delete
    /// horizon is at or before `now_ms`. See the module documentation for what a pass does.
    ///
    /// # Errors
    /// `Corrupt` for a batch that fails its checks in a segment the pass reads (nothing is
    /// changed); `Closed`; `FlushFailed`; `Io`. An error after the swap committed leaves the log
    /// refusing writes until it is reopened, which finishes the swap.
    pub fn clean(&self, now_ms: i64) -> Result<CleanStats, LogError> {
        self.clean_observed(now_ms, &mut |_| {})
    }

    /// As [`Log::clean`], calling `observe` at every point where the swap changes files.
    #[doc(hidden)]
    pub fn clean_observed(
        &self,
        now_ms: i64,
        observe: &mut dyn FnMut(CleanStep),
    ) -> Result<CleanStats, LogError> {
        if !self.config.cleanup_policy.compacts() {
            return Ok(CleanStats::default());
        }
        let mut cleaner = self.cleaner.lock();
        let plan = self.plan(now_ms)?;
        let not_due = CleanStats {
            first_dirty_offset: plan.first_dirty,
            ..CleanStats::default()
        };
        if plan.cleanable == 0 || !self.is_due(&mut cleaner, &plan, now_ms)? {
            return Ok(not_due);
        }
        let ran = self.run_pass(&mut cleaner, &plan, now_ms, observe);
        if ran.is_err() {
            // Best effort: what a pass that did not commit left is removed again on open.
            let _ = abandon_pass(&self.dir);
        }
        ran
    }

    /// The share of the cleanable bytes not compacted yet, between 0 and 1 (0 for a log with
    /// nothing to clean). Cleanable segments are the sealed ones before the first that holds a
    /// record younger than `min_compaction_lag_ms`.
    ///
    /// # Errors
    /// `Corrupt` or `Io` reading a segment's time index.
    pub fn dirty_ratio(&self) -> Result<f64, LogError> {
        Ok(self.plan(self.clock.now_ms())?.dirty_bytes_and_ratio().1)
    }

    /// The first offset the cleaner has not compacted (the cleaner checkpoint, or the first
    /// segment's base when that is later).
    pub fn first_dirty_offset(&self) -> u64 {
        let checkpoint = self.writer.lock().cleaner_checkpoint;
        let first_base = self.snapshot()[0].base_offset;
        checkpoint.max(first_base)
    }

    fn plan(&self, now_ms: i64) -> Result<Plan, LogError> {
        let checkpoint = self.writer.lock().cleaner_checkpoint;
        let segments = self.snapshot();
        let sealed = &segments[..segments.len() - 1];
        let lag_ms = self.config.min_compaction_lag_ms as i64;
        let mut cleanable = sealed.len();
        if lag_ms > 0 {
            let newest_allowed = now_ms.saturating_sub(lag_ms);
            for (i, segment) in sealed.iter().enumerate() {
                if segment.max_timestamp()? > newest_allowed {
                    cleanable = i;
                    break;
                }
            }
        }
        let first_dirty = checkpoint.max(segments[0].base_offset);
        Ok(Plan {
            segments,
            cleanable,
            first_dirty,
        })
    }

    fn is_due(
        &self,
        cleaner: &mut CleanerState,
        plan: &Plan,
        now_ms: i64,
    ) -> Result<bool, LogError> {
        let (dirty, ratio) = plan.dirty_bytes_and_ratio();
        if dirty > 0 && ratio >= self.config.min_cleanable_dirty_ratio.get() {
            return Ok(true);
        }
        if cleaner.horizon == TombstoneHorizon::Unknown {
            cleaner.horizon = earliest_horizon(&plan.segments[..plan.cleanable])?;
        }
        Ok(matches!(cleaner.horizon, TombstoneHorizon::At(at) if at <= now_ms))
    }

    fn run_pass(
        &self,
        cleaner: &mut CleanerState,
        plan: &Plan,
        now_ms: i64,
        observe: &mut dyn FnMut(CleanStep),
    ) -> Result<CleanStats, LogError> {
        let mut stats = CleanStats::default();
        let mut throttle = Throttle::new(self.config.cleaner_io_max_bytes_per_second);
        let producers = scan_producers(plan, self.config.cleaner_dedupe_buffer_bytes)?;
        let mut map = OffsetMap::new(self.config.cleaner_dedupe_buffer_bytes);
        let end = build_map(plan, &mut map, &mut throttle, &mut stats)?;
        stats.keys_mapped = map.len();
        // Every segment holding an offset below `end` (all cleanable ones when nothing is dirty:
        // a pass for tombstone horizons alone). At least the first: `end` is past its base.
        let rewritten = plan.segments[..plan.cleanable]
            .iter()
            .take_while(|segment| segment.base_offset < end)
            .count();
        let pass = Pass {
            map,
            end,
            now_ms,
            delete_horizon_ms: now_ms.saturating_add(self.config.delete_retention_ms as i64),
            producers,
        };
        let replaced = &plan.segments[..rewritten];
        let mut out = CleanedWriter::new(&self.dir, &self.config, replaced[0].base_offset)?;
        let mut horizon = TombstoneHorizon::None;
        let mut scratch = Scratch::default();
        for segment in replaced {
            for_each_batch(segment, 0, |position, batch| {
                let read = batch.as_bytes().len() as u64;
                let written_before = out.bytes_written();
                let corrupt = |reason: String| LogError::Corrupt {
                    path: segment.path.clone(),
                    position,
                    reason,
                };
                let kept = pass.clean_batch(&batch, &mut out, &mut scratch, &mut stats, corrupt)?;
                if let Some(at) = kept {
                    horizon = horizon.earliest(at);
                }
                stats.bytes_read += read;
                throttle.account(read + out.bytes_written() - written_before);
                Ok(ControlFlow::<()>::Continue(()))
            })?;
        }
        stats.bytes_written = out.bytes_written();
        let cleaned = out.finish()?;
        observe(CleanStep::CleanedWritten);
        self.swap_pass(plan, replaced, &cleaned, end, &mut stats, observe)?;
        if stats.outcome == CleanOutcome::Cleaned {
            cleaner.horizon = horizon;
        }
        Ok(stats)
    }

    /// Swaps the pass's segments in (under the writer lock) unless the segments it read changed
    /// meanwhile, and moves the cleaner checkpoint to `end`.
    fn swap_pass(
        &self,
        plan: &Plan,
        replaced: &[Arc<Segment>],
        cleaned: &[CleanedSegment],
        end: u64,
        stats: &mut CleanStats,
        observe: &mut dyn FnMut(CleanStep),
    ) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        self.check_writable(&writer)?;
        let current = self.snapshot();
        // Retention and truncation replace the list's first or last segments; a roll only
        // appends. Every segment the pass read (producer batches included) must still be there.
        let unchanged = plan.segments.len() <= current.len()
            && plan
                .segments
                .iter()
                .zip(current.iter())
                .all(|(read, now)| Arc::ptr_eq(read, now));
        if !unchanged {
            remove_leftovers(&self.dir)?;
            stats.outcome = CleanOutcome::Aborted;
            stats.first_dirty_offset = writer.cleaner_checkpoint;
            return Ok(());
        }
        // Recovery re-checks segments from the recovery point on, and there a segment ending
        // before the next one starts means an interrupted truncation. A cleaned segment can end
        // so (its last records removed): the recovery point on disk must be past every cleaned
        // segment. Sealed segments were flushed when they were sealed, so this is true.
        let next_base = plan.segments[replaced.len()].base_offset;
        writer.flush.recovery_point = writer.flush.recovery_point.max(next_base);
        self.write_recovery_checkpoint(&mut writer)?;
        self.swap_in_cleaned(&mut writer, replaced, cleaned, observe)?;
        stats.outcome = CleanOutcome::Cleaned;
        stats.segments_replaced = replaced.len();
        stats.segments_written = cleaned.len();
        let checkpoint = writer.cleaner_checkpoint.max(end);
        write_offset_checkpoint(&self.dir, CLEANER_CHECKPOINT, &self.name, checkpoint)?;
        writer.cleaner_checkpoint = checkpoint;
        stats.first_dirty_offset = checkpoint;
        observe(CleanStep::CheckpointWritten);
        Ok(())
    }
}

/// Buffers a pass reuses from batch to batch.
#[derive(Default)]
struct Scratch {
    hashes: Vec<KeyHash>,
    /// A rewritten batch.
    batch: Vec<u8>,
}

/// What one pass decides by.
struct Pass {
    map: OffsetMap,
    /// The map covers the dirty records below this offset; records from here on are kept.
    end: u64,
    now_ms: i64,
    /// The horizon stamped on batches that keep a tombstone.
    delete_horizon_ms: i64,
    producers: ProducerLast,
}

impl Pass {
    /// Writes what `batch` keeps (through `scratch` when it is rewritten). Returns the delete
    /// horizon of the tombstones it keeps, if any. A batch whose records do not decode (its CRC
    /// passed: they were encoded badly) is reported through `corrupt`.
    fn clean_batch(
        &self,
        batch: &RecordBatch,
        out: &mut CleanedWriter<'_>,
        scratch: &mut Scratch,
        stats: &mut CleanStats,
        corrupt: impl FnOnce(String) -> LogError,
    ) -> Result<Option<i64>, LogError> {
        let header = batch.header();
        let attributes = header.attributes;
        let untouched = attributes.is_control
            || attributes.is_transactional
            || attributes.compression != Compression::None
            || header.base_offset as u64 >= self.end;
        if untouched {
            stats.records_read += header.records_count.max(0) as u64;
            out.write(header, batch.as_bytes())?;
            let kept_horizon = attributes.has_delete_horizon && header.records_count > 0;
            return Ok(kept_horizon.then_some(header.base_timestamp));
        }
        let options = FilterOptions {
            // Only a batch the map covers whole: its tombstones' older records are gone.
            delete_horizon_ms: ((header.last_offset() as u64) < self.end)
                .then_some(self.delete_horizon_ms),
            keep_empty: header.has_producer_id() && self.producers.is_last(header),
        };
        let mut hashes = std::mem::take(&mut scratch.hashes);
        if let Err(reason) = self.hash_keys(batch, &mut hashes) {
            return Err(corrupt(reason));
        }
        let mut next_hash = hashes.iter().copied();
        let rewritten = &mut scratch.batch;
        rewritten.clear();
        let result = filter_batch(batch, options, rewritten, |record| {
            // The filter walks the records `hash_keys` walked, in the same order.
            let hash = self
                .looks_up(record)
                .then(|| next_hash.next().expect("a hash for each record looked up"));
            self.keeps(record, header, hash)
        });
        scratch.hashes = hashes;
        let result = result.map_err(|error| corrupt(error.to_string()))?;
        count(stats, &result);
        let (written, bytes) = match result.filtered {
            Filtered::Unchanged => (*header, &batch.as_bytes()[..]),
            Filtered::Rewritten(new_header) => (new_header, &scratch.batch[..]),
            Filtered::Dropped => return Ok(None),
        };
        out.write(&written, bytes)?;
        let kept_horizon = written.attributes.has_delete_horizon && result.tombstones_kept > 0;
        Ok(kept_horizon.then_some(written.base_timestamp))
    }

    /// Whether `record` stays; `hash` is its key's, for a keyed record below `end`.
    fn keeps(&self, record: &Record, header: &BatchHeader, hash: Option<KeyHash>) -> bool {
        let Some(hash) = hash else {
            return true;
        };
        let offset = record.offset as u64;
        if self.map.get(hash).is_some_and(|latest| offset < latest) {
            return false;
        }
        let expired_tombstone = record.value.is_none()
            && header.attributes.has_delete_horizon
            && header.base_timestamp <= self.now_ms;
        !expired_tombstone
    }

    /// Whether the pass looks `record` up: a keyed record below `end`.
    fn looks_up(&self, record: &Record) -> bool {
        record.key.is_some() && (record.offset as u64) < self.end
    }

    /// The key hashes of the records the pass looks up, in order, with their slots warmed.
    fn hash_keys(&self, batch: &RecordBatch, hashes: &mut Vec<KeyHash>) -> Result<(), String> {
        hashes.clear();
        for record in batch.records().map_err(|error| error.to_string())? {
            let record = record.map_err(|error| error.to_string())?;
            if let (true, Some(key)) = (self.looks_up(&record), record.key.as_deref()) {
                hashes.push(self.map.hash(key));
            }
        }
        std::hint::black_box(self.map.warm(hashes.iter()));
        Ok(())
    }
}

fn count(stats: &mut CleanStats, result: &FilterResult) {
    stats.records_read += (result.records_kept + result.records_removed) as u64;
    stats.records_removed += result.records_removed as u64;
    stats.tombstones_removed += result.tombstones_removed as u64;
}

/// Each producer's last batch in the log, by base offset.
enum ProducerLast {
    Known(HashMap<i64, u64>),
    /// More producers than the cleaner tracks: every producer batch counts as a last one (kept
    /// as an empty header at worst).
    TooMany,
}

impl ProducerLast {
    fn is_last(&self, header: &BatchHeader) -> bool {
        match self {
            ProducerLast::Known(last) => {
                last.get(&header.producer_id) == Some(&(header.base_offset as u64))
            }
            ProducerLast::TooMany => true,
        }
    }
}

/// Walks the batch headers of every segment of the plan, active included (headers only: no CRC,
/// no records), for each producer's last batch.
fn scan_producers(plan: &Plan, buffer_bytes: u64) -> Result<ProducerLast, LogError> {
    let max_producers = (buffer_bytes / BUFFER_BYTES_PER_PRODUCER).max(1024) as usize;
    let mut last = HashMap::new();
    for segment in plan.segments.iter() {
        let mut too_many = false;
        for_each_header(segment, |header| {
            if header.has_producer_id() && !too_many {
                last.insert(header.producer_id, header.base_offset as u64);
                too_many = last.len() > max_producers;
            }
        })?;
        if too_many {
            return Ok(ProducerLast::TooMany);
        }
    }
    Ok(ProducerLast::Known(last))
}

/// Maps every keyed record of the dirty section to its latest offset, until the map is full.
/// Returns the end of what the map covers: the cleanable end, or the offset of the first record
/// that did not fit.
fn build_map(
    plan: &Plan,
    map: &mut OffsetMap,
    throttle: &mut Throttle,
    stats: &mut CleanStats,
) -> Result<u64, LogError> {
    let cleanable = &plan.segments[..plan.cleanable];
    let first = cleanable
        .partition_point(|segment| segment.base_offset <= plan.first_dirty)
        .saturating_sub(1);
    let mut keyed = Vec::new();
    for segment in &cleanable[first..] {
        if segment.next_offset() <= plan.first_dirty {
            continue;
        }
        let start = segment
            .find_batch(plan.first_dirty)?
            .map_or(segment.size(), |(position, _)| position);
        let stopped = for_each_batch(segment, start, |position, batch| {
            throttle.account(batch.as_bytes().len() as u64);
            stats.bytes_read += batch.as_bytes().len() as u64;
            map_batch(map, &batch, plan.first_dirty, &mut keyed).map_err(|reason| {
                LogError::Corrupt {
                    path: segment.path.clone(),
                    position,
                    reason,
                }
            })
        })?;
        if let Some(end) = stopped {
            return Ok(end);
        }
    }
    Ok(plan.cleanable_end())
}

/// Puts a batch's keyed records at or after `first_dirty` into the map; breaks with the offset
/// of the first record that does not fit. Batches the pass keeps whole are skipped: their keys
/// must not make older records go (an aborted transaction's value is not the latest).
fn map_batch(
    map: &mut OffsetMap,
    batch: &RecordBatch,
    first_dirty: u64,
    keyed: &mut Vec<(KeyHash, u64)>,
) -> Result<ControlFlow<u64>, String> {
    let attributes = batch.header().attributes;
    if attributes.is_control
        || attributes.is_transactional
        || attributes.compression != Compression::None
    {
        return Ok(ControlFlow::Continue(()));
    }
    keyed.clear();
    for record in batch.records().map_err(|error| error.to_string())? {
        let record = record.map_err(|error| error.to_string())?;
        let offset = record.offset as u64;
        if let (true, Some(key)) = (offset >= first_dirty, record.key.as_deref()) {
            keyed.push((map.hash(key), offset));
        }
    }
    std::hint::black_box(map.warm(keyed.iter().map(|(hash, _)| hash)));
    for &(hash, offset) in keyed.iter() {
        if map.put(hash, offset).is_err() {
            return Ok(ControlFlow::Break(offset));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Reads the batches of a sealed segment from `start`, each checked (length, CRC) before `f`
/// sees it. Returns the value `f` broke with, if it did.
fn for_each_batch<B>(
    segment: &Segment,
    start: u64,
    mut f: impl FnMut(u64, RecordBatch) -> Result<ControlFlow<B>, LogError>,
) -> Result<Option<B>, LogError> {
    let bytes = segment.published()?;
    let mut position = start;
    while (position as usize) < bytes.len() {
        let header = segment.header_at(bytes, position)?;
        let end = position + header.total_bytes() as u64;
        let batch = RecordBatch::from_bytes(segment.bytes(position, end)?).map_err(|error| {
            LogError::Corrupt {
                path: segment.path.clone(),
                position,
                reason: error.to_string(),
            }
        })?;
        if let ControlFlow::Break(value) = f(position, batch)? {
            return Ok(Some(value));
        }
        position = end;
    }
    Ok(None)
}

fn for_each_header(segment: &Segment, mut f: impl FnMut(&BatchHeader)) -> Result<(), LogError> {
    let bytes = segment.published()?;
    let mut position = 0;
    while (position as usize) < bytes.len() {
        let header = segment.header_at(bytes, position)?;
        f(&header);
        position += header.total_bytes() as u64;
    }
    Ok(())
}

/// The earliest delete horizon of a batch that keeps records, from the headers alone (a batch
/// with a horizon was given it for a tombstone).
fn earliest_horizon(segments: &[Arc<Segment>]) -> Result<TombstoneHorizon, LogError> {
    let mut horizon = TombstoneHorizon::None;
    for segment in segments {
        for_each_header(segment, |header| {
            if header.attributes.has_delete_horizon && header.records_count > 0 {
                horizon = horizon.earliest(header.base_timestamp);
            }
        })?;
    }
    Ok(horizon)
}

/// Keeps a pass's reads and writes under `cleaner_io_max_bytes_per_second` by sleeping, as
/// Kafka's cleaner throttler does.
struct Throttle {
    max_bytes_per_second: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(max_bytes_per_second: Option<u64>) -> Self {
        Throttle {
            max_bytes_per_second,
            started: Instant::now(),
            bytes: 0,
        }
    }

    fn account(&mut self, bytes: u64) {
        let Some(max) = self.max_bytes_per_second else {
            return;
        };
        self.bytes += bytes;
        let wait = throttle_wait(self.bytes, max, self.started.elapsed());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// How long to wait so that `bytes` over `elapsed` (plus the wait) is at most
/// `max_bytes_per_second`.
fn throttle_wait(bytes: u64, max_bytes_per_second: u64, elapsed: Duration) -> Duration {
    let due = Duration::from_secs_f64(bytes as f64 / max_bytes_per_second as f64);
    due.saturating_sub(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{CleanupPolicy, DirtyRatio, LogConfig, NewRecord};

    /// A reader holding the segment list from before a swap reads the replaced segments whole
    /// (the swap maps them before renaming over or deleting their files). Segments of a reopened
    /// log are mapped on first read, so without that the reader would map the new file under the
    /// old length, or find no file.
    #[test]
    fn a_reader_holding_replaced_segments_reads_them_whole() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("held-0");
        let config = LogConfig {
            segment_bytes: 1024,
            index_interval_bytes: 64,
            cleanup_policy: CleanupPolicy::Compact,
            min_cleanable_dirty_ratio: DirtyRatio::new(0.0).unwrap(),
            ..LogConfig::default()
        };
        {
            let log = Log::open(&dir, config.clone()).unwrap();
            for i in 0..60u8 {
                let record = NewRecord {
                    timestamp: 1,
                    key: Some(&[i % 3]),
                    value: Some(&[i; 40]),
                    headers: &[],
                };
                log.append_records(&[record], 0).unwrap();
            }
            log.roll().unwrap();
        }
        let log = Log::open(&dir, config).unwrap();
        let held = log.snapshot();
        let stats = log.clean(2).unwrap();
        assert!(stats.segments_replaced > 1);
        let mut records = 0;
        for segment in held.iter() {
            for_each_batch(segment, 0, |_, batch| {
                records += batch.records().unwrap().count();
                Ok(ControlFlow::<()>::Continue(()))
            })
            .unwrap();
            // Through the indexes too: the pass read the logs, not every index.
            for offset in segment.base_offset..segment.next_offset() {
                let (_, header) = segment.find_batch(offset).unwrap().unwrap();
                assert_eq!(header.base_offset as u64, offset, "one record per batch");
            }
            let last = segment.time_index.last(segment.base_offset).unwrap();
            assert!(last.is_none_or(|entry| entry.offset < segment.next_offset()));
        }
        assert_eq!(records, 60);
    }

    #[test]
    fn throttle_waits_for_the_bytes_beyond_the_rate() {
        let second = Duration::from_secs(1);
        assert_eq!(throttle_wait(1000, 1000, second), Duration::ZERO);
        assert_eq!(throttle_wait(500, 1000, second), Duration::ZERO);
        assert_eq!(throttle_wait(3000, 1000, second), 2 * second);
    }

    #[test]
    fn the_earliest_horizon_wins() {
        let horizon = TombstoneHorizon::None
            .earliest(50)
            .earliest(70)
            .earliest(40);
        assert_eq!(horizon, TombstoneHorizon::At(40));
        assert_eq!(
            TombstoneHorizon::Unknown.earliest(9),
            TombstoneHorizon::At(9)
        );
    }
}

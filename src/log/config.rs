//! Per-log configuration, named as Kafka's topic configs are.

use crate::log::LogError;

/// When appended bytes are forced to disk with fdatasync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// Leave it to the operating system (Kafka's default; replication provides durability).
    /// The log still flushes on roll and on close.
    #[default]
    OsDecides,
    /// Flush before an append returns.
    EveryAppend,
    /// Flush once `messages` records are unflushed or the oldest unflushed append is
    /// `interval_ms` old, checked on each append and by [`Log::flush_if_due`](super::Log).
    Every { messages: u64, interval_ms: u64 },
}

/// What happens to a log's old data (Kafka's `cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CleanupPolicy {
    /// Delete whole old segments by `retention_ms` and `retention_bytes`.
    #[default]
    Delete,
    /// Keep the last record per key ([`Log::clean`](super::Log::clean)); segments are not
    /// deleted by age or size. Records without a key are refused.
    Compact,
    /// Both: compact, and delete whole segments by age and size.
    CompactAndDelete,
}

impl CleanupPolicy {
    /// Whether the log is compacted (and so refuses records without a key).
    pub fn compacts(self) -> bool {
        matches!(
            self,
            CleanupPolicy::Compact | CleanupPolicy::CompactAndDelete
        )
    }

    /// Whether old segments are deleted by `retention_ms` and `retention_bytes`.
    pub fn deletes(self) -> bool {
        matches!(
            self,
            CleanupPolicy::Delete | CleanupPolicy::CompactAndDelete
        )
    }
}

/// A fraction between 0 and 1, such as `min_cleanable_dirty_ratio`. Never NaN, so it is `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct DirtyRatio(f64);

impl DirtyRatio {
    /// `None` unless `ratio` lies in `0.0..=1.0`.
    pub fn new(ratio: f64) -> Option<DirtyRatio> {
        (0.0..=1.0).contains(&ratio).then_some(DirtyRatio(ratio))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

// NaN is refused by the only constructor, so equality is reflexive.
impl Eq for DirtyRatio {}

impl Default for DirtyRatio {
    /// Kafka's default `min.cleanable.dirty.ratio`, 0.5.
    fn default() -> Self {
        DirtyRatio(0.5)
    }
}

impl std::fmt::Display for DirtyRatio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Configuration of one partition's log.
///
/// ## Defaults (Kafka's)
/// - `segment_bytes`: 1 GiB
/// - `segment_ms`: 7 days
/// - `retention_ms`: 7 days (`None` keeps forever)
/// - `retention_bytes`: `None` (no size limit)
/// - `index_interval_bytes`: 4096
/// - `segment_index_bytes`: 10 MiB
/// - `max_message_bytes`: 1 MiB + 12 bytes (Kafka's 1048588)
/// - `flush`: [`FlushPolicy::OsDecides`]
/// - `checkpoint_interval_ms`: 60 s (how stale the recovery point may get; Kafka's
///   `log.flush.offset.checkpoint.interval.ms`)
/// - `cleanup_policy`: [`CleanupPolicy::Delete`]
/// - `delete_retention_ms`: 1 day (how long a compacted log keeps a tombstone once the cleaner
///   has seen it)
/// - `min_cleanable_dirty_ratio`: 0.5 (clean when half the cleanable bytes are not cleaned yet)
/// - `min_compaction_lag_ms`: 0 (a segment whose newest record is younger is not cleaned)
/// - `cleaner_dedupe_buffer_bytes`: 128 MiB (Kafka's `log.cleaner.dedupe.buffer.size`): the most
///   the cleaner's key map takes, at 24 bytes a slot and 90% of the slots used: a pass over more
///   distinct keys cleans the prefix that fits. Allocated per pass, growing with the keys met.
/// - `cleaner_io_max_bytes_per_second`: `None` (unthrottled; Kafka's
///   `log.cleaner.io.max.bytes.per.second`): bytes read plus written by a cleaning pass
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u32,
    pub segment_ms: u64,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub index_interval_bytes: u32,
    pub segment_index_bytes: u32,
    pub max_message_bytes: u32,
    pub flush: FlushPolicy,
    pub checkpoint_interval_ms: u64,
    pub cleanup_policy: CleanupPolicy,
    pub delete_retention_ms: u64,
    pub min_cleanable_dirty_ratio: DirtyRatio,
    pub min_compaction_lag_ms: u64,
    pub cleaner_dedupe_buffer_bytes: u64,
    pub cleaner_io_max_bytes_per_second: Option<u64>,
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// The smallest key map the cleaner accepts (about forty keys).
const MIN_CLEANER_BUFFER_BYTES: u64 = 1024;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            retention_ms: Some(7 * DAY_MS),
            retention_bytes: None,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
            max_message_bytes: (1 << 20) + 12,
            flush: FlushPolicy::OsDecides,
            checkpoint_interval_ms: 60_000,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: DAY_MS,
            min_cleanable_dirty_ratio: DirtyRatio::default(),
            min_compaction_lag_ms: 0,
            cleaner_dedupe_buffer_bytes: 128 << 20,
            cleaner_io_max_bytes_per_second: None,
        }
    }
}

impl LogConfig {
    /// Checks the limits against each other and against the 32-bit positions of the index.
    ///
    /// # Errors
    /// `InvalidConfig` naming the first bad setting.
    pub fn validate(&self) -> Result<(), LogError> {
        let minimum_segment = crate::record::BATCH_HEADER_BYTES as u32;
        if self.segment_bytes < minimum_segment || self.segment_bytes > i32::MAX as u32 {
            return Err(LogError::InvalidConfig(
                "segment_bytes must be between one batch header and 2 GiB",
            ));
        }
        if self.segment_index_bytes < 16 {
            return Err(LogError::InvalidConfig(
                "segment_index_bytes must hold two entries",
            ));
        }
        if self.index_interval_bytes == 0 {
            return Err(LogError::InvalidConfig(
                "index_interval_bytes must be positive",
            ));
        }
        if self.max_message_bytes < minimum_segment || self.max_message_bytes > i32::MAX as u32 {
            return Err(LogError::InvalidConfig(
                "max_message_bytes must be between one batch header and 2 GiB",
            ));
        }
        if let FlushPolicy::Every { messages: 0, .. } = self.flush {
            return Err(LogError::InvalidConfig("flush messages must be positive"));
        }
        if self.cleaner_dedupe_buffer_bytes < MIN_CLEANER_BUFFER_BYTES {
            return Err(LogError::InvalidConfig(
                "cleaner_dedupe_buffer_bytes must be at least 1 KiB",
            ));
        }
        if self.cleaner_io_max_bytes_per_second == Some(0) {
            return Err(LogError::InvalidConfig(
                "cleaner_io_max_bytes_per_second must be positive",
            ));
        }
        if i64::try_from(self.delete_retention_ms).is_err()
            || i64::try_from(self.min_compaction_lag_ms).is_err()
        {
            return Err(LogError::InvalidConfig(
                "delete_retention_ms and min_compaction_lag_ms must fit an i64",
            ));
        }
        Ok(())
    }
}

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
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

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
        Ok(())
    }
}

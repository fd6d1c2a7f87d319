use std::io;
use std::path::PathBuf;

use crate::record::DecodeError;

/// Errors from opening, appending to and reading a [`Log`](super::Log).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Bytes before the recovery point (data that was flushed) are damaged. Never truncated away.
    #[error("corrupt log data in {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    /// Another `Log` or process holds the directory's lock.
    #[error("{path} is locked by another process or log")]
    Locked { path: PathBuf },
    #[error("invalid partition directory name {name:?}: {reason}")]
    InvalidDirectoryName { name: String, reason: &'static str },
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName { name: String, reason: &'static str },
    #[error("record batch of {size_bytes} bytes exceeds max_message_bytes {max_bytes}")]
    RecordTooLarge { size_bytes: usize, max_bytes: usize },
    #[error("offset {offset} is out of range {log_start_offset}..={log_end_offset}")]
    OffsetOutOfRange {
        offset: u64,
        log_start_offset: u64,
        log_end_offset: u64,
    },
    /// A batch given to `append_batch` does not decode or fails its CRC.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] DecodeError),
    /// A record the log refuses to store (Kafka's `InvalidRecordException`), such as a record
    /// without a key in a compacted log.
    #[error("invalid record {record_index} of the batch: {reason}")]
    InvalidRecord {
        record_index: usize,
        reason: &'static str,
    },
    /// A batch's leader epoch is older than one the log already holds.
    #[error("leader epoch {epoch} is older than the latest epoch {latest_epoch}")]
    StaleLeaderEpoch { epoch: i32, latest_epoch: i32 },
    /// A replicated batch starts below the log end.
    #[error("batch base offset {base_offset} is below the log end offset {log_end_offset}")]
    NonMonotonicOffset {
        base_offset: u64,
        log_end_offset: u64,
    },
    /// An fsync failed earlier; the log refuses writes until it is reopened.
    #[error("log refuses writes after a failed flush; reopen it to recover")]
    FlushFailed,
    /// The log was closed (or its topic deleted) while this handle was in use.
    #[error("log is closed")]
    Closed,
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { path, source }
    }
}

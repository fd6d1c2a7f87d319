//! What the compaction tests share: a small compacted log's configuration, records that are a
//! function of their offset, a full read, and a directory copy that stands for a crash.
#![allow(dead_code, reason = "each test file uses a subset of these helpers")]

use std::fs;
use std::path::Path;
use std::sync::Arc;

use logbus::clock::ManualClock;
use logbus::log::{CleanupPolicy, DirtyRatio, Log, LogConfig, NewRecord, LOCK_FILE};
use logbus::record::BatchHeader;

pub const START_MS: i64 = 1_000_000;
pub const RETENTION_MS: u64 = 1_000;
pub const DIR_NAME: &str = "compacted-0";

pub fn config(dedupe_buffer_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 128,
        segment_index_bytes: 1024,
        cleanup_policy: CleanupPolicy::Compact,
        delete_retention_ms: RETENTION_MS,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.0).unwrap(),
        cleaner_dedupe_buffer_bytes: dedupe_buffer_bytes,
        ..LogConfig::default()
    }
}

/// The value written at `offset`: a function of the offset, so any read can be checked.
pub fn value_of(offset: u64) -> Vec<u8> {
    let mut value = format!("value-{offset}-").into_bytes();
    value.resize(value.len() + (offset * 13 % 50) as usize, b'v');
    value
}

/// A record as a read returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Reads the whole log, from its start, batch by batch: the records and the batch headers.
pub fn read_all(log: &Log) -> (Vec<Seen>, Vec<BatchHeader>) {
    let mut records = Vec::new();
    let mut headers = Vec::new();
    let mut from = log.log_start_offset();
    let end = log.log_end_offset();
    while from < end {
        let read = log.read(from, 1024).unwrap();
        let mut advanced = false;
        for batch in read.batches() {
            let batch = batch.unwrap();
            for record in batch.records().unwrap() {
                let record = record.unwrap();
                records.push(Seen {
                    offset: record.offset as u64,
                    timestamp: record.timestamp,
                    key: record.key.map(|key| key.to_vec()),
                    value: record.value.map(|value| value.to_vec()),
                });
            }
            headers.push(*batch.header());
            from = batch.header().next_offset() as u64;
            advanced = true;
        }
        if !advanced {
            break;
        }
    }
    (records, headers)
}

/// Copies the regular files of `from` into a new directory `to` (the lock file is not data): a
/// crash that lost nothing the log had written.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if path.is_file() && name != LOCK_FILE {
            fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

/// Appends `rounds` rounds over `keys` keys, a tombstone every seventh record, rolling every
/// `per_segment` records. Returns the offset after them.
pub fn fill(log: &Log, keys: u64, rounds: u64, per_segment: u64) -> u64 {
    let mut offset = log.log_end_offset();
    for _ in 0..rounds {
        for key in 0..keys {
            let key_bytes = format!("key-{key}").into_bytes();
            let value = value_of(offset);
            let tombstone = offset % 7 == 3;
            let record = NewRecord {
                timestamp: START_MS + offset as i64,
                key: Some(&key_bytes),
                value: (!tombstone).then_some(&value[..]),
                headers: &[],
            };
            log.append_records(&[record], 0).unwrap();
            offset += 1;
            if offset.is_multiple_of(per_segment) {
                log.roll().unwrap();
            }
        }
    }
    offset
}

pub fn open(dir: &Path, config: LogConfig, clock: &ManualClock) -> Log {
    Log::open_with_clock(dir, config, Arc::new(clock.clone())).unwrap()
}

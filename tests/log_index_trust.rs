//! `offset_for_timestamp` once trusted `.timeindex` entries as they lay on disk. A clean open
//! checks only the last entries of an index, so an entry planted earlier that pointed past the
//! records with the wanted timestamp made the lookup skip them and answer a later offset. Time
//! index entries are now checked against the batch they name before they are used.

use logbus::clock::Clock;
use logbus::log::{Log, LogConfig, NewRecord};

fn linear_answer(log: &Log, timestamp: i64) -> Option<(u64, i64)> {
    let mut from = log.log_start_offset();
    while from < log.log_end_offset() {
        let read = log.read(from, 1 << 20).unwrap();
        for batch in read.batches() {
            for record in batch.unwrap().records().unwrap() {
                let record = record.unwrap();
                if record.timestamp >= timestamp {
                    return Some((record.offset as u64, record.timestamp));
                }
                from = record.offset as u64 + 1;
            }
        }
    }
    None
}

#[test]
fn a_lying_time_index_entry_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("times-0");
    let config = LogConfig {
        index_interval_bytes: 128,
        retention_ms: None,
        ..LogConfig::default()
    };
    {
        let log = Log::open(&path, config.clone()).unwrap();
        let value = [1u8; 100];
        for i in 0..200 {
            let record = NewRecord {
                timestamp: 1_000 + i * 10,
                key: None,
                value: Some(&value),
                headers: &[],
            };
            log.append_records(&[record], 0).unwrap();
        }
        log.roll().unwrap();
    }
    let time_index = path.join("00000000000000000000.timeindex");
    let mut bytes = std::fs::read(&time_index).unwrap();
    assert!(bytes.len() >= 36, "expected several time index entries");
    // Entry 1 now claims timestamp 1_010 is reached only at relative offset 150.
    bytes[12..20].copy_from_slice(&1_010i64.to_be_bytes());
    bytes[20..24].copy_from_slice(&150u32.to_be_bytes());
    std::fs::write(&time_index, bytes).unwrap();

    let log = Log::open(&path, config).unwrap();
    for timestamp in [1_000, 1_015, 1_200, 1_500, 2_990] {
        assert_eq!(
            log.offset_for_timestamp(timestamp).unwrap(),
            linear_answer(&log, timestamp),
            "timestamp {timestamp}"
        );
    }
    assert_eq!(log.offset_for_timestamp(1_015).unwrap(), Some((2, 1_020)));
}

/// The active segment's age once restarted with every open, so a log reopened more often than
/// `segment_ms` never rolled by time and time-based retention never deleted its data. The age
/// now counts from the segment's first batch, as Kafka's does.
#[test]
fn segment_age_survives_a_reopen() {
    use logbus::clock::ManualClock;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aging-0");
    let clock = ManualClock::new(1_000_000);
    let config = LogConfig {
        segment_ms: 10_000,
        ..LogConfig::default()
    };
    let record = |timestamp| NewRecord {
        timestamp,
        key: None,
        value: Some(b"v"),
        headers: &[],
    };
    for step in 0..4i64 {
        let log = Log::open_with_clock(&path, config.clone(), Arc::new(clock.clone())).unwrap();
        log.append_records(&[record(clock.now_ms())], 0).unwrap();
        assert_eq!(
            log.segment_count(),
            if step < 3 { 1 } else { 2 },
            "step {step}"
        );
        drop(log);
        clock.advance_ms(4_000);
    }
}

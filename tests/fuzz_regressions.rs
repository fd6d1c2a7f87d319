//! Bugs the fuzz targets in `fuzz/` found, pinned.
//!
//! `index_lookup`, reproducer (27 bytes, hex; byte 0 picks segment 0 of the fuzz template log,
//! bytes 1-2 put all the rest into its `.index` and leave its `.timeindex` empty):
//! `fa1dff 00000000 26aa51ff ff000000 0000006e ffffff00 000000ff`.
//! A sealed segment's offset index was trusted after a clean shutdown because its *last* two
//! entries looked sane (`OffsetIndex::looks_valid`), but its first entry pointed far past the end
//! of the segment. `Segment::find_batch` started its scan there, found no batch, and `Log::read(0)`
//! silently returned the next segment's first batch (offset 10): a consumer skipped 10 records
//! without any error. Index entries are now checked where they are used: one that does not point
//! at a batch holding its offset makes the lookup scan the segment from its start.
//!
//! `batch_decode`, reproducer (79 bytes, a valid batch whose base offset is `i64::MAX`, made by
//! `batch_ending_at_i64_max` below; hex `7fffffffffffffff 00000039 ffffffff 02 d3f2ac75 ...`):
//! `BatchHeader::decode` checked that the last offset fits in an `i64` but not the next one, so
//! `next_offset()` overflowed: a panic in debug builds (the fuzz build, tests) and a wrap to
//! `i64::MIN` in release, for any batch read from disk or a socket (`RecordBatch::from_bytes`,
//! recovery, `Log::read`, replication, the consumer). Such a header is now `InvalidField`.

use std::path::Path;

use bytes::Bytes;
use logbus::log::{Log, LogConfig, NewRecord};
use logbus::record::{BatchBuilder, BatchSpec, DecodeError, RecordBatch};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

/// Two segments: offsets 0..10 in batches of 2, then 10..40; closed cleanly.
fn write_two_segments(dir: &Path) {
    let log = Log::open(dir, config()).unwrap();
    let value = [9u8; 200];
    let record = NewRecord {
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(&value),
        headers: &[],
    };
    for _ in 0..5 {
        log.append_records(&[record, record], 0).unwrap();
    }
    log.roll().unwrap();
    for _ in 0..15 {
        log.append_records(&[record, record], 0).unwrap();
    }
    log.close().unwrap();
}

/// The size of each batch `write_two_segments` appends.
fn batch_bytes() -> u32 {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("fuzz-0");
    write_two_segments(&dir);
    let log = std::fs::read(dir.join("00000000000000000000.log")).unwrap();
    let header = logbus::record::BatchHeader::decode(&log).unwrap();
    header.total_bytes() as u32
}

fn index_entry(relative_offset: u32, position: u32) -> [u8; 8] {
    let mut entry = [0; 8];
    entry[..4].copy_from_slice(&relative_offset.to_be_bytes());
    entry[4..].copy_from_slice(&position.to_be_bytes());
    entry
}

/// Replaces segment 0's index, reopens, and checks that every offset reads the batch holding it.
fn assert_reads_are_right_with_index(entries: &[[u8; 8]]) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("fuzz-0");
    write_two_segments(&dir);
    std::fs::write(dir.join("00000000000000000000.index"), entries.concat()).unwrap();
    std::fs::write(dir.join("00000000000000000000.timeindex"), b"").unwrap();
    let log = Log::open(&dir, config()).unwrap();
    for offset in 0..log.log_end_offset() {
        // An error would be acceptable for a damaged index; other records are not.
        let Ok(read) = log.read(offset, 1) else {
            continue;
        };
        let batch = read.batches().next().unwrap().unwrap();
        let header = batch.header();
        assert!(
            header.base_offset as u64 <= offset && offset <= header.last_offset() as u64,
            "read({offset}) returned the batch {}..={}",
            header.base_offset,
            header.last_offset()
        );
    }
}

#[test]
fn an_index_entry_past_the_segment_end_does_not_skip_the_segment() {
    // As the fuzzer's input: the first entry points past the end, the last two look sane.
    assert_reads_are_right_with_index(&[
        index_entry(0, 0x26aa_51ff),
        index_entry(0xff00_0000, 110),
        index_entry(0xffff_ff00, 255),
    ]);
}

#[test]
fn an_index_entry_pointing_at_a_later_batch_does_not_skip_records() {
    // Offset 1 claimed to be where the batch of offsets 4..=5 starts.
    let third_batch = 2 * batch_bytes();
    assert_reads_are_right_with_index(&[
        index_entry(1, third_batch),
        index_entry(8, 2 * third_batch),
    ]);
}

/// A batch whose last offset is `i64::MAX`: its next offset does not fit in an `i64`.
fn batch_ending_at_i64_max() -> Vec<u8> {
    let spec = BatchSpec {
        base_offset: i64::MAX,
        ..BatchSpec::default()
    };
    let mut builder = BatchBuilder::new(spec);
    builder.append(1_700_000_000_000, None, Some(b"v"), &[]);
    builder.finish().into_bytes().to_vec()
}

#[test]
fn a_batch_whose_next_offset_overflows_is_rejected() {
    let bytes = batch_ending_at_i64_max();
    let error = RecordBatch::from_bytes(Bytes::from(bytes)).unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::InvalidField {
                field: "last_offset_delta",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_segment_holding_a_batch_whose_next_offset_overflows_opens_or_fails_without_a_panic() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("fuzz-0");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("00000000000000000000.log"),
        batch_ending_at_i64_max(),
    )
    .unwrap();
    if let Ok(log) = Log::open(&dir, config()) {
        assert!(log.log_end_offset() <= i64::MAX as u64);
    }
}

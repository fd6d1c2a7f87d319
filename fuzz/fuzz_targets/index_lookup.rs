//! Arbitrary `.index` and `.timeindex` bytes next to a valid log that was closed cleanly (so the
//! log may trust them): opening, reading every offset and every timestamp lookup must not panic,
//! and a read that succeeds must start with the batch that holds the offset asked for.
//!
//! Input: byte 0 picks the segment (bit 0: the sealed first one or the active second one); bytes
//! 1-2 (big-endian) split the rest into the offset index and the time index.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logbus::log::Log;
use logbus::record::Batches;
use logbus_fuzz::{config, read_everything, scratch, template, write_dir};

fuzz_target!(|data: &[u8]| {
    let [segment, high, low, rest @ ..] = data else {
        return;
    };
    let base = if segment & 1 == 0 {
        "00000000000000000000"
    } else {
        "00000000000000000010"
    };
    let split = usize::from(u16::from_be_bytes([*high, *low])).min(rest.len());
    let (index, time_index) = rest.split_at(split);
    let mut files = template().to_vec();
    for (name, contents) in files.iter_mut() {
        if *name == format!("{base}.index") {
            *contents = index.to_vec();
        } else if *name == format!("{base}.timeindex") {
            *contents = time_index.to_vec();
        }
    }
    let root = scratch();
    let dir = write_dir(root.path(), &files);
    let Ok(log) = Log::open(&dir, config()) else {
        return;
    };
    for offset in log.log_start_offset()..log.log_end_offset() {
        check_read(&log, offset);
    }
    for (_, timestamp) in read_everything(&log) {
        let _ = log.offset_for_timestamp(timestamp);
        let _ = log.offset_for_timestamp(timestamp + 1);
    }
});

/// A successful read of `offset` starts with the batch holding it: a wrong index entry must
/// never make the log return other records than the ones asked for.
fn check_read(log: &Log, offset: u64) {
    let Ok(read) = log.read(offset, 1) else {
        return;
    };
    if let Some(Ok(first)) = Batches::new(Bytes::clone(&read.bytes)).next() {
        let header = first.header();
        assert!(
            header.base_offset as u64 <= offset && offset <= header.last_offset() as u64,
            "read({offset}) returned the batch {}..={}",
            header.base_offset,
            header.last_offset()
        );
    }
}

//! The record codec on one core: CRC-32C candidates (GB/s) on 1 MiB and 16 KiB buffers, and
//! encoding and decoding batches of 100 records of 100 bytes (records/s).
//!
//! ```text
//! cargo bench --bench record
//! ```
//!
//! A plain `fn main`: each figure is the median of several timed repetitions after a warm-up,
//! with the crate in use (`crc32c`) as the baseline the alternatives are divided by.

use std::time::Instant;

use bytes::Bytes;
use logbus::record::{BatchBuilder, BatchSpec, RecordBatch};

#[path = "support/mod.rs"]
mod support;
use support::median;

const REPETITIONS: usize = 7;
const RECORDS_PER_BATCH: usize = 100;
const VALUE_BYTES: usize = 100;

fn main() {
    crc_case(1 << 20, 2_000);
    crc_case(16 << 10, 100_000);
    codec_case();
}

/// Median over `REPETITIONS` of `work` run `iterations` times, in units per second given
/// `units` per call.
fn rate(iterations: usize, units: f64, mut work: impl FnMut() -> u64) -> f64 {
    let mut sink = 0u64;
    for _ in 0..iterations / 10 + 1 {
        sink = sink.wrapping_add(work());
    }
    let samples = (0..REPETITIONS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                sink = sink.wrapping_add(work());
            }
            iterations as f64 * units / start.elapsed().as_secs_f64()
        })
        .collect();
    std::hint::black_box(sink);
    median(samples)
}

fn crc_case(len: usize, iterations: usize) {
    let buffer: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8)
        .collect();
    let expected = crc32c::crc32c(&buffer);
    let fast = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &buffer);
    assert_eq!(
        u64::from(expected),
        fast,
        "crc-fast's Crc32Iscsi is CRC-32C"
    );
    let units = len as f64 / 1e9;
    let crc32c = rate(iterations, units, || {
        u64::from(crc32c::crc32c(std::hint::black_box(&buffer)))
    });
    let crc_fast = rate(iterations, units, || {
        crc_fast::checksum(
            crc_fast::CrcAlgorithm::Crc32Iscsi,
            std::hint::black_box(&buffer),
        )
    });
    let label = if len >= 1 << 20 {
        format!("{} MiB", len >> 20)
    } else {
        format!("{} KiB", len >> 10)
    };
    println!("crc32c   {label:>6}: {crc32c:6.2} GB/s (baseline)");
    println!(
        "crc-fast {label:>6}: {crc_fast:6.2} GB/s, {:.2}x crc32c",
        crc_fast / crc32c
    );
}

fn encode_batch(value: &[u8]) -> RecordBatch {
    let mut builder =
        BatchBuilder::with_capacity(BatchSpec::default(), RECORDS_PER_BATCH * (VALUE_BYTES + 8));
    for i in 0..RECORDS_PER_BATCH {
        builder.append(1_700_000_000_000 + i as i64, None, Some(value), &[]);
    }
    builder.finish()
}

fn codec_case() {
    let value: Vec<u8> = (0..VALUE_BYTES as u8).collect();
    let records = RECORDS_PER_BATCH as f64;
    let encode = rate(20_000, records, || {
        encode_batch(&value).as_bytes().len() as u64
    });
    let bytes: Bytes = encode_batch(&value).into_bytes();
    let batch_bytes = bytes.len();
    let decode = rate(20_000, records, || {
        let batch = RecordBatch::from_bytes(bytes.clone()).expect("a valid batch");
        let mut sum = 0u64;
        for record in batch.records().expect("uncompressed records") {
            sum += record
                .expect("a valid record")
                .value
                .map_or(0, |v| v.len() as u64);
        }
        sum
    });
    println!(
        "encode, {RECORDS_PER_BATCH} x {VALUE_BYTES} B records per batch ({batch_bytes} B): {:.2} M rec/s ({:.2} GB/s)",
        encode / 1e6,
        encode / records * batch_bytes as f64 / 1e9
    );
    println!(
        "decode (CRC + iterate), same batches: {:.2} M rec/s ({:.2} GB/s)",
        decode / 1e6,
        decode / records * batch_bytes as f64 / 1e9
    );
}

//! The log against the machine: appends, sequential and random reads, recovery, each next to a
//! baseline measured in the same run (a plain file doing the same work), reported as medians and
//! ratios. Absolute figures move from run to run on a shared VM; the ratios are what to compare.
//!
//! ```text
//! cargo bench --bench log                      # under 2 minutes, 2 GiB "big" log
//! LOGBUS_BENCH_BIG=1 cargo bench --bench log   # the big log is 10 GiB (check `df -h` first)
//! LOGBUS_BENCH_DIR=/path cargo bench --bench log   # where the logs go (default: temp dir)
//! LOGBUS_BENCH_ONLY=append,random cargo bench --bench log   # some cases only
//!                                              # (append, read, recovery, random, compaction)
//! ```
//!
//! Every case is warmed up first: on this VM memory untouched for ~2 s is handed back to the host
//! and the first touch is 5-10x slower (see `/work/shared/notes/machine-performance.md`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use logbus::log::{
    CleanOutcome, CleanupPolicy, DirtyRatio, Log, LogConfig, NewRecord, CLEAN_SHUTDOWN_FILE,
    RECOVERY_POINT_CHECKPOINT,
};
use logbus::record::{
    stamp_offset_and_epoch, validate, BatchBuilder, BatchSpec, Batches, RecordBatch,
    LOG_OVERHEAD_BYTES,
};

#[path = "support/mod.rs"]
mod support;
use support::{bench_root, median, percentile, pre_touch, selected, Table};

const VALUE_BYTES: usize = 100;
const MIB: usize = 1 << 20;
/// Bytes written per append case and repetition.
const APPEND_BYTES: usize = 200 * MIB;
const REPETITIONS: usize = 3;
/// Appends are the noisiest figures (page cache allocation, writeback of other tenants).
const APPEND_REPETITIONS: usize = 5;
/// Batch header fields the baseline writes (layout in `src/record/batch.rs`): the CRC, which
/// covers the attributes to the end, and the last offset delta.
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = CRC_AT + 4;
const LAST_OFFSET_DELTA_AT: usize = ATTRIBUTES_AT + 2;
const DIR_NAME: &str = "bench-0";

fn main() {
    let root = bench_root();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    let mut table = Table::default();
    pre_touch(512 * MIB);
    if selected("append") {
        for batch_records in [1, 10, 100] {
            append_case(root.path(), batch_records, &mut table);
        }
    }
    if selected("read") || selected("recovery") {
        let one_gib = root.path().join("one-gib");
        build_log(&one_gib, 1024 * MIB - 4 * MIB);
        if selected("read") {
            sequential_read_case(&one_gib, &mut table);
        }
        if selected("recovery") {
            recovery_case(&one_gib, &mut table);
        }
        remove_log(&one_gib);
    }
    if selected("random") {
        random_read_case(root.path(), big_log_bytes(), &mut table);
    }
    if selected("compaction") {
        for keys in [COMPACTION_FEW_KEYS, COMPACTION_UNIQUE_KEYS] {
            compaction_case(root.path(), keys, &mut table);
        }
    }
    table.print();
}

// ---------------------------------------------------------------------------------------------
// Harness: medians, the table, warm-up
// ---------------------------------------------------------------------------------------------

fn big_log_bytes() -> usize {
    match std::env::var("LOGBUS_BENCH_BIG").as_deref() {
        Ok("1") => 10 << 30,
        _ => 2 << 30,
    }
}

fn gb_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e9
}

// ---------------------------------------------------------------------------------------------
// Records and batches
// ---------------------------------------------------------------------------------------------

fn value() -> [u8; VALUE_BYTES] {
    let mut value = [0u8; VALUE_BYTES];
    for (i, byte) in value.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    value
}

const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

/// One encoded batch of `count` 100-byte records, base offset 0.
fn encoded_batch(count: usize) -> RecordBatch {
    let value = value();
    let mut builder = BatchBuilder::with_capacity(BatchSpec::default(), count * (VALUE_BYTES + 8));
    for i in 0..count {
        builder.append(BASE_TIMESTAMP + i as i64, None, Some(&value), &[]);
    }
    builder.finish()
}

fn log_config() -> LogConfig {
    LogConfig {
        retention_ms: None,
        ..LogConfig::default()
    }
}

fn remove_log(dir: &Path) {
    std::fs::remove_dir_all(dir).expect("removing a bench log");
}

// ---------------------------------------------------------------------------------------------
// a. Appends
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum AppendWay {
    /// A plain file: stamp the offset, compute the CRC, `write_all`.
    PlainFile,
    /// `Log::append_records`: the log encodes the batch.
    Records,
    /// `Log::append_batch` of a batch built once: no encoding.
    Batch,
}

/// Appends about `bytes` in batches of `batch_records`; returns (time, batches).
fn append_once(
    root: &Path,
    way: AppendWay,
    batch_records: usize,
    bytes: usize,
) -> (Duration, usize) {
    let template = encoded_batch(batch_records);
    let batches = bytes / template.as_bytes().len();
    let dir = root.join(DIR_NAME);
    let elapsed = match way {
        AppendWay::PlainFile => append_plain(&dir, template.as_bytes(), batches),
        AppendWay::Records => append_records(&dir, batch_records, batches),
        AppendWay::Batch => append_batches(&dir, &template, batches),
    };
    remove_log(&dir);
    (elapsed, batches)
}

fn append_plain(dir: &Path, template: &[u8], batches: usize) -> Duration {
    std::fs::create_dir_all(dir).expect("the baseline directory");
    let path = dir.join("00000000000000000000.log");
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .expect("the baseline file");
    let mut batch = template.to_vec();
    let start = Instant::now();
    let mut offset = 0i64;
    let last_offset_delta = i32::from_be_bytes(
        batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .try_into()
            .expect("4 bytes"),
    );
    for _ in 0..batches {
        stamp_offset_and_epoch(&mut batch, offset, 0);
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        file.write_all(&batch).expect("the baseline write");
        offset += i64::from(last_offset_delta) + 1;
    }
    let elapsed = start.elapsed();
    // Untimed, as the log's close is: leave no dirty pages behind for the next case.
    file.sync_data().expect("the baseline sync");
    elapsed
}

fn append_records(dir: &Path, batch_records: usize, batches: usize) -> Duration {
    let log = Log::open(dir, log_config()).expect("the bench log opens");
    let value = value();
    let mut records = vec![
        NewRecord {
            timestamp: 0,
            key: None,
            value: Some(&value),
            headers: &[]
        };
        batch_records
    ];
    let start = Instant::now();
    for b in 0..batches {
        let timestamp = BASE_TIMESTAMP + (b * batch_records) as i64;
        for (i, record) in records.iter_mut().enumerate() {
            record.timestamp = timestamp + i as i64;
        }
        log.append_records(&records, 0).expect("the bench append");
    }
    let elapsed = start.elapsed();
    log.close().expect("the bench log closes");
    elapsed
}

fn append_batches(dir: &Path, template: &RecordBatch, batches: usize) -> Duration {
    let log = Log::open(dir, log_config()).expect("the bench log opens");
    let start = Instant::now();
    for _ in 0..batches {
        log.append_batch(template, 0).expect("the bench append");
    }
    let elapsed = start.elapsed();
    log.close().expect("the bench log closes");
    elapsed
}

fn append_case(root: &Path, batch_records: usize, table: &mut Table) {
    println!("append, {batch_records} record(s) per batch");
    let batch_bytes = encoded_batch(batch_records).as_bytes().len();
    let ways = [AppendWay::PlainFile, AppendWay::Records, AppendWay::Batch];
    // Warm-up: a tenth of a run of each way.
    for way in ways {
        let _ = append_once(root, way, batch_records, APPEND_BYTES / 10);
    }
    let mut seconds: [Vec<f64>; 3] = Default::default();
    let mut batches = 0;
    for _ in 0..APPEND_REPETITIONS {
        // Interleaved, so drift on the shared machine hits all three alike.
        for (i, way) in ways.into_iter().enumerate() {
            let (elapsed, count) = append_once(root, way, batch_records, APPEND_BYTES);
            seconds[i].push(elapsed.as_secs_f64());
            batches = count;
        }
    }
    let records = (batches * batch_records) as f64;
    let bytes = (batches * batch_bytes) as f64;
    // Ratios pair each repetition's runs (made seconds apart) before taking the median: drift
    // between repetitions cancels.
    let paired_ratio = |way: usize| {
        let ratios = seconds[0]
            .iter()
            .zip(&seconds[way])
            .map(|(plain, log)| plain / log);
        format!("{:.2}", median(ratios.collect()))
    };
    let (records_ratio, batch_ratio) = (paired_ratio(1), paired_ratio(2));
    let [plain, with_records, with_batch] = seconds.map(median);
    let describe = |s: f64| {
        format!(
            "{:.2} M rec/s, {:.0} MB/s",
            records / s / 1e6,
            bytes / s / 1e6
        )
    };
    let goal = if batch_records == 100 { ">= 0.80" } else { "-" };
    table.add(
        format!("append_records, {batch_records}/batch"),
        describe(with_records),
        describe(plain),
        records_ratio,
        goal,
    );
    table.add(
        format!("append_batch, {batch_records}/batch"),
        describe(with_batch),
        describe(plain),
        batch_ratio,
        "-",
    );
}

// ---------------------------------------------------------------------------------------------
// Building the read logs
// ---------------------------------------------------------------------------------------------

/// Writes about `bytes` of 100-record batches into a log at `<parent>/bench-0` and closes it.
fn build_log(parent: &Path, bytes: usize) -> PathBuf {
    let dir = parent.join(DIR_NAME);
    let template = encoded_batch(100);
    let batches = bytes / template.as_bytes().len();
    let started = Instant::now();
    append_batches(&dir, &template, batches);
    println!(
        "built a log of {} MiB in {:.1} s",
        batches * template.as_bytes().len() / MIB,
        started.elapsed().as_secs_f64()
    );
    dir
}

fn log_dir(parent: &Path) -> PathBuf {
    parent.join(DIR_NAME)
}

// ---------------------------------------------------------------------------------------------
// b. Sequential read from page cache
// ---------------------------------------------------------------------------------------------

/// Reads the whole log in 1 MiB reads, validating every batch (length and CRC); optionally
/// iterates every record. Returns (bytes, records).
fn read_log_sequentially(log: &Log, iterate_records: bool) -> (usize, usize) {
    let mut from = log.log_start_offset();
    let end = log.log_end_offset();
    let (mut bytes, mut records) = (0, 0);
    while from < end {
        let read = log.read(from, MIB).expect("a sequential read");
        bytes += read.bytes.len();
        for batch in read.batches() {
            let batch = batch.expect("a valid batch");
            from = batch.header().next_offset() as u64;
            if iterate_records {
                for record in batch.records().expect("uncompressed records") {
                    let record = record.expect("a valid record");
                    std::hint::black_box(&record);
                    records += 1;
                }
            }
        }
    }
    (bytes, records)
}

/// The same bytes read with `read()` in 1 MiB chunks from the page cache.
fn read_file_sequentially(path: &Path, buffer: &mut [u8]) -> usize {
    let mut file = File::open(path).expect("the segment file");
    let mut total = 0;
    loop {
        let n = file.read(buffer).expect("a plain read");
        if n == 0 {
            return total;
        }
        std::hint::black_box(&buffer[..n]);
        total += n;
    }
}

fn sequential_read_case(parent: &Path, table: &mut Table) {
    println!("sequential read");
    let dir = log_dir(parent);
    let segment = dir.join("00000000000000000000.log");
    let log = Log::open(&dir, log_config()).expect("the read log opens");
    let mut buffer = vec![0u8; MIB];
    // Warm-up: maps and faults in every page once, and warms the plain reads.
    read_log_sequentially(&log, true);
    read_file_sequentially(&segment, &mut buffer);
    let map = map_file(&segment);
    scan_with_crc(&map);
    let (mut plain, mut scan, mut batches, mut records) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut bytes, mut count) = (0, 0);
    for _ in 0..2 * REPETITIONS + 1 {
        let start = Instant::now();
        let plain_bytes = read_file_sequentially(&segment, &mut buffer);
        plain.push(gb_per_s(plain_bytes, start.elapsed()));
        let start = Instant::now();
        let scanned = scan_with_crc(&map);
        scan.push(gb_per_s(scanned, start.elapsed()));
        let start = Instant::now();
        (bytes, _) = read_log_sequentially(&log, false);
        batches.push(gb_per_s(bytes, start.elapsed()));
        let start = Instant::now();
        (_, count) = read_log_sequentially(&log, true);
        records.push(count as f64 / start.elapsed().as_secs_f64() / 1e6);
    }
    let (plain, scan, batches, records) = (
        median(plain),
        median(scan),
        median(batches),
        median(records),
    );
    table.add(
        format!("sequential read + batch CRC, {} MiB", bytes / MIB),
        format!("{batches:.2} GB/s"),
        format!("{scan:.2} GB/s CRC scan of a mapping"),
        format!("{:.2}", batches / scan),
        ">= 1 GB/s",
    );
    table.add(
        "  (plain read() of the same file, 1 MiB chunks)".to_owned(),
        format!("{plain:.2} GB/s"),
        "-".to_owned(),
        "-".to_owned(),
        "-",
    );
    table.add(
        format!(
            "sequential record iteration, {} M records",
            count / 1_000_000
        ),
        format!("{records:.1} M rec/s"),
        "-".to_owned(),
        format!("{:.2} of goal", records / 10.0),
        ">= 10 M/s",
    );
}

// ---------------------------------------------------------------------------------------------
// c. Random reads
// ---------------------------------------------------------------------------------------------

const RANDOM_READS: usize = 200_000;

/// Latencies in microseconds of `RANDOM_READS` reads of 4 KiB at uniform random offsets, each
/// validating the first batch returned (as a consumer would), sorted; and the reads per second.
fn random_reads(log: &Log, seed: u64) -> (Vec<f64>, f64) {
    let (start_offset, end) = (log.log_start_offset(), log.log_end_offset());
    let mut state = seed | 1;
    let mut latencies = Vec::with_capacity(RANDOM_READS);
    let started = Instant::now();
    for _ in 0..RANDOM_READS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let offset = start_offset + state % (end - start_offset);
        let start = Instant::now();
        let read = log.read(offset, 4096).expect("a random read");
        let first = Batches::new(Bytes::clone(&read.bytes))
            .next()
            .expect("a batch")
            .expect("a valid batch");
        std::hint::black_box(first);
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let per_second = RANDOM_READS as f64 / started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (latencies, per_second)
}

fn random_read_case(root: &Path, big_bytes: usize, table: &mut Table) {
    println!("random reads");
    let small_parent = root.join("small");
    let big_parent = root.join("big");
    build_log(&small_parent, 100 * MIB);
    build_log(&big_parent, big_bytes);
    let small = Log::open(log_dir(&small_parent), log_config()).expect("the small log opens");
    let big = Log::open(log_dir(&big_parent), log_config()).expect("the big log opens");
    // Warm-up: touch every page of both through the log once.
    read_log_sequentially(&small, false);
    read_log_sequentially(&big, false);
    let (mut p50, mut p99, mut rate) = (
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
    );
    for repetition in 0..REPETITIONS {
        for (i, log) in [&small, &big].into_iter().enumerate() {
            let (latencies, per_second) = random_reads(log, 0x9e37_79b9 + repetition as u64);
            p50[i].push(percentile(&latencies, 0.5));
            p99[i].push(percentile(&latencies, 0.99));
            rate[i].push(per_second);
        }
    }
    let [p50_small, p50_big] = p50.map(median);
    let [p99_small, p99_big] = p99.map(median);
    let [rate_small, rate_big] = rate.map(median);
    let describe = |p50: f64, p99: f64, rate: f64| {
        format!(
            "p50 {p50:.2} us, p99 {p99:.2} us, {:.2} M reads/s",
            rate / 1e6
        )
    };
    table.add(
        format!(
            "random read 4 KiB, {} MiB log vs 100 MiB log",
            big_bytes / MIB
        ),
        describe(p50_big, p99_big, rate_big),
        describe(p50_small, p99_small, rate_small),
        format!("{:.2} (p50 big/small)", p50_big / p50_small),
        "<= 2.0",
    );
    drop((small, big));
    remove_log(&log_dir(&small_parent));
    remove_log(&log_dir(&big_parent));
}

// ---------------------------------------------------------------------------------------------
// d. Recovery
// ---------------------------------------------------------------------------------------------

/// Maps the segment file read-only.
fn map_file(path: &Path) -> memmap2::Mmap {
    let file = File::open(path).expect("the segment file");
    // SAFETY: the bench owns the file and nothing writes it while the map lives.
    unsafe { memmap2::Mmap::map(&file) }.expect("the segment mapping")
}

/// The plain floor for a validating scan: check every batch's length and CRC, the work an
/// unclean open and a validating sequential reader cannot avoid. Returns the bytes scanned.
fn scan_with_crc(bytes: &[u8]) -> usize {
    let mut position = 0;
    while position + LOG_OVERHEAD_BYTES <= bytes.len() {
        let Ok(header) = validate(&bytes[position..], usize::MAX) else {
            break;
        };
        position += header.total_bytes();
    }
    position
}

fn timed_open(dir: &Path) -> Duration {
    let start = Instant::now();
    let log = Log::open(dir, log_config()).expect("the recovery log opens");
    let elapsed = start.elapsed();
    log.close().expect("the recovery log closes");
    elapsed
}

fn recovery_case(parent: &Path, table: &mut Table) {
    println!("recovery");
    let dir = log_dir(parent);
    let segment = dir.join("00000000000000000000.log");
    let size = std::fs::metadata(&segment).expect("the segment").len() as usize;
    let crash = || {
        std::fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)).expect("the clean-shutdown marker");
        std::fs::remove_file(dir.join(RECOVERY_POINT_CHECKPOINT)).expect("the recovery point");
    };
    // Warm-up of both paths.
    timed_open(&dir);
    crash();
    timed_open(&dir);
    scan_with_crc(&map_file(&segment));
    let (mut clean, mut unclean, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..REPETITIONS {
        clean.push(timed_open(&dir).as_secs_f64() * 1e3);
        crash();
        unclean.push(timed_open(&dir).as_secs_f64() * 1e3);
        let start = Instant::now();
        scan_with_crc(&map_file(&segment));
        floor.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let (clean, unclean, floor) = (median(clean), median(unclean), median(floor));
    table.add(
        format!("unclean open (recovery scan), {} MiB segment", size / MIB),
        format!("{unclean:.0} ms ({:.2} GB/s)", size as f64 / unclean / 1e6),
        format!("{floor:.0} ms map+CRC scan"),
        format!("{:.2}", floor / unclean),
        "-",
    );
    table.add(
        format!("clean open, {} MiB segment", size / MIB),
        format!("{clean:.1} ms"),
        format!("{unclean:.0} ms unclean"),
        format!("{:.0}x faster", unclean / clean),
        "-",
    );
}

// ---------------------------------------------------------------------------------------------
// e. Compaction
// ---------------------------------------------------------------------------------------------

/// Bytes of the log a pass cleans (all but its last, active, segment).
const COMPACTION_BYTES: usize = 256 * MIB;
const COMPACTION_SEGMENT_BYTES: u32 = 32 << 20;
/// Distinct keys of the first figure: each key written about 23 times, so a pass keeps ~4%.
const COMPACTION_FEW_KEYS: u64 = 100_000;
/// The second figure: every key once, so a pass keeps everything (its worst case).
const COMPACTION_UNIQUE_KEYS: u64 = u64::MAX;
const COMPACTION_BATCH_RECORDS: u64 = 10;

fn compaction_config() -> LogConfig {
    LogConfig {
        retention_ms: None,
        segment_bytes: COMPACTION_SEGMENT_BYTES,
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.0).expect("a ratio"),
        ..LogConfig::default()
    }
}

/// Writes a compacted log of `COMPACTION_BYTES` and a bit more (the active segment) at
/// `<parent>/bench-0`: batches of 10 records of 100 bytes under 8-byte keys cycling over `keys`.
fn build_compaction_log(parent: &Path, keys: u64) -> PathBuf {
    let dir = parent.join(DIR_NAME);
    let log = Log::open(&dir, compaction_config()).expect("the compaction log opens");
    let value = value();
    let mut offset = 0u64;
    while log.size_bytes() < (COMPACTION_BYTES + COMPACTION_SEGMENT_BYTES as usize / 2) as u64 {
        let keys: Vec<[u8; 8]> = (offset..offset + COMPACTION_BATCH_RECORDS)
            .map(|i| (i % keys).to_be_bytes())
            .collect();
        let records: Vec<NewRecord<'_>> = keys
            .iter()
            .map(|key| NewRecord {
                timestamp: BASE_TIMESTAMP,
                key: Some(key),
                value: Some(&value),
                headers: &[],
            })
            .collect();
        log.append_records(&records, 0).expect("a keyed append");
        offset += COMPACTION_BATCH_RECORDS;
    }
    log.close().expect("the compaction log closes");
    dir
}

fn copy_log(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("the copy's directory");
    for entry in std::fs::read_dir(from).expect("the template log") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().expect("a file name");
        if path.is_file() && name != logbus::log::LOCK_FILE {
            std::fs::copy(&path, to.join(name)).expect("a copied file");
        }
    }
}

/// The sealed segments' files: what a pass reads.
fn sealed_segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the log directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    logs.sort();
    logs.pop();
    logs
}

/// One pass over a fresh copy of the template: (cleanable bytes, bytes kept, pass time, time of
/// a plain `read()` of the same bytes).
fn clean_a_copy(template: &Path, run: &Path, buffer: &mut [u8]) -> (u64, u64, Duration, Duration) {
    let dir = run.join(DIR_NAME);
    copy_log(template, &dir);
    let start = Instant::now();
    let input: usize = sealed_segment_files(&dir)
        .iter()
        .map(|path| read_file_sequentially(path, buffer))
        .sum();
    let plain = start.elapsed();
    let log = Log::open(&dir, compaction_config()).expect("the copy opens");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64;
    let start = Instant::now();
    let stats = log.clean(now_ms).expect("a cleaning pass");
    let pass = start.elapsed();
    assert_eq!(stats.outcome, CleanOutcome::Cleaned);
    drop(log);
    remove_log(&dir);
    (input as u64, stats.bytes_written, pass, plain)
}

fn compaction_case(root: &Path, keys: u64, table: &mut Table) {
    let label = if keys == COMPACTION_UNIQUE_KEYS {
        "every key once".to_owned()
    } else {
        format!("{}k keys", keys / 1000)
    };
    println!("compaction, {label}");
    let template_parent = root.join("compaction-template");
    let template = build_compaction_log(&template_parent, keys);
    let run = root.join("compaction-run");
    let mut buffer = vec![0u8; MIB];
    // Warm-up: one pass and the plain reads, untimed.
    clean_a_copy(&template, &run, &mut buffer);
    let (mut cleaned, mut plain) = (Vec::new(), Vec::new());
    let (mut input, mut kept) = (0, 0);
    for _ in 0..REPETITIONS {
        let (bytes, written, pass, read) = clean_a_copy(&template, &run, &mut buffer);
        (input, kept) = (bytes, written);
        cleaned.push(bytes as f64 / pass.as_secs_f64() / 1e6);
        plain.push(bytes as f64 / read.as_secs_f64() / 1e6);
    }
    remove_log(&template);
    let (cleaned, plain) = (median(cleaned), median(plain));
    table.add(
        format!(
            "compaction pass, {} MiB, {label} ({:.0}% kept)",
            input as usize / MIB,
            kept as f64 * 100.0 / input as f64
        ),
        format!("{cleaned:.0} MB/s"),
        format!("{plain:.0} MB/s plain read()"),
        format!("{:.3}", cleaned / plain),
        "-",
    );
}

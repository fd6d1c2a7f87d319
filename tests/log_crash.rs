//! Crash recovery of the log engine.
//!
//! A crash is simulated by copying the partition directory while the `Log` is still open (no
//! clean-shutdown marker, the active segment pre-allocated with a zero tail, indexes mid-write).
//! What `flush()` made durable must survive; everything after the last flush may be lost, torn or
//! garbled, so the copy's active segment is cut at every byte of the unflushed tail (with and
//! without the zero-filled pre-allocated tail) and, separately, garbled there. Each variant must
//! reopen to a prefix of what was written that holds every flushed record, reads back record by
//! record, and has indexes that agree with a scan.
//!
//! Damage before the recovery point (flushed data, sealed segments) is different: it must be
//! reported as `Corrupt` and nothing may be cut.
//!
//! Each cut variant costs an open and a close (a dozen fsyncs), so CI cuts one crash image of one
//! workload at every byte (a few hundred variants) and garbles three images of two workloads;
//! `LOGBUS_CRASH_SEEDS=N` runs N workloads and `LOGBUS_CRASH_IMAGES=M` cuts M images of each.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use logbus::log::{
    EpochEntry, FlushPolicy, Log, LogConfig, LogError, NewRecord, CLEAN_SHUTDOWN_FILE, LOCK_FILE,
    RECOVERY_POINT_CHECKPOINT,
};
use logbus::record::{BatchHeader, LOG_OVERHEAD_BYTES};

const DIR_NAME: &str = "crash-0";
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Workloads to crash.
fn seeds(default: u64) -> u64 {
    env_or("LOGBUS_CRASH_SEEDS", default)
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        segment_index_bytes: 4096,
        flush: FlushPolicy::OsDecides,
        // Every flush writes the recovery point, so the copy's checkpoint is the flushed offset.
        checkpoint_interval_ms: 0,
        ..LogConfig::default()
    }
}

/// A small deterministic generator (xorshift64*), so a failure replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The value at `offset`: a function of the offset, so any read can be checked on its own.
fn value_of(offset: u64) -> Vec<u8> {
    let len = (offset * 7 % 40) as usize;
    let mut value = format!("value-{offset}-").into_bytes();
    value.resize(value.len() + len, b'a' + (offset % 26) as u8);
    value
}

fn key_of(offset: u64) -> Option<Vec<u8>> {
    (!offset.is_multiple_of(3)).then(|| offset.to_be_bytes().to_vec())
}

fn timestamp_of(offset: u64) -> i64 {
    // Out of order, so the time index has work to do.
    1_000 + (offset * 37 % 500) as i64
}

/// Appends `count` records at the log end; returns the offset after them.
fn append(log: &Log, count: u64, epoch: i32) -> u64 {
    let base = log.log_end_offset();
    let values: Vec<(Option<Vec<u8>>, Vec<u8>)> = (base..base + count)
        .map(|offset| (key_of(offset), value_of(offset)))
        .collect();
    let records: Vec<NewRecord<'_>> = (base..)
        .zip(&values)
        .map(|(offset, (key, value))| NewRecord {
            timestamp: timestamp_of(offset),
            key: key.as_deref(),
            value: Some(value),
            headers: &[],
        })
        .collect();
    let info = log.append_records(&records, epoch).unwrap();
    assert_eq!(info.base_offset, base);
    info.last_offset + 1
}

/// Copies the regular files of `from` into a new directory `to` (the lock file is not data).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if path.is_file() && name != LOCK_FILE {
            fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

/// Every file of a directory and its bytes (the lock file aside).
fn snapshot_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap() != LOCK_FILE)
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect()
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    logs.sort();
    logs
}

/// Positions and headers of the batches at the start of a segment file, up to the first bytes
/// that are not a batch header (the zero tail of a pre-allocated file).
fn batches_in(bytes: &[u8]) -> Vec<(usize, BatchHeader)> {
    let mut out = Vec::new();
    let mut position = 0;
    while let Ok(header) = BatchHeader::decode(&bytes[position..]) {
        if position + header.total_bytes() > bytes.len() {
            break;
        }
        out.push((position, header));
        position += header.total_bytes();
    }
    out
}

/// A crash image: the copied directory and what the log had written and flushed at that moment.
struct Crash {
    dir: PathBuf,
    written_end: u64,
    flushed_end: u64,
    log_start: u64,
    epochs: Vec<EpochEntry>,
}

impl Crash {
    fn active_segment(&self) -> PathBuf {
        log_files(&self.dir).pop().unwrap()
    }

    /// The active segment's batches, and the byte position where the unflushed ones start.
    fn active_layout(&self) -> (Vec<(usize, BatchHeader)>, usize) {
        let bytes = fs::read(self.active_segment()).unwrap();
        let batches = batches_in(&bytes);
        let flushed_bytes = batches
            .iter()
            .find(|(_, header)| header.base_offset as u64 >= self.flushed_end)
            .map_or_else(
                || batches.last().map_or(0, |(p, h)| p + h.total_bytes()),
                |(position, _)| *position,
            );
        (batches, flushed_bytes)
    }

    /// A fresh copy of the crash image to damage and open.
    fn variant(&self, root: &Path, label: &str) -> PathBuf {
        let dir = root.join(label).join(DIR_NAME);
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        copy_dir(&self.dir, &dir);
        dir
    }
}

/// Opens a damaged image and checks it recovered to a prefix of the written records that ends at
/// `expected_end` (when known) and holds at least every flushed record.
fn check_recovers(dir: &Path, crash: &Crash, expected_end: Option<u64>, context: &str) {
    let log = Log::open(dir, config()).unwrap_or_else(|e| panic!("{context}: open: {e:?}"));
    let end = log.log_end_offset();
    if let Some(expected) = expected_end {
        assert_eq!(end, expected, "{context}: log end");
    }
    assert!(
        end >= crash.flushed_end,
        "{context}: lost flushed records: end {end} < flushed {}",
        crash.flushed_end
    );
    assert!(
        end <= crash.written_end,
        "{context}: end {end} beyond what was written"
    );
    assert_eq!(
        log.recovery_point(),
        end,
        "{context}: recovered data is flushed"
    );
    // The log start and the epochs were checkpointed when they changed; only what the crash cut
    // from the end is gone.
    let start = crash.log_start.min(end);
    assert_eq!(log.log_start_offset(), start, "{context}: log start");
    let mut epochs: Vec<EpochEntry> = crash
        .epochs
        .iter()
        .copied()
        .filter(|e| e.start_offset < end)
        .collect();
    if let Some(spanning) = epochs.iter().rposition(|e| e.start_offset <= start) {
        epochs.drain(..spanning);
        epochs[0].start_offset = start;
    }
    assert_eq!(log.leader_epochs(), epochs, "{context}: epochs");
    check_contents(&log, context);
    // The recovered log takes appends where it ended.
    let epoch = log.leader_epochs().last().map_or(0, |e| e.epoch);
    let next = append(&log, 2, epoch);
    assert_eq!(next, end + 2, "{context}");
    check_contents(&log, context);
}

/// Reads every record from the log start in one pass and checks it against `value_of`; then
/// checks each offset is found through the index, and `offset_for_timestamp` against a scan.
fn check_contents(log: &Log, context: &str) {
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    let mut timestamps = Vec::new();
    let mut next = start;
    while next < end {
        let read = log.read(next, 4096).unwrap();
        assert!(!read.bytes.is_empty(), "{context}: nothing at {next}");
        for batch in read.batches() {
            let batch = batch.unwrap_or_else(|e| panic!("{context}: batch: {e}"));
            for record in batch.records().unwrap() {
                let record = record.unwrap();
                let offset = record.offset as u64;
                if offset < next {
                    continue;
                }
                assert_eq!(offset, next, "{context}: offsets are dense and in order");
                assert_eq!(
                    record.value.as_deref(),
                    Some(&value_of(offset)[..]),
                    "{context}"
                );
                assert_eq!(
                    record.key.as_deref(),
                    key_of(offset).as_deref(),
                    "{context}"
                );
                assert_eq!(record.timestamp, timestamp_of(offset), "{context}");
                timestamps.push((offset, record.timestamp));
                next += 1;
            }
        }
    }
    for offset in start..end {
        let read = log.read(offset, 1).unwrap();
        let batch = read.batches().next().unwrap().unwrap();
        let header = batch.header();
        assert!(
            header.base_offset as u64 <= offset && offset <= header.last_offset() as u64,
            "{context}: read({offset}) returned batch {}..={}",
            header.base_offset,
            header.last_offset()
        );
    }
    for target in [0, 1_000, 1_100, 1_250, 1_400, 1_499, 1_500] {
        let scanned = timestamps.iter().find(|&&(_, ts)| ts >= target).copied();
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            scanned,
            "{context}: offset_for_timestamp({target})"
        );
    }
}

/// Runs a seeded workload of appends, flushes and rolls (by size), and takes a crash image after
/// each operation that leaves an unflushed tail.
fn crash_images(root: &Path, seed: u64) -> Vec<Crash> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let live = root.join("live").join(DIR_NAME);
    let log = Log::open(&live, config()).unwrap();
    let mut crashes = Vec::new();
    let mut epoch = 0;
    for step in 0..40 {
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        match rng.below(20) {
            0..=13 => {
                if rng.below(8) == 0 {
                    epoch += 1;
                }
                append(&log, 1 + rng.below(4), epoch);
            }
            14..=17 => log.flush().unwrap(),
            // A follower's truncation; the offsets are written again with the same values.
            18 if end > start + 4 => {
                log.truncate_to(end - 1 - rng.below(4)).unwrap();
            }
            _ => log
                .delete_records_before(start + rng.below(end - start + 1))
                .unwrap(),
        }
        let flushed_end = log.recovery_point();
        let written_end = log.log_end_offset();
        // Crash images of the latest steps only: each costs hundreds of opens.
        if written_end > flushed_end && step >= 30 {
            let dir = root.join(format!("crash-{step}")).join(DIR_NAME);
            copy_dir(&live, &dir);
            crashes.push(Crash {
                dir,
                written_end,
                flushed_end,
                log_start: log.log_start_offset(),
                epochs: log.leader_epochs(),
            });
        }
    }
    crashes
}

#[test]
fn a_torn_tail_is_cut_at_every_byte_and_flushed_records_survive() {
    let images = env_or("LOGBUS_CRASH_IMAGES", 1) as usize;
    for seed in 0..seeds(1) {
        let root = tempfile::tempdir().unwrap();
        let crashes = crash_images(root.path(), seed);
        assert!(!crashes.is_empty(), "seed {seed} made no crash image");
        // The latest images first: they come after the most rolls and flushes.
        for (n, crash) in crashes.iter().rev().enumerate().take(images) {
            let (batches, flushed_bytes) = crash.active_layout();
            let data_end = batches.last().map_or(0, |(p, h)| p + h.total_bytes());
            assert!(data_end > flushed_bytes, "the image has an unflushed tail");
            let full_len = fs::metadata(crash.active_segment()).unwrap().len();
            let original = fs::read(crash.active_segment()).unwrap();
            for cut in flushed_bytes..=data_end {
                for zero_tail in [false, true] {
                    let context = format!("seed {seed} image {n} cut {cut} zero tail {zero_tail}");
                    let dir = crash.variant(root.path(), "variant");
                    let segment = log_files(&dir).pop().unwrap();
                    let file = fs::OpenOptions::new().write(true).open(&segment).unwrap();
                    file.set_len(cut as u64).unwrap();
                    if zero_tail {
                        // What a crash leaves of a pre-allocated file: its length, zeros inside.
                        file.set_len(full_len.max(cut as u64 + 1)).unwrap();
                    }
                    drop(file);
                    // Whole batches that are intact survive; the rest goes. (Zeros can restore a
                    // cut batch whose last bytes were zeros: it is intact, and kept.)
                    let damaged = fs::read(&segment).unwrap();
                    let expected_end = intact_end(&batches, &original, &damaged, crash);
                    check_recovers(&dir, crash, Some(expected_end), &context);
                }
            }
        }
    }
}

/// The offset after the last batch of the prefix of batches the damage left byte for byte as they
/// were written.
fn intact_end(
    batches: &[(usize, BatchHeader)],
    original: &[u8],
    damaged: &[u8],
    crash: &Crash,
) -> u64 {
    // An active segment without batches starts at the flushed end (a roll flushes what precedes).
    let mut end = batches
        .first()
        .map_or(crash.flushed_end, |(_, h)| h.base_offset as u64);
    for (position, header) in batches {
        let range = *position..position + header.total_bytes();
        if damaged.get(range.clone()) != Some(&original[range]) {
            break;
        }
        end = header.next_offset() as u64;
    }
    end
}

#[test]
fn a_garbled_tail_is_cut_at_the_first_damaged_batch() {
    let mut checked = 0;
    for seed in 0..seeds(2) {
        let root = tempfile::tempdir().unwrap();
        let crashes = crash_images(root.path(), seed + 100);
        let mut rng = Rng(seed + 7);
        for (n, crash) in crashes.iter().enumerate().take(3) {
            let (batches, flushed_bytes) = crash.active_layout();
            let unflushed: Vec<&(usize, BatchHeader)> = batches
                .iter()
                .filter(|(p, _)| *p >= flushed_bytes)
                .collect();
            for &&(position, header) in &unflushed {
                let total = header.total_bytes();
                // The base offset and the leader epoch lie outside the CRC (Kafka's format), so
                // a flipped bit there is not detectable; every other byte is.
                let covered: Vec<usize> = (0..total)
                    .filter(|&i| !(0..8).contains(&i) && !(12..16).contains(&i))
                    .collect();
                for damage in ["flip", "zeros", "random"] {
                    let at = position + covered[rng.below(covered.len() as u64) as usize];
                    let context = format!("seed {seed} image {n} {damage} at byte {at}");
                    let dir = crash.variant(root.path(), "variant");
                    let segment = log_files(&dir).pop().unwrap();
                    let original = fs::read(&segment).unwrap();
                    let mut bytes = original.clone();
                    match damage {
                        "flip" => bytes[at] ^= 1 << rng.below(8),
                        "zeros" => {
                            let end = (at + 1 + rng.below(64) as usize).min(bytes.len());
                            bytes[at..end].fill(0);
                        }
                        _ => {
                            let end = (at + 1 + rng.below(64) as usize).min(bytes.len());
                            for byte in &mut bytes[at..end] {
                                let old = *byte;
                                while *byte == old {
                                    *byte = rng.next() as u8;
                                }
                            }
                        }
                    }
                    let changed = (0..total)
                        .filter(|i| !(0..8).contains(i) && !(12..16).contains(i))
                        .any(|i| bytes[position + i] != original[position + i]);
                    if !changed {
                        // Zeros over bytes that were zero already: no damage to look for.
                        continue;
                    }
                    fs::write(&segment, &bytes).unwrap();
                    check_recovers(&dir, crash, Some(header.base_offset as u64), &context);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} garbled images");
}

/// Writes the recovery point checkpoint in Kafka's format.
fn write_recovery_point(dir: &Path, offset: u64) {
    fs::write(
        dir.join(RECOVERY_POINT_CHECKPOINT),
        format!("0\n1\n{} {offset}\n", DIR_NAME.replace('-', " ")),
    )
    .unwrap();
}

/// Flips one CRC-covered byte of the batch at `position` in `segment`.
fn flip_inside_batch(segment: &Path, position: usize) {
    let mut bytes = fs::read(segment).unwrap();
    bytes[position + LOG_OVERHEAD_BYTES + 20] ^= 0x10;
    fs::write(segment, bytes).unwrap();
}

fn assert_corrupt_and_untouched(dir: &Path, context: &str) {
    let before = snapshot_files(dir);
    let error = Log::open(dir, config()).unwrap_err();
    assert!(
        matches!(error, LogError::Corrupt { .. }),
        "{context}: {error:?}"
    );
    let after = snapshot_files(dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{context}: files"
    );
    for (name, bytes) in &before {
        assert!(after[name] == *bytes, "{context}: {name} changed");
    }
}

/// A closed log of several sealed segments, and the offsets where its segments start.
fn closed_log(root: &Path) -> (PathBuf, Vec<u64>) {
    let dir = root.join("closed").join(DIR_NAME);
    let log = Log::open(&dir, config()).unwrap();
    while log.segment_count() < 4 {
        append(&log, 3, 0);
    }
    let bases = log.segment_base_offsets();
    log.close().unwrap();
    (dir, bases)
}

#[test]
fn damage_in_a_sealed_segment_is_corrupt_and_nothing_is_cut() {
    let root = tempfile::tempdir().unwrap();
    let (dir, bases) = closed_log(root.path());
    let logs = log_files(&dir);
    // 1. Not clean, recovery point inside segment 1, after its damaged first batch: scanned.
    {
        let copy = root.path().join("lowered").join(DIR_NAME);
        copy_dir(&dir, &copy);
        fs::remove_file(copy.join(CLEAN_SHUTDOWN_FILE)).unwrap();
        write_recovery_point(&copy, bases[2] - 1);
        flip_inside_batch(&copy.join(logs[1].file_name().unwrap()), 0);
        assert_corrupt_and_untouched(&copy, "recovery point lowered into the sealed segment");
    }
    // 2. Clean, but the sealed segment's offset index is gone: rebuilt, with validation.
    {
        let copy = root.path().join("no-index").join(DIR_NAME);
        copy_dir(&dir, &copy);
        let segment = copy.join(logs[1].file_name().unwrap());
        fs::remove_file(segment.with_extension("index")).unwrap();
        let bytes = fs::read(&segment).unwrap();
        let last = batches_in(&bytes).last().unwrap().0;
        flip_inside_batch(&segment, last);
        assert_corrupt_and_untouched(&copy, "sealed segment without its index");
    }
    // Control: the same steps without the damage open fine and keep everything.
    {
        let copy = root.path().join("control").join(DIR_NAME);
        copy_dir(&dir, &copy);
        fs::remove_file(copy.join(CLEAN_SHUTDOWN_FILE)).unwrap();
        write_recovery_point(&copy, bases[2] - 1);
        fs::remove_file(
            copy.join(logs[1].file_name().unwrap())
                .with_extension("index"),
        )
        .unwrap();
        let log = Log::open(&copy, config()).unwrap();
        assert_eq!(log.segment_base_offsets(), bases);
        check_contents(&log, "control");
        assert!(copy
            .join(logs[1].file_name().unwrap())
            .with_extension("index")
            .exists());
    }
}

#[test]
fn damage_before_the_recovery_point_of_the_active_segment_is_corrupt() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live").join(DIR_NAME);
    let log = Log::open(&live, config()).unwrap();
    append(&log, 2, 0);
    append(&log, 3, 0);
    log.flush().unwrap();
    append(&log, 2, 0);
    let flushed = log.recovery_point();
    assert_eq!(flushed, 5);
    let crash = root.path().join("crash").join(DIR_NAME);
    copy_dir(&live, &crash);
    let crash2 = root.path().join("crash2").join(DIR_NAME);
    copy_dir(&live, &crash2);
    drop(log);
    let segment = log_files(&crash).pop().unwrap();
    let bytes = fs::read(&segment).unwrap();
    let batches = batches_in(&bytes);
    assert_eq!(batches.len(), 3);
    // The second batch was flushed: damage there is corruption, not a torn tail.
    flip_inside_batch(&segment, batches[1].0);
    assert_corrupt_and_untouched(&crash, "flushed batch of the active segment");
    // The same damage in the unflushed third batch is a torn tail: cut, and the log opens.
    let crash = crash2;
    let segment = log_files(&crash).pop().unwrap();
    flip_inside_batch(&segment, batches[2].0);
    let log = Log::open(&crash, config()).unwrap();
    assert_eq!(log.log_end_offset(), 5);
}

#[test]
fn kafka_python_segment_opens_with_rebuilt_indexes() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sample-0");
    fs::create_dir(&dir).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/kafka-record-batches/segment/00000000000000000000.log");
    fs::copy(&source, dir.join("00000000000000000000.log")).unwrap();
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), 200);
    let mut next = 0;
    let mut epochs = Vec::new();
    let read = log.read(0, usize::MAX).unwrap();
    for batch in read.batches() {
        let batch = batch.unwrap();
        epochs.push(batch.header().partition_leader_epoch);
        for record in batch.records().unwrap() {
            assert_eq!(record.unwrap().offset, next);
            next += 1;
        }
    }
    assert_eq!(next, 200);
    assert_eq!(epochs.len(), 12);
    assert_eq!(&epochs[..6], &[0, 0, 0, 0, 1, 1]);
    assert!(dir.join("00000000000000000000.index").exists());
    assert!(dir.join("00000000000000000000.timeindex").exists());
    for offset in [0, 1, 99, 150, 199] {
        let read = log.read(offset, 1).unwrap();
        let header = *read.batches().next().unwrap().unwrap().header();
        assert!(header.base_offset <= offset as i64 && offset as i64 <= header.last_offset());
    }
    // The bytes on disk are untouched Kafka bytes: the file still holds exactly the sample.
    drop(read);
    log.close().unwrap();
    assert_eq!(
        fs::read(dir.join("00000000000000000000.log")).unwrap(),
        fs::read(&source).unwrap()
    );
}

// Regression: recovery and `truncate_to` rebuild the active segment's indexes in files sized by
// the current `segment_index_bytes`. A segment written under a larger `segment_index_bytes` (or a
// larger `index_interval_bytes`) needs more entries than that, and the rebuild panicked
// ("appending to a full index") when opening a crashed log or truncating. The rebuilt files are
// now sized for the entries the segment needs.
#[test]
fn indexes_rebuilt_under_a_smaller_index_size_hold_every_entry() {
    let root = tempfile::tempdir().unwrap();
    let written_with = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 64,
        segment_index_bytes: 1 << 16,
        ..LogConfig::default()
    };
    let reopened_with = LogConfig {
        segment_index_bytes: 64,
        ..written_with.clone()
    };
    let live = root.path().join("live").join(DIR_NAME);
    let crash = root.path().join("crash").join(DIR_NAME);
    {
        let log = Log::open(&live, written_with).unwrap();
        for _ in 0..60 {
            append(&log, 2, 0);
        }
        assert_eq!(log.segment_count(), 1);
        copy_dir(&live, &crash);
    }
    // A crashed log: its active segment is scanned and indexed afresh.
    {
        let log = Log::open(&crash, reopened_with.clone()).unwrap();
        assert_eq!(log.log_end_offset(), 120);
        check_contents(&log, "crashed, smaller index");
        append(&log, 2, 0);
    }
    // A cleanly closed log: truncation copies the kept prefix and indexes it afresh.
    let log = Log::open(&live, reopened_with).unwrap();
    assert_eq!(log.truncate_to(101).unwrap(), 100);
    check_contents(&log, "truncated, smaller index");
    append(&log, 2, 0);
    assert_eq!(log.log_end_offset(), 102);
}

/// What each flush policy leaves unflushed, i.e. what a crash may take: nothing with
/// `EveryAppend`; with `Every`, at most `messages - 1` records and nothing older than
/// `interval_ms` once `flush_if_due` runs.
#[test]
fn each_flush_policy_advances_the_recovery_point_as_documented() {
    use logbus::clock::ManualClock;
    use std::sync::Arc;

    let root = tempfile::tempdir().unwrap();
    let every_append = Log::open(
        root.path().join("every-0"),
        LogConfig {
            flush: FlushPolicy::EveryAppend,
            ..config()
        },
    )
    .unwrap();
    for _ in 0..5 {
        append(&every_append, 2, 0);
        assert_eq!(every_append.recovery_point(), every_append.log_end_offset());
    }

    let clock = ManualClock::new(10_000);
    let batched = Log::open_with_clock(
        root.path().join("batched-0"),
        LogConfig {
            flush: FlushPolicy::Every {
                messages: 3,
                interval_ms: 500,
            },
            ..config()
        },
        Arc::new(clock.clone()),
    )
    .unwrap();
    append(&batched, 2, 0);
    assert_eq!(batched.recovery_point(), 0, "2 of 3 messages");
    append(&batched, 1, 0);
    assert_eq!(batched.recovery_point(), 3, "3 messages flush");
    append(&batched, 1, 0);
    batched.flush_if_due().unwrap();
    assert_eq!(batched.recovery_point(), 3, "not due yet");
    clock.advance_ms(499);
    batched.flush_if_due().unwrap();
    assert_eq!(batched.recovery_point(), 3, "not due yet");
    clock.advance_ms(1);
    batched.flush_if_due().unwrap();
    assert_eq!(batched.recovery_point(), 4, "interval elapsed");

    let os_decides = Log::open(root.path().join("os-0"), config()).unwrap();
    append(&os_decides, 3, 0);
    assert_eq!(os_decides.recovery_point(), 0);
    os_decides.roll().unwrap();
    assert_eq!(
        os_decides.recovery_point(),
        3,
        "a roll flushes the sealed segment"
    );
}

// Regression: a crash inside `truncate_to` into a sealed segment, after the kept prefix was
// renamed over the segment but before the later segments were unlinked (the recovery point
// checkpoint already says the new end), reopened with the later segments back: the truncated
// records resurrected after a hole of missing offsets (log end 48 instead of 3 here, and reads in
// the hole got the next segment's first batch). Recovery now ends the log at a scanned sealed
// segment that stops short of the next segment's base.
#[test]
fn a_truncation_interrupted_before_the_later_segments_went_does_not_resurrect_them() {
    let root = tempfile::tempdir().unwrap();
    let (dir, bases) = closed_log(root.path());
    let crash = root.path().join("crash").join(DIR_NAME);
    copy_dir(&dir, &crash);
    fs::remove_file(crash.join(CLEAN_SHUTDOWN_FILE)).unwrap();
    let first = log_files(&crash).remove(0);
    let bytes = fs::read(&first).unwrap();
    let (position, header) = batches_in(&bytes)[1];
    let new_end = header.base_offset as u64;
    fs::write(&first, &bytes[..position]).unwrap();
    write_recovery_point(&crash, new_end);
    let log = Log::open(&crash, config()).unwrap();
    assert_eq!(log.log_end_offset(), new_end);
    assert_eq!(log.segment_base_offsets(), vec![bases[0]]);
    check_contents(&log, "interrupted truncation");
}

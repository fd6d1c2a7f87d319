//! Log compaction and failure: a crash at every step of a pass (the directory copied where the
//! pass changes files), a crash after a pass with the recovery point on disk lagging, a swap that
//! fails before its commit, readers during passes, and damaged leftovers on open.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use logbus::clock::{Clock, ManualClock};
use logbus::log::{
    CleanOutcome, CleanStep, Log, LogConfig, LogError, NewRecord, CLEANER_CHECKPOINT,
    CLEANER_SWAP_MANIFEST, RECOVERY_POINT_CHECKPOINT,
};

#[path = "support/compaction.rs"]
mod support;
use support::{
    config, copy_dir, fill, open, read_all, value_of, Seen, DIR_NAME, RETENTION_MS, START_MS,
};

// ---------------------------------------------------------------------------------------------
// Crashes and failures during a pass
// ---------------------------------------------------------------------------------------------

/// A pass is crashed at every point where it changes files (the directory is copied there, as a
/// crash that lost nothing written would leave it). Each copy must open to the log before the
/// pass or after it, never a mix, never less: before the commit the old log, after it the new.
#[test]
fn a_crash_at_every_step_of_a_pass_loses_nothing() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let dir = root.path().join(DIR_NAME);
    // Small segments: the pass replaces several and writes several (some old ones go whole).
    let small = LogConfig {
        segment_bytes: 700,
        ..config(1 << 20)
    };
    let log = open(&dir, small.clone(), &clock);
    fill(&log, 12, 8, 5);
    // A first pass stamps tombstones; the crashed one removes them and more.
    log.clean(clock.now_ms()).unwrap();
    fill(&log, 12, 3, 5);
    clock.advance_ms(RETENTION_MS as i64);
    let (before, _) = read_all(&log);

    let mut images: Vec<(CleanStep, PathBuf)> = Vec::new();
    let mut committed = false;
    let stats = log
        .clean_observed(clock.now_ms(), &mut |step| {
            committed |= step == CleanStep::Committed;
            let image = root
                .path()
                .join(format!("image{}", images.len()))
                .join(DIR_NAME);
            copy_dir(&dir, &image);
            images.push((step, image));
        })
        .unwrap();
    assert!(committed);
    assert!(stats.segments_replaced > 1 && stats.segments_written > 1);
    assert!(stats.tombstones_removed > 0);
    let (after, _) = read_all(&log);
    assert_ne!(before, after);
    let steps: Vec<CleanStep> = images.iter().map(|(step, _)| *step).collect();
    assert!(steps.contains(&CleanStep::OldSegmentDeleted), "{steps:?}");

    // Committed once the manifest is written and the last `.cleaned` file is renamed: the
    // directory fsync after that only makes it durable.
    let last_rename = steps
        .iter()
        .rposition(|step| *step == CleanStep::RenamedToSwap)
        .unwrap();
    for (i, (step, image)) in images.iter().enumerate() {
        let after_commit = i >= last_rename;
        let reopened = open(image, small.clone(), &clock);
        let (records, _) = read_all(&reopened);
        let expected = if after_commit { &after } else { &before };
        assert_eq!(&records, expected, "crash after {step:?}");
        for leftover in fs::read_dir(image).unwrap() {
            let name = leftover.unwrap().file_name().into_string().unwrap();
            assert!(
                !name.ends_with(".cleaned")
                    && !name.ends_with(".swap")
                    && name != CLEANER_SWAP_MANIFEST,
                "{name} left after {step:?}"
            );
        }
        // Cleaning the reopened log gives the same log as the pass that was crashed.
        reopened.clean(clock.now_ms()).unwrap();
        assert_eq!(read_all(&reopened).0, after, "cleaned again after {step:?}");
    }
}

/// Recovery re-checks the segments from the recovery point on, and takes a sealed segment that
/// ends before the next one starts for the trace of an interrupted truncation (deleting what
/// follows). A cleaned segment ends so whenever its last records were removed, and the recovery
/// point on disk may lag (it is written every `checkpoint_interval_ms`): the cleaner moves it past
/// what it rewrote, or a crash after a pass deleted every later segment.
#[test]
fn a_crash_after_a_pass_keeps_segments_that_end_in_a_gap() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let dir = root.path().join(DIR_NAME);
    let lagging = LogConfig {
        checkpoint_interval_ms: u64::MAX / 2,
        ..config(1 << 20)
    };
    let log = open(&dir, lagging.clone(), &clock);
    fill(&log, 3, 4, 4);
    let on_disk = fs::read(dir.join(RECOVERY_POINT_CHECKPOINT)).unwrap();
    // A roll writes the recovery point only when it is behind the new segment: after a flush
    // it is not, and the one on disk stays where the last roll left it.
    let append = |key: &str, value: Option<&[u8]>| {
        let record = NewRecord {
            timestamp: START_MS,
            key: Some(key.as_bytes()),
            value,
            headers: &[],
        };
        log.append_records(&[record], 0).unwrap();
    };
    for value in [Some(&b"v"[..]), None] {
        for key in ["key-0", "key-1", "key-2"] {
            append(key, value);
        }
        log.flush().unwrap();
        log.roll().unwrap();
    }
    append("key-9", Some(b"in the active segment"));
    log.flush().unwrap();
    assert_eq!(
        fs::read(dir.join(RECOVERY_POINT_CHECKPOINT)).unwrap(),
        on_disk,
        "the recovery point on disk lags"
    );
    // The tombstones shadow everything, then expire: the cleaned segment is empty, its end far
    // below the next segment's base.
    log.clean(clock.now_ms()).unwrap();
    clock.advance_ms(RETENTION_MS as i64);
    log.clean(clock.now_ms()).unwrap();
    let cleaned = read_all(&log).0;
    assert_eq!(cleaned.len(), 1);
    let crashed = root.path().join("crash").join(DIR_NAME);
    copy_dir(&dir, &crashed);
    let reopened = open(&crashed, lagging, &clock);
    assert_eq!(read_all(&reopened).0, cleaned);
}

/// A swap that fails before its commit (here a rename refused because a directory is in the way)
/// changes nothing: the log keeps its segments, stays writable, and cleans later.
#[test]
fn a_swap_that_fails_before_its_commit_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let dir = root.path().join(DIR_NAME);
    let log = open(&dir, config(1 << 20), &clock);
    fill(&log, 4, 6, 7);
    let before = read_all(&log);
    let segments = log.segment_base_offsets();
    let obstacle = dir.join("00000000000000000000.index.swap");
    let failed = log.clean_observed(clock.now_ms(), &mut |step| {
        if step == CleanStep::CleanedWritten {
            fs::create_dir(&obstacle).unwrap();
            fs::write(obstacle.join("in-the-way"), b"x").unwrap();
        }
    });
    assert!(matches!(failed, Err(LogError::Io { .. })), "{failed:?}");
    assert_eq!(read_all(&log), before);
    assert_eq!(log.segment_base_offsets(), segments);
    assert!(!dir.join(CLEANER_SWAP_MANIFEST).exists());
    fs::remove_dir_all(&obstacle).unwrap();
    fill(&log, 4, 1, 1000);
    let stats = log.clean(clock.now_ms()).unwrap();
    assert_eq!(stats.outcome, CleanOutcome::Cleaned);
    drop(log);
    let log = open(&dir, config(1 << 20), &clock);
    for entry in fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            !name.ends_with(".cleaned") && !name.ends_with(".swap"),
            "{name}"
        );
    }
    // Below the active segment at 21 the latest record of each of the 4 keys (one of them a
    // tombstone, kept for the retention); in it, offsets 21 to 27.
    assert_eq!(read_all(&log).0.len(), 4 + 7);
}

// ---------------------------------------------------------------------------------------------
// Readers during a pass
// ---------------------------------------------------------------------------------------------

/// The record written at `offset` by `append_round`: a function of the offset.
fn round_record(offset: u64) -> (Vec<u8>, Option<Vec<u8>>, i64) {
    let key = format!("key-{}", offset % 20).into_bytes();
    let value = (!offset.is_multiple_of(9)).then(|| value_of(offset));
    (key, value, START_MS + offset as i64)
}

/// Appends one record for each of 20 keys and rolls.
fn append_round(log: &Log) {
    for _ in 0..20 {
        let (key, value, timestamp) = round_record(log.log_end_offset());
        let record = NewRecord {
            timestamp,
            key: Some(&key),
            value: value.as_deref(),
            headers: &[],
        };
        log.append_records(&[record], 0).unwrap();
    }
    log.roll().unwrap();
}

/// Readers scan the log from its start, and look offsets up by time, again and again while
/// passes swap segments under them (segments of a reopened log and cleaned ones are mapped on
/// first read, so a reader may map one after the swap replaced its file): every batch decodes,
/// every record is the one written at its offset, no read fails.
#[test]
fn readers_during_passes_see_whole_batches_of_the_right_records() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let dir = root.path().join(DIR_NAME);
    {
        let log = open(&dir, config(1 << 20), &clock);
        for _ in 0..20 {
            append_round(&log);
        }
    }
    let log = Arc::new(open(&dir, config(1 << 20), &clock));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(3));
    let readers: Vec<_> = (0..2u64)
        .map(|reader| {
            let (log, stop, start) = (Arc::clone(&log), Arc::clone(&stop), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut scans = 0u64;
                while !stop.load(Ordering::Acquire) || scans == 0 {
                    if (scans + reader).is_multiple_of(2) {
                        for record in read_all(&log).0 {
                            let (key, value, timestamp) = round_record(record.offset);
                            assert_eq!(record.key, Some(key));
                            assert_eq!(record.value, value);
                            assert_eq!(record.timestamp, timestamp);
                        }
                    } else {
                        let wanted = START_MS + (scans * 37 % 800) as i64;
                        if let Some((offset, timestamp)) = log.offset_for_timestamp(wanted).unwrap()
                        {
                            assert!(timestamp >= wanted);
                            assert_eq!(round_record(offset).2, timestamp);
                        }
                    }
                    scans += 1;
                }
                scans
            })
        })
        .collect();
    start.wait();
    for _ in 0..8 {
        let stats = log.clean(clock.now_ms()).unwrap();
        assert_eq!(stats.outcome, CleanOutcome::Cleaned);
        append_round(&log);
        clock.advance_ms(RETENTION_MS as i64 / 2);
    }
    stop.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    let (records, _) = read_all(&log);
    let first_dirty = log.first_dirty_offset();
    let below: Vec<&Seen> = records.iter().filter(|r| r.offset < first_dirty).collect();
    let mut keys: Vec<&Vec<u8>> = below.iter().map(|r| r.key.as_ref().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        below.len(),
        "at most one record per key was cleaned"
    );
}

// ---------------------------------------------------------------------------------------------
// Damaged leftovers on open
// ---------------------------------------------------------------------------------------------

fn damaged_dir(root: &Path, clock: &ManualClock) -> (PathBuf, Vec<Seen>) {
    let dir = root.join(DIR_NAME);
    let log = open(&dir, config(1 << 20), clock);
    fill(&log, 5, 6, 8);
    log.clean(clock.now_ms()).unwrap();
    let records = read_all(&log).0;
    log.close().unwrap();
    (dir, records)
}

#[test]
fn stray_cleaned_and_swap_files_without_a_manifest_are_removed() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let (dir, records) = damaged_dir(root.path(), &clock);
    for name in [
        "00000000000000000000.log.cleaned",
        "00000000000000000000.index.swap",
        "00000000000000000008.log.swap",
        "garbage.timeindex.cleaned",
    ] {
        fs::write(dir.join(name), b"\x00\x01 torn").unwrap();
    }
    let log = open(&dir, config(1 << 20), &clock);
    assert_eq!(read_all(&log).0, records);
    for entry in fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            !name.ends_with(".cleaned") && !name.ends_with(".swap"),
            "{name}"
        );
    }
}

#[test]
fn a_malformed_manifest_is_a_corrupt_error() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let (dir, _) = damaged_dir(root.path(), &clock);
    for text in [
        &b"garbage"[..],
        b"0\n2\nold 0\nnew 5\n",
        b"0\n1\nold 0\n",
        b"\xff\xfe",
        b"0\n2\nold 0\nnew 0\n", // names a new segment with no file at all once .swap is gone
    ] {
        fs::write(dir.join(CLEANER_SWAP_MANIFEST), text).unwrap();
        let log_file = dir.join("00000000000000000000.log");
        let saved = fs::read(&log_file).unwrap();
        if text.starts_with(b"0\n2\nold 0\nnew 0") {
            fs::remove_file(&log_file).unwrap();
        }
        let opened = Log::open_with_clock(&dir, config(1 << 20), Arc::new(clock.clone()));
        assert!(
            matches!(opened, Err(LogError::Corrupt { .. })),
            "{:?}: {opened:?}",
            String::from_utf8_lossy(text)
        );
        fs::write(&log_file, saved).unwrap();
    }
}

#[test]
fn a_malformed_cleaner_checkpoint_is_a_corrupt_error() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let (dir, records) = damaged_dir(root.path(), &clock);
    let path = dir.join(CLEANER_CHECKPOINT);
    let good = fs::read(&path).unwrap();
    for text in [
        &b"0\n1\ncompacted 0 x\n"[..],
        b"\xff",
        b"0\n2\ncompacted 0 5\n",
    ] {
        fs::write(&path, text).unwrap();
        let opened = Log::open_with_clock(&dir, config(1 << 20), Arc::new(clock.clone()));
        assert!(
            matches!(opened, Err(LogError::Corrupt { .. })),
            "{opened:?}"
        );
    }
    // Past the log end: not trusted, the whole log counts as dirty.
    fs::write(&path, "0\n1\ncompacted 0 999999\n").unwrap();
    let log = open(&dir, config(1 << 20), &clock);
    assert_eq!(log.first_dirty_offset(), 0);
    drop(log);
    fs::write(&path, good).unwrap();
    assert_eq!(read_all(&open(&dir, config(1 << 20), &clock)).0, records);
}

/// A committed swap whose new log file was then torn (the manifest says it is in place): opening
/// never panics; it gives a typed error or a log whose reads give typed errors.
#[test]
fn a_torn_swap_file_of_a_committed_swap_gives_typed_errors() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let (dir, _) = damaged_dir(root.path(), &clock);
    let segments: Vec<u64> = {
        let log = open(&dir, config(1 << 20), &clock);
        log.segment_base_offsets()
    };
    let first = segments[0];
    for cut in [0usize, 10, 61, 200] {
        let image = root.path().join(format!("cut{cut}")).join(DIR_NAME);
        copy_dir(&dir, &image);
        let log_file = image.join(format!("{first:020}.log"));
        let mut bytes = fs::read(&log_file).unwrap();
        bytes.truncate(cut.min(bytes.len()));
        fs::remove_file(&log_file).unwrap();
        fs::write(with_suffix(&log_file, ".swap"), &bytes).unwrap();
        fs::remove_file(image.join(".clean-shutdown")).ok();
        fs::write(
            image.join(CLEANER_SWAP_MANIFEST),
            format!("0\n2\nold {first}\nnew {first}\n"),
        )
        .unwrap();
        match Log::open_with_clock(&image, config(1 << 20), Arc::new(clock.clone())) {
            Err(LogError::Corrupt { .. }) => {}
            Err(other) => panic!("cut {cut}: {other:?}"),
            Ok(log) => {
                let mut from = log.log_start_offset();
                while from < log.log_end_offset() {
                    match log.read(from, 1 << 20) {
                        Ok(read) => {
                            let next = read
                                .batches()
                                .filter_map(Result::ok)
                                .last()
                                .map(|b| b.header().next_offset() as u64);
                            let Some(next) = next else { break };
                            from = next;
                        }
                        Err(LogError::Corrupt { .. }) => break,
                        Err(other) => panic!("cut {cut}: {other:?}"),
                    }
                }
            }
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

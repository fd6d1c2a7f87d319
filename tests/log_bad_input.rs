//! Bad input to the log engine: every case is refused with a typed error, and a refused operation
//! leaves the log as it was.

use std::fs;
use std::path::{Path, PathBuf};

use logbus::log::{
    FlushPolicy, Log, LogConfig, LogError, NewRecord, CLEAN_SHUTDOWN_FILE, LOG_START_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
};
use logbus::record::{BatchBuilder, BatchSpec, DecodeError};

fn record(value: &[u8]) -> NewRecord<'_> {
    NewRecord {
        timestamp: 1_000,
        key: None,
        value: Some(value),
        headers: &[],
    }
}

fn partition_dir(root: &Path) -> PathBuf {
    root.join("topic-0")
}

/// Every value in the log, in offset order.
/// Every value from the log start to the end (a read stops at a segment's end, so loop).
fn values(log: &Log) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    while from < log.log_end_offset() {
        let read = log.read(from, usize::MAX).unwrap();
        for batch in read.batches() {
            for record in batch.unwrap().records().unwrap() {
                let record = record.unwrap();
                out.push(record.value.unwrap().to_vec());
                from = record.offset as u64 + 1;
            }
        }
    }
    out
}

#[test]
fn invalid_directory_and_topic_names_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let long_topic = format!("{}-0", "t".repeat(250));
    type Expected = fn(&LogError) -> bool;
    let cases: [(&str, Expected); 6] = [
        ("bad name-0", |e| {
            matches!(e, LogError::InvalidTopicName { .. })
        }),
        ("topic", |e| {
            matches!(e, LogError::InvalidDirectoryName { .. })
        }),
        ("-1", |e| matches!(e, LogError::InvalidTopicName { .. })),
        ("topic-x", |e| {
            matches!(e, LogError::InvalidDirectoryName { .. })
        }),
        ("topic-4294967296", |e| {
            matches!(e, LogError::InvalidDirectoryName { .. })
        }),
        (&long_topic, |e| {
            matches!(e, LogError::InvalidTopicName { .. })
        }),
    ];
    for (name, expected) in cases {
        let dir = root.path().join(name);
        let error = Log::open(&dir, LogConfig::default()).unwrap_err();
        assert!(expected(&error), "{name:?}: {error:?}");
        assert!(
            !dir.exists(),
            "{name:?}: a refused name must create nothing"
        );
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_locked() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    log.append_records(&[record(b"a")], 0).unwrap();
    let error = Log::open(&dir, LogConfig::default()).unwrap_err();
    assert!(matches!(error, LogError::Locked { .. }), "{error:?}");
    // The refused opener changed nothing: the first log still works.
    log.append_records(&[record(b"b")], 0).unwrap();
    assert_eq!(values(&log), vec![b"a".to_vec(), b"b".to_vec()]);
    log.close().unwrap();
    // Once closed, the directory can be opened again.
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn a_batch_above_max_message_bytes_is_refused_and_nothing_is_appended() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let config = LogConfig {
        max_message_bytes: 1024,
        ..LogConfig::default()
    };
    {
        let log = Log::open(&dir, config.clone()).unwrap();
        log.append_records(&[record(b"small")], 0).unwrap();
        let size_before = log.size_bytes();
        let big = vec![7u8; 2000];
        let error = log.append_records(&[record(&big)], 0).unwrap_err();
        match error {
            LogError::RecordTooLarge {
                size_bytes,
                max_bytes,
            } => {
                assert!(size_bytes > 2000, "{size_bytes}");
                assert_eq!(max_bytes, 1024);
            }
            other => panic!("expected RecordTooLarge, got {other:?}"),
        }
        // Many small records that add up to too much are one batch, so refused too.
        let many = vec![record(&big[..100]); 20];
        assert!(matches!(
            log.append_records(&many, 0),
            Err(LogError::RecordTooLarge { .. })
        ));
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(log.size_bytes(), size_before);
        log.append_records(&[record(b"after")], 0).unwrap();
        assert_eq!(values(&log), vec![b"small".to_vec(), b"after".to_vec()]);
    }
    let log = Log::open(&dir, config).unwrap();
    assert_eq!(values(&log), vec![b"small".to_vec(), b"after".to_vec()]);
}

#[test]
fn reads_outside_the_log_are_out_of_range() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::open(partition_dir(root.path()), LogConfig::default()).unwrap();
    for value in [b"0", b"1", b"2", b"3"] {
        log.append_records(&[record(value)], 0).unwrap();
    }
    // The log end itself is readable and empty; one past it is not.
    assert!(log.read(4, 1 << 20).unwrap().bytes.is_empty());
    let error = log.read(5, 1 << 20).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::OffsetOutOfRange {
                offset: 5,
                log_start_offset: 0,
                log_end_offset: 4
            }
        ),
        "{error:?}"
    );
    assert!(matches!(
        log.read(u64::MAX, 1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.delete_records_before(2).unwrap();
    assert!(matches!(
        log.read(1, 1 << 20),
        Err(LogError::OffsetOutOfRange {
            offset: 1,
            log_start_offset: 2,
            log_end_offset: 4
        })
    ));
    assert!(matches!(
        log.read_up_to(0, 1 << 20, 4),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // Moving the start past the end, or truncating below the start, is refused too.
    assert!(matches!(
        log.delete_records_before(5),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.truncate_to(1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 4));
}

#[test]
fn a_stale_leader_epoch_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::open(partition_dir(root.path()), LogConfig::default()).unwrap();
    log.append_records(&[record(b"a")], 5).unwrap();
    let error = log.append_records(&[record(b"b")], 3).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::StaleLeaderEpoch {
                epoch: 3,
                latest_epoch: 5
            }
        ),
        "{error:?}"
    );
    let mut builder = BatchBuilder::new(BatchSpec::default());
    builder.append(1, None, Some(b"c"), &[]);
    let batch = builder.finish();
    assert!(matches!(
        log.append_batch(&batch, 4),
        Err(LogError::StaleLeaderEpoch { .. })
    ));
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 1)));
    log.append_batch(&batch, 5).unwrap();
    assert_eq!(values(&log), vec![b"a".to_vec(), b"c".to_vec()]);
}

#[test]
fn a_replicated_batch_below_the_log_end_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::open(partition_dir(root.path()), LogConfig::default()).unwrap();
    log.append_records(&[record(b"a"), record(b"b"), record(b"c")], 0)
        .unwrap();
    let replicated = |base_offset| {
        let mut builder = BatchBuilder::new(BatchSpec {
            base_offset,
            partition_leader_epoch: 1,
            ..BatchSpec::default()
        });
        builder.append(1, None, Some(b"r"), &[]);
        builder.finish()
    };
    for base in [0, 2] {
        let error = log.append_replicated(&replicated(base)).unwrap_err();
        assert!(
            matches!(
                error,
                LogError::NonMonotonicOffset {
                    base_offset,
                    log_end_offset: 3
                } if base_offset == base as u64
            ),
            "{error:?}"
        );
    }
    assert_eq!(log.log_end_offset(), 3);
    let appended = log.append_replicated(&replicated(3)).unwrap();
    assert_eq!((appended.base_offset, appended.last_offset), (3, 3));
}

#[test]
fn invalid_configs_are_refused_before_touching_the_disk() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let bad = [
        LogConfig {
            segment_bytes: 0,
            ..LogConfig::default()
        },
        LogConfig {
            segment_bytes: 60,
            ..LogConfig::default()
        },
        LogConfig {
            segment_bytes: u32::MAX,
            ..LogConfig::default()
        },
        LogConfig {
            segment_index_bytes: 8,
            ..LogConfig::default()
        },
        LogConfig {
            index_interval_bytes: 0,
            ..LogConfig::default()
        },
        LogConfig {
            max_message_bytes: 10,
            ..LogConfig::default()
        },
        LogConfig {
            flush: FlushPolicy::Every {
                messages: 0,
                interval_ms: 10,
            },
            ..LogConfig::default()
        },
    ];
    for config in bad {
        let error = Log::open(&dir, config.clone()).unwrap_err();
        assert!(
            matches!(error, LogError::InvalidConfig(_)),
            "{config:?}: {error:?}"
        );
        assert!(
            !dir.exists(),
            "{config:?}: a refused config created the directory"
        );
    }
}

#[test]
fn a_dropped_log_reopens_and_keeps_working() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    {
        let log = Log::open(&dir, LogConfig::default()).unwrap();
        log.append_records(&[record(b"a"), record(b"b")], 0)
            .unwrap();
        // Dropped, not closed.
    }
    {
        let log = Log::open(&dir, LogConfig::default()).unwrap();
        assert_eq!(log.log_end_offset(), 2);
        log.append_records(&[record(b"c")], 1).unwrap();
        assert_eq!(
            values(&log),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
    }
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 2)));
}

#[test]
fn garbage_files_in_the_directory_are_ignored_or_cleaned() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    {
        let log = Log::open(&dir, LogConfig::default()).unwrap();
        log.append_records(&[record(b"a")], 0).unwrap();
        log.close().unwrap();
    }
    let leftovers = [
        "00000000000000000000.log.tmp",
        "00000000000000000000.log.truncating",
        "00000000000000000000.log.deleted",
        "00000000000000000007.index.swap",
        "recovery-point-offset-checkpoint.tmp",
        // Index files without a log are orphans.
        "00000000000000000500.index",
        "00000000000000000500.timeindex",
    ];
    let kept = [
        "notes.txt",
        "README",
        "12.log",
        "0000000000000000000x.log",
        "00000000000000000000.log.backup",
    ];
    for name in leftovers.iter().chain(&kept) {
        fs::write(dir.join(name), b"garbage that is not a log").unwrap();
    }
    fs::create_dir(dir.join("subdir")).unwrap();
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0]);
    assert_eq!(values(&log), vec![b"a".to_vec()]);
    for name in leftovers {
        assert!(!dir.join(name).exists(), "{name} was not cleaned up");
    }
    for name in kept {
        assert!(dir.join(name).exists(), "{name} is not ours to delete");
    }
    log.append_records(&[record(b"b")], 0).unwrap();
    assert_eq!(values(&log), vec![b"a".to_vec(), b"b".to_vec()]);
}

// Regression: a checkpoint holding bytes that are not UTF-8 was reported as `LogError::Io`
// (`read_to_string`'s `InvalidData`), as if the disk had failed, rather than as `Corrupt` like
// every other malformed checkpoint. Fixed in `read_offset_checkpoint` and `EpochCache::load`.
#[test]
fn malformed_checkpoint_files_are_corrupt() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    {
        let log = Log::open(&dir, LogConfig::default()).unwrap();
        log.append_records(&[record(b"a")], 0).unwrap();
        log.close().unwrap();
    }
    let bad: [&[u8]; 8] = [
        b"\xff\xfe\x00\x01",
        b"0\n1\ntopic 0 \xff\n",
        b"",
        b"0\n",
        b"0\n1\n",
        b"0\n1\ntopic 0",
        b"0\n1\ntopic 0 twelve\n",
        b"3\n1\ntopic 0 1\n",
    ];
    for file in [RECOVERY_POINT_CHECKPOINT, LOG_START_CHECKPOINT] {
        let path = dir.join(file);
        let good = fs::read(&path).unwrap();
        for contents in bad {
            fs::write(&path, contents).unwrap();
            let error = Log::open(&dir, LogConfig::default()).unwrap_err();
            assert!(
                matches!(error, LogError::Corrupt { ref path, .. } if path.ends_with(file)),
                "{file} holding {:?}: {error:?}",
                String::from_utf8_lossy(contents)
            );
        }
        fs::write(&path, good).unwrap();
        assert!(dir.join(CLEAN_SHUTDOWN_FILE).exists());
    }
    // The leader epoch checkpoint: an empty file is an empty cache, the rest is `Corrupt`.
    let path = dir.join("leader-epoch-checkpoint");
    let good = fs::read(&path).unwrap();
    for contents in bad.iter().filter(|contents| !contents.is_empty()) {
        fs::write(&path, contents).unwrap();
        let error = Log::open(&dir, LogConfig::default()).unwrap_err();
        assert!(
            matches!(error, LogError::Corrupt { ref path, .. } if path.ends_with("leader-epoch-checkpoint")),
            "epoch checkpoint holding {:?}: {error:?}",
            String::from_utf8_lossy(contents)
        );
    }
    fs::write(&path, good).unwrap();
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_eq!(values(&log), vec![b"a".to_vec()]);
}

// Regression: `append_records(&[])` appended a batch of zero records that still took an offset
// (`AppendInfo { base_offset: 0, last_offset: 0 }`, log end 1), and `append_batch` took every
// offset a producer's batch claimed whatever it held: offsets without records, against "one offset,
// one record". Kafka's leader refuses both (`LogValidator`: "invalid reported count").
#[test]
fn an_empty_batch_or_one_with_offset_holes_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::open(partition_dir(root.path()), LogConfig::default()).unwrap();
    let is_bad_count = |result: Result<_, LogError>| {
        matches!(
            result,
            Err(LogError::InvalidBatch(DecodeError::InvalidField {
                field: "records_count",
                ..
            }))
        )
    };
    assert!(is_bad_count(log.append_records(&[], 0)));
    assert!(is_bad_count(log.append_batch(
        &BatchBuilder::new(BatchSpec::default()).finish(),
        0
    )));
    let mut gappy = BatchBuilder::new(BatchSpec::default());
    gappy.append_at_delta(3, 1, None, Some(b"x"), &[]);
    assert!(is_bad_count(log.append_batch(&gappy.finish(), 0)));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    // A follower keeps a leader's batches as they are, gaps included.
    let mut replicated = BatchBuilder::new(BatchSpec::default());
    replicated.append_at_delta(3, 1, None, Some(b"x"), &[]);
    let info = log.append_replicated(&replicated.finish()).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 3));
    assert_eq!(log.log_end_offset(), 4);
}

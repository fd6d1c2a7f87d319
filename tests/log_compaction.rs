//! Log compaction (`cleanup_policy` `Compact`) against a model, and the cleaner's rules one by
//! one: latest value per key, tombstone retention, compaction lag, the cleanup policies, reopening,
//! truncation, producers' last batches, and the broker's maintenance pass.
//!
//! The model keeps every batch ever appended with its records, marks what a pass removes with
//! the cleaner's rules (a record below the pass's end goes when a later record of its key lies
//! below the end too, a tombstone goes once its batch's delete horizon has passed, a batch that
//! keeps a tombstone and lies wholly below the end gets a horizon, a batch left without records
//! stays as a header only when it is its producer's last) and is compared with a full read of
//! the log after every operation: records, offsets, timestamps, and batch headers.
//!
//! CI runs 24 cases of up to 60 operations per property; `LOGBUS_PROPTEST_CASES=N` runs N.
//! Crashes and damaged files: `tests/log_compaction_crash.rs`.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use logbus::broker::{Broker, BrokerConfig, CleanupPolicy, TopicConfig};
use logbus::clock::{Clock, ManualClock};
use logbus::log::{
    CleanOutcome, DirtyRatio, Log, LogConfig, LogError, NewRecord, CLEANER_CHECKPOINT,
};
use logbus::partition::{PartitionError, Replica};
use logbus::record::{BatchBuilder, BatchHeader, BatchSpec, TimestampType};
use proptest::prelude::*;

#[path = "support/compaction.rs"]
mod support;
use support::{
    config, copy_dir, fill, open, read_all, value_of, Seen, DIR_NAME, RETENTION_MS, START_MS,
};

const DEFAULT_CASES: u32 = 24;

fn cases() -> u32 {
    std::env::var("LOGBUS_PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn key_of(index: u8) -> Vec<u8> {
    format!("key-{index}").into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelRecord {
    offset: u64,
    timestamp: i64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    alive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelBatch {
    base: u64,
    last: u64,
    /// Producer id and base sequence.
    producer: Option<(i64, i32)>,
    records: Vec<ModelRecord>,
    present: bool,
    horizon: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    batches: Vec<ModelBatch>,
    next_sequence: HashMap<i64, i32>,
}

impl Model {
    fn is_last_of_producer(&self, batch: &ModelBatch) -> bool {
        let Some((id, _)) = batch.producer else {
            return false;
        };
        self.batches
            .iter()
            .rev()
            .find(|other| other.producer.is_some_and(|(other_id, _)| other_id == id))
            .is_some_and(|last| last.base == batch.base)
    }

    /// One cleaning pass at `now_ms` whose map covers the records below `end`. Returns the
    /// records it removes.
    fn clean(&mut self, now_ms: i64, end: u64) -> u64 {
        let mut latest: HashMap<Vec<u8>, u64> = HashMap::new();
        for record in self.alive().filter(|record| record.offset < end) {
            latest.insert(record.key.clone(), record.offset);
        }
        let mut removed = 0;
        for i in 0..self.batches.len() {
            let is_last = self.is_last_of_producer(&self.batches[i]);
            let batch = &mut self.batches[i];
            if !batch.present || batch.base >= end {
                continue;
            }
            for record in batch
                .records
                .iter_mut()
                .filter(|r| r.alive && r.offset < end)
            {
                let shadowed = latest[&record.key] > record.offset;
                let expired = record.value.is_none()
                    && batch.horizon.is_some_and(|horizon| horizon <= now_ms);
                if shadowed || expired {
                    record.alive = false;
                    removed += 1;
                }
            }
            let survivors = batch.records.iter().filter(|r| r.alive).count();
            let keeps_tombstone = batch.records.iter().any(|r| r.alive && r.value.is_none());
            if survivors == 0 {
                batch.horizon = None;
                batch.present = is_last;
            } else if !keeps_tombstone {
                batch.horizon = None;
            } else if batch.horizon.is_none() && batch.last < end {
                batch.horizon = Some(now_ms + RETENTION_MS as i64);
            }
        }
        removed
    }

    /// The batches that differ, briefly.
    fn diff(&self, other: &Model) -> String {
        let brief = |batch: &ModelBatch| {
            let alive: Vec<u64> = batch
                .records
                .iter()
                .filter(|r| r.alive)
                .map(|r| r.offset)
                .collect();
            format!(
                "batch {}..={} present {} horizon {:?} alive {alive:?}",
                batch.base, batch.last, batch.present, batch.horizon
            )
        };
        self.batches
            .iter()
            .zip(&other.batches)
            .filter(|(mine, theirs)| mine != theirs)
            .map(|(mine, theirs)| format!("{} -> {}", brief(mine), brief(theirs)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn alive(&self) -> impl Iterator<Item = &ModelRecord> {
        self.batches
            .iter()
            .filter(|batch| batch.present)
            .flat_map(|batch| batch.records.iter().filter(|record| record.alive))
    }

    fn expected_records(&self) -> Vec<Seen> {
        self.alive()
            .map(|record| Seen {
                offset: record.offset,
                timestamp: record.timestamp,
                key: Some(record.key.clone()),
                value: record.value.clone(),
            })
            .collect()
    }

    /// The log's batch headers must match the model's present batches, field by field.
    fn check_headers(&self, headers: &[BatchHeader]) {
        let present: Vec<&ModelBatch> = self.batches.iter().filter(|b| b.present).collect();
        assert_eq!(headers.len(), present.len(), "batches in the log");
        for (header, batch) in headers.iter().zip(present) {
            assert_eq!(header.base_offset as u64, batch.base);
            assert_eq!(header.last_offset() as u64, batch.last, "last offset kept");
            let alive = batch.records.iter().filter(|r| r.alive).count();
            assert_eq!(header.records_count as usize, alive);
            let (producer_id, base_sequence) = batch.producer.unwrap_or((-1, -1));
            assert_eq!(
                (header.producer_id, header.base_sequence),
                (producer_id, base_sequence)
            );
            assert_eq!(
                header.attributes.has_delete_horizon,
                batch.horizon.is_some(),
                "horizon of batch {}",
                batch.base
            );
            if let Some(horizon) = batch.horizon {
                assert_eq!(header.base_timestamp, horizon);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// Records (key index, tombstone), from a producer or not.
    Append {
        records: Vec<(u8, bool)>,
        producer: Option<u8>,
    },
    /// A batch with one record without a key: refused, nothing appended.
    AppendKeyless {
        records: u8,
        at: u8,
    },
    Roll,
    Clean {
        advance_ms: u32,
    },
    Reopen {
        crash: bool,
    },
}

fn op(keys: u8) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            prop::collection::vec((0..keys, prop::bool::weighted(0.2)), 1..8),
            prop::option::of(0..2u8)
        )
            .prop_map(|(records, producer)| Op::Append { records, producer }),
        1 => (1..4u8, any::<u8>()).prop_map(|(records, at)| Op::AppendKeyless { records, at }),
        2 => Just(Op::Roll),
        4 => (0..2_500u32).prop_map(|advance_ms| Op::Clean { advance_ms }),
        1 => any::<bool>().prop_map(|crash| Op::Reopen { crash }),
    ]
}

struct Harness {
    root: tempfile::TempDir,
    dir: PathBuf,
    reopens: usize,
    clock: ManualClock,
    config: LogConfig,
    log: Option<Log>,
    model: Model,
}

impl Harness {
    fn new(config: LogConfig) -> Harness {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(DIR_NAME);
        let clock = ManualClock::new(START_MS);
        let log = Log::open_with_clock(&dir, config.clone(), Arc::new(clock.clone())).unwrap();
        Harness {
            root,
            dir,
            reopens: 0,
            clock,
            config,
            log: Some(log),
            model: Model::default(),
        }
    }

    fn log(&self) -> &Log {
        self.log.as_ref().unwrap()
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Append { records, producer } => self.append(records, *producer),
            Op::AppendKeyless { records, at } => self.append_keyless(*records, *at),
            Op::Roll => self.log().roll().unwrap(),
            Op::Clean { advance_ms } => self.clean(*advance_ms),
            Op::Reopen { crash } => self.reopen(*crash),
        }
        self.check();
    }

    fn append(&mut self, records: &[(u8, bool)], producer: Option<u8>) {
        let log = self.log.as_ref().unwrap();
        let base = log.log_end_offset();
        let now_ms = self.clock.now_ms();
        let model_records: Vec<ModelRecord> = records
            .iter()
            .zip(base..)
            .map(|(&(key, tombstone), offset)| ModelRecord {
                offset,
                timestamp: now_ms - (offset % 7) as i64,
                key: key_of(key),
                value: (!tombstone).then(|| value_of(offset)),
                alive: true,
            })
            .collect();
        let producer = producer.map(|p| {
            let id = 100 + i64::from(p);
            let sequence = self.model.next_sequence.entry(id).or_insert(0);
            let base_sequence = *sequence;
            *sequence += records.len() as i32;
            (id, base_sequence)
        });
        let info = match producer {
            None => {
                let new: Vec<NewRecord<'_>> = model_records
                    .iter()
                    .map(|record| NewRecord {
                        timestamp: record.timestamp,
                        key: Some(&record.key),
                        value: record.value.as_deref(),
                        headers: &[],
                    })
                    .collect();
                log.append_records(&new, 0).unwrap()
            }
            Some((producer_id, base_sequence)) => {
                let mut builder = BatchBuilder::new(BatchSpec {
                    producer_id,
                    producer_epoch: 0,
                    base_sequence,
                    ..BatchSpec::default()
                });
                for record in &model_records {
                    builder.append(
                        record.timestamp,
                        Some(&record.key),
                        record.value.as_deref(),
                        &[],
                    );
                }
                log.append_batch(&builder.finish(), 0).unwrap()
            }
        };
        assert_eq!(info.base_offset, base);
        self.model.batches.push(ModelBatch {
            base,
            last: info.last_offset,
            producer,
            records: model_records,
            present: true,
            horizon: None,
        });
    }

    fn append_keyless(&mut self, count: u8, at: u8) {
        let log = self.log();
        let end = log.log_end_offset();
        let key = key_of(0);
        let missing = usize::from(at % count);
        let records: Vec<NewRecord<'_>> = (0..usize::from(count))
            .map(|i| NewRecord {
                timestamp: 1,
                key: (i != missing).then_some(&key[..]),
                value: Some(b"v"),
                headers: &[],
            })
            .collect();
        let refused = log.append_records(&records, 0).unwrap_err();
        assert!(
            matches!(refused, LogError::InvalidRecord { record_index, .. } if record_index == missing),
            "{refused:?}"
        );
        let mut builder = BatchBuilder::new(BatchSpec::default());
        for record in &records {
            builder.append(record.timestamp, record.key, record.value, &[]);
        }
        assert!(matches!(
            log.append_batch(&builder.finish(), 0),
            Err(LogError::InvalidRecord { .. })
        ));
        assert_eq!(log.log_end_offset(), end, "a refused batch appends nothing");
    }

    fn clean(&mut self, advance_ms: u32) {
        let now_ms = self.clock.advance_ms(i64::from(advance_ms));
        let log = self.log.as_ref().unwrap();
        let stats = log.clean(now_ms).unwrap();
        match stats.outcome {
            CleanOutcome::Cleaned => {
                let removed = self.model.clean(now_ms, stats.first_dirty_offset);
                assert_eq!(stats.records_removed, removed, "records removed");
                assert!(stats.segments_replaced >= 1);
            }
            CleanOutcome::NotDue => {
                // Nothing a pass would do is left undone, but dropping a producer's empty batch
                // that a later batch made obsolete (that waits for the next pass).
                let mut model = self.model.clone();
                model.clean(now_ms, log.first_dirty_offset());
                let mut kept_empty = self.model.clone();
                for (batch, after) in kept_empty.batches.iter_mut().zip(&model.batches) {
                    if batch.records.iter().all(|r| !r.alive) {
                        batch.present = after.present;
                    }
                }
                assert!(
                    model == kept_empty,
                    "a pass was due at {now_ms}: {}",
                    self.model.diff(&model)
                );
            }
            CleanOutcome::Aborted => panic!("nothing changes the log during a pass here"),
        }
        assert_eq!(log.first_dirty_offset(), stats.first_dirty_offset);
    }

    fn reopen(&mut self, crash: bool) {
        let clock: Arc<ManualClock> = Arc::new(self.clock.clone());
        if crash {
            self.reopens += 1;
            let copy = self
                .root
                .path()
                .join(format!("crash{}", self.reopens))
                .join(DIR_NAME);
            copy_dir(&self.dir, &copy);
            self.log.take();
            self.dir = copy;
        } else {
            self.log.take().unwrap().close().unwrap();
        }
        self.log = Some(Log::open_with_clock(&self.dir, self.config.clone(), clock).unwrap());
    }

    fn check(&self) {
        let log = self.log();
        let (records, headers) = read_all(log);
        assert_eq!(records, self.model.expected_records());
        self.model.check_headers(&headers);
        for (id, _) in self.model.next_sequence.iter() {
            let last = self
                .model
                .batches
                .iter()
                .rev()
                .find(|batch| batch.producer.is_some_and(|(other, _)| other == *id))
                .unwrap();
            assert!(last.present, "producer {id}'s last batch is kept");
        }
    }

    /// A read from every offset finds the first kept record at or after it (reading on past
    /// batches that hold none, as a consumer does).
    fn check_reads_from_every_offset(&self) {
        let log = self.log();
        let expected = self.model.expected_records();
        for from in log.log_start_offset()..log.log_end_offset() {
            let want = expected.iter().find(|r| r.offset >= from).map(|r| r.offset);
            assert_eq!(first_record_from(log, from), want, "read from {from}");
        }
    }
}

/// The offset of the first record at or after `from`, reading as a consumer does.
fn first_record_from(log: &Log, mut from: u64) -> Option<u64> {
    let target = from;
    while from < log.log_end_offset() {
        let read = log.read(from, 1).unwrap();
        let mut advanced = false;
        for batch in read.batches() {
            let batch = batch.unwrap();
            for record in batch.records().unwrap() {
                let offset = record.unwrap().offset as u64;
                if offset >= target {
                    return Some(offset);
                }
            }
            from = batch.header().next_offset() as u64;
            advanced = true;
        }
        if !advanced {
            return None;
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Every key's latest record survives, tombstones go after the retention and not before,
    /// offsets and order do not change, and producers keep their last batch.
    #[test]
    fn compaction_matches_the_model(ops in prop::collection::vec(op(12), 1..60)) {
        let mut harness = Harness::new(config(1 << 20));
        for op in &ops {
            harness.run(op);
        }
        harness.check_reads_from_every_offset();
    }

    /// With a key map that holds 28 keys and 60 keys in play, a pass cleans the prefix it could
    /// map; repeated passes still converge to the model.
    #[test]
    fn a_full_key_map_cleans_a_prefix(ops in prop::collection::vec(op(60), 1..60)) {
        let mut harness = Harness::new(config(1024));
        for op in &ops {
            harness.run(op);
        }
        harness.check_reads_from_every_offset();
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed scenarios
// ---------------------------------------------------------------------------------------------

#[test]
fn latest_value_per_key_survives_with_offsets_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let log = open(&root.path().join(DIR_NAME), config(1 << 20), &clock);
    fill(&log, 10, 8, 13);
    let (before, _) = read_all(&log);
    let ratio = log.dirty_ratio().unwrap();
    assert!(ratio == 1.0, "nothing cleaned yet: {ratio}");
    let stats = log.clean(clock.now_ms()).unwrap();
    assert_eq!(stats.outcome, CleanOutcome::Cleaned);
    assert!(stats.bytes_written < stats.bytes_read);
    assert_eq!(stats.keys_mapped, 10);
    let (after, _) = read_all(&log);
    let active_base = *log.segment_base_offsets().last().unwrap();
    assert_eq!(stats.first_dirty_offset, active_base);
    assert_eq!(log.dirty_ratio().unwrap(), 0.0);
    // Below the active segment, exactly the latest record of each key; above it, everything.
    let mut latest: HashMap<Option<Vec<u8>>, u64> = HashMap::new();
    for record in before.iter().filter(|r| r.offset < active_base) {
        latest.insert(record.key.clone(), record.offset);
    }
    let expected: Vec<&Seen> = before
        .iter()
        .filter(|r| r.offset >= active_base || latest[&r.key] == r.offset)
        .collect();
    assert_eq!(after.iter().collect::<Vec<_>>(), expected);
    assert_eq!(
        log.clean(clock.now_ms()).unwrap().outcome,
        CleanOutcome::NotDue
    );
}

#[test]
fn tombstones_stay_for_the_delete_retention_then_go() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let log = open(&root.path().join(DIR_NAME), config(1 << 20), &clock);
    let record = |key: &'static [u8], value: Option<&'static [u8]>| NewRecord {
        timestamp: START_MS,
        key: Some(key),
        value,
        headers: &[],
    };
    log.append_records(&[record(b"a", Some(b"1")), record(b"b", Some(b"2"))], 0)
        .unwrap();
    log.append_records(&[record(b"a", None)], 0).unwrap();
    log.roll().unwrap();
    log.clean(clock.now_ms()).unwrap();
    let keys = |log: &Log| {
        read_all(log)
            .0
            .into_iter()
            .map(|r| (r.key.unwrap(), r.value))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&log),
        [(b"b".to_vec(), Some(b"2".to_vec())), (b"a".to_vec(), None)],
        "the older value goes at once, the tombstone stays"
    );
    clock.advance_ms(RETENTION_MS as i64 - 1);
    assert_eq!(
        log.clean(clock.now_ms()).unwrap().outcome,
        CleanOutcome::NotDue
    );
    assert_eq!(keys(&log).len(), 2);
    clock.advance_ms(1);
    let stats = log.clean(clock.now_ms()).unwrap();
    assert_eq!(
        stats.outcome,
        CleanOutcome::Cleaned,
        "the horizon makes it due"
    );
    assert_eq!(stats.tombstones_removed, 1);
    assert_eq!(keys(&log), [(b"b".to_vec(), Some(b"2".to_vec()))]);

    // The horizon survives a reopen: it is in the batch, not in memory.
    let dir = log.dir().to_owned();
    log.append_records(&[record(b"c", None)], 0).unwrap();
    log.roll().unwrap();
    log.clean(clock.now_ms()).unwrap();
    log.close().unwrap();
    let log = open(&dir, config(1 << 20), &clock);
    clock.advance_ms(RETENTION_MS as i64);
    assert_eq!(
        log.clean(clock.now_ms()).unwrap().tombstones_removed,
        1,
        "found by the header walk after reopening"
    );
    assert_eq!(keys(&log), [(b"b".to_vec(), Some(b"2".to_vec()))]);
}

#[test]
fn the_active_segment_and_young_segments_are_not_cleaned() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let lagging = LogConfig {
        min_compaction_lag_ms: 10_000,
        ..config(1 << 20)
    };
    let log = open(&root.path().join(DIR_NAME), lagging, &clock);
    let record = |ts: i64| NewRecord {
        timestamp: ts,
        key: Some(b"k"),
        value: Some(b"v"),
        headers: &[],
    };
    log.append_records(&[record(START_MS - 20_000)], 0).unwrap();
    log.append_records(&[record(START_MS - 20_000)], 0).unwrap();
    log.roll().unwrap();
    log.append_records(&[record(START_MS - 1_000)], 0).unwrap();
    log.roll().unwrap();
    log.append_records(&[record(START_MS)], 0).unwrap();
    let stats = log.clean(clock.now_ms()).unwrap();
    assert_eq!(stats.outcome, CleanOutcome::Cleaned);
    assert_eq!(
        stats.first_dirty_offset, 2,
        "the young segment at 2 is left"
    );
    let offsets: Vec<u64> = read_all(&log).0.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        [1, 2, 3],
        "only the old segment lost its shadowed record"
    );
    clock.advance_ms(10_000);
    log.clean(clock.now_ms()).unwrap();
    let offsets: Vec<u64> = read_all(&log).0.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [2, 3], "never the active segment");
}

#[test]
fn retention_deletes_only_when_the_policy_says_so() {
    for (policy, deleted) in [
        (CleanupPolicy::Compact, 0),
        (CleanupPolicy::CompactAndDelete, 1),
    ] {
        let root = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        let config = LogConfig {
            cleanup_policy: policy,
            retention_ms: Some(1_000),
            ..config(1 << 20)
        };
        let log = open(&root.path().join(DIR_NAME), config, &clock);
        let record = NewRecord {
            timestamp: START_MS - 5_000,
            key: Some(b"k"),
            value: Some(b"v"),
            headers: &[],
        };
        log.append_records(&[record], 0).unwrap();
        log.roll().unwrap();
        assert_eq!(log.apply_retention().unwrap(), deleted, "{policy:?}");
    }
}

#[test]
fn delete_policy_logs_are_never_cleaned_and_take_keyless_records() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Delete,
        ..config(1 << 20)
    };
    let log = open(&root.path().join(DIR_NAME), config, &clock);
    let record = NewRecord {
        timestamp: START_MS,
        key: None,
        value: Some(b"v"),
        headers: &[],
    };
    log.append_records(&[record, record], 0).unwrap();
    log.roll().unwrap();
    assert_eq!(
        log.clean(clock.now_ms()).unwrap().outcome,
        CleanOutcome::NotDue
    );
    assert_eq!(read_all(&log).0.len(), 2);
}

#[test]
fn reopening_after_a_clean_gives_the_same_log() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let dir = root.path().join(DIR_NAME);
    let log = open(&dir, config(1 << 20), &clock);
    fill(&log, 15, 6, 11);
    log.clean(clock.now_ms()).unwrap();
    let cleaned = read_all(&log);
    let segments = log.segment_base_offsets();
    let first_dirty = log.first_dirty_offset();

    // Unclean: a copy of the open log's directory.
    let crashed = root.path().join("crash").join(DIR_NAME);
    copy_dir(&dir, &crashed);
    let copy = open(&crashed, config(1 << 20), &clock);
    assert_eq!(read_all(&copy), cleaned);
    assert_eq!(copy.first_dirty_offset(), first_dirty);
    drop(copy);

    log.close().unwrap();
    let log = open(&dir, config(1 << 20), &clock);
    assert_eq!(read_all(&log), cleaned);
    assert_eq!(log.segment_base_offsets(), segments);
    assert_eq!(log.first_dirty_offset(), first_dirty);
    let checkpoint = fs::read_to_string(dir.join(CLEANER_CHECKPOINT)).unwrap();
    assert_eq!(checkpoint, format!("0\n1\ncompacted 0 {first_dirty}\n"));
    assert_eq!(
        log.clean(clock.now_ms()).unwrap().outcome,
        CleanOutcome::NotDue
    );
}

#[test]
fn truncation_below_the_cleaner_checkpoint_lowers_it() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let dir = root.path().join(DIR_NAME);
    let log = open(&dir, config(1 << 20), &clock);
    fill(&log, 5, 10, 9);
    log.clean(clock.now_ms()).unwrap();
    let first_dirty = log.first_dirty_offset();
    assert!(first_dirty > 20);
    let end = log.truncate_to(20).unwrap();
    assert_eq!(
        end, 20,
        "offsets in a gap left by compaction stay the log's"
    );
    assert_eq!(log.first_dirty_offset(), end);
    let checkpoint = fs::read_to_string(dir.join(CLEANER_CHECKPOINT)).unwrap();
    assert_eq!(checkpoint, "0\n1\ncompacted 0 20\n", "lowered on disk too");
}

/// Producer state is rebuilt from batch headers when a replica opens without its snapshot: the
/// last batch of each producer must survive compaction, even emptied, or a restarted partition
/// would take a retry of it as new data (or refuse the next sequence).
#[test]
fn a_producers_last_batch_survives_as_an_empty_header() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let dir = root.path().join(DIR_NAME);
    let producer_batch = |sequence: i32, key: &[u8]| {
        let mut builder = BatchBuilder::new(BatchSpec {
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: sequence,
            ..BatchSpec::default()
        });
        builder.append(START_MS, Some(key), Some(b"v"), &[]);
        builder.append(START_MS, Some(key), Some(b"w"), &[]);
        builder.finish()
    };
    let first = producer_batch(0, b"a");
    let second = producer_batch(2, b"b");
    {
        let replica = Replica::open(
            &dir,
            config(1 << 20),
            TimestampType::CreateTime,
            Arc::new(clock.clone()),
        )
        .unwrap();
        replica.append_producer_batch(&first).unwrap();
        replica.append_producer_batch(&second).unwrap();
        // Newer values for both keys, from no producer: both producer batches lose everything.
        let newer = |key: &'static [u8]| NewRecord {
            timestamp: START_MS,
            key: Some(key),
            value: Some(b"x"),
            headers: &[],
        };
        replica
            .log()
            .append_records(&[newer(b"a"), newer(b"b")], 0)
            .unwrap();
        replica.log().roll().unwrap();
        let stats = replica.log().clean(clock.now_ms()).unwrap();
        assert_eq!(stats.records_removed, 4);
        let (_, headers) = read_all(replica.log());
        let bases: Vec<(i64, i32)> = headers
            .iter()
            .map(|h| (h.base_offset, h.records_count))
            .collect();
        assert_eq!(
            bases,
            [(2, 0), (4, 2)],
            "the first batch went, the last stayed"
        );
        assert_eq!(headers[0].last_offset(), 3);
        assert_eq!(headers[0].base_sequence, 2);
    }
    // No producer snapshot: state comes from the headers.
    fs::remove_file(dir.join("producer-state-snapshot")).ok();
    let replica = Replica::open(
        &dir,
        config(1 << 20),
        TimestampType::CreateTime,
        Arc::new(clock.clone()),
    )
    .unwrap();
    let retry = replica.append_producer_batch(&second).unwrap();
    assert!(retry.duplicate, "a retry of the last batch is recognized");
    assert_eq!((retry.base_offset, retry.last_offset), (2, 3));
    let gap = replica.append_producer_batch(&producer_batch(9, b"c"));
    assert!(matches!(
        gap,
        Err(PartitionError::OutOfOrderSequence { expected: 4, .. })
    ));
    replica
        .append_producer_batch(&producer_batch(4, b"c"))
        .unwrap();
}
// ---------------------------------------------------------------------------------------------
// The broker
// ---------------------------------------------------------------------------------------------

#[test]
fn a_compacted_topic_is_cleaned_by_broker_maintenance() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let broker = Broker::open_with(
        root.path(),
        BrokerConfig {
            clock: Arc::new(clock.clone()),
            maintenance_interval_ms: None,
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    let config = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 1024,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.1).unwrap(),
        ..TopicConfig::default()
    };
    broker.create_topic("table", config).unwrap();
    let replica = broker.replica("table", 0).unwrap();
    let log = replica.log();
    assert_eq!(log.config().cleanup_policy, CleanupPolicy::Compact);
    for i in 0..200u64 {
        let key = format!("k{}", i % 5).into_bytes();
        let mut builder = BatchBuilder::new(BatchSpec::default());
        builder.append(START_MS, Some(&key), Some(b"some value"), &[]);
        replica.append_producer_batch(&builder.finish()).unwrap();
    }
    let keyless = {
        let mut builder = BatchBuilder::new(BatchSpec::default());
        builder.append(START_MS, None, Some(b"v"), &[]);
        builder.finish()
    };
    assert!(matches!(
        replica.append_producer_batch(&keyless),
        Err(PartitionError::Log(LogError::InvalidRecord { .. }))
    ));
    let before = log.size_bytes();
    broker.run_maintenance().unwrap();
    assert!(
        log.size_bytes() < before / 2,
        "{} of {before}",
        log.size_bytes()
    );
    let active_base = *log.segment_base_offsets().last().unwrap();
    let mut keys_below: Vec<Vec<u8>> = read_all(log)
        .0
        .into_iter()
        .filter(|r| r.offset < active_base)
        .map(|r| r.key.unwrap())
        .collect();
    let count = keys_below.len();
    keys_below.sort();
    keys_below.dedup();
    assert_eq!(
        keys_below.len(),
        count,
        "one record per key below the active segment"
    );
}

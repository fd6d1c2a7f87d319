//! Consumer groups: rebalance time, commit rate and group consumption, each figure next to a
//! baseline measured in the same run, reported as medians and ratios (absolute figures move
//! from run to run on a shared VM; compare the ratios).
//!
//! ```text
//! cargo bench --bench group                          # about a minute
//! LOGBUS_BENCH_ONLY=rebalance,commit,consume cargo bench --bench group
//! ```
//!
//! - rebalance: a stable group of 9 members on 100 partitions (10 topics of 10) gains a 10th;
//!   the time until all 10 are stable in one generation, driving the coordinator's state
//!   machine and the assignors in one thread (no heartbeat waits), cooperative-sticky against
//!   eager range as the baseline. Also the partitions each revokes: eager stops all 100,
//!   cooperative only those that move.
//! - commit: `BlockingCoordinator::commit_offsets` of one partition's offset into
//!   `__consumer_offsets` on a broker; baseline: appending the same key and value as a one-record
//!   batch to a partition of the same broker (`Replica::append_producer_batch`).
//! - consume: 4 consumers of one group (threads, subscribe) on 8 partitions of pre-produced
//!   100-byte records, from their first poll until every record is consumed, group formation
//!   included; baseline: one consumer of its own group on the same data.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logbus::broker::{Broker, BrokerConfig, TopicConfig};
use logbus::client::{Consumer, ConsumerConfig, OffsetReset, Producer, ProducerRecord};
use logbus::group::{
    records, Assignor, CommitRequest, CooperativeSticky, MemberRef, OffsetAndMetadata, Range,
    TopicPartition,
};
use logbus::record::{BatchBuilder, BatchSpec};

#[path = "support/mod.rs"]
mod support;
use support::{bench_root, median, pre_touch, selected, Table};

#[path = "../tests/support/groups.rs"]
mod groups;
use groups::{coordinator, Phase, TestMember};

const SAMPLES: usize = 7;
const MEMBERS: usize = 10;
const COMMITS: usize = 20_000;
const CONSUME_PARTITIONS: u32 = 8;
const CONSUME_RECORDS: usize = 400_000;

fn main() {
    let root = bench_root();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    pre_touch(256 << 20);
    let mut table = Table::default();
    if selected("rebalance") {
        rebalance_case(&mut table);
    }
    if selected("commit") {
        commit_case(root.path(), &mut table);
    }
    if selected("consume") {
        consume_case(root.path(), &mut table);
    }
    table.print();
}

// ---------------------------------------------------------------------------------------------
// rebalance

fn topics() -> BTreeMap<String, u32> {
    (0..10).map(|t| (format!("topic-{t}"), 10)).collect()
}

/// Microseconds from the 10th member's join until the group is stable again, and the
/// partitions the old members revoked on the way.
fn rebalance_once(assignor: &Arc<dyn Assignor>) -> (f64, usize) {
    let mut core = coordinator();
    let mut members: Vec<TestMember> = (0..MEMBERS - 1)
        .map(|_| TestMember::new("bench", Arc::clone(assignor), topics()))
        .collect();
    assert!(
        groups::settle(&mut core, &mut members, 0, 100),
        "9 members settle"
    );
    let before: usize = members.iter().map(|m| m.owned.len()).sum();
    members.push(TestMember::new("bench", Arc::clone(assignor), topics()));
    let started = Instant::now();
    let mut revoked = 0;
    let mut settled = false;
    for _ in 0..100 {
        for member in &mut members {
            let held = member.owned.len();
            let _ = member.step(&mut core, 1);
            revoked += held.saturating_sub(member.owned.len());
        }
        let generation = members[0].generation;
        if members
            .iter()
            .all(|m| m.phase == Phase::Stable && m.generation == generation)
        {
            settled = true;
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64() * 1e6;
    assert!(settled, "10 members settle");
    assert_eq!(before, 100);
    (elapsed, revoked)
}

fn rebalance_samples(assignor: Arc<dyn Assignor>) -> (f64, usize) {
    rebalance_once(&assignor);
    let runs: Vec<(f64, usize)> = (0..SAMPLES).map(|_| rebalance_once(&assignor)).collect();
    let revoked = runs[0].1;
    (median(runs.into_iter().map(|r| r.0).collect()), revoked)
}

fn rebalance_case(table: &mut Table) {
    println!(
        "rebalance: {} members join to {MEMBERS}, 100 partitions",
        MEMBERS - 1
    );
    let (eager, eager_revoked) = rebalance_samples(Arc::new(Range));
    let (cooperative, cooperative_revoked) = rebalance_samples(Arc::new(CooperativeSticky));
    table.add(
        "rebalance 9 -> 10 members, 100 partitions, cooperative-sticky".into(),
        format!("{cooperative:.0} us, {cooperative_revoked} partitions revoked"),
        format!("{eager:.0} us, {eager_revoked} revoked (eager range)"),
        format!("{:.2}x time", cooperative / eager),
        "revokes only what moves",
    );
}

// ---------------------------------------------------------------------------------------------
// commit

fn open_broker(dir: &Path) -> Broker {
    let config = BrokerConfig {
        maintenance_interval_ms: None,
        ..BrokerConfig::default()
    };
    Broker::open_with(dir, config).expect("open the broker")
}

fn commit_case(root: &Path, table: &mut Table) {
    println!("commit: {COMMITS} commits of one partition's offset");
    let dir = root.join("commit");
    let _ = std::fs::remove_dir_all(&dir);
    let broker = open_broker(&dir);
    broker
        .create_topic("raw", TopicConfig::with_partitions(1))
        .expect("create the raw topic");
    let coordinator = broker.group_coordinator().expect("the coordinator");
    let partition = TopicPartition::new("events", 0);
    let mut next = 0u64;
    let mut commit = || {
        next += 1;
        let request = CommitRequest {
            member: MemberRef::standalone("bench"),
            offsets: vec![(partition.clone(), OffsetAndMetadata::new(next))],
        };
        coordinator.commit_offsets(&request).expect("commit");
    };
    let replica = broker.replica("raw", 0).expect("the raw partition");
    let key = records::encode_offset_key("bench", &partition);
    let value = records::encode_offset_value(&OffsetAndMetadata::new(1));
    let append = || {
        let mut builder = BatchBuilder::new(BatchSpec::default());
        builder.append(1_700_000_000_000, Some(&key), Some(&value), &[]);
        replica
            .append_producer_batch(&builder.finish())
            .expect("append");
    };
    let (mut commits, mut appends) = (Vec::new(), Vec::new());
    rate(COMMITS / 10, &mut commit);
    rate(COMMITS / 10, append);
    for _ in 0..SAMPLES {
        commits.push(rate(COMMITS, &mut commit));
        appends.push(rate(COMMITS, append));
    }
    let (commits, appends) = (median(commits), median(appends));
    table.add(
        "offset commits, 1 partition each".into(),
        format!("{:.0} k commits/s", commits / 1e3),
        format!("{:.0} k appends/s raw", appends / 1e3),
        format!("{:.0} %", 100.0 * commits / appends),
        "overhead of validation and fencing",
    );
}

fn rate(count: usize, mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..count {
        op();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// consume

fn consume_case(root: &Path, table: &mut Table) {
    println!("consume: {CONSUME_RECORDS} records on {CONSUME_PARTITIONS} partitions");
    let dir = root.join("consume");
    let _ = std::fs::remove_dir_all(&dir);
    let broker = open_broker(&dir);
    broker
        .create_topic("data", TopicConfig::with_partitions(CONSUME_PARTITIONS))
        .expect("create the topic");
    let producer = Producer::new(&broker).expect("a producer");
    let value = Bytes::from(vec![b'v'; 100]);
    for i in 0..CONSUME_RECORDS {
        let partition = i as u32 % CONSUME_PARTITIONS;
        drop(
            producer
                .send(ProducerRecord::new("data", value.clone()).partition(partition))
                .expect("send"),
        );
    }
    producer.flush();
    broker.group_coordinator().expect("the coordinator");
    group_rate(&broker, 1, "warm-up");
    let (mut single, mut group) = (Vec::new(), Vec::new());
    for sample in 0..SAMPLES {
        single.push(group_rate(&broker, 1, &format!("single-{sample}")));
        group.push(group_rate(&broker, 4, &format!("group-{sample}")));
    }
    let (single, group) = (median(single), median(group));
    table.add(
        format!("consume, 4 members on {CONSUME_PARTITIONS} partitions"),
        format!("{:.2} M rec/s", group / 1e6),
        format!("{:.2} M rec/s, 1 member", single / 1e6),
        format!("{:.0} %", 100.0 * group / single),
        "2 cores: parity",
    );
}

/// Records per second for `members` consumers of a fresh group reading every record.
fn group_rate(broker: &Broker, members: usize, group: &str) -> f64 {
    let consumed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..members)
        .map(|_| {
            let (broker, consumed, group) =
                (broker.clone(), Arc::clone(&consumed), group.to_owned());
            std::thread::spawn(move || {
                let mut consumer = Consumer::with_config(
                    &broker,
                    ConsumerConfig {
                        group_id: Some(group),
                        auto_offset_reset: OffsetReset::Earliest,
                        heartbeat_interval_ms: 10,
                        ..ConsumerConfig::default()
                    },
                );
                consumer.subscribe(["data"]).expect("subscribe");
                while consumed.load(Ordering::Acquire) < CONSUME_RECORDS {
                    let records = consumer.poll(Duration::from_millis(20)).expect("poll");
                    consumed.fetch_add(records.len(), Ordering::AcqRel);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a consumer thread");
    }
    let total = consumed.load(Ordering::Acquire);
    assert!(total >= CONSUME_RECORDS, "every record consumed");
    CONSUME_RECORDS as f64 / started.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------

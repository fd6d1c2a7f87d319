//! Replication's price and its failover time, each figure next to a baseline measured in the
//! same run (absolute figures move from run to run on a shared VM; compare the ratios).
//!
//! ```text
//! cargo bench --bench replication                         # about a minute
//! LOGBUS_BENCH_ONLY=throughput,latency,failover cargo bench --bench replication
//! ```
//!
//! - throughput: one producer thread sends 100-byte records to 3 partitions; acks=All on 3
//!   brokers with replication factor 3 (min.insync.replicas 2) against acks=Leader on a single
//!   broker. Goal: at least 50 % of the single-broker figure.
//! - latency: one record at a time (`send_and_wait`), acks=All on 3 brokers; baseline the same
//!   on a single broker with acks=Leader. Reported as p50 and p99.
//! - failover: a producer writes one record at a time to a partition; its leader crashes (it
//!   stops heartbeating, as a dead process does); the figure is the time from the crash to the
//!   first acknowledged write on the new leader, against the session timeout.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logbus::broker::{Broker, BrokerConfig, TopicConfig};
use logbus::client::{Acks, Producer, ProducerConfig, ProducerRecord};
use logbus::coordinator::{Coordinator, MemoryCoordinator, MemoryCoordinatorConfig};
use logbus::replication::{InProcessNetwork, ReplicationConfig};

#[path = "support/mod.rs"]
mod support;
use support::{bench_root, median, percentile, pre_touch, selected, Table};

const VALUE_BYTES: usize = 100;
const RECORDS: usize = 300_000;
const LATENCY_RECORDS: usize = 5_000;
const REPETITIONS: usize = 3;
const SESSION_TIMEOUT_MS: u64 = 2_000;

fn main() {
    let root = bench_root();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    pre_touch(256 << 20);
    let mut table = Table::default();
    if selected("throughput") {
        throughput(root.path(), &mut table);
    }
    if selected("latency") {
        latency(root.path(), &mut table);
    }
    if selected("failover") {
        failover(root.path(), &mut table);
    }
    table.print();
}

/// Brokers sharing one coordinator and network; one broker alone is the baseline.
struct Cluster {
    brokers: Vec<Broker>,
    _coordinator: Arc<MemoryCoordinator>,
}

fn cluster(root: &Path, size: i32) -> Cluster {
    let coordinator = Arc::new(MemoryCoordinator::with_config(MemoryCoordinatorConfig {
        tick_ms: 100,
        ..MemoryCoordinatorConfig::default()
    }));
    let network = InProcessNetwork::new();
    let brokers = (0..size)
        .map(|id| {
            let dir = root.join(format!("broker-{id}"));
            let _ = std::fs::remove_dir_all(&dir);
            Broker::open_with(
                &dir,
                BrokerConfig {
                    broker_id: id,
                    maintenance_interval_ms: None,
                    coordinator: Some(Arc::clone(&coordinator) as Arc<dyn Coordinator>),
                    network: Some(Arc::clone(&network)),
                    replication: ReplicationConfig {
                        session_timeout_ms: SESSION_TIMEOUT_MS,
                        ..ReplicationConfig::default()
                    },
                    ..BrokerConfig::default()
                },
            )
            .expect("open a broker")
        })
        .collect();
    Cluster {
        brokers,
        _coordinator: coordinator,
    }
}

fn topic(replication_factor: u16) -> TopicConfig {
    TopicConfig {
        partitions: 3,
        replication_factor,
        min_insync_replicas: replication_factor.min(2),
        ..TopicConfig::default()
    }
}

/// Waits until every partition's ISR is all `size` brokers.
fn wait_in_sync(cluster: &Cluster, partitions: u32) {
    let size = cluster.brokers.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(0..partitions).all(|p| {
        cluster.brokers[0]
            .leader_of("bench", p)
            .and_then(|leader| cluster.brokers.iter().find(|b| b.id() == leader))
            .and_then(|broker| broker.replicated_partition("bench", p).ok())
            .is_some_and(|local| local.isr().len() == size)
    }) {
        assert!(Instant::now() < deadline, "replicas never got in sync");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A cluster of `size` brokers with the bench topic in sync on all of them, and a producer.
fn ready_producer(root: &Path, size: i32, acks: Acks) -> (Cluster, Producer) {
    let cluster = cluster(root, size);
    cluster.brokers[0]
        .create_topic("bench", topic(size as u16))
        .expect("create the topic");
    wait_in_sync(&cluster, 3);
    let producer = Producer::with_config(
        &cluster.brokers[0],
        ProducerConfig {
            acks,
            ..ProducerConfig::default()
        },
    )
    .expect("a producer");
    (cluster, producer)
}

fn produce_rate(root: &Path, size: i32, acks: Acks, records: usize) -> f64 {
    let (_cluster, producer) = ready_producer(root, size, acks);
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    let started = Instant::now();
    for i in 0..records {
        let record = ProducerRecord::new("bench", value.clone())
            .partition((i % 3) as u32)
            .timestamp(1_700_000_000_000);
        drop(producer.send(record).expect("send"));
    }
    producer.flush();
    let rate = records as f64 / started.elapsed().as_secs_f64();
    drop(producer);
    rate
}

fn throughput(root: &Path, table: &mut Table) {
    println!("throughput: {RECORDS} records of {VALUE_BYTES} bytes to 3 partitions");
    produce_rate(root, 1, Acks::Leader, RECORDS / 5);
    produce_rate(root, 3, Acks::All, RECORDS / 5);
    let mut single = Vec::new();
    let mut replicated = Vec::new();
    for _ in 0..REPETITIONS {
        single.push(produce_rate(root, 1, Acks::Leader, RECORDS));
        replicated.push(produce_rate(root, 3, Acks::All, RECORDS));
    }
    let (single, replicated) = (median(single), median(replicated));
    println!("  acks=All x3: {replicated:.0}/s, single acks=Leader: {single:.0}/s");
    table.add(
        "produce, acks=All, 3 brokers, RF 3".into(),
        format!("{:.2} M rec/s", replicated / 1e6),
        format!("{:.2} M rec/s single broker acks=Leader", single / 1e6),
        format!("{:.0} %", 100.0 * replicated / single),
        ">= 50 %",
    );
}

fn send_latencies(root: &Path, size: i32, acks: Acks) -> Vec<f64> {
    let (_cluster, producer) = ready_producer(root, size, acks);
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    let mut samples = Vec::with_capacity(LATENCY_RECORDS);
    for i in 0..LATENCY_RECORDS + 500 {
        let record = ProducerRecord::new("bench", value.clone()).partition((i % 3) as u32);
        let started = Instant::now();
        producer.send_and_wait(record).expect("send");
        if i >= 500 {
            samples.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    samples.sort_by(f64::total_cmp);
    samples
}

fn latency(root: &Path, table: &mut Table) {
    println!("latency: {LATENCY_RECORDS} sends, one at a time");
    let single = send_latencies(root, 1, Acks::Leader);
    let replicated = send_latencies(root, 3, Acks::All);
    for (name, fraction) in [("p50", 0.5), ("p99", 0.99)] {
        let (value, baseline) = (
            percentile(&replicated, fraction),
            percentile(&single, fraction),
        );
        println!("  {name}: acks=All x3 {value:.0} us, single acks=Leader {baseline:.0} us");
        table.add(
            format!("produce latency {name}, acks=All, 3 brokers"),
            format!("{value:.0} us"),
            format!("{baseline:.0} us single broker acks=Leader"),
            format!("{:.1}x", value / baseline),
            "-",
        );
    }
}

/// Milliseconds from the leader's crash to the first acknowledged write after it.
fn failover_ms(root: &Path) -> f64 {
    let mut cluster = cluster(root, 3);
    cluster.brokers[0]
        .create_topic("bench", topic(3))
        .expect("create the topic");
    wait_in_sync(&cluster, 3);
    let leader = cluster.brokers[0].leader_of("bench", 0).expect("a leader");
    let bootstrap = cluster
        .brokers
        .iter()
        .find(|b| b.id() != leader)
        .expect("another broker")
        .clone();
    let producer = Producer::with_config(
        &bootstrap,
        ProducerConfig {
            retry_backoff_ms: 10,
            ..ProducerConfig::default()
        },
    )
    .expect("a producer");
    for _ in 0..100 {
        producer
            .send_and_wait(ProducerRecord::new("bench", "before").partition(0))
            .expect("send");
    }
    let at = cluster
        .brokers
        .iter()
        .position(|b| b.id() == leader)
        .expect("the leader");
    let crashed = cluster.brokers.remove(at);
    let started = Instant::now();
    crashed.simulate_crash();
    producer
        .send_and_wait(ProducerRecord::new("bench", "after").partition(0))
        .expect("send after the crash");
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    assert_ne!(bootstrap.leader_of("bench", 0), Some(leader));
    elapsed
}

fn failover(root: &Path, table: &mut Table) {
    println!("failover: session timeout {SESSION_TIMEOUT_MS} ms");
    let samples: Vec<f64> = (0..REPETITIONS).map(|_| failover_ms(root)).collect();
    let value = median(samples);
    println!("  crash to first acknowledged write: {value:.0} ms");
    table.add(
        "failover, leader crash to first ack on the new leader".into(),
        format!("{value:.0} ms"),
        format!("{SESSION_TIMEOUT_MS} ms session timeout"),
        format!("{:.2}x", value / SESSION_TIMEOUT_MS as f64),
        "-",
    );
}

//! The producer and consumer against the log underneath and against a plain channel, each figure
//! next to a baseline measured in the same run, reported as medians and ratios (absolute figures
//! move from run to run on a shared VM; compare the ratios).
//!
//! ```text
//! cargo bench --bench bus                          # about 2 minutes
//! LOGBUS_BENCH_DIR=/path cargo bench --bench bus   # where the logs go (default: temp dir)
//! LOGBUS_BENCH_ONLY=produce,latency,consume cargo bench --bench bus   # some cases only
//! ```
//!
//! - produce: one thread sends 100-byte keyless records (acks=Leader) to 1 and 8 partitions with
//!   `linger_ms` 0 and 5; baseline: `Log::append_records` of 100-record batches of the same
//!   records into a fresh log. Goal: at least 70 % of the baseline.
//! - latency: paced sends (10 k and 100 k records/s) to a consumer thread blocked in `poll`;
//!   the send time rides in the value. Measured with the default consumer (it spins
//!   `poll_spin_us` = 10 us, then parks) and with a busy-polling one (`poll_spin_us` 1000: it
//!   never parks between records, at the cost of a core). Baseline: a `crossbeam::channel`
//!   handing the same values between two threads at the same pace (its receiver spins a few
//!   microseconds, then parks). Goal (linger_ms 0): p50 <= 10 us, p99 <= 100 us.
//! - consume: one thread polls a page-cached partition from the start; baseline: iterating the
//!   same log's batches with `Log::read` and `records()`. Goal: at least 5 M records/s.
//!
//! Every case is warmed up first: on this VM memory untouched for ~2 s is handed back to the host
//! and the first touch is 5-10x slower (see `/work/shared/notes/machine-performance.md`).

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logbus::broker::{Broker, BrokerConfig, TopicConfig};
use logbus::client::{
    Acks, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use logbus::log::{Log, LogConfig, NewRecord};

#[path = "support/mod.rs"]
mod support;
use support::{bench_root, median, percentile, pre_touch, selected, Table};

const VALUE_BYTES: usize = 100;
const MIB: usize = 1 << 20;
const PRODUCE_RECORDS: usize = 500_000;
const CONSUME_RECORDS: usize = 2_000_000;
const REPETITIONS: usize = 3;
const LATENCY_SECONDS: f64 = 1.0;

fn main() {
    let root = bench_root();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    pre_touch(512 * MIB);
    let mut table = Table::default();
    if selected("produce") {
        produce_cases(root.path(), &mut table);
    }
    if selected("latency") {
        for rate in [10_000, 100_000] {
            latency_case(root.path(), rate, &mut table);
        }
    }
    if selected("consume") {
        consume_case(root.path(), &mut table);
    }
    table.print();
}

// ---------------------------------------------------------------------------------------------
// (a) producer to log

fn produce_cases(root: &Path, table: &mut Table) {
    println!("produce: {PRODUCE_RECORDS} records of {VALUE_BYTES} bytes, acks=Leader");
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    // Warm up both paths once, then alternate them so drift hits both alike.
    raw_append_rate(root, &value, PRODUCE_RECORDS / 5);
    producer_rate(root, &value, 8, 0, PRODUCE_RECORDS / 5);
    let cases = [(1, 0), (1, 5), (8, 0), (8, 5)];
    let mut raw = Vec::new();
    let mut produced: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..REPETITIONS {
        raw.push(raw_append_rate(root, &value, PRODUCE_RECORDS));
        for (samples, &(partitions, linger_ms)) in produced.iter_mut().zip(&cases) {
            samples.push(producer_rate(
                root,
                &value,
                partitions,
                linger_ms,
                PRODUCE_RECORDS,
            ));
        }
    }
    let raw = median(raw);
    for (samples, (partitions, linger_ms)) in produced.into_iter().zip(cases) {
        let rate = median(samples);
        table.add(
            format!("produce, {partitions} partition(s), linger_ms {linger_ms}"),
            format!("{:.2} M rec/s", rate / 1e6),
            format!("{:.2} M rec/s raw append", raw / 1e6),
            format!("{:.0} %", 100.0 * rate / raw),
            ">= 70 %",
        );
    }
}

/// Records per second through `Log::append_records`, 100 records per batch, into a fresh log.
fn raw_append_rate(root: &Path, value: &Bytes, records: usize) -> f64 {
    let dir = root.join("raw-0");
    let _ = std::fs::remove_dir_all(&dir);
    let log = Log::open(&dir, LogConfig::default()).expect("open the raw log");
    let batch: Vec<NewRecord<'_>> = (0..100)
        .map(|_| NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(value),
            headers: &[],
        })
        .collect();
    let started = Instant::now();
    for _ in 0..records / batch.len() {
        log.append_records(&batch, 0).expect("append");
    }
    let rate = records as f64 / started.elapsed().as_secs_f64();
    drop(log);
    std::fs::remove_dir_all(&dir).expect("remove the raw log");
    rate
}

/// Records per second from one thread's first `send` to `flush` returning, on a fresh broker.
fn producer_rate(
    root: &Path,
    value: &Bytes,
    partitions: u32,
    linger_ms: u64,
    records: usize,
) -> f64 {
    let dir = root.join("produce");
    let _ = std::fs::remove_dir_all(&dir);
    let broker = open_broker(&dir);
    broker
        .create_topic("bench", TopicConfig::with_partitions(partitions))
        .expect("create the topic");
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            acks: Acks::Leader,
            linger_ms,
            ..ProducerConfig::default()
        },
    )
    .expect("a producer");
    let started = Instant::now();
    for _ in 0..records {
        let record = ProducerRecord::new("bench", value.clone()).timestamp(1_700_000_000_000);
        drop(producer.send(record).expect("send"));
    }
    producer.flush();
    let rate = records as f64 / started.elapsed().as_secs_f64();
    let appended: u64 = broker
        .describe_topic("bench")
        .expect("describe")
        .partitions
        .iter()
        .map(|p| p.log_end_offset)
        .sum();
    assert_eq!(appended, records as u64, "every record was appended");
    drop((producer, broker));
    std::fs::remove_dir_all(&dir).expect("remove the broker dir");
    rate
}

// ---------------------------------------------------------------------------------------------
// (b) end-to-end latency

/// A consumer that spins this long waits for records by spinning, not parking, at both rates.
const BUSY_POLL_SPIN_US: u64 = 1_000;

fn latency_case(root: &Path, rate: u64, table: &mut Table) {
    let records = (rate as f64 * LATENCY_SECONDS) as usize;
    println!("latency: {records} records at {rate} records/s");
    let default_spin_us = ConsumerConfig::default().poll_spin_us;
    logbus_latencies(root, rate, records / 10, default_spin_us);
    channel_latencies(rate, records / 10);
    let mut figures = [(); 6].map(|()| Vec::new());
    for _ in 0..REPETITIONS {
        let channel = channel_latencies(rate, records);
        let bus = logbus_latencies(root, rate, records, default_spin_us);
        let busy = logbus_latencies(root, rate, records, BUSY_POLL_SPIN_US);
        for (at, latencies) in [channel, bus, busy].iter().enumerate() {
            figures[2 * at].push(percentile(latencies, 0.50));
            figures[2 * at + 1].push(percentile(latencies, 0.99));
        }
    }
    let [chan_p50, chan_p99, bus_p50, bus_p99, busy_p50, busy_p99] = figures.map(median);
    for (name, bus, channel, goal, consumer) in [
        ("p50", bus_p50, chan_p50, "<= 10 us", ""),
        ("p99", bus_p99, chan_p99, "<= 100 us", ""),
        (
            "p50",
            busy_p50,
            chan_p50,
            "<= 10 us",
            ", busy-polling consumer",
        ),
        (
            "p99",
            busy_p99,
            chan_p99,
            "<= 100 us",
            ", busy-polling consumer",
        ),
    ] {
        table.add(
            format!(
                "latency {name} at {}k rec/s, linger_ms 0{consumer}",
                rate / 1000
            ),
            format!("{bus:.1} us"),
            format!("{channel:.1} us crossbeam"),
            format!("{:.1}x", bus / channel),
            goal,
        );
    }
}

/// Microseconds from `send` to the consumer thread's `poll` returning the record, sorted. The
/// consumer spins `poll_spin_us` before it parks.
fn logbus_latencies(root: &Path, rate: u64, records: usize, poll_spin_us: u64) -> Vec<f64> {
    let dir = root.join("latency");
    let _ = std::fs::remove_dir_all(&dir);
    let broker = open_broker(&dir);
    broker
        .create_topic("latency", TopicConfig::with_partitions(1))
        .expect("create the topic");
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            acks: Acks::Leader,
            linger_ms: 0,
            ..ProducerConfig::default()
        },
    )
    .expect("a producer");
    let origin = Instant::now();
    let ready = Arc::new(Barrier::new(2));
    let consumer = {
        let broker = broker.clone();
        let ready = Arc::clone(&ready);
        thread::spawn(move || {
            let tp = TopicPartition::new("latency", 0);
            let mut consumer = Consumer::with_config(
                &broker,
                ConsumerConfig {
                    auto_offset_reset: OffsetReset::Latest,
                    poll_spin_us,
                    ..ConsumerConfig::default()
                },
            );
            consumer.assign([tp.clone()]).expect("assign");
            consumer.position(&tp).expect("position");
            ready.wait();
            let mut latencies = Vec::with_capacity(records);
            while latencies.len() < records {
                for record in consumer.poll(Duration::from_secs(5)).expect("poll") {
                    let now = origin.elapsed().as_nanos() as u64;
                    let sent = sent_nanos(record.value.as_deref().expect("a value"));
                    latencies.push((now - sent) as f64 / 1e3);
                }
            }
            latencies
        })
    };
    ready.wait();
    paced(rate, records, |_| {
        let value = stamped_value(origin);
        drop(
            producer
                .send(ProducerRecord::new("latency", value))
                .expect("send"),
        );
    });
    let mut latencies = consumer.join().expect("the consumer thread");
    drop((producer, broker));
    std::fs::remove_dir_all(&dir).expect("remove the broker dir");
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// The same hand-off through a bounded crossbeam channel.
fn channel_latencies(rate: u64, records: usize) -> Vec<f64> {
    let (tx, rx) = crossbeam::channel::bounded::<Vec<u8>>(4096);
    let origin = Instant::now();
    let consumer = thread::spawn(move || {
        let mut latencies = Vec::with_capacity(records);
        for value in rx.iter().take(records) {
            let now = origin.elapsed().as_nanos() as u64;
            latencies.push((now - sent_nanos(&value)) as f64 / 1e3);
        }
        latencies
    });
    paced(rate, records, |_| {
        tx.send(stamped_value(origin))
            .expect("the consumer is there");
    });
    let mut latencies = consumer.join().expect("the consumer thread");
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// Calls `send` `records` times at `rate` per second, sleeping until each one is due. The pacing
/// thread never spins: on 2 cores a spinning sender delays the very threads it measures (a woken
/// consumer waits for the spinner's time slice). Sleeps are coarser than 10 us, so at 100 k/s
/// records go in small bursts of those that fell due; each latency counts from its own send.
fn paced(rate: u64, records: usize, mut send: impl FnMut(usize)) {
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let started = Instant::now();
    for i in 0..records {
        let due = started + interval * i as u32;
        let now = Instant::now();
        if now < due {
            thread::sleep(due - now);
        }
        send(i);
    }
}

/// A 100-byte value whose first 8 bytes are the nanoseconds since `origin` when it was made.
fn stamped_value(origin: Instant) -> Vec<u8> {
    let mut value = vec![0u8; VALUE_BYTES];
    let nanos = origin.elapsed().as_nanos() as u64;
    value[..8].copy_from_slice(&nanos.to_le_bytes());
    value
}

fn sent_nanos(value: &[u8]) -> u64 {
    u64::from_le_bytes(value[..8].try_into().expect("a stamped value"))
}

// ---------------------------------------------------------------------------------------------
// (c) consumer throughput

fn consume_case(root: &Path, table: &mut Table) {
    println!("consume: {CONSUME_RECORDS} records of {VALUE_BYTES} bytes from page cache");
    let dir = root.join("consume");
    let _ = std::fs::remove_dir_all(&dir);
    let broker = open_broker(&dir);
    broker
        .create_topic("consume", TopicConfig::with_partitions(1))
        .expect("create the topic");
    fill(&broker, CONSUME_RECORDS);
    consumer_rate(&broker);
    direct_read_rate(&broker);
    let (mut consumed, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..REPETITIONS {
        consumed.push(consumer_rate(&broker));
        direct.push(direct_read_rate(&broker));
    }
    let (consumed, direct) = (median(consumed), median(direct));
    table.add(
        "consume, 1 partition, 1 thread".to_owned(),
        format!("{:.2} M rec/s", consumed / 1e6),
        format!("{:.2} M rec/s Log::read", direct / 1e6),
        format!("{:.0} %", 100.0 * consumed / direct),
        ">= 5 M rec/s",
    );
}

fn fill(broker: &Broker, records: usize) {
    let producer = Producer::with_config(
        broker,
        ProducerConfig {
            acks: Acks::Leader,
            linger_ms: 5,
            ..ProducerConfig::default()
        },
    )
    .expect("a producer");
    let value = Bytes::from(vec![b'c'; VALUE_BYTES]);
    for i in 0..records {
        let record = ProducerRecord::new("consume", value.clone()).key(format!("{i}"));
        drop(producer.send(record).expect("send"));
    }
    producer.flush();
}

fn consumer_rate(broker: &Broker) -> f64 {
    let tp = TopicPartition::new("consume", 0);
    let mut consumer = Consumer::with_config(
        broker,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign([tp]).expect("assign");
    let started = Instant::now();
    let mut consumed = 0;
    let mut value_bytes = 0;
    while consumed < CONSUME_RECORDS {
        let records = consumer.poll(Duration::from_secs(5)).expect("poll");
        assert!(!records.is_empty(), "the log ended early");
        consumed += records.len();
        value_bytes += records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, Bytes::len))
            .sum::<usize>();
    }
    assert_eq!(value_bytes, CONSUME_RECORDS * VALUE_BYTES);
    consumed as f64 / started.elapsed().as_secs_f64()
}

fn direct_read_rate(broker: &Broker) -> f64 {
    let replica = broker.replica("consume", 0).expect("the partition");
    let log = replica.log();
    let started = Instant::now();
    let (mut from, mut consumed, mut value_bytes) = (0u64, 0usize, 0usize);
    while consumed < CONSUME_RECORDS {
        let read = log.read(from, MIB).expect("read");
        for batch in read.batches() {
            let batch = batch.expect("a batch");
            for record in batch.records().expect("records") {
                let record = record.expect("a record");
                value_bytes += record.value.as_ref().map_or(0, Bytes::len);
                consumed += 1;
            }
            from = batch.header().next_offset() as u64;
        }
    }
    assert_eq!(value_bytes, CONSUME_RECORDS * VALUE_BYTES);
    consumed as f64 / started.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// helpers

fn open_broker(dir: &Path) -> Broker {
    Broker::open_with(
        dir,
        BrokerConfig {
            maintenance_interval_ms: None,
            ..BrokerConfig::default()
        },
    )
    .expect("open the broker")
}

//! An in-process event bus under load: producer threads and consumer threads on one broker.
//!
//! ```text
//! cargo run --release --example event_bus [-- --records N] [--data DIR] [--rate R]
//! ```
//!
//! Two producer threads share one `Producer` and send `--records` records (default 1,000,000)
//! of 100 bytes, keyed over 10,000 keys, to a topic of 4 partitions; two consumer threads each
//! own two partitions and read them as they fill. Each value starts with the time it was sent,
//! so the consumers measure end-to-end latency (send to poll). Prints throughput and latency
//! percentiles. `--data DIR` keeps the data (default: a temp dir, removed at exit); on an
//! existing directory the consumers start at the end, so they read only this run's records.
//!
//! Without `--rate` the producers send as fast as they can: the run measures throughput, and
//! its latencies are mostly queueing behind a saturated CPU. `--rate R` paces the producers at
//! R records/s in total (sleeping between sends), which measures latency below saturation.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use logbus::broker::{Broker, BrokerError, TopicConfig};
use logbus::client::{
    Consumer, ConsumerConfig, OffsetReset, Producer, ProducerRecord, SendHandle, TopicPartition,
};

const TOPIC: &str = "events";
const PARTITIONS: u32 = 4;
const PRODUCERS: usize = 2;
const CONSUMERS: u32 = 2;
const VALUE_BYTES: usize = 100;
const KEYS: usize = 10_000;

struct Args {
    records: usize,
    data: Option<PathBuf>,
    /// Records per second over all producers; `None` sends as fast as possible.
    rate: Option<u64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let temp;
    let data = match &args.data {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let broker = Broker::open(&data)?;
    match broker.create_topic(TOPIC, TopicConfig::with_partitions(PARTITIONS)) {
        Ok(_) | Err(BrokerError::TopicExists { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    println!(
        "{} records of {VALUE_BYTES} bytes, {PRODUCERS} producer threads, {CONSUMERS} consumer \
         threads, {PARTITIONS} partitions, data in {}",
        args.records,
        data.display()
    );

    let origin = Instant::now();
    let consumed = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(Mutex::new(None));
    let ready = Arc::new(Barrier::new(CONSUMERS as usize + 1));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|index| {
            let broker = broker.clone();
            let (consumed, ready) = (Arc::clone(&consumed), Arc::clone(&ready));
            let finished = Arc::clone(&finished);
            let total = args.records;
            thread::spawn(move || {
                consume(&broker, index, total, origin, &consumed, &finished, &ready)
            })
        })
        .collect();
    ready.wait();

    let producer = Producer::new(&broker)?;
    let started = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|index| {
            let producer = producer.clone();
            let records = args.records / PRODUCERS + usize::from(index < args.records % PRODUCERS);
            let interval = args
                .rate
                .map(|rate| Duration::from_nanos(1_000_000_000 * PRODUCERS as u64 / rate));
            thread::spawn(move || produce(&producer, index, records, interval, origin))
        })
        .collect();
    for handle in producers {
        handle.join().expect("a producer thread panicked")?;
    }
    producer.flush();
    let produced_in = started.elapsed();
    let mut latencies_ns = Vec::with_capacity(args.records);
    for handle in consumers {
        latencies_ns.extend(handle.join().expect("a consumer thread panicked")?);
    }
    let finished = finished.lock().expect("no thread panics holding it");
    let consumed_in = finished.map_or_else(|| started.elapsed(), |at| at - started);
    if latencies_ns.len() != args.records {
        return Err(format!(
            "consumed {} records, produced {}",
            latencies_ns.len(),
            args.records
        )
        .into());
    }
    report(args.records, produced_in, consumed_in, &mut latencies_ns);
    Ok(())
}

/// Sends `records` records; each value starts with its send time in ns since `origin`.
fn produce(
    producer: &Producer,
    index: usize,
    records: usize,
    interval: Option<Duration>,
    origin: Instant,
) -> Result<(), logbus::client::ProduceError> {
    // Every send's result is checked, oldest first, without blocking the sending loop.
    let mut pending = VecDeque::new();
    let started = Instant::now();
    for i in 0..records {
        if let Some(interval) = interval {
            let due = started + interval * i as u32;
            let now = Instant::now();
            if now < due {
                thread::sleep(due - now);
            }
        }
        let mut value = vec![b'.'; VALUE_BYTES];
        value[..8].copy_from_slice(&(origin.elapsed().as_nanos() as u64).to_le_bytes());
        let key = format!("key-{}", (i * PRODUCERS + index) % KEYS);
        pending.push_back(producer.send(ProducerRecord::new(TOPIC, value).key(key))?);
        while pending.front().is_some_and(SendHandle::is_done) {
            pending.pop_front().expect("checked above").wait()?;
        }
    }
    for handle in pending {
        handle.wait()?;
    }
    Ok(())
}

/// Reads this consumer's partitions until all `total` records were consumed (by every
/// consumer together); returns the latency of each record it read, in ns.
fn consume(
    broker: &Broker,
    index: u32,
    total: usize,
    origin: Instant,
    consumed: &AtomicUsize,
    finished: &Mutex<Option<Instant>>,
    ready: &Barrier,
) -> Result<Vec<u64>, logbus::client::ConsumeError> {
    let owned: Vec<TopicPartition> = (0..PARTITIONS)
        .filter(|partition| partition % CONSUMERS == index)
        .map(|partition| TopicPartition::new(TOPIC, partition))
        .collect();
    let mut consumer = Consumer::with_config(
        broker,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Latest,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign(owned.clone())?;
    consumer.seek_to_end(&owned)?;
    ready.wait();
    let mut latencies = Vec::with_capacity(total / CONSUMERS as usize + 1);
    while consumed.load(Ordering::Acquire) < total {
        let records = consumer.poll(Duration::from_millis(100))?;
        let now = origin.elapsed().as_nanos() as u64;
        for record in &records {
            let value = record.value.as_deref().unwrap_or_default();
            let sent = u64::from_le_bytes(value[..8].try_into().expect("a 100-byte value"));
            latencies.push(now.saturating_sub(sent));
        }
        let before = consumed.fetch_add(records.len(), Ordering::AcqRel);
        if before < total && before + records.len() >= total {
            // This poll brought the last record: the other consumer may still be waiting out
            // its poll timeout, which is not consuming time.
            *finished.lock().expect("no thread panics holding it") = Some(Instant::now());
        }
    }
    Ok(latencies)
}

fn report(records: usize, produced_in: Duration, consumed_in: Duration, latencies: &mut [u64]) {
    let mb = (records * VALUE_BYTES) as f64 / 1e6;
    println!(
        "produced in {:.2} s: {:.0} records/s, {:.1} MB/s of values",
        produced_in.as_secs_f64(),
        records as f64 / produced_in.as_secs_f64(),
        mb / produced_in.as_secs_f64()
    );
    println!(
        "consumed in {:.2} s: {:.0} records/s, {:.1} MB/s of values",
        consumed_in.as_secs_f64(),
        records as f64 / consumed_in.as_secs_f64(),
        mb / consumed_in.as_secs_f64()
    );
    latencies.sort_unstable();
    let at = |fraction: f64| {
        let ns = latencies[((latencies.len() - 1) as f64 * fraction).round() as usize];
        format_ns(ns)
    };
    println!(
        "end-to-end latency (send to poll): p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}

fn format_ns(ns: u64) -> String {
    if ns < 10_000 {
        format!("{:.1} us", ns as f64 / 1e3)
    } else if ns < 10_000_000 {
        format!("{:.0} us", ns as f64 / 1e3)
    } else {
        format!("{:.0} ms", ns as f64 / 1e6)
    }
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: event_bus [--records N] [--data DIR] [--rate RECORDS_PER_S]";
    let mut parsed = Args {
        records: 1_000_000,
        data: None,
        rate: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--records" => {
                parsed.records = args
                    .next()
                    .and_then(|n| n.replace('_', "").parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or(format!("--records needs a positive number; {usage}"))?;
            }
            "--data" => {
                parsed.data = Some(
                    args.next()
                        .ok_or(format!("--data needs a directory; {usage}"))?
                        .into(),
                );
            }
            "--rate" => {
                parsed.rate = Some(
                    args.next()
                        .and_then(|n| n.replace('_', "").parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or(format!("--rate needs a positive number; {usage}"))?,
                );
            }
            other => return Err(format!("unknown argument {other:?}; {usage}")),
        }
    }
    Ok(parsed)
}

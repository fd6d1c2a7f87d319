//! Producers and consumers on one broker, against Kafka's client semantics: every acknowledged
//! record is consumed exactly once and in offset order, keys land where Kafka's partitioner puts
//! them (checked against a murmur2 computed independently), batching follows `batch_size` and
//! `linger_ms`, and the consumer's poll, seek, pause and offset reset behave as Kafka's do.
//!
//! `LOGBUS_BUS_RECORDS=N` scales the concurrent test up (records per producer thread; default
//! 2000).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logbus::broker::{Broker, BrokerConfig, TopicConfig};
use logbus::client::{
    murmur2, partition_for_key, Acks, ConsumeError, Consumer, ConsumerConfig, ConsumerRecord,
    OffsetReset, Producer, ProducerConfig, ProducerRecord, RecordMetadata, TopicPartition,
};
use logbus::clock::ManualClock;
use logbus::record::{RecordBatch, TimestampType};
use tempfile::TempDir;

/// A broker in a fresh temp dir, without the background maintenance thread.
fn broker() -> (TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open_with(
        dir.path(),
        BrokerConfig {
            maintenance_interval_ms: None,
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    (dir, broker)
}

/// Like [`broker`], on `clock`.
fn broker_with_clock(clock: &ManualClock) -> (TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open_with(
        dir.path(),
        BrokerConfig {
            clock: Arc::new(clock.clone()),
            maintenance_interval_ms: None,
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    (dir, broker)
}

fn partitions(topic: &str, count: u32) -> Vec<TopicPartition> {
    (0..count).map(|p| TopicPartition::new(topic, p)).collect()
}

fn earliest(broker: &Broker) -> Consumer {
    Consumer::with_config(
        broker,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    )
}

/// Polls until `count` records arrived; fails if a poll of 10 s brings nothing.
fn consume(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    while records.len() < count {
        let polled = consumer.poll(Duration::from_secs(10)).unwrap();
        assert!(
            !polled.is_empty(),
            "only {} of {count} records arrived",
            records.len()
        );
        records.extend(polled);
    }
    assert_eq!(records.len(), count, "more records than expected");
    records
}

/// Every batch of a partition's log, read directly.
fn log_batches(broker: &Broker, topic: &str, partition: u32) -> Vec<RecordBatch> {
    let replica = broker.replica(topic, partition).unwrap();
    let read = replica.log().read(0, usize::MAX).unwrap();
    read.batches().map(Result::unwrap).collect()
}

fn value_of(record: &ConsumerRecord) -> String {
    String::from_utf8(record.value.as_deref().unwrap().to_vec()).unwrap()
}

fn records_per_producer() -> usize {
    std::env::var("LOGBUS_BUS_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
}

/// What one producer thread sent and what the broker acknowledged.
struct Sent {
    thread: usize,
    seq: usize,
    key: Option<String>,
    metadata: RecordMetadata,
}

fn produce_from_thread(producer: &Producer, thread: usize, records: usize) -> Vec<Sent> {
    let mut handles = Vec::with_capacity(records);
    for seq in 0..records {
        // Every fifth record is keyless (sticky partitioner); the rest use 16 keys per thread.
        let key = (seq % 5 != 0).then(|| format!("t{thread}-k{}", seq % 16));
        let mut record = ProducerRecord::new("events", format!("{thread}/{seq}"));
        if let Some(key) = &key {
            record = record.key(key.clone());
        }
        handles.push((seq, key, producer.send(record).unwrap()));
    }
    handles
        .into_iter()
        .map(|(seq, key, handle)| Sent {
            thread,
            seq,
            key,
            metadata: handle.wait().unwrap(),
        })
        .collect()
}

#[test]
fn concurrent_producers_and_consumers_see_each_acknowledged_record_once_in_order() {
    const PARTITIONS: u32 = 8;
    const SHARED_THREADS: usize = 4;
    const OWN_THREADS: usize = 2;
    let per_thread = records_per_producer();
    let (_dir, broker) = broker();
    broker
        .create_topic("events", TopicConfig::with_partitions(PARTITIONS))
        .unwrap();

    // Two consumers, each owning half the partitions, reading while the producers write.
    let producing = Arc::new(AtomicBool::new(true));
    let consumers: Vec<_> = [0..4, 4..8]
        .into_iter()
        .map(|range| {
            let broker = broker.clone();
            let producing = Arc::clone(&producing);
            thread::spawn(move || {
                let owned: Vec<TopicPartition> =
                    range.map(|p| TopicPartition::new("events", p)).collect();
                let mut consumer = earliest(&broker);
                consumer.assign(owned.clone()).unwrap();
                let mut records = Vec::new();
                loop {
                    let done = !producing.load(Ordering::Acquire);
                    records.extend(consumer.poll(Duration::from_millis(50)).unwrap());
                    if done {
                        let ends = consumer.end_offsets(&owned).unwrap();
                        let caught_up = owned
                            .iter()
                            .all(|tp| consumer.position(tp).unwrap() == ends[tp]);
                        if caught_up {
                            return (owned, records);
                        }
                    }
                }
            })
        })
        .collect();

    let shared = Producer::new(&broker).unwrap();
    let mut producers: Vec<_> = (0..SHARED_THREADS)
        .map(|thread| {
            let producer = shared.clone();
            thread::spawn(move || produce_from_thread(&producer, thread, per_thread))
        })
        .collect();
    for thread in SHARED_THREADS..SHARED_THREADS + OWN_THREADS {
        let producer = Producer::new(&broker).unwrap();
        producers.push(thread::spawn(move || {
            produce_from_thread(&producer, thread, per_thread)
        }));
    }
    let sent: Vec<Sent> = producers
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect();
    producing.store(false, Ordering::Release);
    assert_eq!(sent.len(), (SHARED_THREADS + OWN_THREADS) * per_thread);

    let mut acknowledged: HashMap<(u32, u64), &Sent> = HashMap::new();
    for record in &sent {
        let offset = record.metadata.offset.expect("acks=all reports an offset");
        let at = (record.metadata.partition, offset);
        assert!(
            acknowledged.insert(at, record).is_none(),
            "two sends got {at:?}"
        );
        if let Some(key) = &record.key {
            assert_eq!(
                record.metadata.partition,
                partition_for_key(key.as_bytes(), PARTITIONS),
                "key {key}"
            );
        }
    }

    let mut consumed = 0;
    for consumer in consumers {
        let (owned, records) = consumer.join().unwrap();
        let owned: HashSet<u32> = owned.iter().map(|tp| tp.partition).collect();
        let mut last_offset: HashMap<u32, u64> = HashMap::new();
        // Per (thread, key): the last sequence number seen, to check send order per key.
        let mut last_seq: HashMap<(usize, String), usize> = HashMap::new();
        for record in &records {
            assert!(owned.contains(&record.partition), "foreign partition");
            if let Some(previous) = last_offset.insert(record.partition, record.offset) {
                assert!(
                    record.offset > previous,
                    "partition {} went from offset {previous} to {}",
                    record.partition,
                    record.offset
                );
            }
            let sent = acknowledged
                .get(&(record.partition, record.offset))
                .unwrap_or_else(|| panic!("unacknowledged record {record:?}"));
            assert_eq!(value_of(record), format!("{}/{}", sent.thread, sent.seq));
            assert_eq!(
                record.key.as_deref(),
                sent.key.as_deref().map(str::as_bytes)
            );
            if let Some(key) = &sent.key {
                if let Some(previous) = last_seq.insert((sent.thread, key.clone()), sent.seq) {
                    assert!(sent.seq > previous, "key {key} reordered");
                }
            }
        }
        consumed += records.len();
    }
    // Offsets strictly increase per partition and each maps to a distinct acknowledgement, so
    // equal counts mean every acknowledged record was consumed exactly once.
    assert_eq!(consumed, sent.len());
}

/// Keys and the partitions Kafka's default partitioner gives them, for 1, 3, 8, 12 and 100
/// partitions, with the murmur2 hash. Computed once with an independent Python transcription of
/// Kafka's Java `Utils.murmur2` and `Utils.toPositive` (checked first against Kafka's own
/// `UtilsTest` vectors), then pinned here.
const PARTITION_COUNTS: [u32; 5] = [1, 3, 8, 12, 100];
const KAFKA_PARTITIONS: [(&str, i32, [u32; 5]); 20] = [
    ("", 275646681, [0, 0, 1, 9, 81]),
    ("a", -1563381124, [0, 1, 4, 4, 24]),
    ("ab", 316155434, [0, 2, 2, 2, 34]),
    ("abc", 479470107, [0, 0, 3, 3, 7]),
    ("abcd", -1323649548, [0, 2, 4, 8, 0]),
    ("abcde", 461995741, [0, 1, 5, 1, 41]),
    ("key-0", 29210041, [0, 1, 1, 1, 41]),
    ("key-1", 193331640, [0, 0, 0, 0, 40]),
    ("key-2", 852269702, [0, 2, 6, 2, 2]),
    ("key-17", 956945460, [0, 0, 4, 0, 60]),
    ("customer-7", -1283830537, [0, 1, 7, 7, 11]),
    ("user-42", 1459644460, [0, 1, 4, 4, 60]),
    ("order/2026/11/25", 250471184, [0, 2, 0, 8, 84]),
    ("événement", -314513833, [0, 1, 7, 7, 15]),
    ("0", 971027396, [0, 2, 4, 8, 96]),
    ("00000000", -123441245, [0, 0, 3, 3, 3]),
    ("hello world", 1221641059, [0, 1, 3, 7, 59]),
    ("the quick brown fox jumps", -1650844993, [0, 1, 7, 7, 55]),
    ("logbus", -1470452242, [0, 1, 6, 10, 6]),
    (
        "kafka-partitioner-key-with-some-length",
        1628904728,
        [0, 2, 0, 8, 28],
    ),
];

#[test]
fn partition_for_key_matches_an_independent_murmur2() {
    for (key, hash, expected) in KAFKA_PARTITIONS {
        assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
        for (count, partition) in PARTITION_COUNTS.into_iter().zip(expected) {
            assert_eq!(
                partition_for_key(key.as_bytes(), count),
                partition,
                "{key:?} over {count}"
            );
        }
    }
}

#[test]
fn produced_keyed_records_land_in_kafkas_partition() {
    let (_dir, broker) = broker();
    let producer = Producer::new(&broker).unwrap();
    for (column, count) in PARTITION_COUNTS.into_iter().enumerate() {
        let topic = format!("keys-{count}");
        broker
            .create_topic(&topic, TopicConfig::with_partitions(count))
            .unwrap();
        let handles: Vec<_> = KAFKA_PARTITIONS
            .iter()
            .map(|(key, _, _)| {
                let record = ProducerRecord::new(topic.as_str(), *key).key(*key);
                producer.send(record).unwrap()
            })
            .collect();
        let mut consumer = earliest(&broker);
        let mut expected_per_partition: BTreeMap<u32, usize> = BTreeMap::new();
        for ((key, _, expected), handle) in KAFKA_PARTITIONS.iter().zip(handles) {
            let sent = handle.wait().unwrap();
            assert_eq!(sent.partition, expected[column], "{key:?} over {count}");
            *expected_per_partition.entry(sent.partition).or_default() += 1;
        }
        for (&partition, &records) in &expected_per_partition {
            consumer
                .assign([TopicPartition::new(topic.as_str(), partition)])
                .unwrap();
            for record in consume(&mut consumer, records) {
                let key = record.key.as_deref().unwrap();
                let row = KAFKA_PARTITIONS
                    .iter()
                    .find(|(k, _, _)| k.as_bytes() == key)
                    .unwrap();
                assert_eq!(
                    row.2[column], partition,
                    "consumed from the wrong partition"
                );
            }
        }
    }
}

#[test]
fn keyless_records_stick_then_spread_over_every_partition() {
    let (_dir, broker) = broker();
    broker
        .create_topic("spread", TopicConfig::with_partitions(8))
        .unwrap();
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            batch_size: 1024,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let value = vec![b'x'; 100];
    let sent: Vec<RecordMetadata> = (0..4000)
        .map(|_| {
            producer
                .send(ProducerRecord::new("spread", value.clone()))
                .unwrap()
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.wait().unwrap())
        .collect();
    let mut per_partition = [0usize; 8];
    for metadata in &sent {
        per_partition[metadata.partition as usize] += 1;
    }
    assert!(
        per_partition.iter().all(|&count| count > 100),
        "uneven spread {per_partition:?}"
    );
    // Sticky: consecutive keyless sends stay on one partition for about a batch (~9 records),
    // so the partition changes far less often than a round robin would.
    let switches = sent
        .windows(2)
        .filter(|pair| pair[0].partition != pair[1].partition)
        .count();
    assert!(switches < sent.len() / 4, "{switches} switches");
    let description = broker.describe_topic("spread").unwrap();
    for (partition, count) in description.partitions.iter().zip(per_partition) {
        assert_eq!(partition.log_end_offset, count as u64);
    }
}

#[test]
fn an_explicit_partition_wins_over_the_key() {
    let (_dir, broker) = broker();
    broker
        .create_topic("explicit", TopicConfig::with_partitions(12))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    // "key-2" hashes to partition 2 of 12.
    assert_eq!(partition_for_key(b"key-2", 12), 2);
    let sent = producer
        .send_and_wait(
            ProducerRecord::new("explicit", "v")
                .key("key-2")
                .partition(9),
        )
        .unwrap();
    assert_eq!(sent.partition, 9);
    assert_eq!(log_batches(&broker, "explicit", 9).len(), 1);
    assert!(log_batches(&broker, "explicit", 2).is_empty());
}

#[test]
fn linger_batches_records_and_a_large_record_goes_alone() {
    let (_dir, broker) = broker();
    broker
        .create_topic("linger", TopicConfig::with_partitions(1))
        .unwrap();
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            linger_ms: 60_000,
            batch_size: 2048,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let small = |i: usize| ProducerRecord::new("linger", format!("small-{i:04}"));
    let mut handles: Vec<_> = (0..100).map(|i| producer.send(small(i)).unwrap()).collect();
    handles.push(
        producer
            .send(ProducerRecord::new("linger", vec![b'L'; 5000]))
            .unwrap(),
    );
    handles.extend((100..110).map(|i| producer.send(small(i)).unwrap()));
    assert!(
        handles.iter().any(|handle| !handle.is_done()),
        "a 60 s linger holds the last open batch"
    );
    producer.flush();
    assert!(
        handles.iter().all(|handle| handle.is_done()),
        "flush completes every send"
    );
    let offsets: Vec<u64> = handles
        .into_iter()
        .map(|handle| handle.wait().unwrap().offset.unwrap())
        .collect();
    assert_eq!(offsets, (0..111).collect::<Vec<u64>>());

    let batches = log_batches(&broker, "linger", 0);
    let counts: Vec<i32> = batches.iter().map(|b| b.header().records_count).collect();
    assert!(batches.len() < 20, "records were batched: {counts:?}");
    for batch in &batches {
        assert!(batch.as_bytes().len() <= 2048 || batch.header().records_count == 1);
    }
    let large = batches
        .iter()
        .find(|b| b.header().base_offset == 100)
        .expect("the large record starts its own batch");
    assert_eq!(large.header().records_count, 1, "{counts:?}");
    assert_eq!(counts.iter().sum::<i32>(), 111);
}

/// Regression: with `linger_ms` > 0 the sender was only woken by a full batch, a flush or a
/// close, so a record in a batch that never filled waited forever instead of `linger_ms`.
#[test]
fn a_lingering_batch_is_sent_once_linger_ms_passes_without_a_flush() {
    let (_dir, broker) = broker();
    broker
        .create_topic("linger", TopicConfig::with_partitions(1))
        .unwrap();
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            // Long enough that ten sends in a loop fall within one linger on a loaded machine.
            linger_ms: 100,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    // Several rounds: in all but (perhaps) the first, the sender is already idle when the
    // round's first record arrives, which is when it used to miss the record.
    for round in 0..10 {
        let started = Instant::now();
        let handles: Vec<_> = (0..10)
            .map(|i| {
                producer
                    .send(ProducerRecord::new("linger", format!("{round}/{i}")))
                    .unwrap()
            })
            .collect();
        for handle in &handles {
            let result = handle.wait_timeout(Duration::from_secs(10));
            assert!(result.is_some(), "round {round}: the batch was never sent");
            result.unwrap().unwrap();
        }
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "sent before its linger"
        );
    }
    let batches = log_batches(&broker, "linger", 0);
    assert_eq!(
        batches.len(),
        10,
        "ten records within a linger form one batch"
    );
}

#[test]
fn acks_none_leader_and_all() {
    let (_dir, broker) = broker();
    broker
        .create_topic("acks", TopicConfig::with_partitions(1))
        .unwrap();
    for (acks, offset) in [
        (Acks::None, None),
        (Acks::Leader, Some(1)),
        (Acks::All, Some(2)),
    ] {
        let producer = Producer::with_config(
            &broker,
            ProducerConfig {
                acks,
                ..ProducerConfig::default()
            },
        )
        .unwrap();
        let sent = producer
            .send_and_wait(ProducerRecord::new("acks", format!("{acks:?}")).timestamp(7))
            .unwrap();
        assert_eq!(
            (sent.partition, sent.offset, sent.timestamp),
            (0, offset, 7)
        );
        producer.flush();
    }
    let mut consumer = earliest(&broker);
    consumer.assign(partitions("acks", 1)).unwrap();
    let values: Vec<String> = consume(&mut consumer, 3).iter().map(value_of).collect();
    assert_eq!(
        values,
        ["None", "Leader", "All"],
        "acks=none records are appended too"
    );
}

#[test]
fn a_log_append_time_topic_reports_the_brokers_timestamp() {
    let clock = ManualClock::new(1_700_000_000_000);
    let (_dir, broker) = broker_with_clock(&clock);
    let config = TopicConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..TopicConfig::default()
    };
    broker.create_topic("stamped", config).unwrap();
    let producer = Producer::new(&broker).unwrap();
    let sent = producer
        .send_and_wait(ProducerRecord::new("stamped", "v").timestamp(5))
        .unwrap();
    assert_eq!(sent.timestamp, 1_700_000_000_000);
    clock.advance_ms(10);
    let mut consumer = earliest(&broker);
    consumer.assign(partitions("stamped", 1)).unwrap();
    let record = &consume(&mut consumer, 1)[0];
    assert_eq!(record.timestamp, 1_700_000_000_000);
    assert_eq!(record.timestamp_type, TimestampType::LogAppendTime);
}

#[test]
fn headers_null_keys_and_tombstones_round_trip() {
    let (_dir, broker) = broker();
    broker
        .create_topic("shapes", TopicConfig::with_partitions(1))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    let with_headers = ProducerRecord::new("shapes", "body")
        .key("k")
        .header("trace", Some(Bytes::from_static(b"abc")))
        .header("empty", None)
        .header("trace", Some(Bytes::new()));
    producer.send_and_wait(with_headers.clone()).unwrap();
    producer
        .send_and_wait(ProducerRecord::tombstone("shapes", "k"))
        .unwrap();
    producer
        .send_and_wait(ProducerRecord::new("shapes", Bytes::new()))
        .unwrap();
    let mut consumer = earliest(&broker);
    consumer.assign(partitions("shapes", 1)).unwrap();
    let records = consume(&mut consumer, 3);
    assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(records[0].value.as_deref(), Some(&b"body"[..]));
    assert_eq!(records[0].headers.to_vec(), with_headers.headers);
    assert_eq!(records[1].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(records[1].value, None, "a tombstone has a null value");
    assert!(records[1].headers.is_empty());
    assert_eq!(records[2].key, None);
    assert_eq!(
        records[2].value.as_deref(),
        Some(&b""[..]),
        "empty is not null"
    );
}

#[test]
fn poll_blocks_until_its_timeout_when_nothing_arrives() {
    let (_dir, broker) = broker();
    broker
        .create_topic("quiet", TopicConfig::with_partitions(2))
        .unwrap();
    let mut consumer = earliest(&broker);
    consumer.assign(partitions("quiet", 2)).unwrap();
    let started = Instant::now();
    assert!(consumer.poll(Duration::from_millis(50)).unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(50));
}

/// A consumer that busy-polls (`poll_spin_us` far above its poll timeout) still returns at its
/// timeout, and sees a record appended by another thread while it spins.
#[test]
fn a_busy_polling_consumer_keeps_its_timeout_and_sees_appends() {
    let (_dir, broker) = broker();
    broker
        .create_topic("spin", TopicConfig::with_partitions(1))
        .unwrap();
    let mut consumer = Consumer::with_config(
        &broker,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            // The largest setting: spins until each poll's deadline.
            poll_spin_us: u64::MAX,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign(partitions("spin", 1)).unwrap();
    let started = Instant::now();
    assert!(consumer.poll(Duration::from_millis(50)).unwrap().is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(50) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let sender = {
        let broker = broker.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            Producer::new(&broker)
                .unwrap()
                .send_and_wait(ProducerRecord::new("spin", "spun"))
                .unwrap()
        })
    };
    let started = Instant::now();
    let records = consumer.poll(Duration::from_secs(30)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(&b"spun"[..]));
    assert_eq!(sender.join().unwrap().offset, Some(0));
}

#[test]
fn a_blocked_poll_is_woken_by_an_append_from_another_thread() {
    let (_dir, broker) = broker();
    broker
        .create_topic("wake", TopicConfig::with_partitions(4))
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let (tx, rx) = mpsc::channel();
    let consumer = {
        let broker = broker.clone();
        let barrier = Arc::clone(&barrier);
        thread::spawn(move || {
            let mut consumer = earliest(&broker);
            consumer.assign(partitions("wake", 4)).unwrap();
            // Positions resolved before the append, so the poll below has only to wait.
            for tp in partitions("wake", 4) {
                assert_eq!(consumer.position(&tp).unwrap(), 0);
            }
            barrier.wait();
            let started = Instant::now();
            let records = consumer.poll(Duration::from_secs(30)).unwrap();
            tx.send((started.elapsed(), records)).unwrap();
        })
    };
    barrier.wait();
    let producer = Producer::new(&broker).unwrap();
    producer
        .send_and_wait(ProducerRecord::new("wake", "ping").partition(3))
        .unwrap();
    let (waited, records) = rx.recv().unwrap();
    consumer.join().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].partition, records[0].offset), (3, 0));
    assert!(
        waited < Duration::from_secs(5),
        "poll returned after {waited:?}, not on the append"
    );
}

#[test]
fn pause_and_resume() {
    let (_dir, broker) = broker();
    broker
        .create_topic("paused", TopicConfig::with_partitions(2))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    for partition in [0, 1, 0, 1] {
        producer
            .send_and_wait(ProducerRecord::new("paused", "v").partition(partition))
            .unwrap();
    }
    let all = partitions("paused", 2);
    let mut consumer = earliest(&broker);
    consumer.assign(all.clone()).unwrap();
    consumer.pause(&all[..1]).unwrap();
    assert_eq!(consumer.paused(), all[..1]);
    let records = consume(&mut consumer, 2);
    assert!(records.iter().all(|record| record.partition == 1));
    assert!(consumer.poll(Duration::from_millis(10)).unwrap().is_empty());
    assert_eq!(
        consumer.position(&all[0]).unwrap(),
        0,
        "a paused position stays"
    );
    consumer.resume(&all[..1]).unwrap();
    assert!(consumer.paused().is_empty());
    let records = consume(&mut consumer, 2);
    assert!(records.iter().all(|record| record.partition == 0));
}

#[test]
fn seek_seek_to_beginning_seek_to_end_and_position() {
    let (_dir, broker) = broker();
    broker
        .create_topic("seek", TopicConfig::with_partitions(1))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    for i in 0..10 {
        producer
            .send_and_wait(ProducerRecord::new("seek", format!("{i}")))
            .unwrap();
    }
    let tp = TopicPartition::new("seek", 0);
    let mut consumer = earliest(&broker);
    consumer.assign([tp.clone()]).unwrap();
    consumer.seek(&tp, 7).unwrap();
    assert_eq!(consumer.position(&tp).unwrap(), 7);
    let values: Vec<String> = consume(&mut consumer, 3).iter().map(value_of).collect();
    assert_eq!(values, ["7", "8", "9"]);
    assert_eq!(consumer.position(&tp).unwrap(), 10);
    consumer
        .seek_to_beginning(std::slice::from_ref(&tp))
        .unwrap();
    assert_eq!(consumer.position(&tp).unwrap(), 0);
    let from_start = consumer.poll(Duration::from_secs(5)).unwrap();
    assert_eq!(from_start.len(), 10);
    assert_eq!(value_of(&from_start[0]), "0");
    consumer.seek_to_end(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(consumer.position(&tp).unwrap(), 10);
    assert!(consumer.poll(Duration::from_millis(10)).unwrap().is_empty());
    // A seek drops records read ahead of the old position.
    consumer.seek(&tp, 2).unwrap();
    let mut small = Consumer::with_config(
        &broker,
        ConsumerConfig {
            max_poll_records: 2,
            ..ConsumerConfig::default()
        },
    );
    small.assign([tp.clone()]).unwrap();
    small.seek(&tp, 0).unwrap();
    assert_eq!(small.poll(Duration::from_secs(5)).unwrap().len(), 2);
    small.seek(&tp, 5).unwrap();
    let next = small.poll(Duration::from_secs(5)).unwrap();
    assert_eq!(value_of(&next[0]), "5");
    assert_eq!(
        consumer
            .beginning_offsets(std::slice::from_ref(&tp))
            .unwrap()[&tp],
        0
    );
    assert_eq!(
        consumer.end_offsets(std::slice::from_ref(&tp)).unwrap()[&tp],
        10
    );
}

#[test]
fn offsets_for_times_finds_the_first_record_at_or_after_a_time() {
    let (_dir, broker) = broker();
    broker
        .create_topic("times", TopicConfig::with_partitions(2))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    for (i, timestamp) in [1_000, 2_000, 2_000, 3_000].into_iter().enumerate() {
        producer
            .send_and_wait(
                ProducerRecord::new("times", format!("{i}"))
                    .partition(0)
                    .timestamp(timestamp),
            )
            .unwrap();
    }
    let consumer = Consumer::new(&broker);
    let p0 = TopicPartition::new("times", 0);
    let p1 = TopicPartition::new("times", 1);
    let query = |timestamp: i64| {
        let query = HashMap::from([(p0.clone(), timestamp), (p1.clone(), timestamp)]);
        let answer = consumer.offsets_for_times(&query).unwrap();
        assert_eq!(answer[&p1], None, "an empty partition has no offset");
        answer[&p0]
    };
    assert_eq!(query(0), Some((0, 1_000)));
    assert_eq!(query(1_500), Some((1, 2_000)));
    assert_eq!(query(2_000), Some((1, 2_000)));
    assert_eq!(query(2_001), Some((3, 3_000)));
    assert_eq!(query(3_001), None);
}

fn produce_values(broker: &Broker, topic: &str, count: usize) {
    let producer = Producer::new(broker).unwrap();
    for i in 0..count {
        producer
            .send_and_wait(ProducerRecord::new(topic, format!("{i}")))
            .unwrap();
    }
}

fn consumer_with_reset(broker: &Broker, reset: OffsetReset) -> Consumer {
    Consumer::with_config(
        broker,
        ConsumerConfig {
            auto_offset_reset: reset,
            ..ConsumerConfig::default()
        },
    )
}

#[test]
fn auto_offset_reset_earliest_latest_and_none() {
    let (_dir, broker) = broker();
    broker
        .create_topic("reset", TopicConfig::with_partitions(1))
        .unwrap();
    produce_values(&broker, "reset", 5);
    let tp = TopicPartition::new("reset", 0);

    let mut earliest = consumer_with_reset(&broker, OffsetReset::Earliest);
    earliest.assign([tp.clone()]).unwrap();
    assert_eq!(earliest.position(&tp).unwrap(), 0);

    let mut latest = consumer_with_reset(&broker, OffsetReset::Latest);
    latest.assign([tp.clone()]).unwrap();
    assert_eq!(latest.position(&tp).unwrap(), 5);
    assert!(latest.poll(Duration::from_millis(10)).unwrap().is_empty());

    let mut none = consumer_with_reset(&broker, OffsetReset::None);
    none.assign([tp.clone()]).unwrap();
    assert!(matches!(
        none.poll(Duration::from_millis(10)),
        Err(ConsumeError::NoOffset(ref p)) if *p == tp
    ));
    assert!(matches!(none.position(&tp), Err(ConsumeError::NoOffset(_))));
    none.seek(&tp, 1).unwrap();
    assert_eq!(consume(&mut none, 4).len(), 4);
}

/// Regression: after an `Earliest` reset of a position that fell below the log start, the poll
/// fetched nothing more and waited its whole timeout for an append, with records available.
#[test]
fn a_position_below_the_log_start_fails_with_none_and_resets_with_earliest() {
    let (_dir, broker) = broker();
    broker
        .create_topic("trimmed", TopicConfig::with_partitions(1))
        .unwrap();
    produce_values(&broker, "trimmed", 10);
    let tp = TopicPartition::new("trimmed", 0);
    let mut none = consumer_with_reset(&broker, OffsetReset::None);
    let mut earliest = consumer_with_reset(&broker, OffsetReset::Earliest);
    for consumer in [&mut none, &mut earliest] {
        consumer.assign([tp.clone()]).unwrap();
        consumer.seek(&tp, 2).unwrap();
    }
    broker
        .replica("trimmed", 0)
        .unwrap()
        .log()
        .delete_records_before(6)
        .unwrap();
    assert!(matches!(
        none.poll(Duration::from_millis(10)),
        Err(ConsumeError::OffsetOutOfRange { ref partition, offset: 2 }) if *partition == tp
    ));
    let started = Instant::now();
    let records = earliest.poll(Duration::from_secs(10)).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the reset position was not read in the same poll"
    );
    let values: Vec<String> = records.iter().map(value_of).collect();
    assert_eq!(values, ["6", "7", "8", "9"]);
}

/// Regression: batches were bounded by `batch_size` only, so records that each fit a topic's
/// `max_message_bytes` could be batched past it, and the log refused the whole batch as
/// `RecordTooLarge` (and, for an idempotent producer, left a sequence gap behind).
#[test]
fn records_that_each_fit_max_message_bytes_are_never_batched_past_it() {
    let (_dir, broker) = broker();
    let config = TopicConfig {
        max_message_bytes: 1_000,
        ..TopicConfig::default()
    };
    broker.create_topic("tight", config).unwrap();
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            linger_ms: 600_000,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            producer
                .send(ProducerRecord::new("tight", vec![i as u8; 100]))
                .unwrap()
        })
        .collect();
    producer.flush();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.wait().unwrap().offset, Some(i as u64));
    }
    let batches = log_batches(&broker, "tight", 0);
    assert!(batches.iter().all(|batch| batch.as_bytes().len() <= 1_000));
    assert!(batches.len() < 50, "records were still batched");
    // Nothing was refused, so the idempotent producer's sequence has no gap.
    let after = producer
        .send(ProducerRecord::new("tight", "after"))
        .unwrap();
    producer.flush();
    assert_eq!(after.wait().unwrap().offset, Some(50));
}

/// With `inline_idle_appends` and `linger_ms` 0 a record sent while the producer is idle is
/// appended by `send` itself (no hand-off to the sender thread), while a thread sending flat out
/// leaves the producer no idle time to pay for inline appends and forms batches behind the
/// sender thread, in order either way.
#[test]
fn an_idle_partition_is_appended_inline_and_a_tight_loop_still_batches() {
    let (_dir, broker) = broker();
    broker
        .create_topic("inline", TopicConfig::with_partitions(1))
        .unwrap();
    let producer = inline_producer(&broker);
    let replica = broker.replica("inline", 0).unwrap();
    let lone = producer
        .send(ProducerRecord::new("inline", "lone"))
        .unwrap();
    assert!(lone.is_done(), "appended before send returned");
    assert_eq!(replica.log().log_end_offset(), 1);
    assert_eq!(lone.wait().unwrap().offset, Some(0));

    const RECORDS: usize = 20_000;
    let handles: Vec<_> = (0..RECORDS)
        .map(|i| {
            producer
                .send(ProducerRecord::new("inline", format!("v{i}")))
                .unwrap()
        })
        .collect();
    producer.flush();
    let offsets: Vec<u64> = handles
        .into_iter()
        .map(|handle| handle.wait().unwrap().offset.unwrap())
        .collect();
    assert_eq!(offsets, (1..=RECORDS as u64).collect::<Vec<u64>>());
    // Without that rule every record would go inline, alone in its batch. (How many batches
    // form depends on how fast the sender thread keeps up, so only that some did is checked.)
    let batches = log_batches(&broker, "inline", 0);
    let largest = batches.iter().map(|b| b.header().records_count).max();
    assert!(
        largest > Some(1),
        "{} batches for {} records: the tight loop never batched",
        batches.len(),
        RECORDS + 1
    );

    // Once the loop stops, the producer sits idle again, and a lone record goes inline.
    thread::sleep(Duration::from_millis(20));
    let lone = producer
        .send(ProducerRecord::new("inline", "lone again"))
        .unwrap();
    assert!(lone.is_done(), "appended before send returned");
    assert_eq!(lone.wait().unwrap().offset, Some(RECORDS as u64 + 1));
}

/// Records sent in small bursts with pauses between them all go inline, the records of a burst
/// back to back: the pauses pay for the appends. (Under the earlier rule, at most one inline
/// append per 20 us, only the first record of a burst did and the others waited for the sender
/// thread.)
#[test]
fn records_in_paced_bursts_all_go_inline() {
    let (_dir, broker) = broker();
    broker
        .create_topic("bursts", TopicConfig::with_partitions(1))
        .unwrap();
    let producer = inline_producer(&broker);
    const BURSTS: usize = 50;
    const BURST: usize = 4;
    let mut inline = 0;
    for burst in 0..BURSTS {
        for i in 0..BURST {
            let handle = producer
                .send(ProducerRecord::new("bursts", format!("{burst}-{i}")))
                .unwrap();
            inline += usize::from(handle.is_done());
        }
        thread::sleep(Duration::from_millis(2));
    }
    producer.flush();
    assert!(
        inline >= BURSTS * BURST * 9 / 10,
        "{inline} of {} records appended inline",
        BURSTS * BURST
    );
    assert_eq!(
        broker.replica("bursts", 0).unwrap().log().log_end_offset(),
        (BURSTS * BURST) as u64
    );
}

/// A topic that flushes every append is never appended inline: `send` must not wait for a
/// disk flush (the sender thread does it).
#[test]
fn a_topic_that_flushes_every_append_is_not_appended_inline() {
    let (_dir, broker) = broker();
    broker
        .create_topic(
            "flushed",
            TopicConfig {
                flush: logbus::log::FlushPolicy::EveryAppend,
                ..TopicConfig::with_partitions(1)
            },
        )
        .unwrap();
    let producer = inline_producer(&broker);
    let mut inline = 0;
    for i in 0..20 {
        let handle = producer
            .send(ProducerRecord::new("flushed", format!("v{i}")))
            .unwrap();
        inline += usize::from(handle.is_done());
        assert_eq!(handle.wait().unwrap().offset, Some(i));
    }
    // A sender thread can finish between `send` returning and `is_done`, rarely every time.
    assert!(inline < 20, "every send was done before it returned");
}

/// `acks=Leader`, `linger_ms` 0 and inline appends (the defaults, spelled out for the tests of
/// inline appends).
fn inline_producer(broker: &Broker) -> Producer {
    Producer::with_config(
        broker,
        ProducerConfig {
            acks: Acks::Leader,
            linger_ms: 0,
            inline_idle_appends: true,
            ..ProducerConfig::default()
        },
    )
    .unwrap()
}

/// `fetch_max_bytes` bounds what one poll reads across partitions, as Kafka's does: whole
/// batches only, and at least one batch even when it alone is larger than the limit, so a
/// consumer always makes progress.
#[test]
fn fetch_max_bytes_bounds_a_poll_in_whole_batches() {
    let (_dir, broker) = broker();
    broker
        .create_topic("bounded", TopicConfig::with_partitions(2))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    for i in 0..20u32 {
        // One batch per record: each send waits for its append.
        producer
            .send_and_wait(ProducerRecord::new("bounded", vec![b'v'; 100]).partition(i % 2))
            .unwrap();
    }
    let batch_bytes: Vec<usize> = log_batches(&broker, "bounded", 0)
        .iter()
        .map(|batch| batch.as_bytes().len())
        .collect();
    assert_eq!(batch_bytes.len(), 10);
    let bounded = |fetch_max_bytes: usize| {
        let mut consumer = Consumer::with_config(
            &broker,
            ConsumerConfig {
                auto_offset_reset: OffsetReset::Earliest,
                fetch_max_bytes,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign(partitions("bounded", 2)).unwrap();
        consumer
    };

    // A budget of 1 byte: one whole batch per poll, every record once.
    let mut consumer = bounded(1);
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let polled = consumer.poll(Duration::from_secs(10)).unwrap();
        assert_eq!(polled.len(), 1, "one batch per poll");
        assert!(seen.insert((polled[0].partition, polled[0].offset)));
    }
    assert_eq!(seen.len(), 20);

    // A budget of exactly three batches: three records, all from the first partition read.
    let three: usize = batch_bytes[..3].iter().sum();
    let mut consumer = bounded(three);
    let polled = consumer.poll(Duration::from_secs(10)).unwrap();
    assert_eq!(polled.len(), 3, "{polled:?}");
    assert!(polled
        .iter()
        .all(|record| record.partition == polled[0].partition));

    // The default budget takes everything in one poll.
    let mut consumer = bounded(ConsumerConfig::default().fetch_max_bytes);
    assert_eq!(consumer.poll(Duration::from_secs(10)).unwrap().len(), 20);
}

/// A `Partitioner` of the caller's own replaces the default for records without an explicit
/// partition, keyed or not; an explicit partition still wins.
#[test]
fn a_custom_partitioner_places_records_without_an_explicit_partition() {
    #[derive(Debug)]
    struct LastPartition;
    impl logbus::client::Partitioner for LastPartition {
        fn partition(&self, topic: &str, _key: Option<&[u8]>, _bytes: usize, n: u32) -> u32 {
            assert_eq!(topic, "custom");
            n - 1
        }
    }
    let (_dir, broker) = broker();
    broker
        .create_topic("custom", TopicConfig::with_partitions(4))
        .unwrap();
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            partitioner: Some(Arc::new(LastPartition)),
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    for i in 0..10 {
        let keyed = ProducerRecord::new("custom", "v").key(format!("key-{i}"));
        assert_eq!(producer.send_and_wait(keyed).unwrap().partition, 3);
        let keyless = ProducerRecord::new("custom", "v");
        assert_eq!(producer.send_and_wait(keyless).unwrap().partition, 3);
    }
    let explicit = ProducerRecord::new("custom", "v").partition(1);
    assert_eq!(producer.send_and_wait(explicit).unwrap().partition, 1);
}

/// A record sent without a timestamp gets CreateTime from the broker's clock.
#[test]
fn a_record_without_a_timestamp_gets_the_clocks_create_time() {
    let clock = ManualClock::new(1_650_000_000_000);
    let (_dir, broker) = broker_with_clock(&clock);
    broker
        .create_topic("clocked", TopicConfig::with_partitions(1))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    let first = producer
        .send_and_wait(ProducerRecord::new("clocked", "a"))
        .unwrap();
    clock.advance_ms(250);
    let second = producer
        .send_and_wait(ProducerRecord::new("clocked", "b"))
        .unwrap();
    assert_eq!(
        (first.timestamp, second.timestamp),
        (1_650_000_000_000, 1_650_000_000_250)
    );
    let mut consumer = earliest(&broker);
    consumer.assign(partitions("clocked", 1)).unwrap();
    let records = consume(&mut consumer, 2);
    let stamps: Vec<(i64, TimestampType)> = records
        .iter()
        .map(|record| (record.timestamp, record.timestamp_type))
        .collect();
    assert_eq!(
        stamps,
        [
            (1_650_000_000_000, TimestampType::CreateTime),
            (1_650_000_000_250, TimestampType::CreateTime)
        ]
    );
}

/// `describe_topic` reports each partition's log start, log end, high watermark and size on
/// disk as values: the size is the bytes of the batches in the log, and the log start moves
/// when records before it are deleted.
#[test]
fn describe_reports_offsets_and_size_of_each_partition() {
    let (_dir, broker) = broker();
    broker
        .create_topic("described", TopicConfig::with_partitions(2))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    for _ in 0..7 {
        producer
            .send_and_wait(ProducerRecord::new("described", "value").partition(0))
            .unwrap();
    }
    let description = broker.describe_topic("described").unwrap();
    let first = &description.partitions[0];
    let batch_bytes: u64 = log_batches(&broker, "described", 0)
        .iter()
        .map(|batch| batch.as_bytes().len() as u64)
        .sum();
    assert_eq!(
        (
            first.log_start_offset,
            first.log_end_offset,
            first.high_watermark,
            first.size_bytes
        ),
        (0, 7, 7, batch_bytes)
    );
    assert!(batch_bytes > 7 * 5);
    let empty = &description.partitions[1];
    assert_eq!(
        (
            empty.log_start_offset,
            empty.log_end_offset,
            empty.high_watermark,
            empty.size_bytes
        ),
        (0, 0, 0, 0)
    );
    broker
        .replica("described", 0)
        .unwrap()
        .log()
        .delete_records_before(4)
        .unwrap();
    let moved = &broker.describe_topic("described").unwrap().partitions[0];
    assert_eq!((moved.log_start_offset, moved.log_end_offset), (4, 7));
}

/// Consumer records share the log's memory: a record's value is a slice of the mapped
/// segment, the very bytes a log read returns, not a copy.
#[test]
fn consumed_keys_and_values_are_slices_of_the_log_not_copies() {
    let (_dir, broker) = broker();
    broker
        .create_topic("zero-copy", TopicConfig::with_partitions(1))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    for i in 0..5 {
        producer
            .send_and_wait(ProducerRecord::new("zero-copy", format!("value-{i}")).key("k"))
            .unwrap();
    }
    let read = broker
        .replica("zero-copy", 0)
        .unwrap()
        .log()
        .read(0, usize::MAX)
        .unwrap();
    let log_bytes = read.bytes.as_ptr_range();
    let mut consumer = earliest(&broker);
    consumer.assign(partitions("zero-copy", 1)).unwrap();
    for record in consume(&mut consumer, 5) {
        for field in [record.key.as_ref(), record.value.as_ref()] {
            let field = field.unwrap().as_ptr_range();
            assert!(
                log_bytes.start <= field.start && field.end <= log_bytes.end,
                "offset {} was copied out of the log",
                record.offset
            );
        }
    }
}

/// On a topic that flushes every append, a send completes only once its record is flushed:
/// the log's recovery point (everything below it is on disk) is past it when the send returns.
#[test]
fn a_send_to_a_topic_that_flushes_every_append_completes_after_the_flush() {
    let (_dir, broker) = broker();
    let config = TopicConfig {
        flush: logbus::log::FlushPolicy::EveryAppend,
        ..TopicConfig::with_partitions(1)
    };
    broker.create_topic("durable", config).unwrap();
    broker
        .create_topic("lazy", TopicConfig::with_partitions(1))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    for i in 0..5 {
        let sent = producer
            .send_and_wait(ProducerRecord::new("durable", format!("{i}")))
            .unwrap();
        let log_recovery = broker.replica("durable", 0).unwrap().log().recovery_point();
        assert!(
            log_recovery > sent.offset.unwrap(),
            "offset {i} acknowledged unflushed"
        );
        producer
            .send_and_wait(ProducerRecord::new("lazy", format!("{i}")))
            .unwrap();
    }
    // The check above can fail: without the flush policy nothing is flushed yet.
    assert_eq!(broker.replica("lazy", 0).unwrap().log().recovery_point(), 0);
}

/// A consumer reads only below the high watermark: records a leader appended but has not
/// committed stay invisible (even to `seek_to_end`) until the high watermark passes them, and
/// the move wakes a waiting poll.
#[test]
fn a_consumer_reads_only_below_the_high_watermark() {
    let (_dir, broker) = broker();
    broker
        .create_topic("committed", TopicConfig::with_partitions(1))
        .unwrap();
    produce_values(&broker, "committed", 3);
    let replica = broker.replica("committed", 0).unwrap();
    // Appended as a leader does before its followers have it: the high watermark stays.
    let mut builder = logbus::record::BatchBuilder::new(logbus::record::BatchSpec::default());
    for value in ["3", "4"] {
        builder.append(1, None, Some(value.as_bytes()), &[]);
    }
    replica
        .append_as_leader(&builder.finish(), replica.leader_epoch())
        .unwrap();
    let partition = &broker.describe_topic("committed").unwrap().partitions[0];
    assert_eq!((partition.log_end_offset, partition.high_watermark), (5, 3));

    let mut consumer = earliest(&broker);
    consumer.assign(partitions("committed", 1)).unwrap();
    let first: Vec<String> = consume(&mut consumer, 3).iter().map(value_of).collect();
    assert_eq!(first, ["0", "1", "2"]);
    assert!(consumer
        .poll(Duration::from_millis(100))
        .unwrap()
        .is_empty());
    let mut tail = earliest(&broker);
    tail.assign(partitions("committed", 1)).unwrap();
    tail.seek_to_end(&partitions("committed", 1)).unwrap();
    assert_eq!(
        tail.position(&TopicPartition::new("committed", 0)).unwrap(),
        3
    );

    let waiting = thread::spawn(move || {
        let polled = consumer.poll(Duration::from_secs(10)).unwrap();
        polled.iter().map(value_of).collect::<Vec<String>>()
    });
    thread::sleep(Duration::from_millis(50));
    replica.advance_high_watermark(5);
    assert_eq!(waiting.join().unwrap(), ["3", "4"]);
}

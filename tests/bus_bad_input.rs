//! Bad input to the broker, producer and consumer: each case is refused with its own typed
//! error, and a refused call changes nothing.

use std::time::{Duration, Instant};

use logbus::broker::{Broker, BrokerConfig, BrokerError, CleanupPolicy, TopicConfig};
use logbus::client::{
    ConsumeError, Consumer, Idempotence, ProduceError, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use logbus::log::LogError;
use tempfile::TempDir;

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

fn with_topic(name: &str, partitions: u32) -> (TempDir, Broker) {
    let (dir, broker) = broker();
    broker
        .create_topic(name, TopicConfig::with_partitions(partitions))
        .unwrap();
    (dir, broker)
}

#[test]
fn send_to_an_unknown_topic() {
    let (_dir, broker) = with_topic("known", 1);
    let producer = Producer::new(&broker).unwrap();
    assert!(matches!(
        producer.send(ProducerRecord::new("unknown", "v")),
        Err(ProduceError::UnknownTopic { ref topic }) if topic == "unknown"
    ));
}

#[test]
fn send_to_an_unknown_partition() {
    let (_dir, broker) = with_topic("known", 3);
    let producer = Producer::new(&broker).unwrap();
    assert!(matches!(
        producer.send(ProducerRecord::new("known", "v").partition(3)),
        Err(ProduceError::UnknownPartition { partition: 3, .. })
    ));
    assert_eq!(
        broker.replica("known", 2).unwrap().log().log_end_offset(),
        0
    );
}

#[test]
fn assign_an_unknown_topic_or_partition_leaves_the_assignment_unchanged() {
    let (_dir, broker) = with_topic("known", 2);
    let mut consumer = Consumer::new(&broker);
    let good = TopicPartition::new("known", 1);
    consumer.assign([good.clone()]).unwrap();
    assert!(matches!(
        consumer.assign([TopicPartition::new("known", 0), TopicPartition::new("unknown", 0)]),
        Err(ConsumeError::UnknownTopic { ref topic }) if topic == "unknown"
    ));
    let missing = TopicPartition::new("known", 2);
    assert!(matches!(
        consumer.assign([missing.clone()]),
        Err(ConsumeError::UnknownPartition(ref p)) if *p == missing
    ));
    assert_eq!(consumer.assignment(), [good]);
}

#[test]
fn invalid_topic_names_are_refused() {
    let (dir, broker) = broker();
    let long = "x".repeat(250);
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "with space",
        "tab\t",
        "ünïcode",
        long.as_str(),
    ] {
        assert!(
            matches!(
                broker.create_topic(name, TopicConfig::default()),
                Err(BrokerError::Log(LogError::InvalidTopicName { .. }))
            ),
            "{name:?}"
        );
    }
    assert!(broker.list_topics().is_empty());
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, 2, "only the lock file and __metadata");
}

#[test]
fn creating_an_existing_topic_is_refused_and_keeps_its_configuration() {
    let (_dir, broker) = with_topic("orders", 3);
    assert!(matches!(
        broker.create_topic("orders", TopicConfig::with_partitions(5)),
        Err(BrokerError::TopicExists { ref topic }) if topic == "orders"
    ));
    assert_eq!(broker.topic("orders").unwrap().partition_count(), 3);
}

#[test]
fn a_record_above_max_message_bytes_is_refused_and_nothing_is_appended() {
    let (_dir, broker) = broker();
    let config = TopicConfig {
        max_message_bytes: 1_000,
        ..TopicConfig::default()
    };
    broker.create_topic("small", config).unwrap();
    let producer = Producer::new(&broker).unwrap();
    assert!(matches!(
        producer.send(ProducerRecord::new("small", vec![0u8; 2_000])),
        Err(ProduceError::RecordTooLarge { max_bytes: 1_000, size_bytes }) if size_bytes > 2_000
    ));
    producer.flush();
    assert_eq!(
        broker.replica("small", 0).unwrap().log().log_end_offset(),
        0
    );
    // A record that fits still goes, with the first offset: the refused one took none.
    let sent = producer
        .send_and_wait(ProducerRecord::new("small", vec![0u8; 100]))
        .unwrap();
    assert_eq!(sent.offset, Some(0));
}

#[test]
fn max_in_flight_outside_what_idempotence_can_keep_exact_is_refused() {
    let (_dir, broker) = with_topic("t", 1);
    let with = |max_in_flight_per_partition, idempotence| {
        Producer::with_config(
            &broker,
            ProducerConfig {
                max_in_flight_per_partition,
                idempotence,
                ..ProducerConfig::default()
            },
        )
    };
    // A broker remembers an idempotent producer's last 5 batches per partition, so a sixth in
    // flight could be retried past what it can recognise as a duplicate.
    assert!(matches!(
        with(6, Idempotence::Enabled),
        Err(ProduceError::MaxInFlightOutOfRange {
            requested: 6,
            max: Some(5)
        })
    ));
    assert!(matches!(
        with(0, Idempotence::Enabled),
        Err(ProduceError::MaxInFlightOutOfRange {
            requested: 0,
            max: Some(5)
        })
    ));
    assert!(matches!(
        with(0, Idempotence::Disabled),
        Err(ProduceError::MaxInFlightOutOfRange {
            requested: 0,
            max: None
        })
    ));
    for (max_in_flight, idempotence) in [
        (5, Idempotence::Enabled),
        (1, Idempotence::Enabled),
        (16, Idempotence::Disabled),
    ] {
        let producer = with(max_in_flight, idempotence).expect("in range");
        let metadata = producer
            .send_and_wait(ProducerRecord::new("t", "v"))
            .expect("sends");
        assert!(metadata.offset.is_some());
    }
}

#[test]
fn send_after_close_is_refused() {
    let (_dir, broker) = with_topic("t", 1);
    let producer = Producer::new(&broker).unwrap();
    let before = producer.send(ProducerRecord::new("t", "before")).unwrap();
    producer.close();
    assert!(before.is_done(), "close completes earlier sends");
    before.wait().unwrap();
    assert!(matches!(
        producer.send(ProducerRecord::new("t", "after")),
        Err(ProduceError::Closed)
    ));
    let clone = producer.clone();
    assert!(matches!(
        clone.send(ProducerRecord::new("t", "after")),
        Err(ProduceError::Closed)
    ));
}

#[test]
fn poll_with_nothing_assigned() {
    let (_dir, broker) = with_topic("t", 1);
    let mut consumer = Consumer::new(&broker);
    let started = Instant::now();
    assert!(matches!(
        consumer.poll(Duration::from_secs(10)),
        Err(ConsumeError::NoAssignment)
    ));
    assert!(started.elapsed() < Duration::from_secs(5), "fails at once");
}

#[test]
fn seek_position_pause_and_resume_of_an_unassigned_partition() {
    let (_dir, broker) = with_topic("t", 2);
    let mut consumer = Consumer::new(&broker);
    consumer.assign([TopicPartition::new("t", 0)]).unwrap();
    let other = TopicPartition::new("t", 1);
    let not_assigned = |result: Result<(), ConsumeError>| matches!(result, Err(ConsumeError::NotAssigned(ref p)) if *p == other);
    assert!(not_assigned(consumer.seek(&other, 0)));
    assert!(not_assigned(
        consumer.seek_to_beginning(std::slice::from_ref(&other))
    ));
    assert!(not_assigned(
        consumer.seek_to_end(std::slice::from_ref(&other))
    ));
    assert!(not_assigned(consumer.position(&other).map(drop)));
    assert!(not_assigned(consumer.pause(std::slice::from_ref(&other))));
    assert!(not_assigned(consumer.resume(std::slice::from_ref(&other))));
    // A refused pause of several partitions pauses none of them.
    assert!(not_assigned(
        consumer.pause(&[TopicPartition::new("t", 0), other.clone()])
    ));
    assert!(consumer.paused().is_empty());
}

#[test]
fn a_negative_timestamp_is_refused() {
    let (_dir, broker) = with_topic("t", 1);
    let producer = Producer::new(&broker).unwrap();
    assert!(matches!(
        producer.send(ProducerRecord::new("t", "v").timestamp(-1)),
        Err(ProduceError::InvalidTimestamp { timestamp: -1 })
    ));
    producer.flush();
    assert_eq!(broker.replica("t", 0).unwrap().log().log_end_offset(), 0);
}

#[test]
fn a_full_buffer_blocks_for_max_block_ms_then_fails() {
    let (_dir, broker) = with_topic("t", 1);
    // A long linger and a large batch keep the first record buffered; it fills buffer_memory.
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            buffer_memory: 1_000,
            batch_size: 1 << 20,
            linger_ms: 600_000,
            max_block_ms: 10,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let first = producer
        .send(ProducerRecord::new("t", vec![1u8; 600]))
        .unwrap();
    let started = Instant::now();
    assert!(matches!(
        producer.send(ProducerRecord::new("t", vec![2u8; 600])),
        Err(ProduceError::BufferExhausted { waited_ms: 10 })
    ));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(10),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "blocked for {waited:?}");
    producer.flush();
    assert_eq!(first.wait().unwrap().offset, Some(0));
    // Flushing freed the buffer: the same send now succeeds.
    let second = producer
        .send(ProducerRecord::new("t", vec![2u8; 600]))
        .unwrap();
    producer.flush();
    assert_eq!(second.wait().unwrap().offset, Some(1));
}

#[test]
fn dropping_a_producer_completes_every_send_in_flight() {
    let (_dir, broker) = broker();
    broker
        .create_topic("kept", TopicConfig::with_partitions(4))
        .unwrap();
    broker
        .create_topic("deleted", TopicConfig::with_partitions(2))
        .unwrap();
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            batch_size: 1 << 20,
            linger_ms: 600_000,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let send = |topic: &str, i: usize| {
        producer
            .send(ProducerRecord::new(topic, format!("{i}")).key(format!("{i}")))
            .unwrap()
    };
    let doomed: Vec<_> = (0..500).map(|i| send("deleted", i)).collect();
    let kept: Vec<_> = (0..500).map(|i| send("kept", i)).collect();
    // Lingering batches are still in the producer when their topic goes.
    broker.delete_topic("deleted").unwrap();
    let clone = producer.clone();
    drop(producer);
    drop(clone);
    for handle in &doomed {
        let result = handle.wait_timeout(Duration::from_secs(30));
        assert!(
            matches!(result, Some(Err(ProduceError::UnknownTopic { .. }))),
            "{result:?}"
        );
    }
    for handle in &kept {
        let result = handle.wait_timeout(Duration::from_secs(30));
        assert!(matches!(result, Some(Ok(_))), "{result:?}");
    }
    let appended: u64 = broker
        .describe_topic("kept")
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.log_end_offset)
        .sum();
    assert_eq!(appended, 500);
}

#[test]
fn a_second_broker_on_the_same_directory_is_locked_out() {
    let (dir, broker) = with_topic("t", 1);
    assert!(matches!(
        Broker::open(dir.path()),
        Err(BrokerError::Locked { ref path }) if path == dir.path()
    ));
    drop(broker);
    let reopened = Broker::open(dir.path()).unwrap();
    assert_eq!(reopened.list_topics(), ["t"]);
}

#[test]
fn invalid_topic_configurations_are_refused_with_typed_errors() {
    let (dir, broker) = broker();
    let refused = |config: TopicConfig| broker.create_topic("bad", config).unwrap_err();
    assert!(matches!(
        refused(TopicConfig::with_partitions(0)),
        BrokerError::InvalidPartitions { requested: 0, .. }
    ));
    assert!(matches!(
        refused(TopicConfig::with_partitions(
            logbus::broker::MAX_PARTITIONS + 1
        )),
        BrokerError::InvalidPartitions { .. }
    ));
    assert!(matches!(
        refused(TopicConfig {
            replication_factor: 2,
            ..TopicConfig::default()
        }),
        BrokerError::InvalidReplicationFactor {
            requested: 2,
            live_brokers: 1
        }
    ));
    assert!(matches!(
        refused(TopicConfig {
            min_insync_replicas: 2,
            ..TopicConfig::default()
        }),
        BrokerError::InvalidConfig(_)
    ));
    for cleanup_policy in [CleanupPolicy::Compact, CleanupPolicy::CompactAndDelete] {
        assert!(matches!(
            refused(TopicConfig {
                cleanup_policy,
                min_compaction_lag_ms: u64::MAX,
                ..TopicConfig::default()
            }),
            BrokerError::InvalidConfig(_)
        ));
    }
    assert!(matches!(
        refused(TopicConfig {
            segment_bytes: 0,
            ..TopicConfig::default()
        }),
        BrokerError::InvalidConfig(_)
    ));
    assert!(broker.list_topics().is_empty());
    assert!(
        !dir.path().join("bad-0").exists(),
        "a refused topic leaves no files"
    );
}

#[test]
fn administering_an_unknown_topic() {
    let (_dir, broker) = broker();
    let unknown = |error: BrokerError| matches!(error, BrokerError::UnknownTopic { ref topic } if topic == "nope");
    assert!(unknown(broker.delete_topic("nope").unwrap_err()));
    assert!(unknown(broker.create_partitions("nope", 3).unwrap_err()));
    assert!(unknown(broker.describe_topic("nope").unwrap_err()));
    assert!(unknown(broker.topic("nope").unwrap_err()));
    assert!(unknown(broker.replica("nope", 0).unwrap_err()));
}

#[test]
fn close_fails_a_send_blocked_on_a_full_buffer_at_once() {
    let (_dir, broker) = with_topic("t", 1);
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            buffer_memory: 1_000,
            batch_size: 1 << 20,
            linger_ms: 600_000,
            max_block_ms: 60_000,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let first = producer
        .send(ProducerRecord::new("t", vec![1u8; 600]))
        .unwrap();
    let (sending, sent) = std::sync::mpsc::channel();
    let blocked = {
        let producer = producer.clone();
        std::thread::spawn(move || {
            sending.send(()).unwrap();
            let started = Instant::now();
            let result = producer.send(ProducerRecord::new("t", vec![2u8; 600]));
            (started.elapsed(), result.map(drop))
        })
    };
    sent.recv().unwrap();
    producer.close();
    let (waited, result) = blocked.join().unwrap();
    assert!(matches!(result, Err(ProduceError::Closed)), "{result:?}");
    assert!(waited < Duration::from_secs(30), "blocked {waited:?}");
    assert_eq!(
        first.wait().unwrap().offset,
        Some(0),
        "close sent the first"
    );
    assert_eq!(broker.replica("t", 0).unwrap().log().log_end_offset(), 1);
}

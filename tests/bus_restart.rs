//! The broker across restarts: topic configuration and partitions persist; acknowledged records
//! with `FlushPolicy::EveryAppend` survive both a clean close and a crash (a copy of the data
//! directory taken while the broker is open); an idempotent producer's retry after a restart is
//! answered as a duplicate, never appended twice; deleted topics leave nothing behind and their
//! stale handles fail with typed errors.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use logbus::broker::{Broker, BrokerConfig, BrokerError, TopicConfig};
use logbus::client::{
    ConsumeError, Consumer, ConsumerConfig, OffsetReset, ProduceError, Producer, ProducerRecord,
    TopicPartition,
};
use logbus::clock::ManualClock;
use logbus::log::FlushPolicy;
use logbus::partition::{AppendResult, PartitionError};
use logbus::record::{BatchBuilder, BatchSpec, RecordBatch, TimestampType};

fn open(dir: &Path) -> Broker {
    Broker::open_with(
        dir,
        BrokerConfig {
            maintenance_interval_ms: None,
            ..BrokerConfig::default()
        },
    )
    .unwrap()
}

/// A topic whose acknowledged records are flushed, with small segments so copies stay small.
fn durable(partitions: u32) -> TopicConfig {
    TopicConfig {
        partitions,
        flush: FlushPolicy::EveryAppend,
        segment_bytes: 1 << 20,
        ..TopicConfig::default()
    }
}

/// A batch as an idempotent producer sends it, built by hand so a retry can be replayed exactly.
fn producer_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    values: &[&str],
) -> RecordBatch {
    let mut builder = BatchBuilder::new(BatchSpec {
        producer_id,
        producer_epoch: epoch,
        base_sequence,
        ..BatchSpec::default()
    });
    for value in values {
        builder.append(5, None, Some(value.as_bytes()), &[]);
    }
    builder.finish()
}

/// Every value of a partition, in offset order, read through a consumer from the log start.
fn values(broker: &Broker, topic: &str, partition: u32) -> Vec<(u64, String)> {
    let tp = TopicPartition::new(topic, partition);
    let mut consumer = Consumer::with_config(
        broker,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign([tp.clone()]).unwrap();
    let end = consumer.end_offsets(std::slice::from_ref(&tp)).unwrap()[&tp];
    let mut out = Vec::new();
    while consumer.position(&tp).unwrap() < end {
        for record in consumer.poll(Duration::from_secs(5)).unwrap() {
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            out.push((record.offset, value));
        }
    }
    out
}

/// Copies a directory tree byte for byte, as a crash would leave it (no clean close).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn topic_configuration_and_partitions_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let configs = [
        ("plain", TopicConfig::with_partitions(3)),
        (
            "tuned",
            TopicConfig {
                partitions: 5,
                retention_ms: None,
                retention_bytes: Some(1 << 30),
                segment_bytes: 1 << 20,
                segment_ms: 3_600_000,
                max_message_bytes: 100_000,
                message_timestamp_type: TimestampType::LogAppendTime,
                flush: FlushPolicy::Every {
                    messages: 100,
                    interval_ms: 1_000,
                },
                ..TopicConfig::default()
            },
        ),
        ("durable", durable(2)),
    ];
    let before = {
        let broker = open(dir.path());
        for (name, config) in &configs {
            broker.create_topic(name, config.clone()).unwrap();
        }
        let producer = Producer::new(&broker).unwrap();
        for i in 0..30 {
            producer
                .send_and_wait(ProducerRecord::new("tuned", format!("{i}")).key(format!("{i}")))
                .unwrap();
        }
        broker.describe_all()
    };
    let broker = open(dir.path());
    assert_eq!(broker.list_topics(), ["durable", "plain", "tuned"]);
    assert_eq!(broker.describe_all(), before);
    for (name, config) in &configs {
        assert_eq!(&broker.topic(name).unwrap().config(), config);
    }
}

#[test]
fn create_partitions_grows_a_topic_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path());
        broker
            .create_topic("grow", TopicConfig::with_partitions(2))
            .unwrap();
        let producer = Producer::new(&broker).unwrap();
        broker.create_partitions("grow", 6).unwrap();
        assert_eq!(broker.topic("grow").unwrap().partition_count(), 6);
        let sent = producer
            .send_and_wait(ProducerRecord::new("grow", "new").partition(5))
            .unwrap();
        assert_eq!((sent.partition, sent.offset), (5, Some(0)));
        assert!(matches!(
            broker.create_partitions("grow", 4),
            Err(BrokerError::PartitionsCannotShrink {
                current: 6,
                requested: 4
            })
        ));
    }
    let broker = open(dir.path());
    let description = broker.describe_topic("grow").unwrap();
    assert_eq!(description.config.partitions, 6);
    assert_eq!(description.partitions.len(), 6);
    assert_eq!(values(&broker, "grow", 5), [(0, "new".to_owned())]);
}

#[test]
fn acknowledged_records_survive_dropping_the_broker_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = Vec::new();
    {
        let broker = open(dir.path());
        broker.create_topic("stream", durable(4)).unwrap();
        let producer = Producer::new(&broker).unwrap();
        let handles: Vec<_> = (0..400)
            .map(|i| {
                let record = ProducerRecord::new("stream", format!("v{i}")).key(format!("k{i}"));
                (i, producer.send(record).unwrap())
            })
            .collect();
        // Half the sends are waited for; the rest are still in flight when everything goes.
        let mut handles = handles.into_iter();
        for (i, handle) in handles.by_ref().take(200) {
            let sent = handle.wait().unwrap();
            acknowledged.push((sent.partition, sent.offset.unwrap(), format!("v{i}")));
        }
        let in_flight: Vec<_> = handles.collect();
        drop(producer);
        drop(broker);
        // Dropping the producer completed every send; each result is an acknowledgement too.
        for (i, handle) in in_flight {
            let sent = handle
                .wait_timeout(Duration::ZERO)
                .expect("dropping the producer completes its sends")
                .unwrap();
            acknowledged.push((sent.partition, sent.offset.unwrap(), format!("v{i}")));
        }
    }
    let broker = open(dir.path());
    for (partition, offset, value) in &acknowledged {
        let stored = values(&broker, "stream", *partition);
        assert!(
            stored.contains(&(*offset, value.clone())),
            "{value} at {partition}/{offset} is missing"
        );
    }
    let total: u64 = broker
        .describe_topic("stream")
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.log_end_offset)
        .sum();
    assert_eq!(total, 400);
}

#[test]
fn an_idempotent_retry_after_a_restart_is_a_duplicate_not_a_second_append() {
    let dir = tempfile::tempdir().unwrap();
    let (producer_id, epoch) = {
        let broker = open(dir.path());
        broker.create_topic("idem", durable(1)).unwrap();
        broker.init_producer_id().unwrap()
    };
    let first = producer_batch(producer_id, epoch, 0, &["a", "b", "c"]);
    let original = {
        let broker = open(dir.path());
        let replica = broker.replica("idem", 0).unwrap();
        replica
            .append_producer_batch(&producer_batch(-1, -1, -1, &["unrelated"]))
            .unwrap();
        replica.append_producer_batch(&first).unwrap()
    };
    assert_eq!((original.base_offset, original.last_offset), (1, 3));
    assert!(!original.duplicate);

    let broker = open(dir.path());
    let replica = broker.replica("idem", 0).unwrap();
    let retried = replica.append_producer_batch(&first).unwrap();
    assert_eq!(
        retried,
        AppendResult {
            duplicate: true,
            ..original
        }
    );
    assert_eq!(
        replica.log().log_end_offset(),
        4,
        "the retry appended nothing"
    );

    let gap = producer_batch(producer_id, epoch, 4, &["d"]);
    assert!(matches!(
        replica.append_producer_batch(&gap),
        Err(PartitionError::OutOfOrderSequence {
            expected: 3,
            received: 4,
            ..
        })
    ));
    let next = replica
        .append_producer_batch(&producer_batch(producer_id, epoch, 3, &["d"]))
        .unwrap();
    assert_eq!((next.base_offset, next.duplicate), (4, false));
    assert_eq!(replica.log().log_end_offset(), 5);
}

#[test]
fn an_older_epoch_is_fenced_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("fence", durable(1)).unwrap();
    let (producer_id, _) = broker.init_producer_id().unwrap();
    let replica = broker.replica("fence", 0).unwrap();
    replica
        .append_producer_batch(&producer_batch(producer_id, 0, 0, &["old"]))
        .unwrap();
    replica
        .append_producer_batch(&producer_batch(producer_id, 1, 0, &["new"]))
        .unwrap();
    let zombie = producer_batch(producer_id, 0, 1, &["zombie"]);
    let fenced = |result: Result<AppendResult, PartitionError>| {
        matches!(
            result,
            Err(PartitionError::ProducerFenced {
                epoch: 0,
                current_epoch: 1,
                ..
            })
        )
    };
    assert!(fenced(replica.append_producer_batch(&zombie)));
    drop(replica);
    drop(broker);
    let broker = open(dir.path());
    let replica = broker.replica("fence", 0).unwrap();
    assert!(fenced(replica.append_producer_batch(&zombie)));
    assert_eq!(replica.log().log_end_offset(), 2);
}

#[test]
fn a_crash_copy_keeps_acknowledged_records_and_rebuilds_producer_state_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    let broker = open(&live);
    broker.create_topic("crash", durable(3)).unwrap();
    let producer = Producer::new(&broker).unwrap();
    let acknowledged: Vec<_> = (0..300)
        .map(|i| {
            let record = ProducerRecord::new("crash", format!("v{i}")).key(format!("k{}", i % 7));
            let sent = producer.send_and_wait(record).unwrap();
            (sent.partition, sent.offset.unwrap(), format!("v{i}"))
        })
        .collect();
    let (producer_id, epoch) = broker.init_producer_id().unwrap();
    let batch = producer_batch(producer_id, epoch, 0, &["x", "y"]);
    let original = broker
        .replica("crash", 1)
        .unwrap()
        .append_producer_batch(&batch)
        .unwrap();

    // The broker is still open: no producer snapshot, no clean-shutdown marker in the copy.
    copy_tree(&live, &crashed);
    let recovered = open(&crashed);
    for (partition, offset, value) in &acknowledged {
        let stored = values(&recovered, "crash", *partition);
        assert!(stored.contains(&(*offset, value.clone())), "{value} lost");
    }
    let replica = recovered.replica("crash", 1).unwrap();
    let end = replica.log().log_end_offset();
    let retried = replica.append_producer_batch(&batch).unwrap();
    assert_eq!(
        retried,
        AppendResult {
            duplicate: true,
            ..original
        }
    );
    assert_eq!(replica.log().log_end_offset(), end);
    // The last send of the producer built into logbus, retried in the copy, is a duplicate too:
    // it was a one-record batch whose sequence is the count of earlier sends to its partition.
    let (own_id, own_epoch) = producer.producer_id();
    let &(partition, offset, ref value) = acknowledged.last().unwrap();
    let sequence = acknowledged
        .iter()
        .filter(|sent| sent.0 == partition)
        .count() as i32
        - 1;
    let own = recovered
        .replica("crash", partition)
        .unwrap()
        .append_producer_batch(&producer_batch(own_id, own_epoch, sequence, &[value]))
        .unwrap();
    assert_eq!((own.base_offset, own.duplicate), (offset, true));
    drop(producer);
    drop(broker);
}

#[test]
fn deleting_a_topic_removes_its_files_and_fails_stale_handles() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let topic = broker
        .create_topic("doomed", TopicConfig::with_partitions(2))
        .unwrap();
    let producer = Producer::new(&broker).unwrap();
    producer
        .send_and_wait(ProducerRecord::new("doomed", "before").partition(0))
        .unwrap();
    let partition = topic.partition(0).unwrap();
    let tp = TopicPartition::new("doomed", 0);
    let mut consumer = Consumer::with_config(
        &broker,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign([tp.clone()]).unwrap();
    assert_eq!(consumer.poll(Duration::from_secs(5)).unwrap().len(), 1);

    broker.delete_topic("doomed").unwrap();
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("doomed"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(broker.list_topics().is_empty());
    assert!(matches!(
        partition
            .replica()
            .append_producer_batch(&producer_batch(-1, -1, -1, &["late"])),
        Err(PartitionError::Deleted { partition: 0, .. })
    ));
    assert!(matches!(
        topic.partition(1),
        Err(BrokerError::UnknownTopic { .. })
    ));
    assert!(matches!(
        consumer.poll(Duration::from_millis(10)),
        Err(ConsumeError::Deleted(ref p)) if *p == tp
    ));
    assert!(matches!(
        producer.send(ProducerRecord::new("doomed", "after")),
        Err(ProduceError::UnknownTopic { .. })
    ));
    assert!(matches!(
        broker.delete_topic("doomed"),
        Err(BrokerError::UnknownTopic { .. })
    ));

    // The same name again is a new, empty topic, and it survives a reopen.
    broker
        .create_topic("doomed", TopicConfig::with_partitions(1))
        .unwrap();
    let sent = producer
        .send_and_wait(ProducerRecord::new("doomed", "again"))
        .unwrap();
    assert_eq!((sent.partition, sent.offset), (0, Some(0)));
    consumer.assign([tp.clone()]).unwrap();
    drop((consumer, producer, partition, topic, broker));
    let broker = open(dir.path());
    assert_eq!(broker.list_topics(), ["doomed"]);
    assert_eq!(values(&broker, "doomed", 0), [(0, "again".to_owned())]);
}

/// Regression: on a LogAppendTime topic the producer state remembered the batch's CreateTime
/// instead of the broker's stamp, so a retried batch was answered with the wrong timestamp
/// (before and after a restart).
#[test]
fn a_duplicate_on_a_log_append_time_topic_reports_the_original_broker_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let open_stamped = || {
        Broker::open_with(
            dir.path(),
            BrokerConfig {
                clock: Arc::new(clock.clone()),
                maintenance_interval_ms: None,
                ..BrokerConfig::default()
            },
        )
        .unwrap()
    };
    let broker = open_stamped();
    let config = TopicConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..durable(1)
    };
    broker.create_topic("stamped", config).unwrap();
    let (producer_id, epoch) = broker.init_producer_id().unwrap();
    let batch = producer_batch(producer_id, epoch, 0, &["a"]);
    let replica = broker.replica("stamped", 0).unwrap();
    let original = replica.append_producer_batch(&batch).unwrap();
    assert_eq!(original.log_append_time, Some(1_700_000_000_000));
    clock.advance_ms(1_000);
    let retried = replica.append_producer_batch(&batch).unwrap();
    assert_eq!(
        retried,
        AppendResult {
            duplicate: true,
            ..original
        }
    );
    drop(replica);
    drop(broker);
    let broker = open_stamped();
    let retried = broker
        .replica("stamped", 0)
        .unwrap()
        .append_producer_batch(&batch)
        .unwrap();
    assert_eq!(
        retried,
        AppendResult {
            duplicate: true,
            ..original
        }
    );
}

#[test]
fn growing_a_topic_while_producing_spreads_keyless_records_onto_the_new_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker
        .create_topic("growing", TopicConfig::with_partitions(2))
        .unwrap();
    let producer = Producer::with_config(
        &broker,
        logbus::client::ProducerConfig {
            batch_size: 512,
            ..logbus::client::ProducerConfig::default()
        },
    )
    .unwrap();
    let (halfway_tx, halfway_rx) = std::sync::mpsc::channel();
    let (grown_tx, grown_rx) = std::sync::mpsc::channel();
    let sender = {
        let producer = producer.clone();
        std::thread::spawn(move || {
            let mut sent = Vec::new();
            for i in 0..3000 {
                if i == 1000 {
                    halfway_tx.send(()).unwrap();
                    grown_rx.recv().unwrap();
                }
                let record = ProducerRecord::new("growing", format!("v{i}"));
                let metadata = producer.send_and_wait(record).unwrap();
                sent.push((
                    metadata.partition,
                    metadata.offset.unwrap(),
                    format!("v{i}"),
                ));
            }
            sent
        })
    };
    halfway_rx.recv().unwrap();
    broker.create_partitions("growing", 6).unwrap();
    grown_tx.send(()).unwrap();
    let sent = sender.join().unwrap();
    assert!(sent[..1000].iter().all(|(partition, _, _)| *partition < 2));
    let on_new = sent
        .iter()
        .filter(|(partition, _, _)| *partition >= 2)
        .count();
    assert!(on_new > 500, "only {on_new} records on the new partitions");
    drop(producer);
    drop(broker);
    let broker = open(dir.path());
    for partition in 0..6 {
        let stored = values(&broker, "growing", partition);
        let expected: Vec<(u64, String)> = sent
            .iter()
            .filter(|(p, _, _)| *p == partition)
            .map(|(_, offset, value)| (*offset, value.clone()))
            .collect();
        assert_eq!(stored, expected, "partition {partition}");
    }
}

//! The README's first command: an embedded event bus in a directory.
//!
//! `cargo run --example quickstart [-- --data DIR]` opens `./logbus-data` (or DIR), creates the
//! topic `quickstart` with 3 partitions if it is missing, produces 1000 keyed records, consumes
//! them back and prints a summary. Run it again on the same directory and it continues where it
//! stopped: the new records follow the old ones, and the consumer reads only the new ones.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use logbus::broker::{Broker, BrokerError, TopicConfig};
use logbus::client::{
    Consumer, ConsumerConfig, OffsetReset, Producer, ProducerRecord, TopicPartition,
};

const TOPIC: &str = "quickstart";
const RECORDS: usize = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = data_dir_from_args()?;
    let broker = Broker::open(&data)?;
    let topic = match broker.create_topic(TOPIC, TopicConfig::with_partitions(3)) {
        Ok(topic) => {
            println!(
                "created topic {TOPIC} with 3 partitions in {}",
                data.display()
            );
            topic
        }
        Err(BrokerError::TopicExists { .. }) => broker.topic(TOPIC)?,
        Err(error) => return Err(error.into()),
    };
    let partitions: Vec<TopicPartition> = (0..topic.partition_count())
        .map(|partition| TopicPartition::new(TOPIC, partition))
        .collect();
    let before: u64 = topic
        .describe()
        .partitions
        .iter()
        .map(|partition| partition.log_end_offset)
        .sum();
    println!("the topic holds {before} records from earlier runs");

    // Start reading where the log ends now, so this run reads exactly what it produces.
    let mut consumer = Consumer::with_config(
        &broker,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Latest,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign(partitions.clone())?;
    consumer.seek_to_end(&partitions)?;

    let producer = Producer::new(&broker)?;
    let started = Instant::now();
    let handles = (0..RECORDS)
        .map(|i| {
            let record = ProducerRecord::new(TOPIC, format!("event {}", before as usize + i))
                .key(format!("user-{}", i % 10));
            producer.send(record)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut last = None;
    for handle in handles {
        last = Some(handle.wait()?);
    }
    println!(
        "produced {RECORDS} records in {:.1} ms (last: {:?})",
        started.elapsed().as_secs_f64() * 1e3,
        last
    );

    let mut per_partition: BTreeMap<u32, usize> = BTreeMap::new();
    let mut per_key: BTreeMap<String, u32> = BTreeMap::new();
    let mut consumed = 0;
    while consumed < RECORDS {
        let records = consumer.poll(Duration::from_secs(5))?;
        if records.is_empty() {
            return Err(format!("only {consumed} of {RECORDS} records arrived").into());
        }
        for record in records {
            *per_partition.entry(record.partition).or_default() += 1;
            let key =
                String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
            per_key.insert(key, record.partition);
            consumed += 1;
        }
    }
    println!("consumed {consumed} records: per partition {per_partition:?}");
    println!("each key stays on one partition (murmur2, as Kafka): {per_key:?}");
    for partition in topic.describe().partitions {
        println!(
            "  partition {}: offsets {}..{}, high watermark {}, {} bytes on disk",
            partition.partition,
            partition.log_start_offset,
            partition.log_end_offset,
            partition.high_watermark,
            partition.size_bytes
        );
    }
    Ok(())
}

fn data_dir_from_args() -> Result<std::path::PathBuf, String> {
    let mut args = std::env::args().skip(1);
    let mut data = std::path::PathBuf::from("logbus-data");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => data = args.next().ok_or("--data needs a directory")?.into(),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: quickstart [--data DIR]"
                ))
            }
        }
    }
    Ok(data)
}

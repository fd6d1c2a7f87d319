//! The README's example, copied verbatim except for the data directory (a temp dir instead of
//! `./logbus-data`), so the example the README shows is proven to compile and run.
//! If this test changes, change the README with it.

use logbus::broker::{Broker, TopicConfig};
use logbus::client::{Consumer, Producer, ProducerRecord, TopicPartition};
use std::time::Duration;

fn readme_main(data: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::open(data)?;
    broker.create_topic("orders", TopicConfig::with_partitions(3))?;

    let producer = Producer::new(&broker)?;
    let sent =
        producer.send_and_wait(ProducerRecord::new("orders", "42 widgets").key("customer-7"))?;

    let mut consumer = Consumer::new(&broker);
    consumer.assign([TopicPartition::new("orders", sent.partition)])?;
    consumer.seek(
        &TopicPartition::new("orders", sent.partition),
        sent.offset.unwrap(),
    )?;
    let records = consumer.poll(Duration::from_secs(1))?;
    assert_eq!(records[0].value.as_deref(), Some(&b"42 widgets"[..]));
    Ok(())
}

#[test]
fn readme_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    readme_main(&dir.path().join("logbus-data")).unwrap();
}

#[test]
fn readme_example_runs_again_on_the_same_directory_only_after_the_topic_exists() {
    // The README's code creates the topic unconditionally: a second run on the same directory
    // fails with TopicExists rather than silently appending. Pin that, so the README's "run it"
    // advice stays honest.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("logbus-data");
    readme_main(&data).unwrap();
    let error = readme_main(&data).unwrap_err();
    assert!(
        matches!(
            error.downcast_ref::<logbus::broker::BrokerError>(),
            Some(logbus::broker::BrokerError::TopicExists { .. })
        ),
        "{error}"
    );
}

//! Kafka's own clients against a logbus broker over Kafka's protocol, each figure next to the
//! in-process client on the same broker in the same run (compare the ratios: the machine is a
//! noisy 2-core VM).
//!
//! ```text
//! cargo bench --features kafka --bench kafka            # about a minute
//! LOGBUS_BENCH_ONLY=produce,consume,latency cargo bench --features kafka --bench kafka
//! ```
//!
//! - produce: 1 M records of 100 bytes from `kcat -P -l` (librdkafka: batches, acks=all) to a
//!   3-partition topic; baseline the in-process `Producer` (acks=All) sending the same records.
//! - consume: `kcat -C` reads the 1 M records back (to /dev/null); baseline the in-process
//!   `Consumer` reading them.
//! - latency: confluent-kafka sends one 100-byte record at a time with acks=all to a
//!   replication-factor-3 partition on 3 brokers (each served on its own port); p50 and p99,
//!   baseline the in-process producer's `send_and_wait` on the same cluster.
//!
//! The clients are those `.ci/run` installs (`kcat`, and the Python environment in
//! `target/kafka-clients-venv` or `LOGBUS_KAFKA_PYTHON`); without them the bench says so.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logbus::broker::{Broker, BrokerConfig, TopicConfig};
use logbus::client::{
    Consumer, ConsumerConfig, OffsetReset, Producer, ProducerRecord, TopicPartition,
};
use logbus::coordinator::{Coordinator, MemoryCoordinator, MemoryCoordinatorConfig};
use logbus::kafka::{KafkaServer, KafkaServerConfig};
use logbus::replication::{Endpoint, InProcessNetwork};

#[path = "support/mod.rs"]
mod support;
use support::{bench_root, median, percentile, pre_touch, selected, Table};

const RECORDS: usize = 1_000_000;
const VALUE_BYTES: usize = 100;
const LATENCY_RECORDS: usize = 2_000;

fn python() -> PathBuf {
    std::env::var_os("LOGBUS_KAFKA_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kafka-clients-venv/bin/python"),
        PathBuf::from,
    )
}

fn kcat_available() -> bool {
    Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn python_available() -> bool {
    Command::new(python())
        .args(["-c", "import confluent_kafka"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A broker opened on `dir`, served on a free port, its endpoint registered.
fn served(dir: &Path, config: BrokerConfig) -> (Broker, KafkaServer) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let broker = Broker::open_with(
        dir,
        BrokerConfig {
            advertised_listener: Some(Endpoint {
                host: "127.0.0.1".to_owned(),
                port,
            }),
            ..config
        },
    )
    .expect("open");
    let server =
        KafkaServer::serve(broker.clone(), listener, KafkaServerConfig::default()).expect("serve");
    (broker, server)
}

fn value() -> Bytes {
    Bytes::from(vec![b'v'; VALUE_BYTES])
}

fn main() {
    let root = bench_root();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    pre_touch(256 << 20);
    let mut table = Table::default();
    let kcat = kcat_available();
    if !kcat {
        println!("kcat is missing (apt-get install kcat): produce and consume skipped");
    }
    if kcat && (selected("produce") || selected("consume")) {
        produce_and_consume(root.path(), &mut table);
    }
    if selected("latency") {
        if python_available() {
            latency(root.path(), &mut table);
        } else {
            println!(
                "{} cannot import confluent_kafka (run .ci/run): latency skipped",
                python().display()
            );
        }
    }
    table.print();
}

fn rate(records: usize, elapsed: Duration) -> f64 {
    records as f64 / elapsed.as_secs_f64()
}

fn produce_and_consume(root: &Path, table: &mut Table) {
    // The client's input: one 100-byte value per line.
    let input = root.join("records.txt");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).expect("input"));
        let line = [b'v'; VALUE_BYTES];
        for _ in 0..RECORDS {
            file.write_all(&line).expect("write");
            file.write_all(b"\n").expect("write");
        }
    }
    let (broker, server) = served(&root.join("single"), BrokerConfig::default());
    let bootstrap = server.local_addr().to_string();
    for topic in ["wire", "local"] {
        broker
            .create_topic(topic, TopicConfig::with_partitions(3))
            .expect("create");
    }

    // In-process producer, then kcat, each into its own topic.
    let producer = Producer::new(&broker).expect("producer");
    let started = Instant::now();
    let value = value();
    for i in 0..RECORDS {
        producer
            .send(ProducerRecord::new("local", value.clone()).partition((i % 3) as u32))
            .expect("send");
    }
    producer.flush();
    let local_produce = started.elapsed();
    drop(producer);

    let started = Instant::now();
    let status = Command::new("kcat")
        .args(["-b", &bootstrap, "-P", "-t", "wire", "-l"])
        .arg(&input)
        .args(["-X", "acks=all"])
        .stdout(Stdio::null())
        .status()
        .expect("kcat -P");
    let wire_produce = started.elapsed();
    assert!(status.success(), "kcat -P failed");
    let stored: u64 = (0..3)
        .map(|p| broker.replica("wire", p).expect("replica").high_watermark())
        .sum();
    assert_eq!(stored, RECORDS as u64, "kcat's records are not all stored");

    if selected("produce") {
        let wire = rate(RECORDS, wire_produce);
        let local = rate(RECORDS, local_produce);
        table.add(
            "produce, kcat over TCP (records/s)".to_owned(),
            format!("{:.0}", wire),
            format!("{:.0} in-process", local),
            format!("{:.0} %", 100.0 * wire / local),
            "report",
        );
    }
    if !selected("consume") {
        return;
    }
    let started = Instant::now();
    let mut consumer = Consumer::with_config(
        &broker,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    consumer
        .assign((0..3).map(|p| TopicPartition::new("local", p)))
        .expect("assign");
    let mut read = 0;
    while read < RECORDS {
        read += consumer.poll(Duration::from_secs(5)).expect("poll").len();
    }
    let local_consume = started.elapsed();

    let started = Instant::now();
    let status = Command::new("kcat")
        .args([
            "-b",
            &bootstrap,
            "-C",
            "-t",
            "wire",
            "-o",
            "beginning",
            "-q",
        ])
        .args(["-c", &RECORDS.to_string(), "-f", "%s\n"])
        .stdout(Stdio::null())
        .status()
        .expect("kcat -C");
    let wire_consume = started.elapsed();
    assert!(status.success(), "kcat -C failed");
    let wire = rate(RECORDS, wire_consume);
    let local = rate(RECORDS, local_consume);
    table.add(
        "consume, kcat over TCP (records/s)".to_owned(),
        format!("{:.0}", wire),
        format!("{:.0} in-process", local),
        format!("{:.0} %", 100.0 * wire / local),
        "report",
    );
}

fn latency(root: &Path, table: &mut Table) {
    let coordinator = Arc::new(MemoryCoordinator::with_config(MemoryCoordinatorConfig {
        tick_ms: 100,
        ..MemoryCoordinatorConfig::default()
    }));
    let network = InProcessNetwork::new();
    let brokers: Vec<(Broker, KafkaServer)> = (0..3)
        .map(|id| {
            served(
                &root.join(format!("cluster-{id}")),
                BrokerConfig {
                    broker_id: id,
                    maintenance_interval_ms: None,
                    coordinator: Some(Arc::clone(&coordinator) as Arc<dyn Coordinator>),
                    network: Some(Arc::clone(&network)),
                    ..BrokerConfig::default()
                },
            )
        })
        .collect();
    let first = &brokers[0].0;
    first
        .create_topic(
            "acked",
            TopicConfig {
                replication_factor: 3,
                min_insync_replicas: 2,
                ..TopicConfig::default()
            },
        )
        .expect("create");
    let deadline = Instant::now() + Duration::from_secs(20);
    let in_sync = || {
        first
            .leader_of("acked", 0)
            .and_then(|leader| brokers.iter().find(|(b, _)| b.id() == leader))
            .and_then(|(b, _)| b.replicated_partition("acked", 0).ok())
            .is_some_and(|local| local.isr().len() == 3)
    };
    while !in_sync() {
        assert!(Instant::now() < deadline, "replicas never got in sync");
        std::thread::sleep(Duration::from_millis(5));
    }

    let producer = Producer::new(first).expect("producer");
    let value = value();
    let mut local = Vec::with_capacity(LATENCY_RECORDS);
    for i in 0..LATENCY_RECORDS + 200 {
        let started = Instant::now();
        producer
            .send_and_wait(ProducerRecord::new("acked", value.clone()))
            .expect("send");
        if i >= 200 {
            local.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    local.sort_by(f64::total_cmp);

    let output = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/clients.py"))
        .args([
            "latency",
            &brokers[0].1.local_addr().to_string(),
            "acked",
            &LATENCY_RECORDS.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("python");
    assert!(output.status.success(), "latency script failed");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let mut wire: Vec<f64> = report["samples_us"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| s.as_f64().expect("number"))
        .collect();
    wire.sort_by(f64::total_cmp);
    for (name, fraction) in [("p50", 0.5), ("p99", 0.99)] {
        let w = percentile(&wire, fraction);
        let l = percentile(&local, fraction);
        table.add(
            format!("acks=all latency {name}, 3 brokers, confluent-kafka (us)"),
            format!("{w:.0}"),
            format!("{l:.0} in-process"),
            format!("{:.1}x", w / l),
            "report",
        );
    }
    let _ = median(local);
}

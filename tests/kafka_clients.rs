//! Kafka's own clients against a logbus broker served over Kafka's protocol: `kcat`
//! (librdkafka), `confluent-kafka` (librdkafka) and `kafka-python`.
//!
//! Each test opens a broker in a temporary directory, serves it on a free port, drives a real
//! client, and checks what the client reports against what the broker stored.
//!
//! Needs the clients (`.ci/run` installs them); without them the tests skip loudly, except in CI
//! (`CI=true`), where they fail.

#![cfg(feature = "kafka")]

#[path = "support/kafka_clients.rs"]
mod clients;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use logbus::broker::{Broker, BrokerConfig, TopicConfig};
use logbus::client::{partition_for_key, Producer, ProducerRecord};
use logbus::kafka::{KafkaServer, KafkaServerConfig};
use logbus::replication::Endpoint;
use serde_json::Value;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

struct Served {
    broker: Broker,
    server: KafkaServer,
    _dir: tempfile::TempDir,
}

impl Served {
    fn bootstrap(&self) -> String {
        self.server.local_addr().to_string()
    }
}

fn serve(partitions: u32) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let broker = Broker::open_with(
        dir.path(),
        BrokerConfig {
            advertised_listener: Some(Endpoint {
                host: "127.0.0.1".to_owned(),
                port,
            }),
            ..BrokerConfig::default()
        },
    )
    .expect("open broker");
    let server = KafkaServer::serve(
        broker.clone(),
        listener,
        KafkaServerConfig {
            num_partitions: partitions,
            ..KafkaServerConfig::default()
        },
    )
    .expect("serve");
    Served {
        broker,
        server,
        _dir: dir,
    }
}

/// The record at `offset` of `topic`-`partition` in the broker's log: (key, value).
fn stored(broker: &Broker, topic: &str, partition: u32, offset: u64) -> (Option<String>, String) {
    let replica = broker.replica(topic, partition).expect("replica");
    let read = replica.read_committed(offset, 1 << 20).expect("read");
    for batch in read.batches() {
        for record in batch.expect("batch").records().expect("records") {
            let record = record.expect("record");
            if record.offset as u64 == offset {
                return (
                    record
                        .key
                        .map(|key| String::from_utf8(key.to_vec()).expect("utf-8 key")),
                    String::from_utf8(record.value.expect("value").to_vec()).expect("utf-8"),
                );
            }
        }
    }
    panic!("no record at {topic}-{partition}@{offset}");
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
        .to_owned()
}

fn number(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

/// Checks a producer's delivery reports: every record delivered once, in its key's murmur2
/// partition, at an offset where the broker holds exactly that key and value; offsets per
/// partition dense from 0 in send order.
fn check_keyed_deliveries(
    served: &Served,
    topic: &str,
    report: &Value,
    count: usize,
    partitions: u32,
) {
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    assert_eq!(report["undelivered"], 0, "{report}");
    let delivered = report["delivered"].as_array().expect("delivered");
    assert_eq!(delivered.len(), count);
    let mut per_partition: BTreeMap<u64, Vec<(u64, usize)>> = BTreeMap::new();
    for record in delivered {
        let key = text(record, "key");
        let value = text(record, "value");
        let partition = number(record, "partition");
        let offset = number(record, "offset");
        assert_eq!(
            partition,
            u64::from(partition_for_key(key.as_bytes(), partitions)),
            "{key} landed outside Kafka's murmur2 partition"
        );
        assert_eq!(
            stored(&served.broker, topic, partition as u32, offset),
            (Some(key.clone()), value)
        );
        let sequence: usize = key["key-".len()..].parse().expect("key number");
        per_partition
            .entry(partition)
            .or_default()
            .push((offset, sequence));
    }
    for (partition, mut records) in per_partition {
        records.sort_unstable();
        let offsets: Vec<u64> = records.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(
            offsets,
            (0..records.len() as u64).collect::<Vec<_>>(),
            "partition {partition}: offsets not dense (a duplicate or a gap)"
        );
        assert!(
            records.windows(2).all(|pair| pair[0].1 < pair[1].1),
            "partition {partition}: records out of send order"
        );
    }
}

#[test]
fn kafka_python_reads_metadata() {
    if !clients::available("kafka_python_reads_metadata") {
        return;
    }
    let served = serve(1);
    served
        .broker
        .create_topic("orders", TopicConfig::with_partitions(3))
        .expect("create");
    let report = clients::run_python(&["metadata", &served.bootstrap(), "orders"], CLIENT_TIMEOUT);
    assert_eq!(
        report["partitions"],
        serde_json::json!([0, 1, 2]),
        "{report}"
    );
    let brokers = report["brokers"].as_array().expect("brokers");
    assert_eq!(brokers.len(), 1, "{report}");
    assert_eq!(brokers[0]["id"], 0);
    assert_eq!(brokers[0]["host"], "127.0.0.1");
    assert_eq!(
        brokers[0]["port"],
        u64::from(served.server.local_addr().port())
    );
    // The internal offsets topic is not listed to clients that ask for every topic.
    let topics = report["topics"].as_array().expect("topics");
    assert!(topics.iter().any(|t| t == "orders"), "{report}");
}

#[test]
fn confluent_kafka_keyed_idempotent_produce_lands_in_murmur2_partitions() {
    if !clients::available("confluent_kafka_keyed_idempotent_produce_lands_in_murmur2_partitions") {
        return;
    }
    let served = serve(1);
    served
        .broker
        .create_topic("keyed", TopicConfig::with_partitions(6))
        .expect("create");
    let report = clients::run_python(
        &["produce", &served.bootstrap(), "keyed", "600"],
        CLIENT_TIMEOUT,
    );
    check_keyed_deliveries(&served, "keyed", &report, 600, 6);
}

#[test]
fn kafka_python_keyed_idempotent_produce_lands_in_murmur2_partitions() {
    if !clients::available("kafka_python_keyed_idempotent_produce_lands_in_murmur2_partitions") {
        return;
    }
    let served = serve(1);
    served
        .broker
        .create_topic("keyed", TopicConfig::with_partitions(4))
        .expect("create");
    let report = clients::run_python(
        &["produce_python", &served.bootstrap(), "keyed", "300"],
        CLIENT_TIMEOUT,
    );
    check_keyed_deliveries(&served, "keyed", &report, 300, 4);
}

#[test]
fn kafka_python_consumes_from_the_beginning() {
    if !clients::available("kafka_python_consumes_from_the_beginning") {
        return;
    }
    let served = serve(1);
    served
        .broker
        .create_topic("events", TopicConfig::with_partitions(2))
        .expect("create");
    let producer = Producer::new(&served.broker).expect("producer");
    let mut sent = BTreeMap::new();
    for i in 0..200u32 {
        let partition = i % 2;
        let metadata = producer
            .send_and_wait(
                ProducerRecord::new("events", format!("event-{i}"))
                    .key(format!("k{i}"))
                    .partition(partition),
            )
            .expect("send");
        sent.insert(
            (
                partition,
                metadata.offset.expect("acks=All gives an offset"),
            ),
            format!("event-{i}"),
        );
    }
    let report = clients::run_python(
        &["consume", &served.bootstrap(), "events", "200"],
        CLIENT_TIMEOUT,
    );
    let records = report["records"].as_array().expect("records");
    let read: BTreeMap<(u32, u64), String> = records
        .iter()
        .map(|r| {
            (
                (number(r, "partition") as u32, number(r, "offset")),
                text(r, "value"),
            )
        })
        .collect();
    assert_eq!(records.len(), 200, "a record read twice or missed");
    assert_eq!(read, sent);
}

#[test]
fn a_two_member_group_splits_partitions_commits_and_resumes() {
    if !clients::available("a_two_member_group_splits_partitions_commits_and_resumes") {
        return;
    }
    let served = serve(1);
    served
        .broker
        .create_topic("shared", TopicConfig::with_partitions(4))
        .expect("create");
    let bootstrap = served.bootstrap();
    let produced = clients::run_python(&["produce", &bootstrap, "shared", "80"], CLIENT_TIMEOUT);
    assert_eq!(produced["delivered"].as_array().map(Vec::len), Some(80));

    let report = clients::run_python(&["group", &bootstrap, "shared", "g", "80"], CLIENT_TIMEOUT);
    let assignments: Vec<BTreeSet<u64>> = report["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .map(|a| {
            a.as_array()
                .expect("list")
                .iter()
                .map(|p| p.as_u64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(assignments.len(), 2);
    assert!(assignments.iter().all(|a| !a.is_empty()), "{report}");
    assert!(assignments[0].is_disjoint(&assignments[1]), "{report}");
    let union: BTreeSet<u64> = assignments.iter().flatten().copied().collect();
    assert_eq!(union, (0..4).collect(), "{report}");
    let read: BTreeSet<(u64, u64)> = report["read"]
        .as_array()
        .expect("read")
        .iter()
        .flat_map(|member| member.as_array().expect("member").clone())
        .map(|r| (number(&r, "partition"), number(&r, "offset")))
        .collect();
    assert_eq!(read.len(), 80, "every record read by the group");

    // The group committed everything it read: a new member reads only what comes next.
    let more = clients::run_python(&["produce", &bootstrap, "shared", "12"], CLIENT_TIMEOUT);
    let expected: BTreeSet<(u64, u64)> = more["delivered"]
        .as_array()
        .expect("delivered")
        .iter()
        .map(|r| (number(r, "partition"), number(r, "offset")))
        .collect();
    assert_eq!(expected.len(), 12);
    let resumed = clients::run_python(&["resume", &bootstrap, "shared", "g", "12"], CLIENT_TIMEOUT);
    let resumed: Vec<(u64, u64)> = resumed["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| (number(r, "partition"), number(r, "offset")))
        .collect();
    assert_eq!(resumed.len(), 12, "resumed from the commit: {resumed:?}");
    assert_eq!(resumed.into_iter().collect::<BTreeSet<_>>(), expected);

    // The group is visible to the broker's own admin view, with its commits.
    let groups = served.broker.consumer_groups().expect("groups");
    let lag = groups.lag("g").expect("lag");
    assert_eq!(lag.total_lag, 0, "{lag:?}");
}

#[test]
fn kcat_produces_and_consumes() {
    if !clients::available("kcat_produces_and_consumes") {
        return;
    }
    let served = serve(3);
    let bootstrap = served.bootstrap();
    let input: String = (0..500).map(|i| format!("key{i}:line {i}\n")).collect();
    let mut producer = Command::new("kcat");
    producer
        .args(["-b", &bootstrap, "-P", "-t", "lines", "-K:"])
        .args(["-X", "enable.idempotence=true", "-X", "acks=all"])
        .args(["-X", "partitioner=murmur2_random"]);
    // One message per line of stdin (a file argument would be one message).
    let input_file = served._dir.path().join("input.txt");
    std::fs::write(&input_file, &input).expect("write input");
    producer.stdin(std::fs::File::open(&input_file).expect("open input"));
    clients::run_with_timeout(&mut producer, CLIENT_TIMEOUT);

    // Auto-created on first use with the server's num.partitions.
    assert_eq!(
        served
            .broker
            .topic("lines")
            .expect("auto-created")
            .partition_count(),
        3
    );
    let output = clients::run_with_timeout(
        Command::new("kcat").args([
            "-b",
            &bootstrap,
            "-C",
            "-t",
            "lines",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %o %k %s\n",
        ]),
        CLIENT_TIMEOUT,
    );
    let output = String::from_utf8(output).expect("utf-8");
    let mut seen = BTreeSet::new();
    for line in output.lines() {
        let mut fields = line.splitn(4, ' ');
        let partition: u32 = fields.next().unwrap().parse().unwrap();
        let offset: u64 = fields.next().unwrap().parse().unwrap();
        let key = fields.next().unwrap().to_owned();
        let value = fields.next().unwrap().to_owned();
        assert_eq!(partition, partition_for_key(key.as_bytes(), 3), "{line}");
        assert_eq!(
            stored(&served.broker, "lines", partition, offset),
            (Some(key.clone()), value.clone())
        );
        assert!(seen.insert(key), "{line} read twice");
    }
    assert_eq!(seen.len(), 500);
}

#[test]
fn compressed_batches_are_stored_as_sent_and_served_back() {
    if !clients::available("compressed_batches_are_stored_as_sent_and_served_back") {
        return;
    }
    let served = serve(1);
    let bootstrap = served.bootstrap();
    let mut expected = Vec::new();
    // Debian's kcat (librdkafka 2.0.2) sends its gzip, lz4 and snappy batches of these records
    // uncompressed (it keeps whichever is smaller and checks nothing more); zstd it compresses.
    for codec in ["gzip", "zstd"] {
        let input_file = served._dir.path().join(format!("{codec}.txt"));
        // Compressible values: librdkafka sends a batch uncompressed when that is smaller.
        let lines: Vec<String> = (0..200)
            .map(|i| format!("{codec}-{i}-{}", "x".repeat(200)))
            .collect();
        std::fs::write(&input_file, lines.join("\n") + "\n").expect("write input");
        clients::run_with_timeout(
            Command::new("kcat")
                .args(["-b", &bootstrap, "-P", "-t", "packed", "-z", codec])
                .stdin(std::fs::File::open(&input_file).expect("open input")),
            CLIENT_TIMEOUT,
        );
        expected.extend(lines);
    }
    // The broker keeps each client batch whole, compressed as it came (it has no codecs: it
    // never opens a compressed batch's records).
    let replica = served.broker.replica("packed", 0).expect("replica");
    let read = replica.read_committed(0, 1 << 20).expect("read");
    let codecs: Vec<_> = read
        .batches()
        .map(|batch| batch.expect("batch").header().attributes.compression)
        .collect();
    use logbus::record::Compression;
    let kinds: BTreeSet<String> = codecs.iter().map(|codec| format!("{codec:?}")).collect();
    assert!(
        kinds.contains(&format!("{:?}", Compression::Zstd)),
        "no zstd batch stored: {codecs:?}"
    );
    let output = clients::run_with_timeout(
        Command::new("kcat").args([
            "-b",
            &bootstrap,
            "-C",
            "-t",
            "packed",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%s\n",
        ]),
        CLIENT_TIMEOUT,
    );
    let read: Vec<String> = String::from_utf8(output)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(read, expected);
}

#[test]
fn kafka_python_admin_creates_and_deletes_topics_and_describes_groups() {
    if !clients::available("kafka_python_admin_creates_and_deletes_topics_and_describes_groups") {
        return;
    }
    let served = serve(1);
    served
        .broker
        .create_topic("watched", TopicConfig::with_partitions(2))
        .expect("create");
    // A group with committed offsets, made over the protocol.
    let bootstrap = served.bootstrap();
    clients::run_python(&["produce", &bootstrap, "watched", "10"], CLIENT_TIMEOUT);
    clients::run_python(
        &["resume", &bootstrap, "watched", "admins", "10"],
        CLIENT_TIMEOUT,
    );

    let report = clients::run_python(&["admin", &bootstrap, "admins"], CLIENT_TIMEOUT);
    assert_eq!(
        report["duplicate_error"], "TopicAlreadyExistsError",
        "{report}"
    );
    assert_eq!(
        served
            .broker
            .topic("admin-a")
            .expect("created")
            .partition_count(),
        3
    );
    assert!(
        served.broker.topic("admin-b").is_err(),
        "admin-b was deleted: {report}"
    );
    assert!(
        report["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g == "admins"),
        "{report}"
    );
    assert_eq!(report["described"]["group"], "admins", "{report}");
    assert_eq!(report["described"]["state"], "Empty", "{report}");
    let committed: BTreeMap<u64, u64> = report["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .map(|entry| {
            assert_eq!(entry[0], "watched");
            (entry[1].as_u64().unwrap(), entry[2].as_u64().unwrap())
        })
        .collect();
    let ends: BTreeMap<u64, u64> = (0..2)
        .map(|p| {
            (
                u64::from(p),
                served
                    .broker
                    .replica("watched", p)
                    .expect("replica")
                    .high_watermark(),
            )
        })
        .filter(|(_, end)| *end > 0)
        .collect();
    assert_eq!(committed, ends, "{report}");
}

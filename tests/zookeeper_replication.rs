//! Replication with a real ZooKeeper as the coordinator: three brokers register, elect a
//! controller and partition leaders in ZooKeeper, survive a leader crash (its session expires
//! in ZooKeeper), and a consumer reads every acknowledged record once, in order.
//!
//! Needs Debian's `zookeeper` package and Java; without them the test skips loudly, except in
//! CI (`CI=true`), where it fails.

#![cfg(feature = "zookeeper")]

#[path = "support/zk.rs"]
mod zk;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus::broker::{Broker, BrokerConfig, TopicConfig};
use logbus::client::{
    Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use logbus::coordinator::{Coordinator, ZooKeeperConfig, ZooKeeperCoordinator};
use logbus::replication::{InProcessNetwork, ReplicationConfig};

/// ZooKeeper's minimum session timeout with its default tick (2 s) is 4 s.
const SESSION_TIMEOUT_MS: u64 = 4_000;

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_cluster_on_zookeeper_fails_over_and_loses_nothing() {
    if !zk::available("a_cluster_on_zookeeper_fails_over_and_loses_nothing") {
        return;
    }
    let server = zk::ZooKeeper::standalone();
    let coordinator: Arc<dyn Coordinator> = Arc::new(
        ZooKeeperCoordinator::connect(ZooKeeperConfig::new(server.connect_string("/logbus")))
            .expect("connect"),
    );
    let network = InProcessNetwork::new();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut brokers: BTreeMap<i32, Broker> = (0..3)
        .map(|id| {
            let config = BrokerConfig {
                broker_id: id,
                maintenance_interval_ms: None,
                coordinator: Some(Arc::clone(&coordinator)),
                network: Some(Arc::clone(&network)),
                replication: ReplicationConfig {
                    session_timeout_ms: SESSION_TIMEOUT_MS,
                    replica_fetch_wait_max_ms: 50,
                    request_timeout_ms: 10_000,
                    ..ReplicationConfig::default()
                },
                ..BrokerConfig::default()
            };
            (
                id,
                Broker::open_with(dirs[id as usize].path(), config).expect("open"),
            )
        })
        .collect();
    let topic = TopicConfig {
        partitions: 2,
        replication_factor: 3,
        min_insync_replicas: 2,
        ..TopicConfig::default()
    };
    brokers[&0].create_topic("orders", topic).expect("create");
    let in_sync = |brokers: &BTreeMap<i32, Broker>, size: usize| {
        (0..2).all(|p| {
            let any = brokers.values().next().unwrap();
            any.leader_of("orders", p)
                .and_then(|leader| brokers.get(&leader))
                .and_then(|b| b.replicated_partition("orders", p).ok())
                .is_some_and(|local| local.isr().len() == size)
        })
    };
    wait_until("full ISRs", Duration::from_secs(30), || {
        in_sync(&brokers, 3)
    });

    let victim = brokers[&0].leader_of("orders", 0).expect("a leader");
    let bootstrap = brokers.values().find(|b| b.id() != victim).unwrap().clone();
    let producer = Producer::with_config(
        &bootstrap,
        ProducerConfig {
            retry_backoff_ms: 50,
            ..ProducerConfig::default()
        },
    )
    .expect("producer");
    let mut handles = Vec::new();
    for i in 0..200u32 {
        if i == 100 {
            brokers.remove(&victim).unwrap().simulate_crash();
        }
        handles.push(
            producer
                .send(ProducerRecord::new("orders", format!("v{i}")).partition(i % 2))
                .expect("send"),
        );
    }
    for (i, handle) in handles.into_iter().enumerate() {
        handle
            .wait()
            .unwrap_or_else(|error| panic!("send {i}: {error}"));
    }
    assert_ne!(bootstrap.leader_of("orders", 0), Some(victim));

    let mut consumer = Consumer::with_config(
        &bootstrap,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    consumer
        .assign((0..2).map(|p| TopicPartition::new("orders", p)))
        .unwrap();
    let mut seen: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    wait_until("every record consumed", Duration::from_secs(30), || {
        for record in consumer.poll(Duration::from_millis(100)).unwrap() {
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            seen.entry(record.partition).or_default().push(value);
        }
        seen.values().map(Vec::len).sum::<usize>() >= 200
    });
    for (partition, values) in &seen {
        let expected: Vec<String> = (0..200u32)
            .filter(|i| i % 2 == *partition)
            .map(|i| format!("v{i}"))
            .collect();
        assert_eq!(values, &expected, "partition {partition}");
    }
}

/// A consumer group on a broker whose coordinator is the real ZooKeeper: the group consumes
/// and commits, the broker restarts (its topics come back from ZooKeeper and its disk), and a
/// new member of the group resumes from the committed offsets.
#[test]
fn a_consumer_group_on_zookeeper_resumes_from_its_commits_after_a_restart() {
    if !zk::available("a_consumer_group_on_zookeeper_resumes_from_its_commits_after_a_restart") {
        return;
    }
    let server = zk::ZooKeeper::standalone();
    let coordinator: Arc<dyn Coordinator> = Arc::new(
        ZooKeeperCoordinator::connect(ZooKeeperConfig::new(server.connect_string("/groups")))
            .expect("connect"),
    );
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Broker::open_with(
            dir.path(),
            BrokerConfig {
                maintenance_interval_ms: None,
                coordinator: Some(Arc::clone(&coordinator)),
                replication: ReplicationConfig {
                    session_timeout_ms: SESSION_TIMEOUT_MS,
                    ..ReplicationConfig::default()
                },
                ..BrokerConfig::default()
            },
        )
    };
    let group_config = || ConsumerConfig {
        group_id: Some("billing".into()),
        auto_offset_reset: OffsetReset::Earliest,
        heartbeat_interval_ms: 50,
        ..ConsumerConfig::default()
    };
    {
        let broker = open().expect("open");
        broker
            .create_topic("invoices", TopicConfig::with_partitions(2))
            .expect("create");
        let producer = Producer::new(&broker).expect("producer");
        for i in 0..40u32 {
            producer
                .send_and_wait(ProducerRecord::new("invoices", format!("i{i}")).partition(i % 2))
                .expect("send");
        }
        let mut consumer = Consumer::with_config(&broker, group_config());
        consumer.subscribe(["invoices"]).unwrap();
        let mut seen = 0;
        wait_until("the first 40 records", Duration::from_secs(30), || {
            seen += consumer.poll(Duration::from_millis(100)).unwrap().len();
            seen >= 40
        });
        consumer.commit_sync().unwrap();
        producer
            .send_and_wait(ProducerRecord::new("invoices", "after the commit").partition(0))
            .expect("send");
    }
    // The broker's session closed with it; a new one finds the topic in ZooKeeper.
    let broker = open().expect("reopen");
    let mut consumer = Consumer::with_config(&broker, group_config());
    consumer.subscribe(["invoices"]).unwrap();
    let mut after = Vec::new();
    wait_until(
        "the record after the commit",
        Duration::from_secs(30),
        || {
            for record in consumer.poll(Duration::from_millis(100)).unwrap() {
                after.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
            }
            !after.is_empty()
        },
    );
    consumer.poll(Duration::from_millis(300)).unwrap();
    assert_eq!(after, vec!["after the commit".to_owned()]);
}

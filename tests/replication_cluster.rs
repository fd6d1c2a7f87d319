//! A real 3-broker cluster in one process (background threads, system clock): producers and
//! consumers follow leadership across a leader crash, controlled shutdown moves leadership
//! away first, and preferred-leader election brings it back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus::broker::{Broker, BrokerConfig, TopicConfig};
use logbus::client::{
    Consumer, OffsetReset, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use logbus::coordinator::{Coordinator, MemoryCoordinator, MemoryCoordinatorConfig};
use logbus::replication::{InProcessNetwork, ReplicationConfig};

const SESSION_TIMEOUT_MS: u64 = 1_000;

struct Cluster {
    coordinator: Arc<MemoryCoordinator>,
    network: Arc<InProcessNetwork>,
    dirs: Vec<tempfile::TempDir>,
    brokers: BTreeMap<i32, Broker>,
}

impl Cluster {
    fn start(size: i32) -> Cluster {
        let mut cluster = Cluster {
            coordinator: Arc::new(MemoryCoordinator::with_config(MemoryCoordinatorConfig {
                tick_ms: 100,
                ..MemoryCoordinatorConfig::default()
            })),
            network: InProcessNetwork::new(),
            dirs: (0..size).map(|_| tempfile::tempdir().unwrap()).collect(),
            brokers: BTreeMap::new(),
        };
        for id in 0..size {
            cluster.open(id);
        }
        cluster
    }

    fn open(&mut self, id: i32) {
        let config = BrokerConfig {
            broker_id: id,
            maintenance_interval_ms: None,
            coordinator: Some(Arc::clone(&self.coordinator) as Arc<dyn Coordinator>),
            network: Some(Arc::clone(&self.network)),
            replication: ReplicationConfig {
                session_timeout_ms: SESSION_TIMEOUT_MS,
                replica_lag_time_max_ms: 2_000,
                replica_fetch_wait_max_ms: 50,
                request_timeout_ms: 5_000,
                ..ReplicationConfig::default()
            },
            ..BrokerConfig::default()
        };
        let broker = Broker::open_with(self.dirs[id as usize].path(), config).unwrap();
        self.brokers.insert(id, broker);
    }

    fn broker(&self, id: i32) -> &Broker {
        &self.brokers[&id]
    }

    /// Waits (on the cluster, by polling the coordinator's state) until `done` holds.
    fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&Cluster) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn leader(&self, topic: &str, partition: u32) -> Option<i32> {
        self.brokers.values().next()?.leader_of(topic, partition)
    }

    fn isr(&self, topic: &str, partition: u32) -> Vec<i32> {
        let leader = self.leader(topic, partition);
        leader
            .and_then(|id| self.brokers.get(&id))
            .and_then(|broker| broker.replicated_partition(topic, partition).ok())
            .map(|local| local.isr())
            .unwrap_or_default()
    }

    fn fully_replicated(&self, topic: &str, partitions: u32) -> bool {
        (0..partitions).all(|p| self.isr(topic, p).len() == self.brokers.len())
    }
}

fn replicated(partitions: u32) -> TopicConfig {
    TopicConfig {
        partitions,
        replication_factor: 3,
        min_insync_replicas: 2,
        ..TopicConfig::default()
    }
}

#[test]
fn producer_and_consumer_follow_a_leader_crash() {
    let mut cluster = Cluster::start(3);
    cluster
        .broker(0)
        .create_topic("orders", replicated(3))
        .unwrap();
    cluster.wait_until("full ISRs", Duration::from_secs(10), |c| {
        c.fully_replicated("orders", 3)
    });
    let producer = Producer::with_config(
        cluster.broker(1),
        ProducerConfig {
            retry_backoff_ms: 20,
            ..ProducerConfig::default()
        },
    )
    .unwrap();
    let victim = cluster.leader("orders", 0).unwrap();
    let survivor = (0..3).find(|&id| id != victim).unwrap();
    let mut handles = Vec::new();
    for i in 0..600u32 {
        if i == 300 {
            cluster.brokers.remove(&victim).unwrap().simulate_crash();
        }
        let record = ProducerRecord::new("orders", format!("v{i}")).partition(i % 3);
        handles.push(producer.send(record).unwrap());
        if i % 50 == 0 {
            producer.flush();
        }
    }
    let mut offsets = BTreeMap::new();
    for (i, handle) in handles.into_iter().enumerate() {
        let metadata = handle
            .wait()
            .unwrap_or_else(|error| panic!("send {i}: {error}"));
        offsets.insert(i, metadata.offset.unwrap());
    }
    assert_ne!(
        cluster.leader("orders", 0),
        Some(victim),
        "leadership moved"
    );

    let mut consumer = Consumer::with_config(
        cluster.broker(survivor),
        logbus::client::ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..Default::default()
        },
    );
    consumer
        .assign((0..3).map(|p| TopicPartition::new("orders", p)))
        .unwrap();
    let mut seen: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.values().map(Vec::len).sum::<usize>() < 600 {
        assert!(Instant::now() < deadline, "consumed only {seen:?}");
        for record in consumer.poll(Duration::from_millis(100)).unwrap() {
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            seen.entry(record.partition).or_default().push(value);
        }
    }
    for (partition, values) in &seen {
        let expected: Vec<String> = (0..600u32)
            .filter(|i| i % 3 == *partition)
            .map(|i| format!("v{i}"))
            .collect();
        assert_eq!(
            values, &expected,
            "partition {partition}: once each, in order"
        );
    }
}

#[test]
fn controlled_shutdown_moves_leadership_first_and_preferred_election_brings_it_back() {
    let mut cluster = Cluster::start(3);
    cluster
        .broker(0)
        .create_topic("jobs", replicated(6))
        .unwrap();
    cluster.wait_until("full ISRs", Duration::from_secs(10), |c| {
        c.fully_replicated("jobs", 6)
    });
    let led_by = |cluster: &Cluster, id: i32| {
        (0..6)
            .filter(|&p| cluster.leader("jobs", p) == Some(id))
            .count()
    };
    assert!(led_by(&cluster, 2) > 0, "broker 2 leads some partitions");
    let remaining = cluster.broker(2).controlled_shutdown().unwrap();
    assert_eq!(remaining, 0);
    assert_eq!(led_by(&cluster, 2), 0, "leadership moved before the stop");
    cluster.brokers.remove(&2);
    // Writes keep going on the other two (min.insync.replicas = 2).
    let producer = Producer::new(cluster.broker(0)).unwrap();
    for p in 0..6 {
        producer
            .send_and_wait(ProducerRecord::new("jobs", "while 2 is away").partition(p))
            .unwrap();
    }
    cluster.open(2);
    cluster.wait_until(
        "broker 2 leads its preferred partitions again",
        Duration::from_secs(15),
        |c| led_by(c, 2) == 2,
    );
}

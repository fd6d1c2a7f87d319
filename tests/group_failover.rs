//! Group coordinator failover in a 3-broker cluster in one process (background threads, system
//! clock). The broker leading the group's `__consumer_offsets` partition crashes while a group
//! of two consumers is consuming and committing. The partition's new leader loads the group and
//! its offsets; the consumers find it and carry on; no acknowledged commit is lost or goes
//! backwards; and a consumer joining later resumes exactly from the last commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logbus::broker::{Broker, BrokerConfig, TopicConfig};
use logbus::client::{
    ConsumeError, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use logbus::coordinator::{Coordinator, MemoryCoordinator, MemoryCoordinatorConfig};
use logbus::group::{GroupError, GroupState, OffsetAndMetadata, OFFSETS_TOPIC};
use logbus::replication::{InProcessNetwork, ReplicationConfig};

const SESSION_TIMEOUT_MS: u64 = 1_000;
const GROUP: &str = "billing";
const TOPIC: &str = "invoices";
const PARTITIONS: u32 = 4;

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
            let config = BrokerConfig {
                broker_id: id,
                maintenance_interval_ms: None,
                coordinator: Some(Arc::clone(&cluster.coordinator) as Arc<dyn Coordinator>),
                network: Some(Arc::clone(&cluster.network)),
                replication: ReplicationConfig {
                    session_timeout_ms: SESSION_TIMEOUT_MS,
                    replica_lag_time_max_ms: 2_000,
                    replica_fetch_wait_max_ms: 50,
                    request_timeout_ms: 2_000,
                    ..ReplicationConfig::default()
                },
                ..BrokerConfig::default()
            };
            let broker = Broker::open_with(cluster.dirs[id as usize].path(), config).unwrap();
            cluster.brokers.insert(id, broker);
        }
        cluster
    }

    fn broker(&self, id: i32) -> &Broker {
        &self.brokers[&id]
    }

    fn any(&self) -> &Broker {
        self.brokers.values().next().unwrap()
    }

    fn full_isr(&self, topic: &str, partition: u32) -> bool {
        let Some(leader) = self.any().leader_of(topic, partition) else {
            return false;
        };
        self.brokers.get(&leader).is_some_and(|broker| {
            broker
                .replicated_partition(topic, partition)
                .is_ok_and(|local| local.isr().len() == self.brokers.len())
        })
    }
}

/// Polls `done` (the cluster works on its own threads) until it holds or `timeout` passes.
fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn consumer_config() -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some(GROUP.into()),
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: false,
        session_timeout_ms: 6_000,
        heartbeat_interval_ms: 100,
        max_poll_records: 10,
        retry_backoff_ms: 20,
        default_api_timeout_ms: 20_000,
        ..ConsumerConfig::default()
    }
}

fn produce(producer: &Producer, from: u32, to: u32) {
    for i in from..to {
        let record = ProducerRecord::new(TOPIC, format!("r{i}")).partition(i % PARTITIONS);
        producer
            .send_and_wait(record)
            .unwrap_or_else(|error| panic!("send {i}: {error}"));
    }
}

/// What the members saw: every record (partition, offset) and every acknowledged commit in
/// the order acknowledged.
#[derive(Debug, Default)]
struct Seen {
    records: Vec<(u32, u64)>,
    acked: Vec<(u32, u64)>,
    /// Records (partition, offset) consumed after the crash.
    after_crash: Vec<(u32, u64)>,
    crashed: bool,
}

impl Seen {
    /// The last acknowledged commit of each partition.
    fn last_acked(&self) -> BTreeMap<u32, u64> {
        self.acked.iter().copied().collect()
    }
}

/// A member's loop: poll, then commit what it returned; until `stop`.
fn run_member(broker: Broker, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>) {
    let mut consumer = Consumer::with_config(&broker, consumer_config());
    consumer.subscribe([TOPIC]).unwrap();
    while !stop.load(Ordering::SeqCst) {
        let records = consumer
            .poll(Duration::from_millis(50))
            .unwrap_or_else(|error| panic!("poll: {error}"));
        if records.is_empty() {
            continue;
        }
        let mut next: BTreeMap<TopicPartition, OffsetAndMetadata> = BTreeMap::new();
        {
            let mut seen = seen.lock().unwrap();
            for record in &records {
                seen.records.push((record.partition, record.offset));
                if seen.crashed {
                    seen.after_crash.push((record.partition, record.offset));
                }
                next.insert(
                    TopicPartition::new(TOPIC, record.partition),
                    OffsetAndMetadata::new(record.offset + 1),
                );
            }
        }
        match consumer.commit_offsets_sync(next.clone()) {
            Ok(()) => {
                let mut seen = seen.lock().unwrap();
                seen.acked.extend(
                    next.iter()
                        .map(|(tp, offset)| (tp.partition, offset.offset)),
                );
            }
            // The group moved on (a rebalance): the partitions' next owner reads from the
            // last commit.
            Err(ConsumeError::Group(
                GroupError::RebalanceInProgress { .. }
                | GroupError::IllegalGeneration { .. }
                | GroupError::UnknownMemberId { .. },
            )) => {}
            Err(error) => panic!("commit: {error}"),
        }
    }
}

fn end_offsets(broker: &Broker) -> BTreeMap<u32, u64> {
    (0..PARTITIONS)
        .map(|p| {
            let leader = broker.leader_of(TOPIC, p).unwrap();
            let replica = broker.peer(leader).unwrap().replica(TOPIC, p).unwrap();
            (p, replica.high_watermark())
        })
        .collect()
}

#[test]
fn the_group_carries_on_under_the_next_coordinator_with_every_acknowledged_commit() {
    let mut cluster = Cluster::start(3);
    cluster
        .broker(0)
        .create_topic(
            TOPIC,
            TopicConfig {
                partitions: PARTITIONS,
                replication_factor: 3,
                min_insync_replicas: 2,
                ..TopicConfig::default()
            },
        )
        .unwrap();
    // The group's coordinator: the leader of its offsets partition, once the topic exists.
    let coordinator = {
        let mut found = None;
        wait_until("a group coordinator", Duration::from_secs(10), || {
            found = cluster.broker(0).find_group_coordinator(GROUP).ok();
            found.is_some()
        });
        found.unwrap()
    };
    let offsets_partition = coordinator.partition_for(GROUP);
    wait_until("full ISRs", Duration::from_secs(10), || {
        cluster.full_isr(OFFSETS_TOPIC, offsets_partition)
            && (0..PARTITIONS).all(|p| cluster.full_isr(TOPIC, p))
    });
    let victim = cluster
        .any()
        .leader_of(OFFSETS_TOPIC, offsets_partition)
        .unwrap();
    let survivors: Vec<i32> = (0..3).filter(|&id| id != victim).collect();
    let producer = Producer::with_config(
        cluster.broker(survivors[0]),
        ProducerConfig {
            retry_backoff_ms: 20,
            ..ProducerConfig::default()
        },
    )
    .unwrap();

    // Two members, each bootstrapped from a survivor, consume and commit the first batch.
    produce(&producer, 0, 200);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let members: Vec<_> = survivors
        .iter()
        .map(|&id| {
            let (broker, seen, stop) = (
                cluster.broker(id).clone(),
                Arc::clone(&seen),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || run_member(broker, seen, stop))
        })
        .collect();
    let first_batch_end = end_offsets(cluster.broker(survivors[0]));
    wait_until(
        "the first batch consumed and committed by a group of two",
        Duration::from_secs(20),
        || {
            let shared = coordinator
                .describe(GROUP)
                .is_ok_and(|d| d.state == GroupState::Stable && d.members.len() == 2);
            shared && seen.lock().unwrap().last_acked() == first_batch_end
        },
    );

    // The coordinator's broker crashes.
    seen.lock().unwrap().crashed = true;
    let crashed_at = Instant::now();
    cluster.brokers.remove(&victim).unwrap().simulate_crash();
    drop(coordinator);

    // A new leader of the offsets partition holds every acknowledged commit.
    let survivor = cluster.broker(survivors[0]).clone();
    let mut observer = Consumer::with_config(&survivor, consumer_config());
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    let committed = observer.committed(&partitions).unwrap();
    let failover = crashed_at.elapsed();
    let committed: BTreeMap<u32, u64> = committed
        .iter()
        .map(|(tp, offset)| (tp.partition, offset.offset))
        .collect();
    assert_eq!(
        committed, first_batch_end,
        "no acknowledged commit was lost"
    );
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );
    let new_leader = survivor
        .leader_of(OFFSETS_TOPIC, offsets_partition)
        .unwrap();
    assert_ne!(new_leader, victim, "the offsets partition has a new leader");

    // The group carries on: the members consume and commit the second batch there.
    produce(&producer, 200, 400);
    let second_batch_end = end_offsets(&survivor);
    wait_until(
        "the second batch consumed and committed",
        Duration::from_secs(20),
        || {
            assert!(!members.iter().any(|m| m.is_finished()), "a member stopped");
            seen.lock().unwrap().last_acked() == second_batch_end
        },
    );
    let new_coordinator = survivor.find_group_coordinator(GROUP).unwrap();
    let description = new_coordinator.describe(GROUP).unwrap();
    assert_eq!(description.members.len(), 2, "both members carried on");
    {
        let seen = seen.lock().unwrap();
        // Resumed where the commits were: each partition's first record after the crash is
        // the first one after the last commit.
        let mut first_after: BTreeMap<u32, u64> = BTreeMap::new();
        for &(partition, offset) in &seen.after_crash {
            first_after.entry(partition).or_insert(offset);
        }
        assert_eq!(
            first_after, first_batch_end,
            "resumed from the last commits"
        );
        // No acknowledged commit went backwards, before or after the failover.
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for &(partition, offset) in &seen.acked {
            let before = last.insert(partition, offset).unwrap_or(0);
            assert!(
                before <= offset,
                "partition {partition}: {before} then {offset}"
            );
        }
        let all: BTreeSet<(u32, u64)> = seen.records.iter().copied().collect();
        let expected: usize = second_batch_end.values().map(|&end| end as usize).sum();
        assert_eq!(all.len(), expected, "every record consumed");
    }
    stop.store(true, Ordering::SeqCst);
    for member in members {
        member.join().unwrap();
    }

    // A member joining later starts exactly from the commits the new coordinator holds.
    produce(&producer, 400, 440);
    let mut late = Consumer::with_config(&survivor, consumer_config());
    late.subscribe([TOPIC]).unwrap();
    let mut late_seen: Vec<(u32, u64)> = Vec::new();
    wait_until("the third batch", Duration::from_secs(20), || {
        let records = late.poll(Duration::from_millis(50)).unwrap();
        late_seen.extend(records.iter().map(|r| (r.partition, r.offset)));
        late_seen.len() >= 40
    });
    let mut first_late: BTreeMap<u32, u64> = BTreeMap::new();
    for &(partition, offset) in &late_seen {
        first_late.entry(partition).or_insert(offset);
    }
    assert_eq!(
        first_late, second_batch_end,
        "resumed from the last commits"
    );
    assert_eq!(late_seen.len(), 40, "nothing committed is read again");
    eprintln!("coordinator failover (crash to the first committed-offsets answer): {failover:?}");
}

/// Leadership moved without a crash (controlled shutdown): the replica manager tells the old
/// leader's coordinator, which answers `NotCoordinator` at once; the new leader's coordinator
/// loaded the group's offsets.
#[test]
fn a_coordinator_that_stops_leading_answers_not_coordinator_and_the_new_leader_serves_the_group() {
    let cluster = Cluster::start(3);
    let mut found = None;
    wait_until("a group coordinator", Duration::from_secs(10), || {
        found = cluster.broker(0).find_group_coordinator(GROUP).ok();
        found.is_some()
    });
    let old = found.unwrap();
    let partition = old.partition_for(GROUP);
    wait_until("a full ISR", Duration::from_secs(10), || {
        cluster.full_isr(OFFSETS_TOPIC, partition)
    });
    let tp = logbus::group::TopicPartition::new(TOPIC, 0);
    let commit = |offset: u64| logbus::group::CommitRequest {
        member: logbus::group::MemberRef::standalone(GROUP),
        offsets: vec![(tp.clone(), OffsetAndMetadata::new(offset))],
    };
    old.commit_offsets(&commit(42)).unwrap();
    let leader = cluster.any().leader_of(OFFSETS_TOPIC, partition).unwrap();
    assert_eq!(cluster.broker(leader).controlled_shutdown().unwrap(), 0);
    wait_until(
        "the old coordinator to resign",
        Duration::from_secs(10),
        || {
            matches!(
                old.committed(GROUP, None),
                Err(GroupError::NotCoordinator { .. })
            )
        },
    );
    assert!(matches!(
        old.commit_offsets(&commit(7)),
        Err(GroupError::NotCoordinator { .. })
    ));
    let other = (0..3).find(|&id| id != leader).unwrap();
    let mut new = None;
    wait_until("the new coordinator", Duration::from_secs(10), || {
        new = cluster.broker(other).find_group_coordinator(GROUP).ok();
        new.as_ref()
            .is_some_and(|c| c.committed(GROUP, None).is_ok())
    });
    let new = new.unwrap();
    assert!(!Arc::ptr_eq(&new, &old));
    assert_eq!(new.committed(GROUP, None).unwrap()[&tp].offset, 42);
}

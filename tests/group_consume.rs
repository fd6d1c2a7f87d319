//! Consumers in groups end to end: at-least-once across a member's death, listeners, pattern
//! subscriptions, static membership, close leaving at once, commits, and the admin view.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logbus::broker::{Broker, BrokerConfig, BrokerError, OffsetSpec, TopicConfig};
use logbus::client::{
    AssignmentStrategy, ConsumeError, Consumer, ConsumerConfig, OffsetReset, Producer,
    ProducerRecord, RebalanceListener, TopicPartition,
};
use logbus::clock::{Clock, ManualClock};
use logbus::group::{GroupError, GroupState, OffsetAndMetadata};

const SHORT: Duration = Duration::from_millis(20);

fn broker_with(dir: &std::path::Path, clock: Arc<dyn Clock>) -> Broker {
    let config = BrokerConfig {
        clock,
        maintenance_interval_ms: None,
        ..BrokerConfig::default()
    };
    Broker::open_with(dir, config).unwrap()
}

fn produce(broker: &Broker, topic: &str, partitions: u32, per_partition: u32) {
    let producer = Producer::new(broker).unwrap();
    for i in 0..per_partition {
        for p in 0..partitions {
            producer
                .send(ProducerRecord::new(topic, format!("{p}-{i}")).partition(p))
                .unwrap();
        }
    }
    producer.flush();
}

fn config(group: &str) -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some(group.into()),
        auto_offset_reset: OffsetReset::Earliest,
        heartbeat_interval_ms: 50,
        session_timeout_ms: 6_000,
        max_poll_records: 10,
        ..ConsumerConfig::default()
    }
}

fn offsets(records: &[logbus::client::ConsumerRecord]) -> Vec<(u32, u64)> {
    records.iter().map(|r| (r.partition, r.offset)).collect()
}

/// A member polls and commits, polls more without committing, and dies (a static member:
/// no LeaveGroup, as after a crash). Once its session expires, another member takes its
/// partitions from the last committed offsets: nothing is lost, only the uncommitted records
/// are seen twice, and no committed offset goes backwards.
#[test]
fn a_dead_members_partitions_resume_from_its_last_commit_on_another_member() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let broker = broker_with(dir.path(), Arc::new(clock.clone()));
    broker
        .create_topic("events", TopicConfig::with_partitions(2))
        .unwrap();
    produce(&broker, "events", 2, 50);
    let admin = broker.consumer_groups().unwrap();
    let mut seen_by_first = BTreeSet::new();
    let committed_by_first;
    {
        let mut first = Consumer::with_config(
            &broker,
            ConsumerConfig {
                group_instance_id: Some("first".into()),
                enable_auto_commit: false,
                ..config("g")
            },
        );
        first.subscribe(["events"]).unwrap();
        for round in 0..4 {
            let records = first.poll(SHORT).unwrap();
            assert!(!records.is_empty());
            seen_by_first.extend(offsets(&records));
            if round < 2 {
                first.commit_sync().unwrap();
            }
        }
        committed_by_first = admin.committed("g").unwrap();
        assert!(!committed_by_first.is_empty());
        // Dropped without leaving (static member), as a crash would.
    }
    clock.advance_ms(6_001);
    broker.group_coordinator().unwrap().tick().unwrap();
    assert_eq!(admin.describe("g").unwrap().state, GroupState::Empty);

    let mut second = Consumer::with_config(
        &broker,
        ConsumerConfig {
            enable_auto_commit: false,
            ..config("g")
        },
    );
    second.subscribe(["events"]).unwrap();
    let mut seen_by_second = Vec::new();
    let mut last_committed: BTreeMap<TopicPartition, u64> = committed_by_first
        .iter()
        .map(|(p, o)| (p.clone(), o.offset))
        .collect();
    while seen_by_second.len() < 100 {
        let records = second.poll(SHORT).unwrap();
        if records.is_empty() {
            break;
        }
        seen_by_second.extend(offsets(&records));
        second.commit_sync().unwrap();
        for (partition, offset) in admin.committed("g").unwrap() {
            let before = last_committed.insert(partition.clone(), offset.offset);
            assert!(
                before.is_none_or(|b| b <= offset.offset),
                "{partition} went back"
            );
        }
    }
    for (partition, committed) in &committed_by_first {
        let first_seen = seen_by_second
            .iter()
            .find(|(p, _)| *p == partition.partition)
            .map(|(_, o)| *o);
        assert_eq!(
            first_seen,
            Some(committed.offset),
            "{partition} resumes at its commit"
        );
    }
    let all: BTreeSet<(u32, u64)> = seen_by_first
        .iter()
        .copied()
        .chain(seen_by_second.iter().copied())
        .collect();
    assert_eq!(all.len(), 100, "no record lost");
    let twice = seen_by_second
        .iter()
        .filter(|r| seen_by_first.contains(r))
        .count();
    assert_eq!(
        twice,
        seen_by_first.len() - committed_total(&committed_by_first)
    );
}

fn committed_total(committed: &BTreeMap<TopicPartition, OffsetAndMetadata>) -> usize {
    committed.values().map(|o| o.offset as usize).sum()
}

/// One listener call: its kind and partitions.
type Call = (&'static str, Vec<TopicPartition>);

#[derive(Default, Clone)]
struct Calls(Arc<Mutex<Vec<Call>>>);

impl RebalanceListener for Calls {
    fn on_partitions_revoked(&mut self, _: &mut Consumer, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .push(("revoked", partitions.to_vec()));
    }
    fn on_partitions_assigned(&mut self, _: &mut Consumer, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .push(("assigned", partitions.to_vec()));
    }
    fn on_partitions_lost(&mut self, _: &mut Consumer, partitions: &[TopicPartition]) {
        self.0.lock().unwrap().push(("lost", partitions.to_vec()));
    }
}

fn tps(topic: &str, count: u32) -> Vec<TopicPartition> {
    (0..count).map(|p| TopicPartition::new(topic, p)).collect()
}

#[test]
fn a_pattern_picks_up_new_topics_and_partitions_and_tells_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let broker = broker_with(dir.path(), Arc::new(clock));
    broker
        .create_topic("orders-eu", TopicConfig::with_partitions(2))
        .unwrap();
    broker
        .create_topic("payments", TopicConfig::with_partitions(1))
        .unwrap();
    let calls = Calls::default();
    let mut consumer = Consumer::with_config(&broker, config("pattern"));
    consumer.set_rebalance_listener(calls.clone()).unwrap();
    consumer.subscribe_pattern("orders-*").unwrap();
    consumer.poll(SHORT).unwrap();
    assert_eq!(consumer.assignment(), tps("orders-eu", 2));
    broker
        .create_topic("orders-us", TopicConfig::with_partitions(1))
        .unwrap();
    consumer.poll(SHORT).unwrap();
    let mut expected = tps("orders-eu", 2);
    expected.extend(tps("orders-us", 1));
    let mut assignment = consumer.assignment();
    assignment.sort();
    assert_eq!(assignment, expected);
    assert_eq!(consumer.subscription(), ["orders-eu", "orders-us"]);
    broker.create_partitions("orders-us", 2).unwrap();
    consumer.poll(SHORT).unwrap();
    assert_eq!(consumer.assignment().len(), 4);
    let calls = calls.0.lock().unwrap().clone();
    // Range is eager: each rebalance revokes everything, then assigns the new set.
    assert_eq!(calls[0], ("assigned", tps("orders-eu", 2)));
    assert_eq!(calls[1], ("revoked", tps("orders-eu", 2)));
    assert_eq!(calls[2].0, "assigned");
    assert_eq!(calls[2].1.len(), 3);
    assert_eq!(calls.len(), 5);
    consumer.unsubscribe().unwrap();
    assert!(consumer.assignment().is_empty());
    let admin = broker.consumer_groups().unwrap();
    assert_eq!(admin.describe("pattern").unwrap().state, GroupState::Empty);
    assert!(matches!(
        consumer.poll(SHORT),
        Err(ConsumeError::NoAssignment)
    ));
}

#[test]
fn cooperative_consumers_are_told_only_of_what_changes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(dir.path(), Arc::new(ManualClock::new(1_000_000)));
    broker
        .create_topic("a", TopicConfig::with_partitions(2))
        .unwrap();
    let calls = Calls::default();
    let mut consumer = Consumer::with_config(
        &broker,
        ConsumerConfig {
            partition_assignment_strategy: vec![AssignmentStrategy::cooperative_sticky()],
            ..config("coop")
        },
    );
    consumer.set_rebalance_listener(calls.clone()).unwrap();
    consumer.subscribe(["a", "b"]).unwrap();
    consumer.poll(SHORT).unwrap();
    broker
        .create_topic("b", TopicConfig::with_partitions(1))
        .unwrap();
    consumer.poll(SHORT).unwrap();
    let calls = calls.0.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![("assigned", tps("a", 2)), ("assigned", tps("b", 1))],
        "nothing revoked, only the new partition assigned"
    );
}

#[test]
fn a_static_member_restarting_within_its_session_gets_its_partitions_without_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let broker = broker_with(dir.path(), Arc::new(clock.clone()));
    broker
        .create_topic("t", TopicConfig::with_partitions(3))
        .unwrap();
    let static_config = ConsumerConfig {
        group_instance_id: Some("host-1".into()),
        ..config("static")
    };
    let admin = broker.consumer_groups().unwrap();
    let (generation, assignment) = {
        let mut consumer = Consumer::with_config(&broker, static_config.clone());
        consumer.subscribe(["t"]).unwrap();
        consumer.poll(SHORT).unwrap();
        (
            consumer.group_metadata().unwrap().generation_id,
            consumer.assignment(),
        )
    };
    assert_eq!(
        admin.describe("static").unwrap().members.len(),
        1,
        "no LeaveGroup"
    );
    clock.advance_ms(3_000);
    let mut restarted = Consumer::with_config(&broker, static_config);
    restarted.subscribe(["t"]).unwrap();
    restarted.poll(SHORT).unwrap();
    assert_eq!(
        restarted.group_metadata().unwrap().generation_id,
        generation
    );
    assert_eq!(restarted.assignment(), assignment);
    let description = admin.describe("static").unwrap();
    assert_eq!(description.generation_id, generation);
    assert_eq!(
        description.members[0].group_instance_id.as_deref(),
        Some("host-1")
    );
}

#[test]
fn closing_a_member_leaves_at_once_and_the_other_takes_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(dir.path(), logbus::clock::system_clock());
    broker
        .create_topic("t", TopicConfig::with_partitions(4))
        .unwrap();
    produce(&broker, "t", 4, 25);
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let owned_sizes = Arc::new(Mutex::new(Vec::new()));
    let survivor = {
        let (broker, stop, sizes) = (broker.clone(), Arc::clone(&stop), Arc::clone(&owned_sizes));
        std::thread::spawn(move || {
            let mut consumer = Consumer::with_config(&broker, fast_commits("close"));
            consumer.subscribe(["t"]).unwrap();
            let mut seen = BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let records = consumer.poll(Duration::from_millis(50)).unwrap();
                seen.extend(offsets(&records));
                sizes.lock().unwrap().push(consumer.assignment().len());
            }
            seen
        })
    };
    let mut leaving = Consumer::with_config(&broker, fast_commits("close"));
    leaving.subscribe(["t"]).unwrap();
    let mut seen_by_leaving = BTreeSet::new();
    // Wait for the group to share the partitions (under load the first member may already have
    // read and committed everything by then, so what the leaving member reads is not waited for).
    while !(1..4).contains(&leaving.assignment().len()) {
        seen_by_leaving.extend(offsets(&leaving.poll(Duration::from_millis(50)).unwrap()));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the group never shared"
        );
    }
    drop(leaving);
    let admin = broker.consumer_groups().unwrap();
    let settled = Instant::now();
    loop {
        let lag = admin.lag("close").unwrap();
        let members = admin.describe("close").unwrap().members.len();
        let survivor_owns = owned_sizes.lock().unwrap().last().copied();
        if lag.total_lag == 0 && members == 1 && survivor_owns == Some(4) {
            break;
        }
        assert!(
            settled.elapsed() < Duration::from_secs(5),
            "not taken over quickly: {lag:?}"
        );
        std::thread::yield_now();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = survivor.join().unwrap();
    let all: BTreeSet<(u32, u64)> = seen.union(&seen_by_leaving).copied().collect();
    assert_eq!(all.len(), 100);
}

/// Auto-commit every 10 ms: the lag the admin sees follows consumption closely.
fn fast_commits(group: &str) -> ConsumerConfig {
    ConsumerConfig {
        auto_commit_interval_ms: 10,
        ..config(group)
    }
}

#[test]
fn commits_carry_metadata_async_callbacks_run_in_poll_and_assign_consumers_commit_standalone() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(dir.path(), Arc::new(ManualClock::new(1_000_000)));
    broker
        .create_topic("t", TopicConfig::with_partitions(1))
        .unwrap();
    produce(&broker, "t", 1, 10);
    let mut consumer = Consumer::with_config(&broker, config("standalone"));
    let partition = TopicPartition::new("t", 0);
    consumer.assign([partition.clone()]).unwrap();
    assert_eq!(consumer.poll(SHORT).unwrap().len(), 10);
    let offsets = BTreeMap::from([(
        partition.clone(),
        OffsetAndMetadata {
            metadata: "checkpoint-7".into(),
            ..OffsetAndMetadata::new(7)
        },
    )]);
    let called = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&called);
    consumer.commit_offsets_async(offsets, move |result| {
        *sink.lock().unwrap() = Some(result.map(|o| o.len()).map_err(|e| e.to_string()));
    });
    assert!(
        called.lock().unwrap().is_none(),
        "callbacks wait for the polling thread"
    );
    consumer.poll(SHORT).unwrap();
    assert_eq!(*called.lock().unwrap(), Some(Ok(1)));
    let committed = consumer
        .committed(std::slice::from_ref(&partition))
        .unwrap();
    assert_eq!(committed[&partition].offset, 7);
    assert_eq!(committed[&partition].metadata, "checkpoint-7");
    assert_eq!(consumer.current_lag(&partition).unwrap(), Some(0));

    // Once a subscribed member is in the group, standalone commits are refused.
    let mut member = Consumer::with_config(&broker, config("standalone"));
    member.subscribe(["t"]).unwrap();
    member.poll(SHORT).unwrap();
    let error = consumer.commit_sync().unwrap_err();
    assert!(
        matches!(
            error,
            ConsumeError::Group(GroupError::UnknownMemberId { .. })
        ),
        "{error:?}"
    );
    assert_eq!(
        consumer
            .committed(std::slice::from_ref(&partition))
            .unwrap()[&partition]
            .offset,
        7
    );
    let without_group = Consumer::new(&broker).committed(&[partition]);
    assert!(matches!(without_group, Err(ConsumeError::NoGroupId)));
}

#[test]
fn the_admin_describes_measures_lag_and_resets_or_deletes_only_empty_groups() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let broker = broker_with(dir.path(), Arc::new(clock.clone()));
    broker
        .create_topic("t", TopicConfig::with_partitions(2))
        .unwrap();
    produce(&broker, "t", 2, 10);
    let admin = broker.consumer_groups().unwrap();
    let mut consumer = Consumer::with_config(
        &broker,
        ConsumerConfig {
            client_id: "reporting".into(),
            enable_auto_commit: false,
            ..config("admin")
        },
    );
    consumer.subscribe(["t"]).unwrap();
    let polled = consumer.poll(SHORT).unwrap().len();
    consumer.commit_sync().unwrap();
    let description = admin.describe("admin").unwrap();
    assert_eq!(description.state, GroupState::Stable);
    assert_eq!(description.protocol.as_deref(), Some("range"));
    assert_eq!(description.members[0].client_id, "reporting");
    assert_eq!(description.members[0].assignment, tps("t", 2));
    assert_eq!(description.members[0].subscribed_topics, ["t"]);
    // One poll of 10 read partition 0 only: partition 1 has no commit, so no lag to report.
    assert_eq!(polled, 10);
    let lag = admin.lag("admin").unwrap();
    assert_eq!(lag.total_lag, 0);
    let (p0, p1) = (&lag.partitions[0], &lag.partitions[1]);
    assert_eq!((p0.committed, p0.lag), (Some(10), Some(0)));
    assert_eq!((p1.committed, p1.lag), (None, None));
    assert!(lag
        .partitions
        .iter()
        .all(|p| p.member_id.is_some() && p.log_end_offset == 10));
    assert!(matches!(
        admin.delete("admin"),
        Err(BrokerError::Group(GroupError::NonEmptyGroup { .. }))
    ));
    assert!(matches!(
        admin.reset_offsets("admin", &tps("t", 2), OffsetSpec::Earliest),
        Err(BrokerError::Group(GroupError::NonEmptyGroup { .. }))
    ));
    drop(consumer);
    assert_eq!(admin.describe("admin").unwrap().state, GroupState::Empty);
    let reset = admin
        .reset_offsets("admin", &tps("t", 2), OffsetSpec::Offset(3))
        .unwrap();
    assert!(reset.values().all(|&o| o == 3));
    assert_eq!(admin.lag("admin").unwrap().total_lag, 14);
    admin
        .reset_offsets("admin", &tps("t", 2), OffsetSpec::Latest)
        .unwrap();
    assert_eq!(admin.lag("admin").unwrap().total_lag, 0);
    assert!(admin.list().iter().any(|g| g.group_id == "admin"));
    admin.delete("admin").unwrap();
    assert!(admin.list().iter().all(|g| g.group_id != "admin"));
    assert!(matches!(
        admin.describe("admin"),
        Err(BrokerError::Group(GroupError::GroupIdNotFound { .. }))
    ));
}

/// A member whose application stops polling for longer than `max_poll_interval_ms` leaves the
/// group from its heartbeat thread; its next poll finds its partitions lost and rejoins.
#[test]
fn a_member_that_stops_polling_leaves_and_its_next_poll_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let broker = broker_with(dir.path(), Arc::new(clock.clone()));
    broker
        .create_topic("t", TopicConfig::with_partitions(2))
        .unwrap();
    let calls = Calls::default();
    let mut consumer = Consumer::with_config(
        &broker,
        ConsumerConfig {
            max_poll_interval_ms: 300,
            heartbeat_interval_ms: 10,
            ..config("paused")
        },
    );
    consumer.set_rebalance_listener(calls.clone()).unwrap();
    consumer.subscribe(["t"]).unwrap();
    consumer.poll(SHORT).unwrap();
    let first_member = consumer.group_metadata().unwrap().member_id;
    let admin = broker.consumer_groups().unwrap();
    assert_eq!(admin.describe("paused").unwrap().members.len(), 1);
    clock.advance_ms(301);
    let waited = Instant::now();
    while admin.describe("paused").unwrap().state != GroupState::Empty {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "the heartbeat thread never left"
        );
        std::thread::yield_now();
    }
    consumer.poll(SHORT).unwrap();
    assert_eq!(consumer.assignment(), tps("t", 2));
    assert_ne!(consumer.group_metadata().unwrap().member_id, first_member);
    let calls = calls.0.lock().unwrap().clone();
    assert_eq!(calls[1], ("lost", tps("t", 2)));
    assert_eq!(calls[2], ("assigned", tps("t", 2)));
}

//! The producer keeps up to `max_in_flight_per_partition` batches of a partition appended
//! while the first replicates, completes them in order, and across a leader crash with five in
//! flight loses, duplicates and reorders nothing.
//!
//! With `inline_idle_appends`, a record sent while the producer is idle, to a partition led by
//! its own broker, is appended inline by `send`
//! (see `src/client/accumulator.rs`); it heads the pipeline like any other batch, and a producer
//! on a follower, whose inline attempt is refused, goes through the leader.
//!
//! A real [`Producer`] (its own sender thread) on a simulated cluster (`support/sim.rs`): the
//! brokers move only when the test steps them, so the test decides when followers fetch, and
//! so how long a batch stays unacknowledged.

#[path = "support/sim.rs"]
mod sim;
#[path = "support/sim_producer.rs"]
mod sim_producer;

use std::sync::Arc;
use std::time::Duration;

use logbus::broker::Broker;
use logbus::client::{Producer, ProducerConfig};
use logbus::log::FlushPolicy;
use logbus::partition::Replica;
use sim::{Sim, TOPIC};
use sim_producer::{
    quiet_cluster_flushing, send, step_until_acknowledged, wait_for_log_end, LeakOnPanic,
};

/// How long the sender gets to do what it should do at once (generous: a loaded machine).
const PROMPTLY: Duration = Duration::from_secs(10);
/// How long the sender gets to do what it must not do.
const NOT_MEANWHILE: Duration = Duration::from_millis(200);

fn quiet_cluster(seed: u64) -> Sim {
    quiet_cluster_flushing(seed, FlushPolicy::EveryAppend)
}

/// A producer whose every record is a batch of its own (`batch_size` 1).
fn one_record_batches(bootstrap: &Broker, max_in_flight: usize) -> LeakOnPanic {
    let producer = Producer::with_config(
        bootstrap,
        ProducerConfig {
            batch_size: 1,
            max_in_flight_per_partition: max_in_flight,
            retry_backoff_ms: 10,
            inline_idle_appends: true,
            ..ProducerConfig::default()
        },
    )
    .expect("a producer");
    LeakOnPanic(Some(producer))
}

fn values(replica: &Replica) -> Vec<String> {
    sim::read_all(replica)
        .into_iter()
        .map(|(_, value)| String::from_utf8(value).expect("utf-8"))
        .collect()
}

fn expected_values(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("v{i}")).collect()
}

#[test]
fn a_partition_keeps_max_in_flight_batches_appended_while_the_first_replicates() {
    for max_in_flight in [1, 3, 5] {
        let mut sim = quiet_cluster(7);
        let leader = sim.leader(0).expect("a leader");
        let broker = sim.broker(leader).expect("the leader is up");
        let replica: Arc<Replica> = broker.replica(TOPIC, 0).expect("the leader's replica");
        let producer = one_record_batches(&broker, max_in_flight);
        let handles = send(&producer, 0..8);
        // No follower fetches until the cluster is stepped: nothing is acknowledged, and the
        // sender appends exactly `max_in_flight` batches.
        let limit = max_in_flight as u64;
        assert_eq!(
            wait_for_log_end(&replica, limit, PROMPTLY),
            limit,
            "max_in_flight {max_in_flight}: the sender appends that many batches at once"
        );
        assert_eq!(
            wait_for_log_end(&replica, limit + 1, NOT_MEANWHILE),
            limit,
            "max_in_flight {max_in_flight}: and no more while none is acknowledged"
        );
        assert!(handles.iter().all(|handle| !handle.is_done()));
        let offsets = step_until_acknowledged(&mut sim, handles);
        assert_eq!(offsets, (0..8).collect::<Vec<u64>>(), "in order, once each");
        assert_eq!(values(&replica), expected_values(8));
    }
}

#[test]
fn a_leader_crash_with_five_batches_in_flight_loses_duplicates_and_reorders_nothing() {
    let mut sim = quiet_cluster(11);
    let replicas = sim.assignment(0);
    let (leader, successor, other) = (replicas[0], replicas[1], replicas[2]);
    assert_eq!(sim.leader(0), Some(leader), "the preferred replica leads");
    let old_leader = sim.broker(leader).expect("the leader is up");
    let old_replica = old_leader.replica(TOPIC, 0).expect("the leader's replica");
    let producer = one_record_batches(&sim.broker(successor).expect("up"), 5);

    let mut handles = send(&producer, 0..5);
    assert_eq!(wait_for_log_end(&old_replica, 5, PROMPTLY), 5);
    // The successor copies all five; the other follower none, so none is acknowledged.
    sim.fetch(successor);
    assert_eq!(sim.offsets(successor, 0), Some((5, 0)));
    assert_eq!(old_replica.high_watermark(), 0);
    // Five more wait behind the five in flight.
    handles.extend(send(&producer, 5..10));
    assert_eq!(wait_for_log_end(&old_replica, 6, NOT_MEANWHILE), 5);

    sim.crash(leader);
    drop(old_replica);
    drop(old_leader);
    let offsets = step_until_acknowledged(&mut sim, handles);

    assert_eq!(
        sim.leader(0),
        Some(successor),
        "the in-sync successor leads"
    );
    assert_eq!(
        offsets,
        (0..10).collect::<Vec<u64>>(),
        "the five retried batches keep the offsets the successor already gave them"
    );
    for id in [successor, other] {
        let replica = sim
            .broker(id)
            .and_then(|broker| broker.replica(TOPIC, 0).ok())
            .expect("a live replica");
        for _ in 0..100 {
            if replica.log().log_end_offset() == 10 {
                break;
            }
            sim.run_brokers(1);
        }
        assert_eq!(
            values(&replica),
            expected_values(10),
            "broker {id}: every record once, in order"
        );
    }
}

#[test]
fn an_inline_append_heads_the_pipeline_and_the_sender_acknowledges_it() {
    let mut sim = quiet_cluster_flushing(13, FlushPolicy::OsDecides);
    let leader = sim.leader(0).expect("a leader");
    let broker = sim.broker(leader).expect("the leader is up");
    let replica: Arc<Replica> = broker.replica(TOPIC, 0).expect("the leader's replica");
    let producer = one_record_batches(&broker, 3);
    let mut handles = send(&producer, 0..1);
    assert_eq!(
        replica.log().log_end_offset(),
        1,
        "an idle partition led here is appended before send returns"
    );
    assert!(!handles[0].is_done(), "acks=All waits for the followers");
    handles.extend(send(&producer, 1..8));
    // The inline append counts as one of the 3 in flight.
    assert_eq!(wait_for_log_end(&replica, 3, PROMPTLY), 3);
    assert_eq!(
        wait_for_log_end(&replica, 4, NOT_MEANWHILE),
        3,
        "no more than max_in_flight, the inline append included"
    );
    let offsets = step_until_acknowledged(&mut sim, handles);
    assert_eq!(offsets, (0..8).collect::<Vec<u64>>(), "in order, once each");
    assert_eq!(values(&replica), expected_values(8));
}

#[test]
fn a_producer_on_a_follower_appends_through_the_leader_in_order() {
    let mut sim = quiet_cluster_flushing(17, FlushPolicy::OsDecides);
    let replicas = sim.assignment(0);
    let leader = sim.leader(0).expect("a leader");
    let follower = *replicas
        .iter()
        .find(|&&id| id != leader)
        .expect("a follower");
    let producer = one_record_batches(&sim.broker(follower).expect("up"), 5);
    let handles = send(&producer, 0..8);
    let offsets = step_until_acknowledged(&mut sim, handles);
    assert_eq!(offsets, (0..8).collect::<Vec<u64>>(), "in order, once each");
    let replica = sim
        .broker(leader)
        .expect("the leader is up")
        .replica(TOPIC, 0)
        .expect("the leader's replica");
    assert_eq!(values(&replica), expected_values(8));
}

//! An idempotent producer whose batch fails for good bumps its epoch, so that the batches after
//! it are not refused for the gap in sequence numbers (Kafka's KIP-360).
//!
//! The bug these tests pin: every record of an idempotent producer takes its partition's next
//! sequence number. When a batch failed for good (here: `NotEnoughReplicas` while the ISR was
//! below `min_insync_replicas`, retried until `delivery_timeout_ms`), its sequences never
//! reached the log, and the partition refused every later batch of the producer as
//! `OutOfOrderSequence`, forever: after the outage, every send to that partition failed.
//!
//! A real [`Producer`] on a simulated cluster (`support/sim.rs`): brokers move only when the
//! test steps them. The producer's delivery timeout runs on the system clock, so the failed
//! sends take that long to fail; the test waits on their handles.

#[path = "support/sim.rs"]
mod sim;
#[path = "support/sim_producer.rs"]
mod sim_producer;

use std::time::Duration;

use logbus::broker::{Broker, BrokerError};
use logbus::client::{ProduceError, Producer, ProducerConfig};
use logbus::log::FlushPolicy;
use logbus::replication::ReplicationError;
use sim::{Sim, TOPIC};
use sim_producer::{
    quiet_cluster_flushing, send, step_until_acknowledged, wait_for_log_end, LeakOnPanic,
};

/// An idempotent producer, `acks=All`, whose every record is a batch of its own.
fn producer(bootstrap: &Broker, delivery_timeout: Duration, inline: bool) -> LeakOnPanic {
    let producer = Producer::with_config(
        bootstrap,
        ProducerConfig {
            batch_size: 1,
            retry_backoff_ms: 10,
            delivery_timeout_ms: delivery_timeout.as_millis() as u64,
            inline_idle_appends: inline,
            ..ProducerConfig::default()
        },
    )
    .expect("a producer");
    LeakOnPanic(Some(producer))
}

/// Steps the cluster until `done` holds.
fn step_until(sim: &mut Sim, what: &str, done: impl Fn(&Sim) -> bool) {
    for _ in 0..2_000 {
        if done(sim) {
            return;
        }
        sim.run_brokers(1);
    }
    panic!("never saw {what}; cluster:\n{}", sim.debug_state());
}

/// The ISR as broker `id`, leading the partition, sees it.
fn isr(sim: &Sim, id: i32) -> Vec<i32> {
    sim.broker(id)
        .and_then(|broker| broker.replicated_partition(TOPIC, 0).ok())
        .map(|local| local.isr())
        .unwrap_or_default()
}

fn values(sim: &Sim, id: i32) -> Vec<String> {
    let replica = sim
        .broker(id)
        .and_then(|broker| broker.replica(TOPIC, 0).ok())
        .expect("a live replica");
    sim::read_all(&replica)
        .into_iter()
        .map(|(_, value)| String::from_utf8(value).expect("utf-8"))
        .collect()
}

fn is_not_enough_replicas(error: &ProduceError) -> bool {
    matches!(
        error,
        ProduceError::Broker(error)
            if matches!(**error, BrokerError::Replication(ReplicationError::NotEnoughReplicas { .. }))
    )
}

fn cut_off(sim: &mut Sim, leader: i32, followers: &[i32]) {
    for &follower in followers {
        sim.partition_both_ways(leader, follower);
    }
}

fn heal(sim: &mut Sim, leader: i32, followers: &[i32]) {
    for &follower in followers {
        sim.network.heal_link(leader, follower);
        sim.network.heal_link(follower, leader);
    }
}

#[test]
fn sends_succeed_again_after_an_outage_made_earlier_sends_fail() {
    for inline in [false, true] {
        let mut sim = quiet_cluster_flushing(23, FlushPolicy::OsDecides);
        let leader = sim.leader(0).expect("a leader");
        let followers: Vec<i32> = sim
            .assignment(0)
            .into_iter()
            .filter(|&id| id != leader)
            .collect();
        let producer = producer(
            &sim.broker(leader).expect("up"),
            Duration::from_millis(300),
            inline,
        );
        let (producer_id, epoch) = producer.producer_id();
        assert_eq!(
            step_until_acknowledged(&mut sim, send(&producer, 0..1)),
            [0]
        );

        cut_off(&mut sim, leader, &followers);
        step_until(&mut sim, "the ISR shrink to the leader", |sim| {
            isr(sim, leader) == [leader]
        });
        for (i, handle) in send(&producer, 1..4).into_iter().enumerate() {
            let error = handle
                .wait()
                .expect_err("no append while the ISR is too small");
            assert!(
                is_not_enough_replicas(&error),
                "inline {inline}: send {i}: {error}"
            );
        }

        heal(&mut sim, leader, &followers);
        step_until(&mut sim, "the followers back in the ISR", |sim| {
            isr(sim, leader).len() == 3
        });
        let offsets = step_until_acknowledged(&mut sim, send(&producer, 4..8));
        assert_eq!(
            offsets,
            [1, 2, 3, 4],
            "inline {inline}: in order, once each"
        );
        assert_eq!(
            values(&sim, leader),
            ["v0", "v4", "v5", "v6", "v7"],
            "inline {inline}: the failed sends are not in the log"
        );
        let (id_after, epoch_after) = producer.producer_id();
        assert_eq!(id_after, producer_id, "the same producer id");
        assert!(
            epoch_after > epoch,
            "inline {inline}: epoch {epoch_after} after, {epoch} before"
        );
    }
}

/// Batch A fails for good; batch B, behind it on the same partition, had been appended before
/// (on a leader that then crashed), so it is retried with its old sequence and refused as out
/// of order. That refusal proves B is not in the log: B is re-sequenced under a new epoch and
/// lands, rather than failing for A's gap.
#[test]
fn a_batch_refused_as_out_of_order_behind_a_failed_one_is_resent_and_lands() {
    // B must be taken well after A (by the system clock) for its delivery deadline to outlast
    // A's by the time the test needs to bring the ISR back.
    const DELIVERY_TIMEOUT: Duration = Duration::from_millis(3_000);
    const B_AFTER_A: Duration = Duration::from_millis(1_500);
    let mut sim = quiet_cluster_flushing(29, FlushPolicy::OsDecides);
    let leader = sim.leader(0).expect("a leader");
    let replicas = sim.assignment(0);
    let others: Vec<i32> = replicas.into_iter().filter(|&id| id != leader).collect();
    let (successor, other) = (others[0], others[1]);
    let producer = producer(&sim.broker(successor).expect("up"), DELIVERY_TIMEOUT, false);
    assert_eq!(
        step_until_acknowledged(&mut sim, send(&producer, 0..1)),
        [0]
    );

    // A and B reach the leader, and no follower: neither is acknowledged.
    cut_off(&mut sim, leader, &others);
    let leader_replica = sim
        .broker(leader)
        .and_then(|broker| broker.replica(TOPIC, 0).ok())
        .expect("the leader's replica");
    let a = send(&producer, 1..2).remove(0);
    assert!(
        a.wait_timeout(B_AFTER_A).is_none(),
        "A is not acknowledged while the leader is cut off"
    );
    let b = send(&producer, 2..3).remove(0);
    assert_eq!(
        wait_for_log_end(&leader_replica, 3, Duration::from_secs(10)),
        3,
        "A and B appended"
    );
    drop(leader_replica);

    // The leader crashes with A and B, and one follower with it: the successor leads alone,
    // below min_insync_replicas, and refuses A until A's delivery timeout.
    sim.crash(other);
    sim.crash(leader);
    step_until(&mut sim, "the successor leading alone", |sim| {
        sim.leader(0) == Some(successor) && isr(sim, successor) == [successor]
    });
    let error = a.wait().expect_err("A fails: the ISR stays too small");
    assert!(is_not_enough_replicas(&error), "A: {error}");

    // Back to two in-sync replicas. B, retried with the sequence after A's, is refused as out
    // of order; it goes again under a new epoch, and lands right after v0.
    sim.restart(other);
    step_until(&mut sim, "the follower back in the ISR", |sim| {
        isr(sim, successor).len() == 2
    });
    assert_eq!(step_until_acknowledged(&mut sim, vec![b]), [1], "B lands");
    assert_eq!(
        step_until_acknowledged(&mut sim, send(&producer, 3..4)),
        [2]
    );
    assert_eq!(values(&sim, successor), ["v0", "v2", "v3"]);
    assert!(producer.producer_id().1 > 0, "the epoch was bumped");
}

//! Named failures from the world, replayed on a simulated 3-broker cluster (see
//! `support/sim.rs`), each with the outcome Kafka's fix promises:
//! - Jepsen 2013: the ISR shrinks to the leader alone, which acknowledges and then dies;
//! - KIP-101: a follower cuts its log to its high watermark, then becomes leader;
//! - a fast double failover (KIP-279's setting): the new leader dies before anyone caught up;
//! - a follower that lost its unflushed tail in a crash.

#[path = "support/sim.rs"]
mod sim;

use logbus::broker::BrokerError;
use logbus::log::FlushPolicy;
use logbus::replication::{PlantedBugs, ReplicationError};
use sim::{Sim, SimConfig, SESSION_TIMEOUT_MS, TICK_MS};

fn quiet(config: SimConfig) -> SimConfig {
    SimConfig {
        partitions: 1,
        producers: 0,
        consumers: 0,
        ..config
    }
}

const EXPIRY_TICKS: u32 = (SESSION_TIMEOUT_MS as i64 / TICK_MS) as u32 + 5;
const LAG_TICKS: u32 = 30;

/// Cuts the leader of partition 0 off from its followers until its ISR is the leader alone.
fn isolate_leader(sim: &mut Sim) -> i32 {
    sim.run_brokers(10);
    let leader = sim.leader(0).expect("a leader");
    for follower in sim.assignment(0) {
        if follower != leader {
            sim.partition_both_ways(leader, follower);
        }
    }
    sim.run_brokers(LAG_TICKS);
    leader
}

fn acknowledged(sim: &mut Sim, value: &str) -> Result<(), BrokerError> {
    let (broker, pending) = sim.append(0, value)?;
    for _ in 0..50 {
        if let Some(outcome) = sim.poll(broker, 0, &pending, value) {
            return outcome;
        }
        sim.run_brokers(1);
    }
    Err(BrokerError::Closed)
}

#[test]
fn jepsen_2013_isr_of_one_then_leader_dies_loses_nothing_without_unclean_election() {
    let mut sim = Sim::new(
        1,
        quiet(SimConfig {
            min_insync_replicas: 1,
            flush: FlushPolicy::EveryAppend,
            ..SimConfig::default()
        }),
    );
    let leader = isolate_leader(&mut sim);
    acknowledged(&mut sim, "alone")
        .expect("min.insync.replicas=1 acknowledges on the leader alone");
    sim.crash(leader);
    sim.network.heal();
    sim.run_brokers(EXPIRY_TICKS);
    assert_eq!(
        sim.leader(0),
        None,
        "no live ISR member: the partition is offline"
    );
    sim.restart(leader);
    let settled = sim.heal_and_settle(1_000);
    let report = sim.check(settled);
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.acknowledged, 1);
}

#[test]
fn jepsen_2013_with_unclean_election_loses_the_write_and_reports_it() {
    let mut sim = Sim::new(
        2,
        quiet(SimConfig {
            min_insync_replicas: 1,
            unclean_leader_election: true,
            flush: FlushPolicy::EveryAppend,
            ..SimConfig::default()
        }),
    );
    let leader = isolate_leader(&mut sim);
    acknowledged(&mut sim, "alone").expect("acknowledged on the leader alone");
    sim.crash(leader);
    sim.network.heal();
    sim.run_brokers(EXPIRY_TICKS);
    assert!(sim.leader(0).is_some_and(|new| new != leader));
    sim.restart(leader);
    let settled = sim.heal_and_settle(1_000);
    let report = sim.check(settled);
    assert_eq!(report.lost, 1, "{report:#?}");
    assert!(
        report.unclean_elections >= 1,
        "the loss is reported: {report:#?}"
    );
}

#[test]
fn jepsen_2013_with_min_insync_two_refuses_the_write() {
    let mut sim = Sim::new(3, quiet(SimConfig::default()));
    isolate_leader(&mut sim);
    let refused = acknowledged(&mut sim, "alone");
    assert!(
        matches!(
            refused,
            Err(BrokerError::Replication(
                ReplicationError::NotEnoughReplicas { .. }
                    | ReplicationError::NotEnoughReplicasAfterAppend { .. }
            ))
        ),
        "{refused:?}"
    );
    let settled = sim.heal_and_settle(1_000);
    assert!(sim.check(settled).is_clean());
}

/// KIP-101: the follower with the lower high watermark cuts to it while following a new
/// leader, and then leads. With leader epochs it keeps the record; with the planted bug the
/// acknowledged record is gone.
fn kip_101(bugs: PlantedBugs) -> sim::Report {
    let mut sim = Sim::new(
        4,
        quiet(SimConfig {
            flush: FlushPolicy::EveryAppend,
            bugs,
            ..SimConfig::default()
        }),
    );
    sim.run_brokers(10);
    let assignment = sim.assignment(0);
    let (leader, x, y) = (assignment[0], assignment[1], assignment[2]);
    assert_eq!(sim.leader(0), Some(leader));
    let (_, pending) = sim.append(0, "v").expect("append");
    sim.fetch(x);
    sim.fetch(y);
    sim.fetch(y);
    sim.fetch(x);
    assert_eq!(sim.offsets(x, 0), Some((1, 1)));
    assert_eq!(
        sim.offsets(y, 0),
        Some((1, 0)),
        "y lags in high watermark only"
    );
    assert_eq!(
        sim.poll(leader, 0, &pending, "v").map(|r| r.is_ok()),
        Some(true)
    );
    sim.crash(leader);
    for _ in 0..5 {
        sim.step_control(x);
        sim.step_control(y);
    }
    assert_eq!(sim.leader(0), Some(x));
    sim.fetch(y);
    sim.crash(x);
    for _ in 0..5 {
        sim.step_control(y);
    }
    assert_eq!(sim.leader(0), Some(y));
    let settled = sim.heal_and_settle(1_000);
    sim.check(settled)
}

#[test]
fn kip_101_follower_keeps_what_the_new_leader_has() {
    let report = kip_101(PlantedBugs::default());
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.acknowledged, 1);
}

#[test]
fn kip_101_planted_truncation_to_high_watermark_loses_the_record() {
    let report = kip_101(PlantedBugs {
        truncate_to_high_watermark: true,
        ..PlantedBugs::default()
    });
    assert_eq!(report.lost, 1, "{report:#?}");
}

#[test]
fn fast_double_failover_loses_nothing() {
    for seed in 1..=20 {
        let mut sim = Sim::new(
            seed,
            SimConfig {
                flush: FlushPolicy::EveryAppend,
                ..SimConfig::default()
            },
        );
        for _ in 0..30 {
            sim.tick();
        }
        let first = sim.leader(0).expect("leader");
        sim.crash(first);
        let mut second = None;
        for _ in 0..EXPIRY_TICKS * 2 {
            sim.tick();
            second = sim.leader(0).filter(|&now| now != first);
            if second.is_some() {
                break;
            }
        }
        let second = second.expect("a second leader");
        sim.crash(second);
        for _ in 0..EXPIRY_TICKS * 2 {
            sim.tick();
        }
        let settled = sim.heal_and_settle(2_000);
        let report = sim.check(settled);
        assert!(report.is_clean(), "seed {seed}: {report:#?}");
    }
}

#[test]
fn follower_that_lost_its_unflushed_tail_catches_up_identically() {
    for seed in 1..=20 {
        let mut sim = Sim::new(seed, SimConfig::default());
        for _ in 0..40 {
            sim.tick();
        }
        let leader = sim.leader(0).expect("leader");
        let follower = sim
            .assignment(0)
            .into_iter()
            .find(|&id| id != leader)
            .expect("a follower");
        sim.crash(follower);
        for _ in 0..10 {
            sim.tick();
        }
        sim.restart(follower);
        for _ in 0..60 {
            sim.tick();
        }
        let settled = sim.heal_and_settle(2_000);
        let report = sim.check(settled);
        assert!(report.is_clean(), "seed {seed}: {report:#?}");
    }
}

/// Coordinator data is input: a partition state that is not JSON is reported as `BadState`
/// by the brokers holding it, and everything else (the other partition, the controller) goes on.
#[test]
fn a_garbage_partition_state_is_a_typed_error_and_holds_up_nothing_else() {
    use logbus::coordinator::{Coordinator, SessionConfig, Version};
    let mut sim = Sim::new(
        5,
        SimConfig {
            partitions: 2,
            producers: 0,
            consumers: 0,
            ..SimConfig::default()
        },
    );
    sim.run_brokers(10);
    let session = sim.coordinator.session(SessionConfig::default()).unwrap();
    session
        .set_data(
            &logbus::replication::state_path(sim::TOPIC, 1),
            b"{not json",
            Version::Any,
        )
        .unwrap();
    let leader = sim.leader(0).expect("partition 0 keeps its leader");
    let broker = sim.broker(leader).unwrap();
    let stepped = broker.step();
    assert!(
        matches!(
            stepped,
            Err(BrokerError::Replication(ReplicationError::BadState { ref path, .. }))
                if path.ends_with("/partitions/1/state")
        ),
        "{stepped:?}"
    );
    // Partition 0 still takes writes and commits them.
    acknowledged(&mut sim, "still fine").expect("partition 0 works");
    // The failover of partition 0 still happens with partition 1's state unreadable.
    sim.crash(leader);
    sim.run_brokers(EXPIRY_TICKS);
    assert!(sim.leader(0).is_some_and(|new| new != leader));
}

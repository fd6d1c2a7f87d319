//! Seeded fault-injection runs of a 3-broker cluster (see `support/sim.rs`): every
//! acknowledged record survives exactly once at its offset, in order; replicas agree; no
//! consumer reads what the final log does not hold; one leader per partition and epoch.
//!
//! `LOGBUS_SIM_SEEDS=N` runs N seeds (default 300); `LOGBUS_SIM_SEED=S` replays one.

#[path = "support/sim.rs"]
mod sim;

use logbus::log::FlushPolicy;
use sim::{run_seed, SimConfig};

fn config_for(seed: u64) -> SimConfig {
    SimConfig {
        flush: if seed.is_multiple_of(2) {
            FlushPolicy::OsDecides
        } else {
            FlushPolicy::EveryAppend
        },
        ..SimConfig::default()
    }
}

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("LOGBUS_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let count: u64 = std::env::var("LOGBUS_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    (1..=count).collect()
}

#[test]
fn seeded_fault_schedules_lose_nothing_acknowledged() {
    let mut acknowledged = 0;
    let mut most_in_flight = 0;
    for seed in seeds() {
        let (report, log) = run_seed(seed, config_for(seed), 300);
        assert!(
            report.is_clean(),
            "seed {seed} failed (replay with LOGBUS_SIM_SEED={seed}): {report:#?}\nschedule: {log:#?}"
        );
        acknowledged += report.acknowledged;
        most_in_flight = most_in_flight.max(report.most_in_flight);
    }
    assert!(acknowledged > 0, "no record was ever acknowledged");
    // The producers pipeline: failovers meet several batches in flight, up to the limit.
    assert_eq!(most_in_flight, SimConfig::default().max_in_flight);
}

/// Each planted bug must be caught by some seed of a bounded run: the checks are not blind.
fn caught(bugs: logbus::replication::PlantedBugs) -> Option<u64> {
    caught_with(|config| SimConfig { bugs, ..config })
}

fn caught_with(plant: impl Fn(SimConfig) -> SimConfig) -> Option<u64> {
    (1..=200).find(|&seed| !run_seed(seed, plant(config_for(seed)), 300).0.is_clean())
}

#[test]
fn planted_producer_bug_sending_past_a_batch_pending_elsewhere_is_caught() {
    assert!(
        caught_with(|config| SimConfig {
            send_past_pending: true,
            ..config
        })
        .is_some(),
        "no seed caught a batch sent to a new leader before the earlier ones resolved"
    );
}

#[test]
fn planted_bug_truncate_to_high_watermark_is_caught() {
    let bugs = logbus::replication::PlantedBugs {
        truncate_to_high_watermark: true,
        ..Default::default()
    };
    assert!(
        caught(bugs).is_some(),
        "no seed caught truncation to the high watermark"
    );
}

#[test]
fn planted_bug_acknowledge_before_replication_is_caught() {
    let bugs = logbus::replication::PlantedBugs {
        ack_before_replication: true,
        ..Default::default()
    };
    assert!(
        caught(bugs).is_some(),
        "no seed caught acknowledging before replication"
    );
}

#[test]
fn planted_bug_skip_epoch_check_is_caught() {
    let bugs = logbus::replication::PlantedBugs {
        skip_epoch_check: true,
        ..Default::default()
    };
    assert!(
        caught(bugs).is_some(),
        "no seed caught skipping the epoch check"
    );
}

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
        flush: if seed % 2 == 0 {
            FlushPolicy::OsDecides
        } else {
            FlushPolicy::EveryAppend
        },
        ..SimConfig::default()
    }
}

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("LOGBUS_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
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
    for seed in seeds() {
        let (report, log) = run_seed(seed, config_for(seed), 300);
        assert!(
            report.is_clean(),
            "seed {seed} failed (replay with LOGBUS_SIM_SEED={seed}): {report:#?}\nschedule: {log:#?}"
        );
        acknowledged += report.acknowledged;
    }
    assert!(acknowledged > 0, "no record was ever acknowledged");
}

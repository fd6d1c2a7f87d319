//! Single-session throughput of get, set and create on a real ZooKeeper (a standalone server
//! from Debian's `zookeeper` package on 127.0.0.1) next to `MemoryCoordinator`, in one run.
//!
//! `cargo bench --features zookeeper --bench zookeeper` takes about half a minute. Each figure
//! is the median of 5 timed samples after a warm-up sample; every operation is synchronous (one
//! round trip to the server and one hop to the adapter's runtime thread), so the ZooKeeper
//! figures are latency-bound. Without ZooKeeper, only the memory column is printed.

#[path = "../tests/support/zk.rs"]
mod zk;

use std::sync::Arc;
use std::time::Instant;

use logbus::coordinator::{
    Coordinator, CreateMode, MemoryCoordinator, Session, SessionConfig, Version, Watch,
    ZooKeeperConfig, ZooKeeperCoordinator,
};

const SAMPLES: usize = 5;
const VALUE: [u8; 100] = [7; 100];

/// Median operations per second of `run`, which performs `ops` operations per call.
fn ops_per_second(ops: u64, mut run: impl FnMut(u64)) -> f64 {
    run(0);
    let mut rates: Vec<f64> = (1..=SAMPLES as u64)
        .map(|sample| {
            let start = Instant::now();
            run(sample);
            ops as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[SAMPLES / 2]
}

/// get, set and create per second on a fresh session of `coordinator`.
fn measure(coordinator: &dyn Coordinator, ops: u64) -> [f64; 3] {
    let s: Arc<dyn Session> = coordinator
        .session(SessionConfig::default())
        .expect("session");
    s.create("/bench", &VALUE, CreateMode::Persistent)
        .expect("create /bench");
    let get = ops_per_second(ops, |_| {
        for _ in 0..ops {
            s.get_data("/bench", Watch::None).expect("get");
        }
    });
    let set = ops_per_second(ops, |_| {
        for _ in 0..ops {
            s.set_data("/bench", &VALUE, Version::Any).expect("set");
        }
    });
    let create = ops_per_second(ops, |sample| {
        let dir = format!("/bench/{sample}");
        s.create(&dir, b"", CreateMode::Persistent)
            .expect("create dir");
        for _ in 0..ops {
            s.create(
                &format!("{dir}/n-"),
                &VALUE,
                CreateMode::PersistentSequential,
            )
            .expect("create");
        }
    });
    [get, set, create]
}

fn main() {
    let memory = measure(&MemoryCoordinator::new(), 100_000);
    let server = zk::available("bench zookeeper").then(zk::ZooKeeper::standalone);
    let real = server.as_ref().map(|server| {
        let config = ZooKeeperConfig::new(server.connect_string("/bench-root"));
        let coordinator = ZooKeeperCoordinator::connect(config).expect("connect");
        measure(&coordinator, 2_000)
    });
    println!("| op (100-byte values, 1 session) | MemoryCoordinator ops/s | ZooKeeper 3.8 ops/s |");
    println!("|---|---:|---:|");
    for (i, op) in ["get_data", "set_data", "create (sequential)"]
        .iter()
        .enumerate()
    {
        let real = real.map_or("n/a".to_owned(), |real| format!("{:.0}", real[i]));
        println!("| {op} | {:.0} | {real} |", memory[i]);
    }
}

//! Single-thread throughput of `MemoryCoordinator` (get, set, create+delete) and watch
//! delivery latency across threads, with a `Mutex<HashMap>` baseline in the same run.
//!
//! `cargo bench --bench coordinator` runs in well under a minute: each figure is the median of
//! 7 timed samples after a warm-up sample (the VM returns idle memory to the host, so cold runs
//! are slower).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel;
use logbus::coordinator::{
    AddWatchMode, Coordinator, CreateMode, Event, MemoryCoordinator, Session, SessionConfig,
    Version, Watch,
};
use parking_lot::Mutex;

const SAMPLES: usize = 7;
const OPS_PER_SAMPLE: u64 = 200_000;
const VALUE: [u8; 100] = [7; 100];

/// Median operations per second of `run`, which performs `OPS_PER_SAMPLE` operations per call.
fn ops_per_second(mut run: impl FnMut()) -> f64 {
    run();
    let mut rates: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            run();
            OPS_PER_SAMPLE as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[SAMPLES / 2]
}

fn report(name: &str, rate: f64, baseline: Option<f64>) {
    match baseline {
        Some(base) => println!(
            "{name:<32} {:>10.0} ops/s  ({:.2}x of baseline)",
            rate,
            rate / base
        ),
        None => println!("{name:<32} {rate:>10.0} ops/s"),
    }
}

fn baseline() -> (f64, f64) {
    let map = Mutex::new(HashMap::from([("/bench/key".to_owned(), VALUE.to_vec())]));
    let get = ops_per_second(|| {
        for _ in 0..OPS_PER_SAMPLE {
            black_box(map.lock().get(black_box("/bench/key")).cloned());
        }
    });
    let insert = ops_per_second(|| {
        for _ in 0..OPS_PER_SAMPLE {
            black_box(
                map.lock()
                    .insert(black_box("/bench/key").to_owned(), VALUE.to_vec()),
            );
        }
    });
    (get, insert)
}

fn throughput(session: &dyn Session, (base_get, base_insert): (f64, f64)) {
    session
        .create("/bench", b"", CreateMode::Persistent)
        .expect("create");
    session
        .create("/bench/key", &VALUE, CreateMode::Persistent)
        .expect("create");
    let get = ops_per_second(|| {
        for _ in 0..OPS_PER_SAMPLE {
            black_box(
                session
                    .get_data(black_box("/bench/key"), Watch::None)
                    .expect("get"),
            );
        }
    });
    report("coordinator get_data (100 B)", get, Some(base_get));
    let set = ops_per_second(|| {
        for _ in 0..OPS_PER_SAMPLE {
            black_box(
                session
                    .set_data(black_box("/bench/key"), &VALUE, Version::Any)
                    .expect("set"),
            );
        }
    });
    report("coordinator set_data (100 B)", set, Some(base_insert));
    let pairs = ops_per_second(|| {
        for _ in 0..OPS_PER_SAMPLE / 2 {
            session
                .create("/bench/tmp", &VALUE, CreateMode::Persistent)
                .expect("create");
            session.delete("/bench/tmp", Version::Any).expect("delete");
        }
    });
    report("coordinator create+delete (per op)", pairs, None);
}

/// Latency from just before a `set_data` returns-to-caller to the watcher thread holding the
/// event, one event in flight at a time.
fn watch_latency(coordinator: &MemoryCoordinator) {
    let writer = coordinator
        .open_session(SessionConfig::default())
        .expect("session");
    let watcher = coordinator
        .open_session(SessionConfig::default())
        .expect("session");
    writer
        .create("/watched", b"", CreateMode::Persistent)
        .expect("create");
    watcher
        .add_watch("/watched", AddWatchMode::Persistent)
        .expect("watch");
    let epoch = Instant::now();
    let sent_ns = Arc::new(AtomicU64::new(0));
    let (ack, acked) = channel::bounded::<Duration>(1);
    let rounds = 20_000;
    let receiver = {
        let sent_ns = Arc::clone(&sent_ns);
        let events = watcher.events().clone();
        std::thread::spawn(move || {
            for _ in 0..rounds {
                let Ok(Event::Watch(_)) = events.recv() else {
                    return;
                };
                let now_ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let latency =
                    Duration::from_nanos(now_ns.saturating_sub(sent_ns.load(Ordering::SeqCst)));
                if ack.send(latency).is_err() {
                    return;
                }
            }
        })
    };
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        sent_ns.store(
            u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(0),
            Ordering::SeqCst,
        );
        writer
            .set_data("/watched", b"x", Version::Any)
            .expect("set");
        latencies.push(acked.recv().expect("ack"));
    }
    receiver.join().expect("receiver thread");
    let warm = &mut latencies[rounds / 10..];
    warm.sort();
    let at = |q: f64| warm[((warm.len() - 1) as f64 * q) as usize];
    println!(
        "watch delivery latency (set -> other thread holds event): p50 {:?}, p99 {:?}, over {} rounds",
        at(0.5),
        at(0.99),
        warm.len()
    );
}

fn main() {
    let base = baseline();
    report("baseline Mutex<HashMap> get", base.0, None);
    report("baseline Mutex<HashMap> insert", base.1, None);
    let coordinator = MemoryCoordinator::new();
    let session = coordinator
        .session(SessionConfig::default())
        .expect("session");
    throughput(session.as_ref(), base);
    watch_latency(&coordinator);
}

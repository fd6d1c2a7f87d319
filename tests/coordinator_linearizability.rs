//! Random concurrent histories against `MemoryCoordinator`, checked for linearizability.
//!
//! `LOGBUS_LINEARIZABILITY_RUNS=N` runs N histories (default 20); `LOGBUS_LINEARIZABILITY_SEED=S`
//! replays the histories of seed S (the failure message names it).

use std::sync::Arc;

use logbus::coordinator::linearizability::{
    check, check_random_histories, record_history, RunConfig,
};
use logbus::coordinator::{Coordinator, MemoryCoordinator};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn memory_coordinator() -> Arc<dyn Coordinator> {
    Arc::new(MemoryCoordinator::new())
}

#[test]
fn random_histories_are_linearizable() {
    let runs = usize::try_from(env_u64("LOGBUS_LINEARIZABILITY_RUNS", 20)).unwrap_or(20);
    let seed = env_u64("LOGBUS_LINEARIZABILITY_SEED", 0x10_6b05);
    check_random_histories(&memory_coordinator, runs, seed);
}

/// The checker is not vacuous on real histories: corrupting one read of a recorded history
/// makes it fail.
#[test]
fn a_corrupted_recorded_history_is_rejected() {
    use logbus::coordinator::linearizability::{Input, Output};
    let config = RunConfig {
        sessions: 4,
        ops_per_session: 50,
        keys: 1,
        seed: 7,
    };
    let mut history = record_history(&memory_coordinator(), config);
    assert!(check(&history));
    let read = history
        .iter()
        .position(|op| op.input == Input::Get && matches!(op.output, Output::Read(Some(_))))
        .expect("a successful read in 200 operations");
    let Output::Read(Some((_, version))) = history[read].output else {
        unreachable!()
    };
    // No operation writes u64::MAX (values are `client << 32 | index`).
    history[read].output = Output::Read(Some((u64::MAX, version)));
    assert!(!check(&history));
}

/// The recorded histories are concurrent: some operations overlap in time, so the checker has
/// orders to search.
#[test]
fn recorded_histories_have_overlapping_operations() {
    // On two loaded cores one thread can finish a short run before another starts, so the
    // recorder gets a few tries, each longer, to show an overlap; every history must check.
    let mut overlapping = 0;
    for attempt in 1..=3 {
        let config = RunConfig {
            sessions: 8,
            ops_per_session: 100 * attempt,
            keys: 2,
            seed: 11 + attempt as u64,
        };
        let mut history = record_history(&memory_coordinator(), config);
        history.sort_by_key(|op| op.call);
        overlapping = history
            .windows(2)
            .filter(|pair| pair[1].call < pair[0].ret)
            .count();
        assert!(check(&history));
        if overlapping > 0 {
            break;
        }
    }
    assert!(overlapping > 0, "no overlap in any recorded history");
}

/// Under concurrent writers, a recursive watcher gets exactly one event per successful write,
/// in strictly increasing zxid order.
#[test]
fn concurrent_writes_reach_a_watcher_once_each_in_zxid_order() {
    use logbus::coordinator::{AddWatchMode, CreateMode, Event, SessionConfig, Version};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let coordinator = memory_coordinator();
    let watcher = coordinator
        .session(SessionConfig::default())
        .expect("session");
    watcher
        .create("/w", b"", CreateMode::Persistent)
        .expect("create");
    watcher
        .add_watch("/w", AddWatchMode::PersistentRecursive)
        .expect("watch");
    let successes = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for writer in 0..4 {
            let (coordinator, successes) = (&coordinator, &successes);
            scope.spawn(move || {
                let session = coordinator
                    .session(SessionConfig::default())
                    .expect("session");
                for i in 0..200u32 {
                    let path = format!("/w/k{}", (i + writer) % 3);
                    let done = match i % 3 {
                        0 => session.create(&path, b"", CreateMode::Persistent).is_ok(),
                        1 => session
                            .set_data(&path, &i.to_be_bytes(), Version::Any)
                            .is_ok(),
                        _ => session.delete(&path, Version::Any).is_ok(),
                    };
                    successes.fetch_add(usize::from(done), Ordering::SeqCst);
                }
            });
        }
    });
    watcher.sync("/").expect("sync");
    let zxids: Vec<_> = watcher
        .events()
        .try_iter()
        .map(|event| match event {
            Event::Watch(event) => event.zxid.expect("memory coordinator reports zxids"),
            Event::Session(ended) => panic!("watcher ended: {ended:?}"),
        })
        .collect();
    assert_eq!(zxids.len(), successes.load(Ordering::SeqCst));
    assert!(zxids.windows(2).all(|w| w[0] < w[1]));
}

/// While another thread writes, every version a session reads has already been announced to
/// it: the events queued by the time a read returns cover every change that read shows.
#[test]
fn a_reader_never_sees_a_change_before_its_event() {
    use logbus::coordinator::{AddWatchMode, CreateMode, SessionConfig, Version, Watch};

    const WRITES: i32 = 2_000;
    let coordinator = memory_coordinator();
    let reader = coordinator
        .session(SessionConfig::default())
        .expect("session");
    reader
        .create("/v", b"", CreateMode::Persistent)
        .expect("create");
    reader
        .add_watch("/v", AddWatchMode::Persistent)
        .expect("watch");
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let writer = coordinator
                .session(SessionConfig::default())
                .expect("session");
            for _ in 0..WRITES {
                writer.set_data("/v", b"x", Version::Any).expect("set");
            }
        });
        let mut announced = 0;
        let mut version = 0;
        while version < WRITES {
            version = reader.get_data("/v", Watch::None).expect("read").1.version;
            announced += reader.events().try_iter().count();
            let announced = i32::try_from(announced).expect("few events");
            assert!(
                announced >= version,
                "read version {version} with {announced} events"
            );
        }
    });
}

//! The broker's side of replication: the link the replica manager uses to open replicas, and
//! the background threads that drive maintenance, replication control and follower fetches.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::broker::BrokerInner;
use crate::replication::ReplicaManager;

/// How often the control thread looks at lag and timers when no event wakes it, while any
/// local partition has followers or work is queued ...
const CONTROL_TICK_MS: u64 = 10;
/// ... and otherwise (a broker whose partitions each have one replica). Each look costs about
/// 35 us of CPU, and on two cores the data path paid for it: at 10 k records/s a record was
/// delayed 100-250 us at every tick, most of the end-to-end p99.
const IDLE_CONTROL_TICK_MS: u64 = 200;
/// How long a fetcher waits after failing to reach its leader (Kafka's
/// `replica.fetch.backoff.ms` is 1 s; in-process failures are cheap to retry sooner).
const FETCH_BACKOFF_MS: u64 = 50;

/// The broker's background threads and their stop signal.
#[derive(Default)]
pub(crate) struct BackgroundThreads {
    shared: Arc<ThreadsShared>,
}

#[derive(Default)]
struct ThreadsShared {
    stopped: Mutex<bool>,
    condvar: Condvar,
    handles: Mutex<Vec<JoinHandle<()>>>,
    fetchers: Mutex<HashSet<i32>>,
}

impl ThreadsShared {
    fn is_stopped(&self) -> bool {
        *self.stopped.lock()
    }

    /// Waits until stopped or `timeout` passes; returns whether stopped.
    fn wait_stopped(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut stopped = self.stopped.lock();
        while !*stopped && !self.condvar.wait_until(&mut stopped, deadline).timed_out() {}
        *stopped
    }

    fn spawn(&self, name: &str, body: impl FnOnce() + Send + 'static) {
        if let Ok(handle) = std::thread::Builder::new().name(name.into()).spawn(body) {
            self.handles.lock().push(handle);
        }
    }
}

impl BackgroundThreads {
    /// Stops every thread and waits for them (a fetcher may be inside a leader's long poll for
    /// up to `replica_fetch_wait_max_ms`).
    pub(crate) fn stop_and_join(&self) {
        *self.shared.stopped.lock() = true;
        self.shared.condvar.notify_all();
        loop {
            let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.shared.handles.lock());
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                if handle.thread().id() != std::thread::current().id() {
                    let _ = handle.join();
                }
            }
        }
    }
}

/// Starts maintenance (if `maintenance_interval_ms`), the replication control thread, and
/// through it a fetcher per leader this broker follows.
pub(crate) fn start_threads(inner: &Arc<BrokerInner>, maintenance_interval_ms: Option<u64>) {
    let shared = Arc::clone(&inner.threads_shared());
    if let Some(interval_ms) = maintenance_interval_ms {
        let broker = Arc::downgrade(inner);
        let threads = Arc::clone(&shared);
        shared.spawn("logbus-maintenance", move || {
            while !threads.wait_stopped(Duration::from_millis(interval_ms)) {
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                // Errors surface again on the next append or read of the failing partition.
                let _ = broker.run_maintenance();
            }
        });
    }
    let manager = Arc::clone(&inner.replication);
    let threads = Arc::clone(&shared);
    shared.spawn("logbus-replication", move || {
        run_control(&manager, &threads);
    });
}

fn run_control(manager: &Arc<ReplicaManager>, threads: &Arc<ThreadsShared>) {
    while !threads.is_stopped() && !manager.is_stopped() {
        // Errors are retried on the next step; the work stays queued.
        let _ = manager.step_control();
        for leader in manager.followed_leaders() {
            if threads.fetchers.lock().insert(leader) {
                let manager = Arc::clone(manager);
                let fetcher_threads = Arc::clone(threads);
                threads.spawn("logbus-fetcher", move || {
                    run_fetcher(&manager, &fetcher_threads, leader);
                });
            }
        }
        let session = manager.session();
        let tick_ms = if manager.needs_ticks() {
            CONTROL_TICK_MS
        } else {
            IDLE_CONTROL_TICK_MS
        };
        if let Ok(event) = session
            .events()
            .recv_timeout(Duration::from_millis(tick_ms))
        {
            manager.note_event(event);
        }
    }
}

fn run_fetcher(manager: &ReplicaManager, threads: &ThreadsShared, leader: i32) {
    let wait_ms = manager.config().replica_fetch_wait_max_ms;
    while !threads.is_stopped() && !manager.is_stopped() {
        match manager.fetch_round(leader, wait_ms) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => {
                if threads.wait_stopped(Duration::from_millis(FETCH_BACKOFF_MS)) {
                    break;
                }
            }
        }
    }
    threads.fetchers.lock().remove(&leader);
}

impl BrokerInner {
    fn threads_shared(&self) -> Arc<ThreadsShared> {
        Arc::clone(&self.threads.shared)
    }
}

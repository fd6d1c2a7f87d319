//! A real `Producer` on a simulated cluster (`sim.rs`): the helpers the producer tests share.
//! Include with `#[path = "support/sim_producer.rs"] mod sim_producer;` next to `mod sim;`.

use std::time::{Duration, Instant};

use logbus::client::{Producer, ProducerRecord, SendHandle};
use logbus::partition::{Notifier, Replica};

use logbus::log::FlushPolicy;

use crate::sim::{Sim, SimConfig, TOPIC};

/// One partition of three replicas (`min_insync_replicas` 2, `SimConfig`'s defaults), no
/// simulated clients, on a topic that flushes as `flush` says (records of a topic that leaves
/// flushing to the OS may be appended inline by a producer on the leader).
pub fn quiet_cluster_flushing(seed: u64, flush: FlushPolicy) -> Sim {
    Sim::new(
        seed,
        SimConfig {
            partitions: 1,
            producers: 0,
            consumers: 0,
            flush,
            ..SimConfig::default()
        },
    )
}

/// A producer that a failing test leaks rather than drops: dropping waits for every send to
/// complete, and on a cluster that only the test steps, none would.
pub struct LeakOnPanic(pub Option<Producer>);

impl std::ops::Deref for LeakOnPanic {
    type Target = Producer;

    fn deref(&self) -> &Producer {
        self.0.as_ref().expect("taken only on drop")
    }
}

impl Drop for LeakOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::mem::forget(self.0.take());
        }
    }
}

pub fn send(producer: &Producer, values: std::ops::Range<usize>) -> Vec<SendHandle> {
    values
        .map(|i| {
            producer
                .send(ProducerRecord::new(TOPIC, format!("v{i}")).partition(0))
                .expect("send")
        })
        .collect()
}

/// Waits (woken by each append) until `replica`'s log end reaches `target` or `timeout`
/// passes; returns the log end then.
pub fn wait_for_log_end(replica: &Replica, target: u64, timeout: Duration) -> u64 {
    let notifier = Notifier::new();
    replica.register_append_waiter(&notifier);
    let deadline = Instant::now() + timeout;
    let end = loop {
        notifier.reset();
        let end = replica.log().log_end_offset();
        if end >= target || !notifier.wait_until(deadline) {
            break replica.log().log_end_offset();
        }
    };
    replica.unregister_append_waiter(&notifier);
    end
}

/// Steps the cluster until every handle has completed; returns each record's offset.
pub fn step_until_acknowledged(sim: &mut Sim, handles: Vec<SendHandle>) -> Vec<u64> {
    for _ in 0..2_000 {
        if handles.iter().all(SendHandle::is_done) {
            break;
        }
        sim.run_brokers(1);
        if let Some(last) = handles.last() {
            // Gives the sender a moment to act on what the step changed.
            let _ = last.wait_timeout(Duration::from_millis(2));
        }
    }
    handles
        .into_iter()
        .enumerate()
        .map(|(i, handle)| {
            let metadata = handle
                .wait_timeout(Duration::ZERO)
                .unwrap_or_else(|| {
                    panic!("send {i} never completed; cluster:\n{}", sim.debug_state())
                })
                .unwrap_or_else(|error| panic!("send {i}: {error}"));
            metadata.offset.expect("acks=All reports an offset")
        })
        .collect()
}

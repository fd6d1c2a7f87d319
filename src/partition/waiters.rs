//! Waking consumers when data arrives: no polling loops, no sleeps.
//!
//! A consumer owns one [`Notifier`] and registers it with every partition it reads; an append
//! (or a high watermark move) notifies each registered notifier. The flag is an atomic that
//! `notify` sets and `reset` clears; a waiter that checks for data after its reset and then
//! waits cannot miss a wake-up, and a notify costs one atomic swap unless a waiter is parked.
//!
//! A notifier may spin briefly before it parks ([`Notifier::with_spin`]): on the project's VM
//! waking a parked thread costs the notifier a system call and the waiter 5-10 us, while
//! records sent in a burst arrive a few microseconds apart. The consumer spins
//! (`ConsumerConfig::poll_spin_us`); the producer's
//! sender thread does not (catching each record at once, it would append smaller batches:
//! measured, a tight loop to one partition lost a third of its throughput), nor do the others.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Flag checks between two looks at the clock while spinning.
const CHECKS_PER_CLOCK_READ: u32 = 32;
/// Clock reads spent in a pure spin before each later one also yields the CPU (on two cores
/// the thread that will notify may be waiting for this one's core).
const PURE_SPIN_ROUNDS: u32 = 8;

/// A wake-up flag that a waiter spins on briefly, then parks on.
#[derive(Debug, Default)]
pub struct Notifier {
    woken: AtomicBool,
    /// Waiters parked (or about to park) on `condvar`.
    parked: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
    spin: Duration,
}

impl Notifier {
    /// A notifier whose waiters park at once.
    pub fn new() -> Arc<Notifier> {
        Arc::new(Notifier::default())
    }

    /// A notifier whose waiters spin for up to `spin` before they park.
    pub fn with_spin(spin: Duration) -> Arc<Notifier> {
        Arc::new(Notifier {
            spin,
            ..Notifier::default()
        })
    }

    pub fn notify(&self) {
        // Sequentially consistent with `wait_until`'s count and check: either the waiter sees
        // the flag, or this sees the waiter parked. A flag already set was set by a notify that
        // does (or did) the waking.
        if self.woken.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.parked.load(Ordering::SeqCst) > 0 {
            // A parking waiter holds the lock from its last flag check until it sleeps, so
            // taking it here means the waiter is asleep (or has seen the flag).
            drop(self.lock.lock());
            self.condvar.notify_all();
        }
    }

    /// Clears the flag; call before checking for data.
    pub fn reset(&self) {
        self.woken.store(false, Ordering::SeqCst);
    }

    /// Waits until notified (since the last reset) or `deadline`; returns whether notified.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        if self.woken.load(Ordering::Acquire) || self.spin_until(deadline) {
            return true;
        }
        let mut guard = self.lock.lock();
        self.parked.fetch_add(1, Ordering::SeqCst);
        let notified = loop {
            if self.woken.load(Ordering::SeqCst) {
                break true;
            }
            if self.condvar.wait_until(&mut guard, deadline).timed_out() {
                break self.woken.load(Ordering::SeqCst);
            }
        };
        self.parked.fetch_sub(1, Ordering::SeqCst);
        notified
    }

    /// Spins for up to the notifier's spin time (not past `deadline`); returns whether notified.
    fn spin_until(&self, deadline: Instant) -> bool {
        if self.spin.is_zero() {
            return false;
        }
        // Any spin is accepted: one past the clock's range spins until the deadline.
        let until = Instant::now()
            .checked_add(self.spin)
            .map_or(deadline, |until| until.min(deadline));
        let mut rounds = 0u32;
        loop {
            for _ in 0..CHECKS_PER_CLOCK_READ {
                if self.woken.load(Ordering::Acquire) {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= until {
                return false;
            }
            rounds += 1;
            if rounds > PURE_SPIN_ROUNDS {
                std::thread::yield_now();
            }
        }
    }
}

/// The notifiers registered with one partition. Guarded by its own lock, taken briefly.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    registered: Mutex<Vec<Weak<Notifier>>>,
}

impl Waiters {
    pub(crate) fn register(&self, notifier: &Arc<Notifier>) {
        let mut registered = self.registered.lock();
        registered.retain(|weak| weak.strong_count() > 0);
        if !registered
            .iter()
            .any(|weak| weak.as_ptr() == Arc::as_ptr(notifier))
        {
            registered.push(Arc::downgrade(notifier));
        }
    }

    pub(crate) fn unregister(&self, notifier: &Arc<Notifier>) {
        self.registered
            .lock()
            .retain(|weak| weak.strong_count() > 0 && weak.as_ptr() != Arc::as_ptr(notifier));
    }

    pub(crate) fn notify_all(&self) {
        let registered = self.registered.lock();
        for notifier in registered.iter().filter_map(Weak::upgrade) {
            notifier.notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A spin longer than the clock can count spins until the deadline and returns there.
    #[test]
    fn a_spin_past_the_clocks_range_ends_at_the_deadline() {
        let notifier = Notifier::with_spin(Duration::MAX);
        let started = Instant::now();
        assert!(!notifier.wait_until(started + Duration::from_millis(20)));
        assert!(started.elapsed() >= Duration::from_millis(20));
        notifier.notify();
        assert!(notifier.wait_until(Instant::now() + Duration::from_secs(10)));
    }

    /// The waiter's protocol (reset, look, wait) against a notifier thread that publishes a
    /// counter and notifies: every wait ends with a notification, none runs into its deadline,
    /// whether the waiter spins or parks at once. A lost wake-up would stall a wait for the
    /// whole 10 s deadline and fail the run.
    #[test]
    fn no_wake_up_is_lost_whether_the_waiter_spins_or_parks() {
        for notifier in [
            Notifier::new(),
            Notifier::with_spin(Duration::from_micros(5)),
        ] {
            const ROUNDS: u64 = 20_000;
            let published = Arc::new(AtomicU64::new(0));
            let seen = Arc::new(AtomicU64::new(0));
            let waiter = {
                let (notifier, published, seen) = (
                    Arc::clone(&notifier),
                    Arc::clone(&published),
                    Arc::clone(&seen),
                );
                std::thread::spawn(move || {
                    let mut timeouts = 0;
                    loop {
                        notifier.reset();
                        let now = published.load(Ordering::SeqCst);
                        seen.store(now, Ordering::SeqCst);
                        if now == ROUNDS {
                            return timeouts;
                        }
                        let deadline = Instant::now() + Duration::from_secs(10);
                        if !notifier.wait_until(deadline) {
                            timeouts += 1;
                        }
                    }
                })
            };
            for round in 1..=ROUNDS {
                published.store(round, Ordering::SeqCst);
                notifier.notify();
                // Now and then let the waiter catch up and park, so that both the spinning
                // and the parked paths are taken.
                if round % 64 == 0 {
                    while seen.load(Ordering::SeqCst) < round {
                        std::thread::yield_now();
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            assert_eq!(waiter.join().unwrap(), 0, "a wait ran into its deadline");
        }
    }
}

//! Waking consumers when data arrives: no polling loops, no sleeps.
//!
//! A consumer owns one [`Notifier`] and registers it with every partition it reads; an append
//! (or a high watermark move) notifies each registered notifier. The flag is set under the
//! notifier's lock, so a consumer that checks for data and then waits cannot miss a wake-up.

use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// A wake-up flag with a condition variable.
#[derive(Debug, Default)]
pub struct Notifier {
    woken: Mutex<bool>,
    condvar: Condvar,
}

impl Notifier {
    pub fn new() -> Arc<Notifier> {
        Arc::new(Notifier::default())
    }

    pub fn notify(&self) {
        *self.woken.lock() = true;
        self.condvar.notify_all();
    }

    /// Clears the flag; call before checking for data.
    pub fn reset(&self) {
        *self.woken.lock() = false;
    }

    /// Waits until notified (since the last reset) or `deadline`; returns whether notified.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        let mut woken = self.woken.lock();
        while !*woken {
            if self.condvar.wait_until(&mut woken, deadline).timed_out() {
                return *woken;
            }
        }
        true
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

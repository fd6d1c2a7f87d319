//! Injectable time. Everything that expires, lingers or retains asks a [`Clock`], so tests can
//! step time by hand instead of sleeping, and a seeded schedule replays the same way.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of milliseconds since the Unix epoch that never goes backwards.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The operating system's wall clock, made monotonic: a step back of the system clock reads as
/// no time passing.
#[derive(Debug, Default)]
pub struct SystemClock {
    /// The largest value returned so far.
    last_ms: AtomicI64,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock::default()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        let previous = self.last_ms.fetch_max(wall_ms, Ordering::Relaxed);
        previous.max(wall_ms)
    }
}

/// A clock that moves only when told to. Clones share the same time, so a test keeps one and
/// hands clones (or an `Arc`) to what it drives.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_ms: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        ManualClock {
            now_ms: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    /// Moves the clock forward by `delta_ms` (negative values are ignored: time never goes back)
    /// and returns the new time.
    pub fn advance_ms(&self, delta_ms: i64) -> i64 {
        let delta_ms = delta_ms.max(0);
        self.now_ms
            .fetch_add(delta_ms, Ordering::SeqCst)
            .saturating_add(delta_ms)
    }

    /// Sets the time, if it is later than now.
    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.fetch_max(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// The default clock, shared.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward_and_when_told() {
        let clock = ManualClock::new(1_000);
        let shared = clock.clone();
        assert_eq!(clock.advance_ms(250), 1_250);
        assert_eq!(shared.now_ms(), 1_250);
        assert_eq!(clock.advance_ms(-5), 1_250);
        clock.set_ms(900);
        assert_eq!(clock.now_ms(), 1_250);
    }

    #[test]
    fn system_clock_never_decreases() {
        let clock = SystemClock::new();
        let first = clock.now_ms();
        assert!(first > 0);
        assert!(clock.now_ms() >= first);
    }
}

//! Injectable time: the coordinator reads the clock, tests advance it by hand.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of milliseconds. Session expiry and node times (`ctime`, `mtime`) come from it.
pub trait Clock: Send + Sync {
    /// Milliseconds since an epoch fixed for the clock's lifetime; never decreases.
    fn now_ms(&self) -> i64;
}

/// Wall-clock time, milliseconds since the Unix epoch, made monotonic (a step back of the system
/// clock reads as no time passing).
#[derive(Debug, Default)]
pub struct SystemClock {
    /// The largest value returned so far.
    last_ms: AtomicI64,
}

impl SystemClock {
    /// A system clock.
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

/// A clock that moves only when told to. Tests share one (`Arc<ManualClock>`) with the
/// coordinator and step it.
#[derive(Debug, Default)]
pub struct ManualClock {
    /// The current time.
    now_ms: AtomicI64,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        ManualClock {
            now_ms: AtomicI64::new(start_ms),
        }
    }

    /// Moves the clock forward by `delta_ms` and returns the new time.
    pub fn advance(&self, delta_ms: u64) -> i64 {
        let delta = i64::try_from(delta_ms).unwrap_or(i64::MAX);
        self.now_ms
            .fetch_add(delta, Ordering::SeqCst)
            .saturating_add(delta)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock.advance(250), 1_250);
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

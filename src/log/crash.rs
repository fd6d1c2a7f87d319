//! Crash simulation for fault-injection tests: stop a log as a power cut would, and say which
//! bytes of its files were durable, so a test can cut the files back to a crash image.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Log;

/// The active segment's file at a simulated crash: its first `durable_bytes` were synced; the
/// bytes up to `written_bytes` were only written (a crash may keep any prefix of them).
/// Sealed segments were synced when they were sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashImage {
    pub path: PathBuf,
    pub durable_bytes: u64,
    pub written_bytes: u64,
}

impl Log {
    /// Stops the log as a crash would: later operations fail with `Closed`, and dropping it
    /// writes nothing (no flush, no clean-shutdown marker). Returns what was durable; cutting
    /// the file to any length between `durable_bytes` and `written_bytes` after every handle
    /// is dropped gives a state a real crash could leave.
    ///
    /// For tests; a log that has been crashed cannot be used again in this process.
    #[doc(hidden)]
    pub fn simulate_crash(&self) -> CrashImage {
        let writer = self.writer.lock();
        self.closed.store(true, Ordering::Release);
        let active = Arc::clone(self.snapshot().last().expect("a log always has a segment"));
        CrashImage {
            path: active.path.clone(),
            durable_bytes: writer.flush.durable_bytes,
            written_bytes: active.size(),
        }
    }
}

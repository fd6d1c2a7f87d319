//! An exclusive lock on a directory, so one process (and one `Log` in it) owns its files.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Name of the lock file placed in a locked directory, as Kafka names its own.
pub const LOCK_FILE: &str = ".lock";

/// Holds `flock(LOCK_EX)` on `<dir>/.lock` until dropped. The lock is per open file, so a
/// second opener in the same process is refused too.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when another holder has it; other I/O errors as they come.
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

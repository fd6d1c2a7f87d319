//! The leader epoch cache and its `leader-epoch-checkpoint` file (KIP-101).
//!
//! Each entry says "epoch E started at offset O". Replication asks for the end offset of an epoch
//! (the start of the next larger epoch, or the log end) to find where a follower diverged.
//! File format (Kafka's): `0\n<count>\n` then `<epoch> <start_offset>` per line.

use std::path::{Path, PathBuf};

use super::checkpoint::{format_entries, parse_entries, write_atomic};
use super::LogError;

pub(crate) const EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// One epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: u64,
}

impl std::fmt::Display for EpochEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.epoch, self.start_offset)
    }
}

/// Epochs in increasing order, with increasing start offsets. Guarded by the log's writer lock.
#[derive(Debug)]
pub(crate) struct EpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl EpochCache {
    /// Loads the checkpoint; a missing file is an empty cache.
    pub(crate) fn load(dir: &Path) -> Result<EpochCache, LogError> {
        let path = dir.join(EPOCH_CHECKPOINT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            // Not UTF-8: damaged contents (`Corrupt`), not an I/O failure.
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                return Err(LogError::Corrupt {
                    path,
                    position: 0,
                    reason: "checkpoint is not UTF-8 text".to_owned(),
                })
            }
            Err(error) => return Err(LogError::io(&path)(error)),
        };
        let entries = if text.is_empty() {
            Vec::new()
        } else {
            parse(&path, &text)?
        };
        Ok(EpochCache { path, entries })
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|entry| entry.epoch)
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than the latest.
    ///
    /// # Errors
    /// `StaleLeaderEpoch` when `epoch` is older than the latest; I/O errors writing the file.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: u64) -> Result<(), LogError> {
        match self.latest_epoch() {
            Some(latest) if epoch < latest => {
                return Err(LogError::StaleLeaderEpoch {
                    epoch,
                    latest_epoch: latest,
                })
            }
            Some(latest) if epoch == latest => return Ok(()),
            _ => {}
        }
        if epoch < 0 {
            return Ok(());
        }
        // An epoch starting where the new one starts holds no records (Kafka drops it too):
        // kept, it made two entries share a start offset, and the next load's
        // `truncate_from_start` removed the older one, so a restart changed the epochs.
        while self
            .entries
            .last()
            .is_some_and(|last| last.start_offset >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.write()
    }

    /// Drops epochs that start at or after `end_offset` (after a truncation).
    pub(crate) fn truncate_from_end(&mut self, end_offset: u64) -> Result<(), LogError> {
        let before = self.entries.len();
        self.entries.retain(|entry| entry.start_offset < end_offset);
        if self.entries.len() != before {
            self.write()?;
        }
        Ok(())
    }

    /// Drops epochs wholly before `start_offset` and moves the one spanning it to start there.
    pub(crate) fn truncate_from_start(&mut self, start_offset: u64) -> Result<(), LogError> {
        let spanning = self
            .entries
            .iter()
            .rposition(|entry| entry.start_offset <= start_offset);
        let Some(spanning) = spanning else {
            return Ok(());
        };
        if spanning == 0 && self.entries[0].start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..spanning);
        self.entries[0].start_offset = start_offset;
        self.write()
    }

    /// The largest epoch at or below `epoch` and the offset where it ended (the start of the next
    /// epoch, or `log_end_offset` for the latest), as OffsetForLeaderEpoch answers. `None` when
    /// the cache holds no epoch at or below `epoch`.
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end_offset: u64) -> Option<(i32, u64)> {
        let at = self
            .entries
            .iter()
            .rposition(|entry| entry.epoch <= epoch)?;
        let end = self
            .entries
            .get(at + 1)
            .map_or(log_end_offset, |next| next.start_offset);
        Some((self.entries[at].epoch, end))
    }

    fn write(&self) -> Result<(), LogError> {
        write_atomic(&self.path, format_entries(&self.entries).as_bytes())
            .map_err(LogError::io(&self.path))
    }
}

fn parse(path: &Path, text: &str) -> Result<Vec<EpochEntry>, LogError> {
    let corrupt = |reason: String| LogError::Corrupt {
        path: path.to_owned(),
        position: 0,
        reason,
    };
    let lines = parse_entries(text).map_err(corrupt)?;
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(lines.len());
    for line in lines {
        let mut fields = line.split_whitespace();
        let (Some(epoch), Some(start), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(corrupt(format!("malformed entry {line:?}")));
        };
        let entry = EpochEntry {
            epoch: epoch
                .parse()
                .map_err(|_| corrupt(format!("malformed epoch {epoch:?}")))?,
            start_offset: start
                .parse()
                .map_err(|_| corrupt(format!("malformed offset {start:?}")))?,
        };
        if let Some(last) = entries.last() {
            if entry.epoch <= last.epoch || entry.start_offset < last.start_offset {
                return Err(corrupt(format!("entry {line:?} does not increase")));
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_persist_truncate_and_answer_end_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = EpochCache::load(dir.path()).unwrap();
        cache.assign(0, 0).unwrap();
        cache.assign(0, 5).unwrap();
        cache.assign(2, 10).unwrap();
        cache.assign(5, 20).unwrap();
        assert!(matches!(
            cache.assign(1, 30),
            Err(LogError::StaleLeaderEpoch {
                epoch: 1,
                latest_epoch: 5
            })
        ));
        assert_eq!(cache.end_offset_for(0, 25), Some((0, 10)));
        assert_eq!(cache.end_offset_for(1, 25), Some((0, 10)));
        assert_eq!(cache.end_offset_for(3, 25), Some((2, 20)));
        assert_eq!(cache.end_offset_for(9, 25), Some((5, 25)));
        assert_eq!(cache.end_offset_for(-1, 25), None);

        let text = std::fs::read_to_string(dir.path().join(EPOCH_CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n3\n0 0\n2 10\n5 20\n");

        cache.truncate_from_end(20).unwrap();
        cache.truncate_from_start(12).unwrap();
        let reloaded = EpochCache::load(dir.path()).unwrap();
        assert_eq!(
            reloaded.entries(),
            &[EpochEntry {
                epoch: 2,
                start_offset: 12
            }]
        );
    }

    #[test]
    fn malformed_checkpoints_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "0\n1\nx 3\n",
            "0\n2\n3 10\n2 20\n",
            "7\n0\n",
            "0\n1\n1 2 3\n",
        ] {
            std::fs::write(dir.path().join(EPOCH_CHECKPOINT_FILE), text).unwrap();
            assert!(
                matches!(EpochCache::load(dir.path()), Err(LogError::Corrupt { .. })),
                "{text:?}"
            );
        }
    }
}

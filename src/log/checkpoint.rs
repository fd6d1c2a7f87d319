//! Small files replaced atomically: write a temporary file, fsync it, rename it over the old one,
//! fsync the directory. A crash leaves either the old file or the new one, never a mix.
//!
//! Kafka's checkpoint text format is used where Kafka has the file (`leader-epoch-checkpoint`):
//! a version line, a count line, then one entry per line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Writes `contents` to `path` atomically and durably: temporary file, fsync, rename,
/// directory fsync.
///
/// # Errors
/// I/O errors from any step; the old file, if any, is then left in place.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .expect("a checkpoint path has a parent directory");
    let tmp = path.with_extension("tmp");
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Makes created, renamed and deleted directory entries durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Formats Kafka's checkpoint text: version 0, the entry count, one entry per line.
pub(crate) fn format_entries<T: std::fmt::Display>(entries: &[T]) -> String {
    let mut out = format!("0\n{}\n", entries.len());
    for entry in entries {
        out.push_str(&format!("{entry}\n"));
    }
    out
}

/// Parses Kafka's checkpoint text into its entry lines, or explains why it cannot.
pub(crate) fn parse_entries(text: &str) -> Result<Vec<&str>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some("0") => {}
        other => return Err(format!("unsupported checkpoint version {other:?}")),
    }
    let count: usize = lines
        .next()
        .and_then(|line| line.trim().parse().ok())
        .ok_or("missing or malformed entry count")?;
    let entries: Vec<&str> = lines.filter(|line| !line.trim().is_empty()).collect();
    if entries.len() != count {
        return Err(format!("declares {count} entries, holds {}", entries.len()));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_reject_bad_counts() {
        let text = format_entries(&["0 0", "3 120"]);
        assert_eq!(text, "0\n2\n0 0\n3 120\n");
        assert_eq!(parse_entries(&text).unwrap(), vec!["0 0", "3 120"]);
        assert!(parse_entries("0\n3\n0 0\n").is_err());
        assert!(parse_entries("1\n0\n").is_err());
        assert!(parse_entries("").is_err());
    }

    #[test]
    fn write_atomic_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!path.with_extension("tmp").exists());
    }
}

//! The one place that maps files into memory.
//!
//! Soundness rests on three rules the rest of the log keeps:
//! 1. Files are only ever written with `pwrite`, never through a mapping, so no `&mut` to mapped
//!    memory exists.
//! 2. A byte becomes readable (is *published*) only after it is written, and a published byte is
//!    never written again: truncation copies the kept prefix to a new file instead of reusing the
//!    old one, and removed files are unlinked, which leaves existing mappings valid.
//! 3. Readers only form slices over published bytes. A file is only shortened past bytes that were
//!    never published, so no reader touches a page beyond the end of its file (which would raise
//!    SIGBUS). The data directory is locked, so no other logbus process changes these files.

use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};

/// A shared, read-only mapping of the first `len` bytes of a file (which may be longer than what
/// is written yet: the rest is read only after it is published).
#[derive(Debug)]
pub(crate) struct Mapping {
    map: Option<Mmap>,
}

impl Mapping {
    pub(crate) fn map(file: &File, len: usize) -> io::Result<Arc<Mapping>> {
        if len == 0 {
            return Ok(Arc::new(Mapping { map: None }));
        }
        // SAFETY: the mapping is read-only and shared, and the log follows the module's rules:
        // mapped bytes are read only once published and never modified afterwards, and the
        // file is not shortened below any published byte while mapped.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(Arc::new(Mapping { map: Some(map) }))
    }

    pub(crate) fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |map| map.len())
    }

    /// The published range `start..end` as a slice.
    ///
    /// # Panics
    /// If the range is outside the mapping: callers pass only published ranges.
    pub(crate) fn slice(&self, start: usize, end: usize) -> &[u8] {
        assert!(
            start <= end && end <= self.len(),
            "slice {start}..{end} outside mapping"
        );
        let Some(map) = &self.map else { return &[] };
        // SAFETY: the range is inside the mapping (checked above) and published, so its bytes
        // are initialized and are not written again while the mapping lives (module rule 2).
        // Forming the slice through the pointer avoids a reference to unpublished bytes.
        unsafe { std::slice::from_raw_parts(map.as_ptr().add(start), end - start) }
    }

    /// The published range `start..end` as `Bytes` that keep the mapping alive: zero-copy.
    pub(crate) fn bytes(self: &Arc<Self>, start: usize, end: usize) -> Bytes {
        assert!(
            start <= end && end <= self.len(),
            "bytes {start}..{end} outside mapping"
        );
        if start == end {
            return Bytes::new();
        }
        Bytes::from_owner(PublishedRange {
            mapping: Arc::clone(self),
            start,
            end,
        })
    }
}

/// Owner for a `Bytes` over a published range of a mapping.
struct PublishedRange {
    mapping: Arc<Mapping>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for PublishedRange {
    fn as_ref(&self) -> &[u8] {
        self.mapping.slice(self.start, self.end)
    }
}

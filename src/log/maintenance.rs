//! Rolling, flushing, retention, truncation, timestamp lookup and clean close of a [`Log`].

use std::fs;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::checkpoint::sync_dir;
use super::cleaner::CLEANER_CHECKPOINT;
use super::index::{remove_if_exists, OffsetIndex, TimeIndex};
use super::log::{Log, Writer};
use super::recovery::{
    index_batches, rebuilt_index_bytes, write_offset_checkpoint, CLEAN_SHUTDOWN_FILE,
    LOG_START_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};
use super::segment::{log_path, Fresh, Indexer, Segment, NO_TIMESTAMP};
use super::{FlushPolicy, LogError};
use crate::record::{BatchHeader, Compression, RecordBatch};

impl Log {
    /// Rolls to a new segment before a batch of `batch_bytes` when the active one is full (by
    /// bytes, index room or 32-bit relative offsets) or older than `segment_ms`.
    pub(crate) fn maybe_roll(
        &self,
        writer: &mut Writer,
        batch_bytes: usize,
        header: &BatchHeader,
    ) -> Result<(), LogError> {
        let segments = self.snapshot();
        let active = segments.last().expect("a log always has a segment");
        let size = active.size() as usize;
        let too_big_for_capacity = size + batch_bytes > active.capacity();
        let roll = if active.is_empty() {
            too_big_for_capacity
        } else {
            let now_ms = self.clock.now_ms();
            let aged = writer
                .active_since_ms
                .is_some_and(|since| now_ms - since >= self.config.segment_ms as i64);
            too_big_for_capacity
                || size + batch_bytes > self.config.segment_bytes as usize
                || !Indexer::has_room(active)
                || aged
                || header.last_offset() as u64 - active.base_offset > u64::from(u32::MAX)
        };
        if roll {
            self.roll_locked(writer, batch_bytes)?;
        }
        Ok(())
    }

    /// Seals the active segment (flushing it) and starts a new one at the log end, big enough for
    /// a batch of `batch_bytes`. An empty active segment is replaced instead.
    pub(crate) fn roll_locked(
        &self,
        writer: &mut Writer,
        batch_bytes: usize,
    ) -> Result<(), LogError> {
        let segments = self.snapshot();
        let active = segments.last().expect("a log always has a segment");
        let base = active.next_offset();
        let mut kept: Vec<Arc<Segment>> = segments.iter().cloned().collect();
        if active.is_empty() {
            kept.pop();
        } else {
            let sealed = active.seal(&writer.active, &writer.indexer);
            self.fail_on_error(writer, sealed)?;
            active.set_max_timestamp(writer.indexer.max_timestamp);
        }
        let capacity = (self.config.segment_bytes as usize).max(batch_bytes);
        let (segment, files) = Segment::create(
            &self.dir,
            base,
            capacity,
            self.config.segment_index_bytes as usize,
        )?;
        sync_dir(&self.dir).map_err(LogError::io(&self.dir))?;
        segment.set_next_offset(base);
        writer.indexer = Indexer::new(self.config.index_interval_bytes, base, &segment.time_index)?;
        writer.active = files;
        writer.active_since_ms = None;
        writer.flush.durable_bytes = 0;
        kept.push(Arc::new(segment));
        *self.segments.write() = Arc::new(kept);
        // The sealed segment was flushed: everything before the new one is on disk.
        if writer.flush.recovery_point < base {
            writer.flush.recovery_point = base;
            writer.flush.unflushed_messages = 0;
            writer.flush.oldest_unflushed_ms = None;
            self.write_recovery_checkpoint(writer)?;
        }
        Ok(())
    }

    /// Starts a new segment now, even if the active one has room (tests and tools use this).
    ///
    /// # Errors
    /// `Closed`, `FlushFailed`, `Io`.
    pub fn roll(&self) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        self.check_writable(&writer)?;
        if self
            .snapshot()
            .last()
            .is_some_and(|active| active.is_empty())
        {
            return Ok(());
        }
        self.roll_locked(&mut writer, 0)
    }

    /// Marks the log failed if `result` is an error: after a failed fsync nothing more is
    /// acknowledged (Linux may have dropped the dirty pages, so a retry could lie).
    pub(crate) fn fail_on_error<T>(
        &self,
        writer: &mut Writer,
        result: Result<T, LogError>,
    ) -> Result<T, LogError> {
        if result.is_err() {
            writer.flush.failed = true;
        }
        result
    }

    pub(crate) fn flush_by_policy(&self, writer: &mut Writer, now_ms: i64) -> Result<(), LogError> {
        let due = match self.config.flush {
            FlushPolicy::OsDecides => false,
            FlushPolicy::EveryAppend => true,
            FlushPolicy::Every {
                messages,
                interval_ms,
            } => {
                writer.flush.unflushed_messages >= messages
                    || writer
                        .flush
                        .oldest_unflushed_ms
                        .is_some_and(|oldest| now_ms - oldest >= interval_ms as i64)
            }
        };
        if due {
            self.flush_locked(writer)?;
        }
        Ok(())
    }

    /// Forces appended bytes to disk (fdatasync) and advances the recovery point.
    ///
    /// # Errors
    /// `Io` when the fsync fails, after which the log refuses writes (`FlushFailed`); `Closed`.
    pub fn flush(&self) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        self.check_writable(&writer)?;
        self.flush_locked(&mut writer)
    }

    /// Flushes if the flush policy says it is time (for `FlushPolicy::Every`'s `interval_ms` when
    /// no append comes along to check it).
    ///
    /// # Errors
    /// As [`Log::flush`].
    pub fn flush_if_due(&self) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        self.check_writable(&writer)?;
        self.flush_by_policy(&mut writer, self.clock.now_ms())
    }

    pub(crate) fn flush_locked(&self, writer: &mut Writer) -> Result<(), LogError> {
        let active = Arc::clone(self.snapshot().last().expect("a log always has a segment"));
        let end = active.next_offset();
        if writer.flush.recovery_point >= end && writer.flush.unflushed_messages == 0 {
            return Ok(());
        }
        let synced = writer
            .active
            .log
            .sync_data()
            .map_err(LogError::io(&active.path));
        self.fail_on_error(writer, synced)?;
        writer.flush.recovery_point = end;
        writer.flush.durable_bytes = active.size();
        writer.flush.unflushed_messages = 0;
        writer.flush.oldest_unflushed_ms = None;
        let now_ms = self.clock.now_ms();
        if now_ms - writer.flush.last_checkpoint_ms >= self.config.checkpoint_interval_ms as i64 {
            self.write_recovery_checkpoint(writer)?;
        }
        Ok(())
    }

    pub(crate) fn write_recovery_checkpoint(&self, writer: &mut Writer) -> Result<(), LogError> {
        write_offset_checkpoint(
            &self.dir,
            RECOVERY_POINT_CHECKPOINT,
            &self.name,
            writer.flush.recovery_point,
        )?;
        writer.flush.last_checkpoint_ms = self.clock.now_ms();
        Ok(())
    }

    /// Deletes whole sealed segments that are past `retention_ms`, beyond `retention_bytes` (both
    /// only when the cleanup policy deletes), or below the log start offset. The active segment
    /// is never deleted. Returns how many went.
    ///
    /// # Errors
    /// `Closed`, `Io`.
    pub fn apply_retention(&self) -> Result<usize, LogError> {
        let mut writer = self.writer.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        let segments = self.snapshot();
        let sealed = &segments[..segments.len() - 1];
        let log_start = self.log_start_offset();
        let below_start = sealed
            .iter()
            .enumerate()
            .take_while(|(i, _)| segments[i + 1].base_offset <= log_start)
            .count();
        let deletes = self.config.cleanup_policy.deletes();
        let expired = match self.config.retention_ms.filter(|_| deletes) {
            Some(retention_ms) => {
                let cutoff = self.clock.now_ms().saturating_sub(retention_ms as i64);
                let mut count = 0;
                for segment in sealed {
                    // A segment compaction emptied holds nothing to wait for.
                    if segment.is_empty() {
                        count += 1;
                        continue;
                    }
                    let max_timestamp = segment.max_timestamp()?;
                    if max_timestamp == NO_TIMESTAMP || max_timestamp >= cutoff {
                        break;
                    }
                    count += 1;
                }
                count
            }
            None => 0,
        };
        let oversize = match self.config.retention_bytes.filter(|_| deletes) {
            Some(limit) => {
                let mut total: u64 = segments.iter().map(|segment| segment.size()).sum();
                sealed
                    .iter()
                    .take_while(|segment| {
                        let over = total.saturating_sub(segment.size()) >= limit;
                        if over {
                            total -= segment.size();
                        }
                        over
                    })
                    .count()
            }
            None => 0,
        };
        let count = below_start.max(expired).max(oversize);
        self.delete_oldest_segments(&mut writer, count)?;
        Ok(count)
    }

    /// Moves the log start offset up to `offset` (Kafka's DeleteRecords): reads below it fail,
    /// and segments wholly below it are deleted.
    ///
    /// # Errors
    /// `OffsetOutOfRange` above the log end; `Closed`; `Io`.
    pub fn delete_records_before(&self, offset: u64) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        let log_end_offset = self.log_end_offset();
        let log_start_offset = self.log_start_offset();
        if offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            });
        }
        if offset <= log_start_offset {
            return Ok(());
        }
        self.set_log_start(&mut writer, offset)?;
        let segments = self.snapshot();
        let below = (0..segments.len() - 1)
            .take_while(|&i| segments[i + 1].base_offset <= offset)
            .count();
        self.delete_oldest_segments(&mut writer, below)
    }

    fn set_log_start(&self, writer: &mut Writer, offset: u64) -> Result<(), LogError> {
        write_offset_checkpoint(&self.dir, LOG_START_CHECKPOINT, &self.name, offset)?;
        self.log_start_offset.store(offset, Ordering::Release);
        writer.epochs.truncate_from_start(offset)
    }

    fn delete_oldest_segments(&self, writer: &mut Writer, count: usize) -> Result<(), LogError> {
        if count == 0 {
            return Ok(());
        }
        let segments = self.snapshot();
        let kept: Vec<Arc<Segment>> = segments[count..].to_vec();
        let new_start = kept[0].base_offset;
        // Raise the log start before swapping the list: a reader loads the start after taking
        // its snapshot, so with the swap first it could pair the new list with the old start,
        // pass the range check for an offset of a deleted segment, and get the first batch of the
        // next segment instead: a silent skip, not `OffsetOutOfRange`.
        if new_start > self.log_start_offset() {
            self.set_log_start(writer, new_start)?;
        }
        *self.segments.write() = Arc::new(kept);
        // Unlinking leaves existing mappings valid: readers holding these segments finish.
        for segment in &segments[..count] {
            map_before_unlink(segment);
            remove_segment_files(&self.dir, segment.base_offset)?;
        }
        sync_dir(&self.dir).map_err(LogError::io(&self.dir))
    }

    /// Removes every batch from the one holding `offset` onward (replication's truncation after
    /// a leader change). When `offset` falls inside a batch, that whole batch goes, so the new log
    /// end may be below `offset`; it is returned. Readers holding older bytes keep them: the kept
    /// prefix of the cut segment is copied to a new file rather than shortened in place.
    ///
    /// # Errors
    /// `OffsetOutOfRange` below the log start; `Closed`; `FlushFailed`; `Io`.
    pub fn truncate_to(&self, offset: u64) -> Result<u64, LogError> {
        let mut writer = self.writer.lock();
        self.check_writable(&writer)?;
        let log_end_offset = self.log_end_offset();
        let log_start_offset = self.log_start_offset();
        if offset >= log_end_offset {
            return Ok(log_end_offset);
        }
        if offset < log_start_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            });
        }
        let segments = self.snapshot();
        let cut_at = segments.partition_point(|segment| segment.base_offset <= offset) - 1;
        let cut = &segments[cut_at];
        // The batch found holds `offset`, or starts after it when compaction left a gap there:
        // the new end is then `offset` itself, not that batch's base (a follower resuming there
        // would skip the leader's records in the gap).
        let (position, new_end) = match cut.find_batch(offset)? {
            Some((position, header)) => (
                position,
                (header.base_offset as u64).max(cut.base_offset).min(offset),
            ),
            None => (cut.size(), offset),
        };
        // Lower the recovery point first, so a crash mid-truncation rescans instead of calling
        // the cut tail corruption.
        writer.flush.recovery_point = writer.flush.recovery_point.min(new_end);
        self.write_recovery_checkpoint(&mut writer)?;
        // And the cleaner checkpoint: offsets appended again after `new_end` are dirty.
        if writer.cleaner_checkpoint > new_end {
            write_offset_checkpoint(&self.dir, CLEANER_CHECKPOINT, &self.name, new_end)?;
            writer.cleaner_checkpoint = new_end;
        }
        // The cut segment's files are replaced and the later ones unlinked: map them first.
        for replaced in &segments[cut_at..] {
            map_before_unlink(replaced);
        }
        let (segment, files, indexer) = self.copy_prefix(cut, position, new_end)?;
        let mut kept: Vec<Arc<Segment>> = segments[..cut_at].to_vec();
        kept.push(Arc::new(segment));
        *self.segments.write() = Arc::new(kept);
        writer.active = files;
        writer.indexer = indexer;
        writer.active_since_ms = None;
        for removed in &segments[cut_at + 1..] {
            remove_segment_files(&self.dir, removed.base_offset)?;
        }
        sync_dir(&self.dir).map_err(LogError::io(&self.dir))?;
        writer.epochs.truncate_from_end(new_end)?;
        // The batch holding `offset` may start below the log start (after `delete_records_before`
        // inside a batch); it went whole, so the log is now empty at `new_end`. Without this the
        // log start stayed above the log end and every read was out of range. A crash before this
        // line is fine too: open clamps the stored log start to the log end.
        if new_end < log_start_offset {
            write_offset_checkpoint(&self.dir, LOG_START_CHECKPOINT, &self.name, new_end)?;
            self.log_start_offset.store(new_end, Ordering::Release);
        }
        Ok(new_end)
    }

    /// Writes the first `position` bytes of `segment` to a new file that replaces it, and makes
    /// that the active segment with freshly built indexes.
    fn copy_prefix(
        &self,
        segment: &Segment,
        position: u64,
        next_offset: u64,
    ) -> Result<(Segment, super::segment::ActiveFiles, Indexer), LogError> {
        let base = segment.base_offset;
        let path = log_path(&self.dir, base);
        let tmp = path.with_extension("log.truncating");
        remove_if_exists(&tmp)?;
        let prefix = &segment.published()?[..position as usize];
        let file = fs::File::create(&tmp).map_err(LogError::io(&tmp))?;
        file.write_all_at(prefix, 0).map_err(LogError::io(&tmp))?;
        file.sync_data().map_err(LogError::io(&tmp))?;
        fs::rename(&tmp, &path).map_err(LogError::io(&path))?;
        sync_dir(&self.dir).map_err(LogError::io(&self.dir))?;
        let capacity = (self.config.segment_bytes as usize).max(position as usize);
        let (active, files) = Segment::reopen_active(
            &self.dir,
            base,
            position,
            capacity,
            rebuilt_index_bytes(&self.config, position),
            Fresh::Yes,
        )?;
        let mut indexer = Indexer::new(self.config.index_interval_bytes, base, &active.time_index)?;
        let (_, max_timestamp) = index_batches(&active, &files, &mut indexer, 0)?;
        active.publish(position, next_offset, max_timestamp);
        Ok((active, files, indexer))
    }

    /// The largest record timestamp in the log and the first offset holding it (Kafka's
    /// ListOffsets `MAX_TIMESTAMP`). `None` for an empty log.
    ///
    /// # Errors
    /// `Corrupt` or `Io` reading the segments.
    pub fn max_timestamp(&self) -> Result<Option<(u64, i64)>, LogError> {
        let mut max = None;
        for segment in self.snapshot().iter() {
            if segment.next_offset() <= self.log_start_offset() {
                continue;
            }
            let timestamp = segment.max_timestamp()?;
            if max.is_none_or(|known| timestamp > known) {
                max = Some(timestamp);
            }
        }
        match max {
            Some(timestamp) => self.offset_for_timestamp(timestamp),
            None => Ok(None),
        }
    }

    /// The first offset whose record timestamp is at or after `timestamp`, with that timestamp
    /// (Kafka's ListOffsets by time). `None` when every record is older.
    ///
    /// # Errors
    /// `Corrupt` or `Io` reading the segments.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>, LogError> {
        let log_start = self.log_start_offset();
        for segment in self.snapshot().iter() {
            if segment.max_timestamp()? < timestamp {
                continue;
            }
            // The writer indexes a batch before it publishes it, so the last entry may belong to
            // a batch not yet readable, past every published record: then start from the entry
            // before it (taking it for a corrupt entry meant scanning the whole segment).
            let published_end = segment.next_offset();
            let mut entry = segment.time_index.lookup(segment.base_offset, timestamp)?;
            if let Some(unpublished) = entry.filter(|entry| entry.offset >= published_end) {
                entry = match unpublished.timestamp.checked_sub(1) {
                    Some(before) => segment.time_index.lookup(segment.base_offset, before)?,
                    None => None,
                };
            }
            // A time index entry comes from disk and is checked before it is trusted: the batch
            // holding its offset must have its timestamp as the batch's largest (the entry was
            // written as "largest timestamp so far, at this offset"). Otherwise scan the segment.
            let from = match entry {
                Some(entry) if segment.time_entry_holds(entry)? => entry.offset,
                _ => segment.base_offset,
            }
            .max(log_start);
            if let Some(found) = find_timestamp_in(segment, from, timestamp, log_start)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Flushes everything, trims the active segment's files and writes the clean-shutdown marker,
    /// so the next open trusts the indexes and skips the scan.
    ///
    /// # Errors
    /// `Io`; on error no marker is written and the next open recovers.
    pub fn close(self) -> Result<(), LogError> {
        self.close_inner()
    }

    pub(crate) fn close_inner(&self) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        if self.closed.swap(true, Ordering::AcqRel) || writer.flush.failed {
            return Ok(());
        }
        let active = Arc::clone(self.snapshot().last().expect("a log always has a segment"));
        let sealed = active.seal(&writer.active, &writer.indexer);
        self.fail_on_error(&mut writer, sealed)?;
        writer.flush.recovery_point = active.next_offset();
        self.write_recovery_checkpoint(&mut writer)?;
        write_offset_checkpoint(
            &self.dir,
            LOG_START_CHECKPOINT,
            &self.name,
            self.log_start_offset(),
        )?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        fs::write(&marker, b"").map_err(LogError::io(&marker))?;
        sync_dir(&self.dir).map_err(LogError::io(&self.dir))
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // Best effort: a failure leaves no marker and the next open recovers by scanning.
        let _ = self.close_inner();
    }
}

/// Within `segment`, from `from`, the first record at or after `timestamp` and at or after the
/// log start.
fn find_timestamp_in(
    segment: &Segment,
    from: u64,
    timestamp: i64,
    log_start: u64,
) -> Result<Option<(u64, i64)>, LogError> {
    let Some((mut position, _)) = segment.find_batch(from)? else {
        return Ok(None);
    };
    let bytes = segment.published()?;
    while (position as usize) < bytes.len() {
        #[cfg(test)]
        crate::log::segment::HEADERS_SCANNED.with(|scanned| scanned.set(scanned.get() + 1));
        let header = segment.header_at(bytes, position)?;
        let end = position + header.total_bytes() as u64;
        if header.max_timestamp >= timestamp && header.last_offset() as u64 >= log_start {
            let batch_bytes = segment.bytes(position, end)?;
            let corrupt = |reason: String| LogError::Corrupt {
                path: segment.path.clone(),
                position,
                reason,
            };
            let batch =
                RecordBatch::from_bytes(batch_bytes).map_err(|error| corrupt(error.to_string()))?;
            if header.attributes.compression != Compression::None {
                return Ok(Some((
                    (header.base_offset as u64).max(log_start),
                    header.max_timestamp,
                )));
            }
            for record in batch
                .records()
                .map_err(|error| corrupt(error.to_string()))?
            {
                let record = record.map_err(|error| corrupt(error.to_string()))?;
                if record.timestamp >= timestamp && record.offset as u64 >= log_start {
                    return Ok(Some((record.offset as u64, record.timestamp)));
                }
            }
        }
        position = end;
    }
    Ok(None)
}

/// Maps a segment's three files if no reader has yet. A sealed segment of a reopened log maps its
/// files on first use, by path: a reader still holding the old segment list after the files are
/// unlinked (or replaced, by truncation) then failed with `Io` "No such file" (found by racing
/// `offset_for_timestamp` with `delete_records_before`), or mapped the replacement. Mapped before
/// the unlink, they stay readable until the last reader lets go. Best effort: a file that cannot
/// be mapped now could not be read later either.
pub(crate) fn map_before_unlink(segment: &Segment) {
    let _ = segment.published();
    let _ = segment
        .index
        .lookup(segment.base_offset, segment.base_offset);
    let _ = segment.time_index.lookup(segment.base_offset, i64::MIN);
}

pub(crate) fn remove_segment_files(
    dir: &std::path::Path,
    base_offset: u64,
) -> Result<(), LogError> {
    remove_if_exists(&log_path(dir, base_offset))?;
    remove_if_exists(&OffsetIndex::path(dir, base_offset))?;
    remove_if_exists(&TimeIndex::path(dir, base_offset))
}

//! Where the coordinator keeps its records: the partitions of `__consumer_offsets`, behind a
//! small trait so a broker appends through the partition leader (returning only once the
//! in-sync replicas have the batch) and tests keep records in memory.
//!
//! [`MemoryOffsetsLog`] is the reference implementation, for tests and for wrapping with
//! injected faults.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use super::OffsetsLogError;
use crate::log::LogRead;
use crate::record::{stamp_offset_and_epoch, RecordBatch};

/// The partitions of `__consumer_offsets` as the group coordinator sees them.
pub trait OffsetsLog: Send + Sync + Debug {
    /// How many partitions the offsets topic has.
    fn partitions(&self) -> u32;

    /// Appends `batch` to `partition` and returns the offset of its last record, once the batch
    /// is as durable as the topic promises (replicated: in every in-sync replica).
    ///
    /// # Errors
    /// `UnknownPartition`; `NotLeader` when this node does not lead `partition`; the partition's
    /// errors (a failed fsync, a deleted topic). Nothing was appended when it fails.
    fn append(&self, partition: u32, batch: &RecordBatch) -> Result<u64, OffsetsLogError>;

    /// Whole batches from `from`, at most about `max_bytes` (at least one batch); empty bytes at
    /// the end of what a load reads (a replicated log's leader reads to its log end: all it
    /// holds is what it replicates next).
    ///
    /// # Errors
    /// `UnknownPartition`; the partition's errors (`OffsetOutOfRange` below its start).
    fn read(&self, partition: u32, from: u64, max_bytes: usize)
        -> Result<LogRead, OffsetsLogError>;

    /// The first offset still in `partition` (where a load starts).
    ///
    /// # Errors
    /// `UnknownPartition`.
    fn start_offset(&self, partition: u32) -> Result<u64, OffsetsLogError>;
}

/// An in-memory offsets topic: each partition a list of batches with their offsets stamped.
#[derive(Debug)]
pub struct MemoryOffsetsLog {
    partitions: Vec<Mutex<Vec<Bytes>>>,
}

impl MemoryOffsetsLog {
    pub fn new(partitions: u32) -> Self {
        MemoryOffsetsLog {
            partitions: (0..partitions).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    fn partition(&self, partition: u32) -> Result<&Mutex<Vec<Bytes>>, OffsetsLogError> {
        self.partitions
            .get(partition as usize)
            .ok_or(OffsetsLogError::UnknownPartition { partition })
    }

    /// Appends raw bytes as they are, for tests that plant corrupt records.
    ///
    /// # Errors
    /// `UnknownPartition`.
    pub fn append_raw(&self, partition: u32, bytes: Bytes) -> Result<(), OffsetsLogError> {
        self.partition(partition)?.lock().push(bytes);
        Ok(())
    }
}

fn next_offset(batches: &[Bytes]) -> u64 {
    batches
        .last()
        .and_then(|bytes| RecordBatch::from_bytes(bytes.clone()).ok())
        .map_or(0, |batch| batch.header().next_offset() as u64)
}

impl OffsetsLog for MemoryOffsetsLog {
    fn partitions(&self) -> u32 {
        self.partitions.len() as u32
    }

    fn append(&self, partition: u32, batch: &RecordBatch) -> Result<u64, OffsetsLogError> {
        let mut batches = self.partition(partition)?.lock();
        let base_offset = next_offset(&batches);
        let mut bytes = batch.as_bytes().to_vec();
        stamp_offset_and_epoch(&mut bytes, base_offset as i64, 0);
        batches.push(Bytes::from(bytes));
        Ok(base_offset + u64::from(batch.header().last_offset_delta as u32))
    }

    fn read(
        &self,
        partition: u32,
        from: u64,
        max_bytes: usize,
    ) -> Result<LogRead, OffsetsLogError> {
        let batches = self.partition(partition)?.lock();
        let end = next_offset(&batches);
        let mut out = BytesMut::new();
        for bytes in batches.iter() {
            let next = RecordBatch::from_bytes(bytes.clone())
                .map_or(u64::MAX, |batch| batch.header().next_offset() as u64);
            if next <= from {
                continue;
            }
            if !out.is_empty() && out.len() + bytes.len() > max_bytes {
                break;
            }
            out.extend_from_slice(bytes);
        }
        Ok(LogRead {
            bytes: out.freeze(),
            log_start_offset: 0,
            log_end_offset: end,
        })
    }

    fn start_offset(&self, partition: u32) -> Result<u64, OffsetsLogError> {
        self.partition(partition).map(|_| 0)
    }
}

//! Idempotent producer state: for each producer id, its epoch and its last 5 batches, so a
//! retried batch is answered with its original offsets and a gap in sequence numbers is refused.
//!
//! Snapshot file `producer-state-snapshot` (big-endian), written at clean close:
//!
//! ```text
//! version u16 (1) | crc u32 (CRC-32C of the rest) | covered_offset u64 | producers u32
//! per producer: producer_id i64 | epoch i16 | batches u8 (<= 5)
//!   per batch: first_sequence i32 | last_sequence i32 | base_offset u64 | last_offset u64
//!              | max_timestamp i64
//! ```
//! `covered_offset` is the log end when the snapshot was taken: batches from there on are
//! replayed from the log when the partition opens.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use crate::record::BatchHeader;

/// Batches remembered per producer, as Kafka keeps (`max.in.flight.requests.per.connection` 5).
pub const PRODUCER_BATCHES_KEPT: usize = 5;
pub(crate) const SNAPSHOT_FILE: &str = "producer-state-snapshot";
const SNAPSHOT_VERSION: u16 = 1;
const BATCH_ENTRY_BYTES: usize = 4 + 4 + 8 + 8 + 8;

/// Where a batch from a producer landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: u64,
    pub last_offset: u64,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
}

/// What to do with an incoming batch from an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Append,
    /// A retry of a batch already in the log: answer with its metadata.
    Duplicate(BatchMetadata),
}

/// Why a batch from an idempotent producer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceError {
    OutOfOrder { expected: i32, received: i32 },
    Fenced { epoch: i16, current_epoch: i16 },
}

/// The state of every producer that wrote to one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

impl ProducerStates {
    /// Checks a batch's producer epoch and sequence against what this partition has seen.
    pub(crate) fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        let Some(entry) = self.producers.get(&header.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(SequenceError::Fenced {
                epoch: header.producer_epoch,
                current_epoch: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            // A new epoch starts its sequences again at 0.
            if header.base_sequence != 0 {
                return Err(SequenceError::OutOfOrder {
                    expected: 0,
                    received: header.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_sequence = header.last_sequence();
        if let Some(batch) = entry.batches.iter().find(|batch| {
            batch.first_sequence == header.base_sequence && batch.last_sequence == last_sequence
        }) {
            return Ok(SequenceCheck::Duplicate(*batch));
        }
        let expected = entry
            .batches
            .back()
            .map_or(0, |batch| next_sequence(batch.last_sequence));
        if header.base_sequence != expected {
            return Err(SequenceError::OutOfOrder {
                expected,
                received: header.base_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records an appended batch.
    pub(crate) fn record(&mut self, header: &BatchHeader, base_offset: u64, last_offset: u64) {
        if !header.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch > entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == PRODUCER_BATCHES_KEPT {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
        });
    }

    /// Forgets batches at or after `offset` (after a truncation) and producers left with none.
    #[cfg(test)]
    pub(crate) fn truncate_from(&mut self, offset: u64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|batch| batch.last_offset < offset);
        }
        self.producers.retain(|_, entry| !entry.batches.is_empty());
    }

    pub(crate) fn encode(&self, covered_offset: u64) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&covered_offset.to_be_bytes());
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.producers[&id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.push(entry.batches.len() as u8);
            for batch in &entry.batches {
                body.extend_from_slice(&batch.first_sequence.to_be_bytes());
                body.extend_from_slice(&batch.last_sequence.to_be_bytes());
                body.extend_from_slice(&batch.base_offset.to_be_bytes());
                body.extend_from_slice(&batch.last_offset.to_be_bytes());
                body.extend_from_slice(&batch.max_timestamp.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot, returning the states and the offset they cover; `None` for anything
    /// malformed (the caller then rebuilds from the log).
    pub(crate) fn decode(bytes: &[u8]) -> Option<(ProducerStates, u64)> {
        let version = u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?);
        let crc = u32::from_be_bytes(bytes.get(2..6)?.try_into().ok()?);
        let body = bytes.get(6..)?;
        if version != SNAPSHOT_VERSION || crc32c::crc32c(body) != crc {
            return None;
        }
        let mut cursor = Cursor { bytes: body, at: 0 };
        let covered_offset = cursor.u64()?;
        let count = cursor.u32()?;
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = cursor.u64()? as i64;
            let epoch = cursor.u16()? as i16;
            let batches = usize::from(cursor.u8()?);
            if batches > PRODUCER_BATCHES_KEPT || cursor.remaining() < batches * BATCH_ENTRY_BYTES {
                return None;
            }
            let mut entry = ProducerEntry {
                epoch,
                batches: VecDeque::with_capacity(batches),
            };
            for _ in 0..batches {
                entry.batches.push_back(BatchMetadata {
                    first_sequence: cursor.u32()? as i32,
                    last_sequence: cursor.u32()? as i32,
                    base_offset: cursor.u64()?,
                    last_offset: cursor.u64()?,
                    max_timestamp: cursor.u64()? as i64,
                });
            }
            producers.insert(id, entry);
        }
        (cursor.remaining() == 0).then_some((ProducerStates { producers }, covered_offset))
    }

    pub(crate) fn load_snapshot(dir: &Path) -> Option<(ProducerStates, u64)> {
        Self::decode(&std::fs::read(dir.join(SNAPSHOT_FILE)).ok()?)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        bytes.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[byte]| byte)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchBuilder, BatchSpec};

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, records: usize) -> BatchHeader {
        let mut builder = BatchBuilder::new(BatchSpec {
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            ..BatchSpec::default()
        });
        for _ in 0..records {
            builder.append(0, None, Some(b"v"), &[]);
        }
        *builder.finish().header()
    }

    #[test]
    fn duplicates_gaps_and_fencing() {
        let mut states = ProducerStates::default();
        let first = header(7, 0, 0, 3);
        assert_eq!(states.check(&first), Ok(SequenceCheck::Append));
        states.record(&first, 100, 102);
        let duplicate = states.check(&first).unwrap();
        assert!(matches!(
            duplicate,
            SequenceCheck::Duplicate(BatchMetadata {
                base_offset: 100,
                last_offset: 102,
                ..
            })
        ));
        assert_eq!(
            states.check(&header(7, 0, 4, 1)),
            Err(SequenceError::OutOfOrder {
                expected: 3,
                received: 4
            })
        );
        assert_eq!(states.check(&header(7, 0, 3, 1)), Ok(SequenceCheck::Append));
        assert_eq!(states.check(&header(7, 1, 0, 1)), Ok(SequenceCheck::Append));
        assert_eq!(
            states.check(&header(7, 1, 5, 1)),
            Err(SequenceError::OutOfOrder {
                expected: 0,
                received: 5
            })
        );
        states.record(&header(7, 1, 0, 1), 103, 103);
        assert_eq!(
            states.check(&header(7, 0, 3, 1)),
            Err(SequenceError::Fenced {
                epoch: 0,
                current_epoch: 1
            })
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_snapshots_round_trip() {
        let mut states = ProducerStates::default();
        for i in 0..7 {
            states.record(&header(1, 0, i, 1), i as u64, i as u64);
        }
        assert_eq!(
            states.check(&header(1, 0, 1, 1)),
            Err(SequenceError::OutOfOrder {
                expected: 7,
                received: 1
            })
        );
        assert!(matches!(
            states.check(&header(1, 0, 2, 1)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        let encoded = states.encode(7);
        assert_eq!(ProducerStates::decode(&encoded), Some((states.clone(), 7)));
        for cut in 0..encoded.len() {
            assert_eq!(ProducerStates::decode(&encoded[..cut]), None);
        }
        let mut flipped = encoded.clone();
        flipped[10] ^= 1;
        assert_eq!(ProducerStates::decode(&flipped), None);
        states.truncate_from(5);
        assert!(matches!(
            states.check(&header(1, 0, 5, 1)),
            Ok(SequenceCheck::Append)
        ));
    }
}

//! The record batch v2 header and a validated batch.
//!
//! Layout, big-endian, each offset derived from the previous field:
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset              first offset in the batch
//!      8     4  batch_length             bytes after this field, to the end of the batch
//!     12     4  partition_leader_epoch   stamped by the leader; outside the CRC
//!     16     1  magic                    2
//!     17     4  crc                      CRC-32C of bytes 21.. (attributes to the end)
//!     21     2  attributes               bits 0-2 codec, 3 timestamp type, 4 transactional,
//!                                        5 control, 6 delete horizon set
//!     23     4  last_offset_delta        last offset - base offset
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id              -1 when not idempotent
//!     51     2  producer_epoch
//!     53     4  base_sequence
//!     57     4  records_count
//!     61     .  records
//! ```

use bytes::Bytes;

use super::records::Records;
use super::DecodeError;

pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const BATCH_LENGTH_AT: usize = BASE_OFFSET_AT + 8;
pub(crate) const LEADER_EPOCH_AT: usize = BATCH_LENGTH_AT + 4;
pub(crate) const MAGIC_AT: usize = LEADER_EPOCH_AT + 4;
pub(crate) const CRC_AT: usize = MAGIC_AT + 1;
pub(crate) const ATTRIBUTES_AT: usize = CRC_AT + 4;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = ATTRIBUTES_AT + 2;
pub(crate) const BASE_TIMESTAMP_AT: usize = LAST_OFFSET_DELTA_AT + 4;
pub(crate) const MAX_TIMESTAMP_AT: usize = BASE_TIMESTAMP_AT + 8;
pub(crate) const PRODUCER_ID_AT: usize = MAX_TIMESTAMP_AT + 8;
pub(crate) const PRODUCER_EPOCH_AT: usize = PRODUCER_ID_AT + 8;
pub(crate) const BASE_SEQUENCE_AT: usize = PRODUCER_EPOCH_AT + 2;
pub(crate) const RECORDS_COUNT_AT: usize = BASE_SEQUENCE_AT + 4;
/// Size of the batch header: the records start here.
pub const BATCH_HEADER_BYTES: usize = RECORDS_COUNT_AT + 4;
/// The prefix that tells how long a batch is: base offset and batch length.
pub const LOG_OVERHEAD_BYTES: usize = BATCH_LENGTH_AT + 4;
/// The only magic value this crate reads and writes.
pub const MAGIC_V2: i8 = 2;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// The codec of a batch's records (attribute bits 0-2).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn from_bits(bits: i16) -> Result<Self, DecodeError> {
        Ok(match bits {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => {
                return Err(DecodeError::InvalidField {
                    field: "attributes.compression",
                    value: i64::from(other),
                })
            }
        })
    }

    fn bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

/// Whose clock the batch's timestamps come from (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch; `max_timestamp` holds it.
    LogAppendTime,
}

/// The decoded attributes field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub compression: Compression,
    pub timestamp_type: TimestampType,
    pub is_transactional: bool,
    pub is_control: bool,
    pub has_delete_horizon: bool,
}

impl Attributes {
    /// Decodes the attribute bits; unknown codecs are an error, unknown high bits are ignored as
    /// Kafka ignores them.
    pub fn decode(raw: i16) -> Result<Self, DecodeError> {
        Ok(Attributes {
            compression: Compression::from_bits(raw & COMPRESSION_MASK)?,
            timestamp_type: if raw & TIMESTAMP_TYPE_BIT != 0 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            is_transactional: raw & TRANSACTIONAL_BIT != 0,
            is_control: raw & CONTROL_BIT != 0,
            has_delete_horizon: raw & DELETE_HORIZON_BIT != 0,
        })
    }

    /// The attribute bits as they are written.
    pub fn encode(&self) -> i16 {
        let mut raw = self.compression.bits();
        if self.timestamp_type == TimestampType::LogAppendTime {
            raw |= TIMESTAMP_TYPE_BIT;
        }
        if self.is_transactional {
            raw |= TRANSACTIONAL_BIT;
        }
        if self.is_control {
            raw |= CONTROL_BIT;
        }
        if self.has_delete_horizon {
            raw |= DELETE_HORIZON_BIT;
        }
        raw
    }
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes {
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            is_transactional: false,
            is_control: false,
            has_delete_horizon: false,
        }
    }
}

/// Every field of a batch header, as Kafka's types hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: Attributes,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the 61-byte header at the start of `buf`, checking the magic, the attributes and
    /// the lengths against each other. It does not check the CRC or look at the records.
    ///
    /// # Errors
    /// `Truncated` when `buf` is shorter than the header, `UnsupportedMagic`, `BadBatchLength`,
    /// or `InvalidField` for an unknown codec or negative counts.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        if buf.len() < BATCH_HEADER_BYTES {
            // Report the magic first when it is there: a v0/v1 message is shorter than a v2
            // header and would otherwise look merely truncated.
            if buf.len() > MAGIC_AT && buf[MAGIC_AT] as i8 != MAGIC_V2 {
                return Err(DecodeError::UnsupportedMagic {
                    magic: buf[MAGIC_AT] as i8,
                });
            }
            return Err(DecodeError::Truncated {
                needed: BATCH_HEADER_BYTES,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(DecodeError::UnsupportedMagic { magic });
        }
        let batch_length = read_i32(buf, BATCH_LENGTH_AT);
        let min_length = BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES;
        if batch_length < min_length as i32 {
            return Err(DecodeError::BadBatchLength {
                length: i64::from(batch_length),
                min: min_length,
                max: i32::MAX as usize,
            });
        }
        let header = BatchHeader {
            base_offset: read_i64(buf, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: read_i32(buf, LEADER_EPOCH_AT),
            magic,
            crc: read_i32(buf, CRC_AT) as u32,
            attributes: Attributes::decode(read_i16(buf, ATTRIBUTES_AT))?,
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: read_i64(buf, PRODUCER_ID_AT),
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: read_i32(buf, BASE_SEQUENCE_AT),
            records_count: read_i32(buf, RECORDS_COUNT_AT),
        };
        header.check_fields()?;
        Ok(header)
    }

    fn check_fields(&self) -> Result<(), DecodeError> {
        let invalid = |field, value| Err(DecodeError::InvalidField { field, value });
        if self.base_offset < 0 {
            return invalid("base_offset", self.base_offset);
        }
        if self.last_offset_delta < 0 {
            return invalid("last_offset_delta", i64::from(self.last_offset_delta));
        }
        // The next offset (last + 1) must fit too: `next_offset()` is used on every batch read
        // from disk. Found by fuzz/fuzz_targets/batch_decode.rs; see tests/fuzz_regressions.rs.
        if self
            .base_offset
            .checked_add(i64::from(self.last_offset_delta) + 1)
            .is_none()
        {
            return invalid("last_offset_delta", i64::from(self.last_offset_delta));
        }
        if self.records_count < 0 {
            return invalid("records_count", i64::from(self.records_count));
        }
        Ok(())
    }

    /// Total size of the batch on disk, prefix included.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length as usize
    }

    /// The offset of the batch's last record (offset gaps from compaction included).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset after the batch: where the next batch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// The sequence number of the batch's last record, wrapping as Kafka's sequences do.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }

    /// Whether the batch carries a producer id (idempotent or transactional producer).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// A whole batch whose length has been checked and whose CRC matches: the unit the log stores and
/// reads. Cloning is cheap; the bytes are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

impl RecordBatch {
    /// Validates the batch at the start of `bytes` (header, length, CRC) and splits it off.
    /// Returns the batch and whatever followed it.
    ///
    /// # Errors
    /// Any header error from [`BatchHeader::decode`], `Truncated` when the batch runs past the
    /// input, `BadBatchLength` when it is larger than `max_batch_bytes`, and `CrcMismatch`.
    pub fn split_from(
        bytes: &Bytes,
        max_batch_bytes: usize,
    ) -> Result<(RecordBatch, Bytes), DecodeError> {
        let header = validate(bytes, max_batch_bytes)?;
        let total = header.total_bytes();
        Ok((
            RecordBatch {
                header,
                bytes: bytes.slice(..total),
            },
            bytes.slice(total..),
        ))
    }

    /// Validates that `bytes` holds exactly one batch.
    ///
    /// # Errors
    /// As [`RecordBatch::split_from`], and `InvalidField` when bytes follow the batch.
    pub fn from_bytes(bytes: Bytes) -> Result<RecordBatch, DecodeError> {
        let (batch, rest) = RecordBatch::split_from(&bytes, bytes.len())?;
        if !rest.is_empty() {
            return Err(DecodeError::InvalidField {
                field: "batch_length",
                value: i64::from(batch.header.batch_length),
            });
        }
        Ok(batch)
    }

    /// Wraps bytes already validated by this crate (for example when it wrote them itself).
    pub(crate) fn from_trusted(header: BatchHeader, bytes: Bytes) -> RecordBatch {
        debug_assert_eq!(header.total_bytes(), bytes.len());
        RecordBatch { header, bytes }
    }

    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The whole batch as it lies on disk or on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// A copy of the batch under another producer id, epoch and base sequence, CRC recomputed
    /// (see [`stamp_producer_state`]): how an idempotent producer re-sequences a batch it has
    /// not had appended, after it bumped its epoch.
    pub fn with_producer_state(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> RecordBatch {
        let mut bytes = self.bytes.to_vec();
        let crc = stamp_producer_state(&mut bytes, producer_id, producer_epoch, base_sequence);
        let header = BatchHeader {
            producer_id,
            producer_epoch,
            base_sequence,
            crc,
            ..self.header
        };
        RecordBatch::from_trusted(header, Bytes::from(bytes))
    }

    /// Iterates the batch's records; keys, values and headers are slices of the batch's bytes.
    ///
    /// # Errors
    /// `UnsupportedCompression` for a compressed batch. Errors inside the records come from the
    /// iterator, one per record at most, after which it stops.
    pub fn records(&self) -> Result<Records, DecodeError> {
        if self.header.attributes.compression != Compression::None {
            return Err(DecodeError::UnsupportedCompression(
                self.header.attributes.compression,
            ));
        }
        Ok(Records::new(
            &self.header,
            self.bytes.slice(BATCH_HEADER_BYTES..),
        ))
    }
}

/// Checks the batch at the start of `buf`: header, length within `max_batch_bytes` and within the
/// input, and CRC. Returns its header; the batch is the first `header.total_bytes()` bytes.
///
/// # Errors
/// As [`BatchHeader::decode`], `BadBatchLength` above `max_batch_bytes`, `Truncated` when the
/// batch runs past `buf`, `CrcMismatch`.
pub fn validate(buf: &[u8], max_batch_bytes: usize) -> Result<BatchHeader, DecodeError> {
    let header = BatchHeader::decode(buf)?;
    let total = header.total_bytes();
    if total > max_batch_bytes {
        return Err(DecodeError::BadBatchLength {
            length: i64::from(header.batch_length),
            min: BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES,
            max: max_batch_bytes.saturating_sub(LOG_OVERHEAD_BYTES),
        });
    }
    if total > buf.len() {
        return Err(DecodeError::Truncated {
            needed: total,
            available: buf.len(),
        });
    }
    let computed = crc32c::crc32c(&buf[ATTRIBUTES_AT..total]);
    if computed != header.crc {
        return Err(DecodeError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Iterates the whole batches laid back to back in a buffer, as a log read returns them.
/// A trailing partial batch (a read cut at `max_bytes`) ends the iteration without error.
#[derive(Debug, Clone)]
pub struct Batches {
    rest: Bytes,
    failed: bool,
}

impl Batches {
    pub fn new(bytes: Bytes) -> Self {
        Batches {
            rest: bytes,
            failed: false,
        }
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.len() < LOG_OVERHEAD_BYTES {
            return None;
        }
        match RecordBatch::split_from(&self.rest, usize::MAX) {
            Ok((batch, rest)) => {
                self.rest = rest;
                Some(Ok(batch))
            }
            Err(DecodeError::Truncated { .. }) => None,
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

/// Writes a new base offset and leader epoch into an encoded batch. Both lie outside the CRC, so
/// the batch stays valid; this is how a leader stamps a batch it appends.
pub fn stamp_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    assert!(
        batch.len() >= BATCH_HEADER_BYTES,
        "stamping a batch shorter than its header"
    );
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks an encoded batch as LogAppendTime with `timestamp` as its max timestamp and recomputes
/// the CRC, as a broker does for a topic with `message_timestamp_type = LogAppendTime`.
pub fn stamp_log_append_time(batch: &mut [u8], timestamp: i64) {
    assert!(
        batch.len() >= BATCH_HEADER_BYTES,
        "stamping a batch shorter than its header"
    );
    let raw = read_i16(batch, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&raw.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Writes a new producer id, producer epoch and base sequence into an encoded batch and
/// recomputes the CRC, which covers all three. Returns the new CRC.
pub fn stamp_producer_state(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> u32 {
    assert!(
        batch.len() >= BATCH_HEADER_BYTES,
        "stamping a batch shorter than its header"
    );
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    crc
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    let mut raw = [0; 4];
    raw.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(raw)
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut raw = [0; 8];
    raw.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchBuilder, BatchSpec};

    fn idempotent_batch(producer_epoch: i16, base_sequence: i32) -> RecordBatch {
        let mut builder = BatchBuilder::new(BatchSpec {
            producer_id: 7,
            producer_epoch,
            base_sequence,
            ..BatchSpec::default()
        });
        builder.append(1_700_000_000_000, Some(b"k0"), Some(b"v0"), &[]);
        builder.append(1_700_000_000_001, None, Some(b"v1"), &[]);
        builder.finish()
    }

    #[test]
    fn a_batch_restamped_with_producer_state_matches_one_built_with_it() {
        let original = idempotent_batch(0, 41);
        let restamped = original.with_producer_state(7, 1, 0);
        assert_eq!(
            restamped,
            idempotent_batch(1, 0),
            "bytes and header, CRC included"
        );
        let decoded = RecordBatch::from_bytes(restamped.as_bytes().clone())
            .expect("the recomputed CRC matches");
        assert_eq!(decoded.header(), restamped.header());
        assert_eq!(
            (
                decoded.header().producer_epoch,
                decoded.header().base_sequence
            ),
            (1, 0)
        );
        assert_eq!(decoded.header().last_sequence(), 1);
        assert_ne!(decoded.header().crc, original.header().crc);
        assert_eq!(
            original,
            idempotent_batch(0, 41),
            "the original is left alone"
        );
    }

    #[test]
    fn a_new_producer_id_is_stamped_too() {
        let restamped = idempotent_batch(i16::MAX, 9).with_producer_state(8, 0, 0);
        let decoded = RecordBatch::from_bytes(restamped.into_bytes()).expect("valid");
        let header = decoded.header();
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (8, 0, 0)
        );
    }
}

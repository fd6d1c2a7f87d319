//! Encoding a batch of uncompressed records, byte for byte as Kafka's producers write them.

use bytes::Bytes;

use super::batch::{
    Attributes, BatchHeader, RecordBatch, ATTRIBUTES_AT, BATCH_HEADER_BYTES, CRC_AT,
    LOG_OVERHEAD_BYTES, MAGIC_V2,
};
use super::records::Header;
use super::varint::{put_varint, varint_len, varlong_len, write_varint, write_varlong};

/// The fields of a batch header that the writer chooses; the rest follow from the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpec {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub attributes: Attributes,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl Default for BatchSpec {
    /// Offset 0, no leader epoch (-1), no producer (-1), CreateTime, uncompressed.
    fn default() -> Self {
        BatchSpec {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: Attributes::default(),
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// Builds one batch record by record into a single buffer.
///
/// ```
/// use logbus::record::{BatchBuilder, BatchSpec};
/// let mut builder = BatchBuilder::new(BatchSpec::default());
/// builder.append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[]);
/// let batch = builder.finish();
/// assert_eq!(batch.header().records_count, 1);
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    spec: BatchSpec,
    buf: Vec<u8>,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    last_offset_delta: i32,
}

impl BatchBuilder {
    pub fn new(spec: BatchSpec) -> Self {
        Self::with_capacity(spec, 0)
    }

    /// A builder whose buffer is sized for about `bytes` of records.
    pub fn with_capacity(spec: BatchSpec, bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(BATCH_HEADER_BYTES + bytes);
        buf.resize(BATCH_HEADER_BYTES, 0);
        BatchBuilder {
            spec,
            buf,
            count: 0,
            base_timestamp: None,
            max_timestamp: -1,
            last_offset_delta: -1,
        }
    }

    /// Appends a record at the next offset.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        let offset_delta = self.last_offset_delta + 1;
        self.append_at_delta(offset_delta, timestamp, key, value, headers);
    }

    /// Appends a record at `offset_delta` from the base offset, which must be past the previous
    /// record's (compacted batches have gaps).
    ///
    /// # Panics
    /// If `offset_delta` does not increase, or the batch outgrows Kafka's 32-bit lengths.
    pub fn append_at_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        assert!(
            offset_delta > self.last_offset_delta,
            "offset deltas must increase"
        );
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp);
        let timestamp_delta = timestamp.wrapping_sub(base_timestamp);
        let body_len = record_body_len(timestamp_delta, offset_delta, key, value, headers);
        let body_len = i32::try_from(body_len).expect("a record is smaller than 2 GiB");
        self.buf.reserve(varint_len(body_len) + body_len as usize);
        // The varints before the key, and those between the fields, go out in one copy each.
        let mut prefix = [0u8; 5 + 1 + 10 + 5 + 5];
        let mut at = write_varint(&mut prefix, 0, body_len);
        prefix[at] = 0; // record attributes: unused
        at = write_varlong(&mut prefix, at + 1, timestamp_delta);
        at = write_varint(&mut prefix, at, offset_delta);
        at = write_varint(&mut prefix, at, field_length(key));
        self.buf.extend_from_slice(&prefix[..at]);
        if let Some(key) = key {
            self.buf.extend_from_slice(key);
        }
        let mut between = [0u8; 5];
        let at = write_varint(&mut between, 0, field_length(value));
        self.buf.extend_from_slice(&between[..at]);
        if let Some(value) = value {
            self.buf.extend_from_slice(value);
        }
        let at = write_varint(&mut between, 0, headers.len() as i32);
        self.buf.extend_from_slice(&between[..at]);
        for header in headers {
            put_nullable(&mut self.buf, Some(&header.key));
            put_nullable(&mut self.buf, header.value.as_deref());
        }
        self.count += 1;
        self.last_offset_delta = offset_delta;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Sets the producer id, epoch and base sequence the batch is finished with (an idempotent
    /// producer re-sequences its open batches after it bumps its epoch).
    pub fn set_producer_state(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) {
        self.spec.producer_id = producer_id;
        self.spec.producer_epoch = producer_epoch;
        self.spec.base_sequence = base_sequence;
    }

    /// Number of records appended so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The size the batch would have if finished now.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Writes the header and the CRC, and returns the batch.
    pub fn finish(mut self) -> RecordBatch {
        let batch_length = i32::try_from(self.buf.len() - LOG_OVERHEAD_BYTES)
            .expect("a batch is smaller than 2 GiB");
        let header = BatchHeader {
            base_offset: self.spec.base_offset,
            batch_length,
            partition_leader_epoch: self.spec.partition_leader_epoch,
            magic: MAGIC_V2,
            crc: 0,
            attributes: self.spec.attributes,
            last_offset_delta: self.last_offset_delta.max(0),
            base_timestamp: self.base_timestamp.unwrap_or(-1),
            max_timestamp: self.max_timestamp,
            producer_id: self.spec.producer_id,
            producer_epoch: self.spec.producer_epoch,
            base_sequence: self.spec.base_sequence,
            records_count: self.count,
        };
        write_header(&mut self.buf[..BATCH_HEADER_BYTES], &header);
        let crc = crc32c::crc32c(&self.buf[ATTRIBUTES_AT..]);
        self.buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        RecordBatch::from_trusted(BatchHeader { crc, ..header }, Bytes::from(self.buf))
    }
}

/// An upper bound of the bytes a record takes in a batch, length prefix included (every varint
/// counted at its widest). Cheap: for sizing buffers and checking limits before encoding.
pub fn record_bytes_bound(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
    let field = |bytes: Option<&[u8]>| 5 + bytes.map_or(0, <[u8]>::len);
    let headers: usize = headers
        .iter()
        .map(|header| field(Some(&header.key)) + field(header.value.as_deref()))
        .sum();
    // length, attributes, timestamp delta, offset delta, key, value, header count, headers
    5 + 1 + 10 + 5 + field(key) + field(value) + 5 + headers
}

/// Bytes a record takes after its length prefix.
fn record_body_len(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut len = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    len += nullable_len(key) + nullable_len(value);
    len += varint_len(headers.len() as i32);
    for header in headers {
        len += nullable_len(Some(&header.key)) + nullable_len(header.value.as_deref());
    }
    len
}

/// The length prefix of a nullable field: -1 for null.
fn field_length(field: Option<&[u8]>) -> i32 {
    field.map_or(-1, |bytes| {
        i32::try_from(bytes.len()).expect("a field is smaller than 2 GiB")
    })
}

fn nullable_len(field: Option<&[u8]>) -> usize {
    match field {
        None => varint_len(-1),
        Some(bytes) => varint_len(bytes.len() as i32) + bytes.len(),
    }
}

fn put_nullable(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(
                out,
                i32::try_from(bytes.len()).expect("a field is smaller than 2 GiB"),
            );
            out.extend_from_slice(bytes);
        }
    }
}

/// Writes every header field except the CRC (left as given) into `out`, which is exactly
/// [`BATCH_HEADER_BYTES`] long.
pub(super) fn write_header(out: &mut [u8], header: &BatchHeader) {
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&header.base_offset.to_be_bytes());
    put(&header.batch_length.to_be_bytes());
    put(&header.partition_leader_epoch.to_be_bytes());
    put(&[header.magic as u8]);
    put(&header.crc.to_be_bytes());
    put(&header.attributes.encode().to_be_bytes());
    put(&header.last_offset_delta.to_be_bytes());
    put(&header.base_timestamp.to_be_bytes());
    put(&header.max_timestamp.to_be_bytes());
    put(&header.producer_id.to_be_bytes());
    put(&header.producer_epoch.to_be_bytes());
    put(&header.base_sequence.to_be_bytes());
    put(&header.records_count.to_be_bytes());
    assert_eq!(at, BATCH_HEADER_BYTES);
}

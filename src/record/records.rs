//! Records inside an uncompressed batch.
//!
//! Each record, after the batch header:
//!
//! ```text
//! length           varint   bytes after this field
//! attributes       int8     unused, 0
//! timestamp_delta  varlong  from the batch's base_timestamp
//! offset_delta     varint   from the batch's base_offset
//! key_length       varint   -1 for a null key
//! key              bytes
//! value_length     varint   -1 for a null value (a tombstone)
//! value            bytes
//! headers_count    varint
//!   key_length     varint   header keys are UTF-8 strings in Kafka; kept as bytes here
//!   key            bytes
//!   value_length   varint   -1 for null
//!   value          bytes
//! ```

use bytes::Bytes;

use super::batch::{BatchHeader, TimestampType};
use super::varint::Reader;
use super::DecodeError;

/// One record header: a key (UTF-8 by Kafka's convention) and an optional value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

impl Header {
    pub fn new(key: impl Into<Bytes>, value: Option<Bytes>) -> Self {
        Header {
            key: key.into(),
            value,
        }
    }
}

/// A record's headers, validated when the record was decoded and kept as a slice of the batch:
/// iterating them allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    bytes: Bytes,
    count: usize,
}

impl Headers {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> HeadersIter {
        HeadersIter {
            bytes: self.bytes.clone(),
            position: 0,
            remaining: self.count,
        }
    }

    /// The headers as owned values.
    pub fn to_vec(&self) -> Vec<Header> {
        self.iter().collect()
    }
}

impl IntoIterator for &Headers {
    type Item = Header;
    type IntoIter = HeadersIter;

    fn into_iter(self) -> HeadersIter {
        self.iter()
    }
}

/// Iterator over validated headers.
#[derive(Debug, Clone)]
pub struct HeadersIter {
    bytes: Bytes,
    position: usize,
    remaining: usize,
}

impl Iterator for HeadersIter {
    type Item = Header;

    fn next(&mut self) -> Option<Header> {
        if self.remaining == 0 {
            return None;
        }
        let mut reader = Reader::new(&self.bytes[self.position..]);
        // The bytes were validated when the record was decoded, so these reads succeed; should
        // they not, the iteration ends rather than panicking.
        let key =
            nullable_field(&self.bytes, &mut reader, self.position, "header.key_length").ok()??;
        let value = nullable_field(
            &self.bytes,
            &mut reader,
            self.position,
            "header.value_length",
        )
        .ok()?;
        self.position += reader.position();
        self.remaining -= 1;
        Some(Header { key, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// A decoded record. Keys, values and header bytes share the batch's buffer: nothing is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset: the batch's base offset plus the record's offset delta.
    pub offset: i64,
    /// Absolute timestamp (for LogAppendTime batches, the batch's max timestamp).
    pub timestamp: i64,
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    pub headers: Headers,
}

/// Iterator over the records of one uncompressed batch. After the first error it stops.
#[derive(Debug, Clone)]
pub struct Records {
    bytes: Bytes,
    position: usize,
    declared: i32,
    yielded: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    done: bool,
}

impl Records {
    pub(crate) fn new(header: &BatchHeader, records: Bytes) -> Self {
        Records {
            bytes: records,
            position: 0,
            declared: header.records_count,
            yielded: 0,
            base_offset: header.base_offset,
            base_timestamp: header.base_timestamp,
            log_append_time: (header.attributes.timestamp_type == TimestampType::LogAppendTime)
                .then_some(header.max_timestamp),
            done: false,
        }
    }

    /// Where the next record starts, from the start of the records section (after the batch
    /// header). After `next` yields a record, this is where that record ended.
    pub(crate) fn position(&self) -> usize {
        self.position
    }

    fn decode_next(&mut self) -> Result<Record, DecodeError> {
        let mut reader = Reader::new(&self.bytes[self.position..]);
        let length = reader.varint()?;
        let length = usize::try_from(length).map_err(|_| DecodeError::InvalidField {
            field: "record.length",
            value: i64::from(length),
        })?;
        let body_start = self.position + reader.position();
        let body = reader.take(length)?;
        let record = self.decode_body(body, body_start)?;
        self.position = body_start + length;
        Ok(record)
    }

    fn decode_body(&self, body: &[u8], body_start: usize) -> Result<Record, DecodeError> {
        let mut reader = Reader::new(body);
        let _attributes = reader.i8()?;
        let timestamp_delta = reader.varlong()?;
        let offset_delta = reader.varint()?;
        if offset_delta < 0 {
            return Err(DecodeError::InvalidField {
                field: "record.offset_delta",
                value: i64::from(offset_delta),
            });
        }
        let key = self.nullable_bytes(&mut reader, body_start, "record.key_length")?;
        let value = self.nullable_bytes(&mut reader, body_start, "record.value_length")?;
        let headers_count = reader.varint()?;
        if headers_count < 0 {
            return Err(DecodeError::InvalidField {
                field: "record.headers_count",
                value: i64::from(headers_count),
            });
        }
        // The count is untrusted: walk the headers to validate them, allocating nothing.
        let headers_start = body_start + reader.position();
        for _ in 0..headers_count {
            let key = self.nullable_bytes(&mut reader, body_start, "header.key_length")?;
            if key.is_none() {
                return Err(DecodeError::InvalidField {
                    field: "header.key_length",
                    value: -1,
                });
            }
            self.nullable_bytes(&mut reader, body_start, "header.value_length")?;
        }
        let headers = Headers {
            bytes: self
                .bytes
                .slice(headers_start..body_start + reader.position()),
            count: headers_count as usize,
        };
        if reader.remaining() != 0 {
            return Err(DecodeError::InvalidField {
                field: "record.length",
                value: body.len() as i64,
            });
        }
        Ok(Record {
            offset: self.base_offset + i64::from(offset_delta),
            timestamp: self
                .log_append_time
                .unwrap_or(self.base_timestamp.wrapping_add(timestamp_delta)),
            key,
            value,
            headers,
        })
    }

    /// Reads a length-prefixed field (-1 = null) as a slice of the shared buffer.
    fn nullable_bytes(
        &self,
        reader: &mut Reader<'_>,
        body_start: usize,
        field: &'static str,
    ) -> Result<Option<Bytes>, DecodeError> {
        nullable_field(&self.bytes, reader, body_start, field)
    }
}

/// Reads a length-prefixed field (-1 = null) from `reader`, which reads `buffer` from `start`,
/// as a slice of `buffer`.
fn nullable_field(
    buffer: &Bytes,
    reader: &mut Reader<'_>,
    start: usize,
    field: &'static str,
) -> Result<Option<Bytes>, DecodeError> {
    let length = reader.varint()?;
    if length == -1 {
        return Ok(None);
    }
    let length = usize::try_from(length).map_err(|_| DecodeError::InvalidField {
        field,
        value: i64::from(length),
    })?;
    let at = start + reader.position();
    reader.take(length)?;
    Ok(Some(buffer.slice(at..at + length)))
}

impl Iterator for Records {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let declared = usize::try_from(self.declared).unwrap_or(0);
        if self.yielded == declared {
            self.done = true;
            if self.position == self.bytes.len() {
                return None;
            }
            return Some(Err(DecodeError::RecordCountMismatch {
                declared: self.declared,
                found: self.yielded + 1,
            }));
        }
        if self.position == self.bytes.len() {
            self.done = true;
            return Some(Err(DecodeError::RecordCountMismatch {
                declared: self.declared,
                found: self.yielded,
            }));
        }
        match self.decode_next() {
            Ok(record) => {
                self.yielded += 1;
                Some(Ok(record))
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let declared = usize::try_from(self.declared).unwrap_or(0);
        (0, Some(declared.saturating_sub(self.yielded) + 1))
    }
}

//! A cursor over a request body that checks every length against the bytes left.
//!
//! Kafka's primitive types, as the schemas name them:
//!
//! ```text
//! INT8 INT16 INT32 INT64   big-endian, fixed width          BOOLEAN   one byte, non-zero is true
//! UUID                     16 bytes                         UNSIGNED_VARINT  7 bits a byte, <= 5 bytes
//!
//!                 classic versions                 flexible versions (KIP-482)
//! STRING          INT16 length, -1 is null         UNSIGNED_VARINT length + 1, 0 is null
//! BYTES           INT32 length, -1 is null         UNSIGNED_VARINT length + 1, 0 is null
//! ARRAY           INT32 count,  -1 is null         UNSIGNED_VARINT count + 1,  0 is null
//! tagged fields   none                             UNSIGNED_VARINT count, then per field:
//!                                                  UNSIGNED_VARINT tag, UNSIGNED_VARINT size,
//!                                                  size bytes
//! ```
//!
//! Nothing here allocates by a count read from the wire: strings and bytes are slices of the
//! frame (zero copy), an array's count must not exceed the bytes left (every element takes at
//! least one byte), and its preallocation never exceeds the bytes left either, whatever the
//! in-memory size of an element.

use std::collections::BTreeMap;
use std::mem::size_of;

use bytes::{Buf, Bytes};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::DecodeError;

/// How a version of an API lays out lengths, and whether its structs end in tagged fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// Fixed-width lengths (INT16 for strings, INT32 for bytes and arrays), no tagged fields.
    Classic,
    /// Varint lengths offset by one, and tagged fields at the end of every struct.
    Flexible,
}

/// Reads fields from the front of a body; each read names its field for the error.
pub(super) struct Reader<'a> {
    buf: &'a mut Bytes,
    encoding: Encoding,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a mut Bytes, encoding: Encoding) -> Self {
        Reader { buf, encoding }
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.remaining()
    }

    pub(super) fn i8(&mut self, field: &'static str) -> Result<i8, DecodeError> {
        self.buf
            .try_get_i8()
            .map_err(|_| DecodeError::Truncated { field })
    }

    pub(super) fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        self.buf
            .try_get_i16()
            .map_err(|_| DecodeError::Truncated { field })
    }

    pub(super) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.buf
            .try_get_i32()
            .map_err(|_| DecodeError::Truncated { field })
    }

    pub(super) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.buf
            .try_get_i64()
            .map_err(|_| DecodeError::Truncated { field })
    }

    /// Any non-zero byte is true, as Kafka's own readers have it.
    pub(super) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        self.buf
            .try_get_u8()
            .map(|byte| byte != 0)
            .map_err(|_| DecodeError::Truncated { field })
    }

    pub(super) fn uuid(&mut self, field: &'static str) -> Result<Uuid, DecodeError> {
        self.buf
            .try_get_u128()
            .map(Uuid::from_u128)
            .map_err(|_| DecodeError::Truncated { field })
    }

    /// An unsigned varint of at most 32 bits (five bytes, the last holding four bits).
    pub(super) fn unsigned_varint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = self
                .buf
                .try_get_u8()
                .map_err(|_| DecodeError::Truncated { field })?;
            if shift == 28 && byte > 0x0f {
                break;
            }
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Invalid {
            field,
            reason: "varint longer than 32 bits",
        })
    }

    /// The next `len` bytes, shared with the frame rather than copied.
    pub(super) fn take(&mut self, len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::Truncated { field });
        }
        Ok(self.buf.split_to(len))
    }

    /// A string or bytes length, or `None` for null. `classic_width` is the width of the
    /// classic length field: 2 bytes for strings, 4 for bytes and arrays.
    fn length(
        &mut self,
        field: &'static str,
        classic_width: Width,
    ) -> Result<Option<usize>, DecodeError> {
        let len = match (self.encoding, classic_width) {
            (Encoding::Classic, Width::Int16) => i64::from(self.i16(field)?),
            (Encoding::Classic, Width::Int32) => i64::from(self.i32(field)?),
            (Encoding::Flexible, _) => i64::from(self.unsigned_varint(field)?) - 1,
        };
        match len {
            -1 => Ok(None),
            // A length that does not fit `usize` is longer than any frame.
            len => usize::try_from(len)
                .map(Some)
                .map_err(|_| DecodeError::Invalid {
                    field,
                    reason: "negative length",
                }),
        }
    }

    pub(super) fn nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<StrBytes>, DecodeError> {
        let Some(len) = self.length(field, Width::Int16)? else {
            return Ok(None);
        };
        let bytes = self.take(len, field)?;
        StrBytes::from_utf8(bytes)
            .map(Some)
            .map_err(|_| DecodeError::Invalid {
                field,
                reason: "not UTF-8",
            })
    }

    pub(super) fn string(&mut self, field: &'static str) -> Result<StrBytes, DecodeError> {
        self.nullable_string(field)?.ok_or(DecodeError::Invalid {
            field,
            reason: "null where a value is required",
        })
    }

    pub(super) fn nullable_bytes(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Bytes>, DecodeError> {
        match self.length(field, Width::Int32)? {
            Some(len) => self.take(len, field).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn bytes(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(field)?.ok_or(DecodeError::Invalid {
            field,
            reason: "null where a value is required",
        })
    }

    /// An array whose elements `element` reads; `None` for null.
    pub(super) fn nullable_array<T>(
        &mut self,
        field: &'static str,
        mut element: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        let Some(count) = self.length(field, Width::Int32)? else {
            return Ok(None);
        };
        // Every element of every array in the supported schemas takes at least one byte.
        if count > self.remaining() {
            return Err(DecodeError::Invalid {
                field,
                reason: "array longer than the bytes left",
            });
        }
        let mut items = Vec::with_capacity(count.min(self.remaining() / size_of::<T>().max(1)));
        for _ in 0..count {
            items.push(element(self)?);
        }
        Ok(Some(items))
    }

    pub(super) fn array<T>(
        &mut self,
        field: &'static str,
        element: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        self.nullable_array(field, element)?
            .ok_or(DecodeError::Invalid {
                field,
                reason: "null where a value is required",
            })
    }

    /// The tagged fields that end a struct in a flexible version (none in a classic one), by
    /// tag, each value a slice of the frame. A repeated tag keeps its last value, as the
    /// `kafka-protocol` crate's decoders do.
    pub(super) fn tagged_fields(
        &mut self,
        field: &'static str,
    ) -> Result<BTreeMap<i32, Bytes>, DecodeError> {
        let mut fields = BTreeMap::new();
        if self.encoding == Encoding::Classic {
            return Ok(fields);
        }
        let count = self.unsigned_varint(field)?;
        // Each tagged field takes at least two bytes (its tag and its size).
        if usize::try_from(count).map_or(true, |count| count > self.remaining() / 2) {
            return Err(DecodeError::Invalid {
                field,
                reason: "more tagged fields than the bytes left hold",
            });
        }
        for _ in 0..count {
            let tag = self.unsigned_varint(field)?;
            let tag = i32::try_from(tag).map_err(|_| DecodeError::Invalid {
                field,
                reason: "tag above i32::MAX",
            })?;
            let size = self.unsigned_varint(field)?;
            let size = usize::try_from(size).map_err(|_| DecodeError::Truncated { field })?;
            let value = self.take(size, field)?;
            // A tag may appear once. Kept twice, the last would win here while a decoder that
            // reads tags in order (the `kafka-protocol` crate's) reads the first: the two
            // would see different requests in the same bytes.
            if fields.insert(tag, value).is_some() {
                return Err(DecodeError::Invalid {
                    field,
                    reason: "a tag repeated",
                });
            }
        }
        Ok(fields)
    }
}

/// Decodes the value of a known tagged field, which must fill its bytes exactly.
pub(super) fn tagged_value<T>(
    mut value: Bytes,
    field: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut reader = Reader::new(&mut value, Encoding::Flexible);
    let decoded = read(&mut reader)?;
    if reader.remaining() != 0 {
        return Err(DecodeError::Invalid {
            field,
            reason: "tagged field longer than its value",
        });
    }
    Ok(decoded)
}

/// The width of a length field in classic versions.
#[derive(Clone, Copy)]
enum Width {
    Int16,
    Int32,
}

//! Zig-zag variable-length integers, as Kafka's record format writes them (protobuf's encoding).
//!
//! A value is zig-zag mapped (`(n << 1) ^ (n >> 63)`) so that small negative numbers stay short,
//! then written seven bits at a time, low bits first, with the high bit of each byte set when more
//! bytes follow. An `i32` takes at most 5 bytes and an `i64` at most 10.

use super::DecodeError;

/// Bytes needed to write `value` as a zig-zag varlong.
pub(crate) fn varlong_len(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    // Each byte carries 7 bits; zero still takes one byte.
    let bits = 64 - (zigzag | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes needed to write `value` as a zig-zag varint.
pub(crate) fn varint_len(value: i32) -> usize {
    varlong_len(i64::from(value))
}

/// Writes `value` as a zig-zag varlong into `buf` at `at` and returns the position after it.
///
/// # Panics
/// If fewer than 10 bytes remain at `at` (callers size their buffers for the widest varint).
#[inline]
pub(crate) fn write_varlong(buf: &mut [u8], mut at: usize, value: i64) -> usize {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        buf[at] = (zigzag as u8) | 0x80;
        zigzag >>= 7;
        at += 1;
    }
    buf[at] = zigzag as u8;
    at + 1
}

/// Writes `value` as a zig-zag varint into `buf` at `at`; see [`write_varlong`].
#[inline]
pub(crate) fn write_varint(buf: &mut [u8], at: usize, value: i32) -> usize {
    write_varlong(buf, at, i64::from(value))
}

/// Appends `value` as a zig-zag varlong.
pub(crate) fn put_varlong(out: &mut Vec<u8>, value: i64) {
    // Encoded on the stack and copied once: one capacity check instead of one per byte.
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let mut encoded = [0u8; 10];
    let mut len = 0;
    while zigzag >= 0x80 {
        encoded[len] = (zigzag as u8) | 0x80;
        zigzag >>= 7;
        len += 1;
    }
    encoded[len] = zigzag as u8;
    out.extend_from_slice(&encoded[..=len]);
}

/// Appends `value` as a zig-zag varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_varlong(out, i64::from(value));
}

/// A cursor over untrusted bytes: every read checks what remains and fails with a typed error.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, position: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.position
    }

    /// Takes the next `len` bytes, or fails without consuming anything.
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::Truncated {
                needed: len,
                available: self.remaining(),
            });
        }
        let slice = &self.buf[self.position..self.position + len];
        self.position += len;
        Ok(slice)
    }

    pub(crate) fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(self.take(1)?[0] as i8)
    }

    /// Reads a zig-zag varlong of at most 10 bytes.
    pub(crate) fn varlong(&mut self) -> Result<i64, DecodeError> {
        let start = self.position;
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.position) else {
                self.position = start;
                return Err(DecodeError::Truncated {
                    needed: 1,
                    available: 0,
                });
            };
            self.position += 1;
            // The tenth byte may only carry the single remaining bit.
            if shift == 63 && byte > 1 {
                self.position = start;
                return Err(DecodeError::MalformedVarint { position: start });
            }
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        unreachable!("the loop returns by the tenth byte")
    }

    /// Reads a zig-zag varint of at most 5 bytes whose value fits an `i32`.
    pub(crate) fn varint(&mut self) -> Result<i32, DecodeError> {
        let start = self.position;
        let value = self.varlong()?;
        if self.position - start > 5 {
            self.position = start;
            return Err(DecodeError::MalformedVarint { position: start });
        }
        i32::try_from(value).map_err(|_| {
            self.position = start;
            DecodeError::MalformedVarint { position: start }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for &(value, bytes) in cases {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            assert_eq!(out, bytes, "encoding {value}");
            assert_eq!(varlong_len(value), bytes.len());
            assert_eq!(Reader::new(bytes).varlong().unwrap(), value);
        }
    }

    #[test]
    fn overlong_and_truncated_are_errors() {
        let overlong = [0xff; 11];
        assert!(matches!(
            Reader::new(&overlong).varlong(),
            Err(DecodeError::MalformedVarint { position: 0 })
        ));
        assert!(matches!(
            Reader::new(&[0x80, 0x80]).varlong(),
            Err(DecodeError::Truncated { .. })
        ));
        // Six bytes is too long for an i32 even when the value would fit.
        let six = [0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert!(Reader::new(&six).varint().is_err());
        let mut big = Vec::new();
        put_varlong(&mut big, i64::from(i32::MAX) + 1);
        assert!(Reader::new(&big).varint().is_err());
    }

    proptest! {
        #[test]
        fn varlong_round_trips(value: i64) {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            prop_assert_eq!(out.len(), varlong_len(value));
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.varlong().unwrap(), value);
            prop_assert_eq!(reader.remaining(), 0);
        }

        #[test]
        fn varint_round_trips(value: i32) {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            prop_assert_eq!(out.len(), varint_len(value));
            prop_assert_eq!(Reader::new(&out).varint().unwrap(), value);
        }
    }
}

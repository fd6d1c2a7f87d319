//! Kafka's non-flexible (pre-KIP-482) primitive encodings, as its internal records and the
//! consumer protocol use them: big-endian integers, `string` = int16 length + UTF-8, nullable
//! string length -1 = null, `bytes` = int32 length, arrays = int32 count. Reading treats the
//! bytes as untrusted: each length is checked against what remains before anything is
//! allocated.

use super::error::DecodeFailure;

pub(crate) type Decoded<T> = Result<T, DecodeFailure>;

/// Appends Kafka primitives to a buffer. Lengths that do not fit their field are refused by the
/// caller beforehand ([`check_string`]); here they are a bug.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn i16(&mut self, value: i16) -> &mut Self {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn i32(&mut self, value: i32) -> &mut Self {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// # Panics
    /// If `value` is longer than `i16::MAX` bytes (callers check with [`check_string`]).
    pub fn string(&mut self, value: &str) -> &mut Self {
        let length = i16::try_from(value.len()).expect("string lengths are checked by callers");
        self.i16(length);
        self.buf.extend_from_slice(value.as_bytes());
        self
    }

    pub fn nullable_string(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.string(value),
            None => self.i16(-1),
        }
    }

    /// # Panics
    /// If `value` is longer than `i32::MAX` bytes.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        let length = i32::try_from(value.len()).expect("a payload is smaller than 2 GiB");
        self.i32(length);
        self.buf.extend_from_slice(value);
        self
    }

    pub fn nullable_bytes(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(value) => self.bytes(value),
            None => self.i32(-1),
        }
    }

    /// # Panics
    /// If `count` exceeds `i32::MAX`.
    pub fn array_len(&mut self, count: usize) -> &mut Self {
        self.i32(i32::try_from(count).expect("arrays are smaller than 2^31"))
    }
}

/// Whether `value` fits a Kafka `string`.
pub(crate) fn check_string(value: &str) -> bool {
    value.len() <= i16::MAX as usize
}

/// Reads Kafka primitives from untrusted bytes.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, count: usize) -> Decoded<&'a [u8]> {
        if count > self.buf.len() {
            return Err(DecodeFailure("truncated"));
        }
        let (head, rest) = self.buf.split_at(count);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn i16(&mut self) -> Decoded<i16> {
        self.array().map(i16::from_be_bytes)
    }

    pub fn i32(&mut self) -> Decoded<i32> {
        self.array().map(i32::from_be_bytes)
    }

    pub fn i64(&mut self) -> Decoded<i64> {
        self.array().map(i64::from_be_bytes)
    }

    pub fn nullable_string(&mut self) -> Decoded<Option<String>> {
        let length = self.i16()?;
        if length < 0 {
            return if length == -1 {
                Ok(None)
            } else {
                Err(DecodeFailure("negative string length"))
            };
        }
        let bytes = self.take(length as usize)?;
        std::str::from_utf8(bytes)
            .map(|text| Some(text.to_owned()))
            .map_err(|_| DecodeFailure("string is not UTF-8"))
    }

    pub fn string(&mut self) -> Decoded<String> {
        self.nullable_string()?
            .ok_or(DecodeFailure("null where a string is required"))
    }

    pub fn nullable_bytes(&mut self) -> Decoded<Option<&'a [u8]>> {
        let length = self.i32()?;
        if length < 0 {
            return if length == -1 {
                Ok(None)
            } else {
                Err(DecodeFailure("negative bytes length"))
            };
        }
        self.take(length as usize).map(Some)
    }

    pub fn bytes(&mut self) -> Decoded<&'a [u8]> {
        self.nullable_bytes()?
            .ok_or(DecodeFailure("null where bytes are required"))
    }

    /// An array's element count, checked against the bytes left: each element takes at least
    /// `min_element_bytes`, so a count beyond that is a lie and nothing is reserved for it.
    pub fn array_len(&mut self, min_element_bytes: usize) -> Decoded<usize> {
        let count = self.i32()?;
        let count = usize::try_from(count).map_err(|_| DecodeFailure("negative array length"))?;
        if count.saturating_mul(min_element_bytes.max(1)) > self.remaining() {
            return Err(DecodeFailure("array longer than its bytes"));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut writer = Writer::default();
        writer
            .i16(-2)
            .i32(7)
            .i64(-9)
            .string("héllo")
            .nullable_string(None)
            .bytes(b"ab")
            .nullable_bytes(None)
            .array_len(0);
        let mut reader = Reader::new(&writer.buf);
        assert_eq!(reader.i16(), Ok(-2));
        assert_eq!(reader.i32(), Ok(7));
        assert_eq!(reader.i64(), Ok(-9));
        assert_eq!(reader.string().as_deref(), Ok("héllo"));
        assert_eq!(reader.nullable_string(), Ok(None));
        assert_eq!(reader.bytes(), Ok(&b"ab"[..]));
        assert_eq!(reader.nullable_bytes(), Ok(None));
        assert_eq!(reader.array_len(4), Ok(0));
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn lying_lengths_are_errors() {
        assert!(Reader::new(&[0, 5, b'a']).string().is_err());
        assert!(Reader::new(&[0xff, 0xfe]).nullable_string().is_err());
        assert!(Reader::new(&[0x7f, 0xff, 0xff, 0xff]).array_len(1).is_err());
        assert!(Reader::new(&[0, 2, 0xff, 0xfe]).string().is_err());
        assert!(Reader::new(&[1]).i16().is_err());
    }
}

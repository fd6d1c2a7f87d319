//! Byte-level helpers shared by the txn and snapshot codecs: big-endian integers and
//! length-prefixed byte strings, every length checked against the bytes that remain before
//! anything is allocated.

use super::error::{CodecError, PathError};
use super::path;

/// Appends fields to a buffer.
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// Writes to the end of `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { out }
    }

    pub fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    pub fn i32(&mut self, value: i32) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    pub fn i64(&mut self, value: i64) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    pub fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    /// A `u32` length then the bytes.
    ///
    /// # Panics
    /// If `bytes` is 4 GiB or more: callers bound data far below that.
    pub fn bytes(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("field of 4 GiB or more");
        self.u32(len);
        self.out.extend_from_slice(bytes);
    }
}

/// Reads fields from untrusted bytes.
pub struct Reader<'a> {
    input: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// Reads `input` from its start.
    pub fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { input, position: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    /// Fails unless every byte was read.
    ///
    /// # Errors
    /// [`CodecError::TrailingBytes`].
    pub fn finish(&self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            extra_bytes => Err(CodecError::TrailingBytes { extra_bytes }),
        }
    }

    /// The next `len` bytes.
    ///
    /// # Errors
    /// [`CodecError::Truncated`] if fewer remain.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        if len > self.remaining() {
            return Err(CodecError::Truncated {
                position: self.position,
                needed_bytes: len,
                remaining_bytes: self.remaining(),
            });
        }
        let taken = &self.input[self.position..self.position + len];
        self.position += len;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    pub fn i32(&mut self) -> Result<i32, CodecError> {
        self.array().map(i32::from_be_bytes)
    }

    pub fn i64(&mut self) -> Result<i64, CodecError> {
        self.array().map(i64::from_be_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, CodecError> {
        self.array().map(u32::from_be_bytes)
    }

    /// A `u32` length then that many bytes (checked against what remains first).
    ///
    /// # Errors
    /// [`CodecError::Truncated`].
    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.u32()?;
        // A u32 always fits a usize on the 32- and 64-bit targets logbus builds for.
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// A length-prefixed UTF-8 string that must be a valid znode path.
    ///
    /// # Errors
    /// `Truncated`, `BadUtf8` or `InvalidPath`.
    pub fn path(&mut self) -> Result<String, CodecError> {
        let position = self.position;
        let raw = self.bytes()?;
        let text = std::str::from_utf8(raw).map_err(|_| CodecError::BadUtf8 { position })?;
        path::check(text).map_err(|reason| invalid(text, reason))?;
        Ok(text.to_owned())
    }

    /// Like [`Reader::path`], and not the root.
    ///
    /// # Errors
    /// `Truncated`, `BadUtf8` or `InvalidPath`.
    pub fn non_root_path(&mut self) -> Result<String, CodecError> {
        let read = self.path()?;
        if read == path::ROOT {
            return Err(invalid(&read, PathError::Root));
        }
        Ok(read)
    }
}

fn invalid(path: &str, reason: PathError) -> CodecError {
    CodecError::InvalidPath {
        path: path.to_owned(),
        reason,
    }
}

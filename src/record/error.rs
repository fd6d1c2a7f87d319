use super::Compression;

/// Why bytes are not a valid record batch. Every decoding path returns one of these instead of
/// panicking, and none allocates more than the input it was given.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends before the structure it declares.
    #[error("truncated input: needed {needed} more bytes, {available} available")]
    Truncated { needed: usize, available: usize },
    /// The magic byte is not 2 (record batch v2); older message formats are not read.
    #[error("unsupported magic {magic}: only record batch v2 is supported")]
    UnsupportedMagic { magic: i8 },
    /// The batch length field is below the header size or above the allowed maximum.
    #[error("batch length {length} is outside {min}..={max}")]
    BadBatchLength { length: i64, min: usize, max: usize },
    /// The CRC-32C over attributes to the end of the batch does not match the stored one.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    /// The records are compressed with a codec this build cannot decompress.
    #[error("unsupported compression codec {0}")]
    UnsupportedCompression(Compression),
    /// A varint runs past its maximum width or does not fit its type.
    #[error("malformed varint at byte {position}")]
    MalformedVarint { position: usize },
    /// A field holds a value the format does not allow.
    #[error("field {field} has invalid value {value}")]
    InvalidField { field: &'static str, value: i64 },
    /// The records section does not hold exactly the declared number of records.
    #[error("batch declares {declared} records but holds {found}")]
    RecordCountMismatch { declared: i32, found: usize },
}

//! Kafka's record batch format, magic 2, byte for byte. Pure encode and decode, no I/O.
//!
//! A [`RecordBatch`] is a validated batch (length and CRC checked) holding its bytes; iterating
//! its [`Records`] yields keys and values as slices of those bytes. [`BatchBuilder`] writes a
//! batch. Everything read here is treated as untrusted input: every error is a [`DecodeError`]
//! and no allocation is sized by a length field.

mod batch;
mod builder;
mod error;
mod filter;
mod records;
mod varint;

pub use batch::{
    stamp_log_append_time, stamp_offset_and_epoch, stamp_producer_state, validate, Attributes,
    BatchHeader, Batches, Compression, RecordBatch, TimestampType, BATCH_HEADER_BYTES,
    LOG_OVERHEAD_BYTES, MAGIC_V2,
};
pub use builder::{record_bytes_bound, BatchBuilder, BatchSpec};
pub use error::DecodeError;
pub(crate) use filter::{filter_batch, FilterOptions, FilterResult, Filtered};
pub use records::{Header, Headers, HeadersIter, Record, Records};

//! The responses a broker reads from its peers (`KafkaTransport`): Fetch v12 and
//! OffsetForLeaderEpoch v4, decoded with the same bounds as requests (the `kafka-protocol`
//! crate's response decoders preallocate by counts read from the wire, as its request decoders
//! do) straight into the replication layer's types.
//!
//! ```text
//! response header v0: correlation_id INT32        v1: the same, then tagged fields
//!
//! FetchResponse v12 (flexible)                    OffsetForLeaderEpochResponse v4 (flexible)
//!   throttle_time_ms INT32                          throttle_time_ms INT32
//!   error_code INT16                                topics ARRAY of
//!   session_id INT32                                  topic STRING
//!   responses ARRAY of                                partitions ARRAY of
//!     topic STRING                                      error_code INT16
//!     partitions ARRAY of                               partition INT32
//!       partition_index INT32                           leader_epoch INT32
//!       error_code INT16                                end_offset INT64
//!       high_watermark INT64                            tagged fields
//!       last_stable_offset INT64                      tagged fields
//!       log_start_offset INT64                      tagged fields
//!       aborted_transactions nullable ARRAY of
//!         { producer_id INT64, first_offset INT64, tagged fields }
//!       preferred_read_replica INT32
//!       records nullable BYTES
//!       tagged fields (10000: log end offset, see `peer`)
//!     tagged fields
//!   tagged fields
//! ```

use std::sync::Arc;

use bytes::Bytes;

use super::peer::{read_i64_tag, LOG_END_OFFSET_TAG};
use super::reader::{Encoding, Reader};
use super::DecodeError;
use crate::kafka::errors::replica_error_of;
use crate::replication::{
    EpochAnswer, EpochResponse, FetchResponse, FetchedData, FetchedPartition,
};

/// Reads a response header of `header_version` (0 or 1) and returns its correlation id.
///
/// # Errors
/// `Truncated` or `Invalid`.
pub fn decode_response_header(frame: &mut Bytes, header_version: i16) -> Result<i32, DecodeError> {
    let correlation_id = Reader::new(frame, Encoding::Classic).i32("correlation_id")?;
    if header_version >= 1 {
        Reader::new(frame, Encoding::Flexible).tagged_fields("response header tagged fields")?;
    }
    Ok(correlation_id)
}

/// A Fetch v12 answer: its top-level error code, and its partitions.
///
/// # Errors
/// `Truncated`, `Invalid` (a negative offset in a partition without error, a negative
/// partition index) or `TrailingBytes`.
pub fn decode_fetch_response(body: &mut Bytes) -> Result<(i16, FetchResponse), DecodeError> {
    let mut r = Reader::new(body, Encoding::Flexible);
    let _throttle_time_ms = r.i32("throttle_time_ms")?;
    let error_code = r.i16("error_code")?;
    let _session_id = r.i32("session_id")?;
    let topics = r.array("responses", |r| {
        let topic: Arc<str> = Arc::from(r.string("responses.topic")?.as_str());
        let partitions = r.array("responses.partitions", |r| fetched_partition(r, &topic))?;
        r.tagged_fields("FetchableTopicResponse")?;
        Ok(partitions)
    })?;
    r.tagged_fields("FetchResponse")?;
    end(&r)?;
    let partitions = topics.into_iter().flatten().collect();
    Ok((error_code, FetchResponse { partitions }))
}

fn fetched_partition(
    r: &mut Reader<'_>,
    topic: &Arc<str>,
) -> Result<FetchedPartition, DecodeError> {
    let partition = offset_or_index(r.i32("partition_index")?, "partition_index")?;
    let error_code = r.i16("error_code")?;
    let high_watermark = r.i64("high_watermark")?;
    let _last_stable_offset = r.i64("last_stable_offset")?;
    let log_start_offset = r.i64("log_start_offset")?;
    r.nullable_array("aborted_transactions", |r| {
        let _producer_id = r.i64("aborted_transactions.producer_id")?;
        let _first_offset = r.i64("aborted_transactions.first_offset")?;
        r.tagged_fields("AbortedTransaction").map(drop)
    })?;
    let _preferred_read_replica = r.i32("preferred_read_replica")?;
    let records = r.nullable_bytes("records")?.unwrap_or_default();
    let mut tags = r.tagged_fields("PartitionData")?;
    let result = match replica_error_of(error_code) {
        Some(error) => Err(error),
        None => {
            let high_watermark = offset_or_index(high_watermark, "high_watermark")?;
            let log_end_offset = match tags.remove(&LOG_END_OFFSET_TAG) {
                Some(value) => {
                    offset_or_index(read_i64_tag(value, "log_end_offset")?, "log_end_offset")?
                }
                // A leader that does not send it: its high watermark is a floor of it.
                None => high_watermark,
            };
            Ok(FetchedData {
                high_watermark,
                log_start_offset: offset_or_index(log_start_offset, "log_start_offset")?,
                log_end_offset,
                records,
            })
        }
    };
    Ok(FetchedPartition {
        topic: Arc::clone(topic),
        partition,
        result,
    })
}

/// An OffsetForLeaderEpoch v4 answer.
///
/// # Errors
/// `Truncated`, `Invalid` or `TrailingBytes`.
pub fn decode_offset_for_leader_epoch_response(
    body: &mut Bytes,
) -> Result<EpochResponse, DecodeError> {
    let mut r = Reader::new(body, Encoding::Flexible);
    let _throttle_time_ms = r.i32("throttle_time_ms")?;
    let topics = r.array("topics", |r| {
        let topic: Arc<str> = Arc::from(r.string("topics.topic")?.as_str());
        let partitions = r.array("topics.partitions", |r| epoch_answer(r, &topic))?;
        r.tagged_fields("OffsetForLeaderTopicResult")?;
        Ok(partitions)
    })?;
    r.tagged_fields("OffsetForLeaderEpochResponse")?;
    end(&r)?;
    Ok(EpochResponse {
        partitions: topics.into_iter().flatten().collect(),
    })
}

fn epoch_answer(r: &mut Reader<'_>, topic: &Arc<str>) -> Result<EpochAnswer, DecodeError> {
    let error_code = r.i16("error_code")?;
    let partition = offset_or_index(r.i32("partition")?, "partition")?;
    let leader_epoch = r.i32("leader_epoch")?;
    let end_offset = r.i64("end_offset")?;
    r.tagged_fields("EpochEndOffset")?;
    let result = match replica_error_of(error_code) {
        Some(error) => Err(error),
        // Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET: the leader has no such epoch.
        None if leader_epoch < 0 || end_offset < 0 => Ok(None),
        None => Ok(Some((leader_epoch, end_offset as u64))),
    };
    Ok(EpochAnswer {
        topic: Arc::clone(topic),
        partition,
        result,
    })
}

/// A non-negative number read as an unsigned one.
fn offset_or_index<T: TryFrom<U>, U>(value: U, field: &'static str) -> Result<T, DecodeError> {
    T::try_from(value).map_err(|_| DecodeError::Invalid {
        field,
        reason: "negative where an offset or index is required",
    })
}

fn end(r: &Reader<'_>) -> Result<(), DecodeError> {
    match r.remaining() {
        0 => Ok(()),
        bytes => Err(DecodeError::TrailingBytes { bytes }),
    }
}

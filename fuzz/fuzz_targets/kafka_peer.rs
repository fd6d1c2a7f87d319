//! Bytes from a peer broker, decoded as a broker reads them: a follower reads the leader's
//! Fetch v12 and OffsetForLeaderEpoch v4 responses and the answers to the private LeaderAndIsr
//! and ControlledShutdown messages (`KafkaTransport`); a broker reads those private requests
//! (`KafkaServer`). Each decoder returns a value or an error, never a panic, and no allocation
//! made while decoding is out of proportion to the bytes.
//!
//! Where a value can be checked, it is:
//! - The private messages have one encoding per value (fixed widths, no tagged fields), so what
//!   a decoder accepts must encode back to the same bytes.
//! - Fetch and OffsetForLeaderEpoch: the fuzz bytes describe a response, the `kafka-protocol`
//!   crate encodes it, and ours must read from those bytes what the crate's own decoder reads,
//!   or refuse exactly what the replication layer cannot take (a negative partition index,
//!   offset or log end offset in a partition without error). Every cut of those bytes is an
//!   error. Arbitrary bytes are not compared with the crate's decoder: ours skips a tagged
//!   field by its size, while the crate reads Fetch's tags 0 to 2 as structs whatever their
//!   size, so on malformed bytes the two readings part ways and the crate's then preallocates
//!   by counts ours never checked.
//!
//! Input: byte 0 is a mode (taken modulo 7), the rest its bytes.
//! - 0 to 3: a response frame (header, then body) to Fetch, OffsetForLeaderEpoch, LeaderAndIsr
//!   or ControlledShutdown.
//! - 4: byte 1 picks a private request and its version (bit 0: LeaderAndIsr or
//!   ControlledShutdown; bit 1: version 0 or 1, which is refused), the rest is its body.
//! - 5 and 6: a Fetch or an OffsetForLeaderEpoch response built from the bytes.

#![no_main]

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset as DivergingEpoch, FetchableTopicResponse, LeaderIdAndEpoch,
    PartitionData, SnapshotId,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchResponse, OffsetForLeaderEpochResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use libfuzzer_sys::arbitrary::{Result as Built, Unstructured};
use libfuzzer_sys::fuzz_target;
use logbus::kafka::decode::peer::{
    decode_controlled_shutdown_response, decode_leader_and_isr_response, decode_peer_request,
    encode_controlled_shutdown_response, encode_leader_and_isr_response, encode_peer_request,
    i64_tag, CONTROLLED_SHUTDOWN_KEY, LEADER_AND_ISR_KEY, LOG_END_OFFSET_TAG,
};
use logbus::kafka::decode::response::{
    decode_fetch_response, decode_offset_for_leader_epoch_response, decode_response_header,
};
use logbus::kafka::decode::DecodeError;
use logbus::replication;

#[path = "../../tests/support/tracking_allocator.rs"]
mod tracking_allocator;
use tracking_allocator::{largest_allocation, TrackingAllocator};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// The versions `KafkaTransport` speaks.
const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;

/// How much larger than its bytes a decoded message may be held in memory. The densest case is
/// a topic's list of partitions: a 24-byte `Vec` from 3 bytes on the wire (an empty name, an
/// empty array, no tagged fields), so 8 bytes per byte, and twice that while a `Vec` doubles.
const MEMORY_PER_WIRE_BYTE: usize = 16;
/// Allocations any decode may make whatever its input (a tagged-field map's node, the shared
/// header of a `Bytes`, a topic name).
const BOOKKEEPING_BYTES: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 7 {
        0 => fetch_frame(rest),
        1 => epoch_frame(rest),
        2 => leader_and_isr_frame(rest),
        3 => controlled_shutdown_frame(rest),
        4 => peer_request(rest),
        5 => built_fetch(&mut Unstructured::new(rest)),
        _ => built_epoch(&mut Unstructured::new(rest)),
    }
});

/// Runs `decode` on a copy of `bytes` and checks its largest allocation against their length.
fn bounded<T>(bytes: &[u8], decode: impl FnOnce(&mut Bytes) -> T) -> T {
    let mut input = Bytes::copy_from_slice(bytes);
    let (result, largest) = largest_allocation(|| decode(&mut input));
    assert!(
        largest <= bytes.len() * MEMORY_PER_WIRE_BYTE + BOOKKEEPING_BYTES,
        "a {largest}-byte allocation for {} bytes",
        bytes.len()
    );
    result
}

/// A response frame's header of `header_version`, then its body for `body`, as
/// `KafkaTransport` reads them.
fn frame<T>(
    bytes: &[u8],
    header_version: i16,
    body: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    bounded(bytes, |frame| {
        decode_response_header(frame, header_version)?;
        body(frame)
    })
}

fn fetch_frame(bytes: &[u8]) {
    let header_version = ApiKey::Fetch.response_header_version(FETCH_VERSION);
    let _ = frame(bytes, header_version, decode_fetch_response);
}

fn epoch_frame(bytes: &[u8]) {
    let key = ApiKey::OffsetForLeaderEpoch;
    let header_version = key.response_header_version(OFFSET_FOR_LEADER_EPOCH_VERSION);
    let _ = frame(
        bytes,
        header_version,
        decode_offset_for_leader_epoch_response,
    );
}

/// The private responses use header v0: a 4-byte correlation id, then the body.
const PRIVATE_HEADER_BYTES: usize = 4;

fn leader_and_isr_frame(bytes: &[u8]) {
    if let Ok(code) = frame(bytes, 0, decode_leader_and_isr_response) {
        let body = &bytes[PRIVATE_HEADER_BYTES..];
        assert_eq!(
            encode_leader_and_isr_response(code),
            body,
            "another reading"
        );
    }
}

fn controlled_shutdown_frame(bytes: &[u8]) {
    if let Ok((code, remaining)) = frame(bytes, 0, decode_controlled_shutdown_response) {
        let body = &bytes[PRIVATE_HEADER_BYTES..];
        let again = encode_controlled_shutdown_response(code, remaining);
        assert_eq!(again, body, "another reading");
    }
}

fn peer_request(bytes: &[u8]) {
    let Some((&pick, body)) = bytes.split_first() else {
        return;
    };
    let key = if pick & 1 == 0 {
        LEADER_AND_ISR_KEY
    } else {
        CONTROLLED_SHUTDOWN_KEY
    };
    let version = i16::from((pick >> 1) & 1);
    let decoded = bounded(body, |body| decode_peer_request(key, version, body));
    match decoded {
        Ok(request) => {
            assert_eq!(version, 0, "only version 0 is served");
            assert_eq!(encode_peer_request(&request), body, "another reading");
        }
        Err(DecodeError::UnsupportedVersion { .. }) => assert_eq!(version, 1),
        Err(_) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Responses built from the fuzz bytes

/// Encodes `message`, checks that ours reads it as the crate does (`expected` maps the crate's
/// reading to ours, `None` where ours must refuse it), and that a cut of it is an error.
fn agree<M, T>(
    u: &mut Unstructured<'_>,
    message: &M,
    version: i16,
    decode: impl Fn(&mut Bytes) -> Result<T, DecodeError>,
    expected: impl FnOnce(&M) -> Option<T>,
) where
    M: Encodable + Decodable,
    T: PartialEq + std::fmt::Debug,
{
    let mut encoded = BytesMut::new();
    message
        .encode(&mut encoded, version)
        .expect("a built response encodes");
    let bytes = encoded.freeze();
    let theirs = M::decode(&mut bytes.clone(), version).expect("the crate reads its own bytes");
    match (bounded(&bytes, &decode), expected(&theirs)) {
        (Ok(ours), Some(expected)) => assert_eq!(ours, expected, "ours reads them otherwise"),
        (Err(DecodeError::Invalid { .. }), None) => {}
        (ours, expected) => panic!("ours: {ours:?}, expected: {expected:?}"),
    }
    let cut = u
        .int_in_range(0..=bytes.len().saturating_sub(1))
        .unwrap_or(0);
    assert!(
        bounded(&bytes[..cut], &decode).is_err(),
        "the first {cut} of {} bytes decode",
        bytes.len()
    );
}

fn built_fetch(u: &mut Unstructured<'_>) {
    let Ok(response) = fetch_response(u) else {
        return;
    };
    agree(
        u,
        &response,
        FETCH_VERSION,
        |body| decode_fetch_response(body).map(|(code, answer)| (code, fetched(&answer))),
        |theirs| Some((theirs.error_code, expected_fetch(theirs)?)),
    );
}

fn built_epoch(u: &mut Unstructured<'_>) {
    let Ok(response) = epoch_response(u) else {
        return;
    };
    agree(
        u,
        &response,
        OFFSET_FOR_LEADER_EPOCH_VERSION,
        |body| decode_offset_for_leader_epoch_response(body).map(|answer| answered(&answer)),
        expected_epochs,
    );
}

/// A partition's outcome as a follower sees it, whichever error it is (the mapping of error
/// codes is the transport's, and private): `None` for an error, else (high watermark, log
/// start offset, log end offset, records).
type Fetched = Vec<(Arc<str>, u32, Option<(u64, u64, u64, Bytes)>)>;

fn fetched(answer: &replication::FetchResponse) -> Fetched {
    let data = |d: &replication::FetchedData| {
        let records = d.records.clone();
        (
            d.high_watermark,
            d.log_start_offset,
            d.log_end_offset,
            records,
        )
    };
    answer
        .partitions
        .iter()
        .map(|p| {
            (
                Arc::clone(&p.topic),
                p.partition,
                p.result.as_ref().ok().map(data),
            )
        })
        .collect()
}

/// What a follower should read from the crate's reading; `None` where ours must refuse it.
fn expected_fetch(response: &FetchResponse) -> Option<Fetched> {
    let mut partitions = Vec::new();
    for topic in &response.responses {
        let name: Arc<str> = Arc::from(topic.topic.0.as_str());
        for p in &topic.partitions {
            let index = u32::try_from(p.partition_index).ok()?;
            let data = if p.error_code == 0 {
                let high_watermark = u64::try_from(p.high_watermark).ok()?;
                let log_end_offset = match p.unknown_tagged_fields.get(&LOG_END_OFFSET_TAG) {
                    Some(value) => {
                        let value = <[u8; 8]>::try_from(&value[..]).ok()?;
                        u64::try_from(i64::from_be_bytes(value)).ok()?
                    }
                    None => high_watermark,
                };
                Some((
                    high_watermark,
                    u64::try_from(p.log_start_offset).ok()?,
                    log_end_offset,
                    p.records.clone().unwrap_or_default(),
                ))
            } else {
                None
            };
            partitions.push((Arc::clone(&name), index, data));
        }
    }
    Some(partitions)
}

/// An epoch answer as a follower sees it: `None` for an error, else the epoch and its end.
type Answered = Vec<(Arc<str>, u32, Option<Option<(i32, u64)>>)>;

fn answered(answer: &replication::EpochResponse) -> Answered {
    answer
        .partitions
        .iter()
        .map(|p| (Arc::clone(&p.topic), p.partition, p.result.ok()))
        .collect()
}

fn expected_epochs(response: &OffsetForLeaderEpochResponse) -> Option<Answered> {
    let mut partitions = Vec::new();
    for topic in &response.topics {
        let name: Arc<str> = Arc::from(topic.topic.0.as_str());
        for p in &topic.partitions {
            let index = u32::try_from(p.partition).ok()?;
            let answer = (p.error_code == 0).then(|| {
                // Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET: no such epoch.
                u64::try_from(p.end_offset)
                    .ok()
                    .filter(|_| p.leader_epoch >= 0)
                    .map(|end| (p.leader_epoch, end))
            });
            partitions.push((Arc::clone(&name), index, answer));
        }
    }
    Some(partitions)
}

// ---- Building responses ---------------------------------------------------------------------

fn fetch_response(u: &mut Unstructured<'_>) -> Built<FetchResponse> {
    let mut response = FetchResponse::default();
    response.throttle_time_ms = u.arbitrary()?;
    response.error_code = error_code(u)?;
    response.session_id = u.arbitrary()?;
    response.responses = list(u, |u| {
        let mut topic = FetchableTopicResponse::default();
        topic.topic = TopicName(StrBytes::from_string(u.arbitrary()?));
        topic.partitions = list(u, partition_data)?;
        topic.unknown_tagged_fields = unknown_tags(u)?;
        Ok(topic)
    })?;
    response.unknown_tagged_fields = unknown_tags(u)?;
    Ok(response)
}

/// A partition with a value in every field, the crate's own tagged fields (which ours skips)
/// included, and the log end offset's tag when a coin says so.
fn partition_data(u: &mut Unstructured<'_>) -> Built<PartitionData> {
    let mut partition = PartitionData::default();
    partition.partition_index = index(u)?;
    partition.error_code = error_code(u)?;
    partition.high_watermark = offset(u)?;
    partition.last_stable_offset = u.arbitrary()?;
    partition.log_start_offset = offset(u)?;
    if u.arbitrary()? {
        partition.diverging_epoch = DivergingEpoch::default()
            .with_epoch(u.arbitrary()?)
            .with_end_offset(u.arbitrary()?);
    }
    if u.arbitrary()? {
        partition.current_leader = LeaderIdAndEpoch::default()
            .with_leader_id(BrokerId(u.arbitrary()?))
            .with_leader_epoch(u.arbitrary()?);
    }
    if u.arbitrary()? {
        partition.snapshot_id = SnapshotId::default()
            .with_end_offset(u.arbitrary()?)
            .with_epoch(u.arbitrary()?);
    }
    partition.aborted_transactions = if u.arbitrary()? {
        Some(list(u, |u| {
            Ok(AbortedTransaction::default()
                .with_producer_id(ProducerId(u.arbitrary()?))
                .with_first_offset(u.arbitrary()?))
        })?)
    } else {
        None
    };
    partition.preferred_read_replica = BrokerId(u.arbitrary()?);
    partition.records = if u.arbitrary()? {
        Some(Bytes::copy_from_slice(u.arbitrary::<&[u8]>()?))
    } else {
        None
    };
    partition.unknown_tagged_fields = unknown_tags(u)?;
    if u.arbitrary()? {
        let log_end_offset = offset(u)?;
        partition
            .unknown_tagged_fields
            .insert(LOG_END_OFFSET_TAG, i64_tag(log_end_offset));
    }
    Ok(partition)
}

fn epoch_response(u: &mut Unstructured<'_>) -> Built<OffsetForLeaderEpochResponse> {
    let mut response = OffsetForLeaderEpochResponse::default();
    response.throttle_time_ms = u.arbitrary()?;
    response.topics = list(u, |u| {
        let mut topic = OffsetForLeaderTopicResult::default();
        topic.topic = TopicName(StrBytes::from_string(u.arbitrary()?));
        topic.partitions = list(u, |u| {
            let mut partition = EpochEndOffset::default();
            partition.error_code = error_code(u)?;
            partition.partition = index(u)?;
            partition.leader_epoch = if u.ratio(1, 8)? { -1 } else { index(u)? };
            partition.end_offset = offset(u)?;
            partition.unknown_tagged_fields = unknown_tags(u)?;
            Ok(partition)
        })?;
        topic.unknown_tagged_fields = unknown_tags(u)?;
        Ok(topic)
    })?;
    response.unknown_tagged_fields = unknown_tags(u)?;
    Ok(response)
}

/// Up to 8 elements, so the bytes reach inside them rather than into a long list.
fn list<T>(
    u: &mut Unstructured<'_>,
    mut element: impl FnMut(&mut Unstructured<'_>) -> Built<T>,
) -> Built<Vec<T>> {
    let count = u.int_in_range(0..=8)?;
    (0..count).map(|_| element(u)).collect()
}

/// Mostly NONE, the code of a partition that answers data.
fn error_code(u: &mut Unstructured<'_>) -> Built<i16> {
    if u.ratio(1, 4)? {
        u.arbitrary()
    } else {
        Ok(0)
    }
}

/// Mostly a valid offset; now and then a negative one, which ours refuses without an error.
fn offset(u: &mut Unstructured<'_>) -> Built<i64> {
    if u.ratio(1, 16)? {
        u.int_in_range(i64::MIN..=-1)
    } else {
        u.int_in_range(0..=i64::MAX)
    }
}

/// Mostly a valid partition index; now and then a negative one, which ours refuses.
fn index(u: &mut Unstructured<'_>) -> Built<i32> {
    if u.ratio(1, 16)? {
        u.int_in_range(i32::MIN..=-1)
    } else {
        u.int_in_range(0..=i32::MAX)
    }
}

/// Tags the crate does not know in any struct of these responses (its own are 0 to 2), nor
/// ours (10 000).
fn unknown_tags(u: &mut Unstructured<'_>) -> Built<std::collections::BTreeMap<i32, Bytes>> {
    let count = u.int_in_range(0..=2)?;
    let mut tags = std::collections::BTreeMap::new();
    for _ in 0..count {
        let tag = u.int_in_range(3..=LOG_END_OFFSET_TAG - 1)?;
        tags.insert(tag, Bytes::copy_from_slice(u.arbitrary::<&[u8]>()?));
    }
    Ok(tags)
}

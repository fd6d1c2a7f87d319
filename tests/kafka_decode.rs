//! The Kafka request decoders against the `kafka-protocol` crate's encoders and decoders, and
//! against hostile bytes.
//!
//! Round trips: for every API and version served, a request with a value in every field that
//! version has (several array elements, null and non-null nullable fields, tagged fields in
//! flexible versions) is encoded by the crate and decoded by ours; the result must equal both
//! the request and what the crate's own decoder makes of the bytes.
//!
//! Hostile input: truncations, lying lengths and counts, mutations and random bytes give an
//! error or (for mutations that happen to be valid) the crate's own answer, never a panic, and
//! no allocation made while decoding is out of proportion to the input.

#![cfg(feature = "kafka")]

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
// The request types are named by `for_each_api!`.
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    RequestHeader as WireHeader, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use logbus::kafka::decode::{
    decode_header, decode_request, DecodeError, KafkaRequest, RequestHeader, SUPPORTED_APIS,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Allocation tracking

#[path = "support/tracking_allocator.rs"]
mod tracking_allocator;
use tracking_allocator::{largest_allocation, TrackingAllocator};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// How much larger than its bytes on the wire a decoded request may be held in memory: an
/// element can take one byte on the wire (an empty compact string) and a few dozen in memory
/// (a `StrBytes`, a struct with a tagged-field map), and a growing `Vec` doubles.
const MEMORY_PER_WIRE_BYTE: usize = 128;
/// Allocations any decode may make whatever its input (a map node, an error).
const BOOKKEEPING_BYTES: usize = 1024;

/// Decodes `body` as `version` of `key` and returns the result with the largest single
/// allocation made meanwhile.
fn decode_tracked(
    key: ApiKey,
    version: i16,
    body: &[u8],
) -> (Result<KafkaRequest, DecodeError>, usize) {
    let header = header(key, version);
    let mut body = Bytes::copy_from_slice(body);
    largest_allocation(|| decode_request(&header, &mut body))
}

/// Decodes like [`decode_tracked`] and checks the allocation bound.
fn decode_bounded(key: ApiKey, version: i16, body: &[u8]) -> Result<KafkaRequest, DecodeError> {
    let (result, largest) = decode_tracked(key, version, body);
    assert!(
        largest <= body.len() * MEMORY_PER_WIRE_BYTE + BOOKKEEPING_BYTES,
        "{key:?} v{version}: a {largest}-byte allocation for a {}-byte body",
        body.len()
    );
    result
}

fn header(key: ApiKey, version: i16) -> RequestHeader {
    RequestHeader {
        api_key: key as i16,
        api_version: version,
        correlation_id: 7,
        client_id: None,
    }
}

#[macro_use]
#[path = "support/kafka_samples.rs"]
mod kafka_samples;
use kafka_samples::{crate_decode, encode, versions, Sample, Values};

// ---------------------------------------------------------------------------------------------
// Round trips

/// Encodes a sample of every version with the crate and decodes it with ours.
fn round_trip<T: Sample>(seed: u64) {
    for version in versions::<T>() {
        let request = T::sample(version, &mut Values::new(seed));
        let body = encode(&request, version);
        let decoded = decode_bounded(T::KEY, version, &body)
            .unwrap_or_else(|e| panic!("{:?} v{version} seed {seed}: {e}", T::KEY));
        let decoded = T::unwrap(decoded).expect("the variant of the key");
        assert_eq!(decoded, request, "{:?} v{version} seed {seed}", T::KEY);
        assert_eq!(
            decoded,
            crate_decode::<T>(&body, version),
            "{:?} v{version}",
            T::KEY
        );
    }
}

#[test]
fn every_api_and_version_round_trips() {
    // Even and odd seeds put null and non-null values in every nullable field.
    for seed in 0..8 {
        for_each_api!(round_trip(seed));
    }
}

#[test]
fn every_api_in_the_table_has_a_sample() {
    let mut sampled = Vec::new();
    fn key<T: Sample>(keys: &mut Vec<ApiKey>) {
        keys.push(T::KEY);
    }
    for_each_api!(key(&mut sampled));
    let served: Vec<ApiKey> = SUPPORTED_APIS.iter().map(|api| api.key).collect();
    assert_eq!(sampled, served);
}

#[test]
fn records_are_a_slice_of_the_frame() {
    let request = ProduceRequest::sample(9, &mut Values::new(1));
    let body = encode(&request, 9);
    let mut frame = body.clone();
    let Ok(KafkaRequest::Produce(decoded)) =
        decode_request(&header(ApiKey::Produce, 9), &mut frame)
    else {
        panic!("a produce request decodes");
    };
    let frame_range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    let records: Vec<Bytes> = decoded
        .topic_data
        .iter()
        .flat_map(|topic| &topic.partition_data)
        .filter_map(|partition| partition.records.clone())
        .filter(|records| !records.is_empty())
        .collect();
    assert!(!records.is_empty(), "the sample carries records");
    for records in records {
        assert!(
            frame_range.contains(&(records.as_ptr() as usize)),
            "records were copied out of the frame"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Headers

fn wire_header(key: ApiKey, version: i16, client_id: Option<&'static str>) -> WireHeader {
    WireHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(-12345)
        .with_client_id(client_id.map(StrBytes::from_static_str))
}

/// Encodes `header` as header `header_version`, then `body`, and decodes the header back.
fn frame_header(header: &WireHeader, header_version: i16, body: &[u8]) -> (RequestHeader, Bytes) {
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, header_version)
        .expect("the header encodes");
    buf.put_slice(body);
    let mut frame = buf.freeze();
    let decoded = decode_header(&mut frame).expect("the header decodes");
    (decoded, frame)
}

/// Header v0 (no client id) belonged to ControlledShutdown v0 alone, which Kafka 4 and the crate
/// dropped: every key and version the crate knows has a v1 or v2 header, and a v0-era frame
/// (key 7) is read as v1 and answered `UnknownApi` with its correlation id.
#[test]
fn header_v0_is_gone_and_its_frame_reads_as_v1() {
    for key in ApiKey::iter() {
        let versions = key.valid_versions();
        for version in versions.min..=versions.max {
            assert!(
                key.request_header_version(version) >= 1,
                "{key:?} v{version}"
            );
        }
    }
    // ControlledShutdown v0: key, version, correlation id, then a body (broker id 1).
    let mut frame = Bytes::from_static(&[0, 7, 0, 0, 0, 0, 0, 42, 0, 0, 0, 1]);
    let header = decode_header(&mut frame).expect("decodes as v1");
    assert_eq!(header.correlation_id, 42);
    assert_eq!(
        header.client_id.as_deref(),
        Some(""),
        "half the broker id read as a length"
    );
    assert_eq!(
        decode_request(&header, &mut frame),
        Err(DecodeError::UnknownApi { api_key: 7 })
    );
}

#[test]
fn header_v1_reads_the_client_id_and_null() {
    for client_id in [Some("client-é"), Some(""), None] {
        let wire = wire_header(ApiKey::Metadata, 4, client_id);
        let (header, body) = frame_header(&wire, 1, b"body");
        assert_eq!(header.api_key, ApiKey::Metadata as i16);
        assert_eq!(header.api_version, 4);
        assert_eq!(header.correlation_id, -12345);
        assert_eq!(header.client_id.as_deref(), client_id);
        assert_eq!(&body[..], b"body");
    }
}

#[test]
fn header_v2_skips_tagged_fields() {
    let wire = wire_header(ApiKey::Metadata, 12, Some("c"))
        .with_unknown_tagged_field(3, Bytes::from_static(b"tagged"))
        .with_unknown_tagged_field(900, Bytes::from_static(b""));
    let (header, body) = frame_header(&wire, 2, b"body");
    assert_eq!(header.client_id.as_deref(), Some("c"));
    assert_eq!(header.api_version, 12);
    assert_eq!(&body[..], b"body");
}

#[test]
fn an_unknown_key_yields_its_correlation_id_and_unknown_api() {
    let wire = wire_header(ApiKey::Metadata, 0, Some("c")).with_request_api_key(999);
    let (header, mut body) = frame_header(&wire, 1, b"");
    assert_eq!(header.correlation_id, -12345);
    assert_eq!(
        decode_request(&header, &mut body),
        Err(DecodeError::UnknownApi { api_key: 999 })
    );
}

#[test]
fn an_unknown_api_versions_version_yields_its_correlation_id() {
    // A client newer than this server sends its newest ApiVersions with a v2 header; the
    // server must still answer with the correlation id (and its own version range).
    let wire = wire_header(ApiKey::ApiVersions, 99, Some("newer"))
        .with_unknown_tagged_field(5, Bytes::from_static(b"x"));
    let (header, mut body) = frame_header(&wire, 2, b"\x00");
    assert_eq!(header.correlation_id, -12345);
    assert_eq!(header.client_id.as_deref(), Some("newer"));
    assert_eq!(
        decode_request(&header, &mut body),
        Err(DecodeError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions as i16,
            version: 99
        })
    );
}

#[test]
fn a_known_api_at_a_version_not_served_is_unsupported() {
    for api in SUPPORTED_APIS {
        for version in [api.min_version - 1, api.max_version + 1] {
            let mut body = Bytes::new();
            assert_eq!(
                decode_request(&header(api.key, version), &mut body),
                Err(DecodeError::UnsupportedVersion {
                    api_key: api.key as i16,
                    version
                })
            );
        }
    }
}

#[test]
fn every_truncated_header_is_an_error() {
    let wire = wire_header(ApiKey::Fetch, 12, Some("client"))
        .with_unknown_tagged_field(4, Bytes::from_static(b"abc"));
    let mut buf = BytesMut::new();
    wire.encode(&mut buf, 2).expect("encodes");
    let full = buf.freeze();
    for len in 0..full.len() {
        let mut frame = full.slice(..len);
        // `Truncated`, or `Invalid` for a count the bytes left cannot hold.
        assert!(
            decode_header(&mut frame).is_err(),
            "header cut at {len} of {}",
            full.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input

/// Every strict prefix of every sample body is an error: the decoders read exactly the bytes a
/// valid body has, so a cut one runs out.
fn truncations_fail<T: Sample>(seed: u64) {
    for version in versions::<T>() {
        let body = encode(&T::sample(version, &mut Values::new(seed)), version);
        for len in 0..body.len() {
            assert!(
                decode_bounded(T::KEY, version, &body[..len]).is_err(),
                "{:?} v{version} cut at {len} of {}",
                T::KEY,
                body.len()
            );
        }
    }
}

#[test]
fn every_truncation_of_every_sample_is_an_error() {
    for seed in 0..2 {
        for_each_api!(truncations_fail(seed));
    }
}

#[test]
fn a_huge_metadata_topic_count_is_refused_before_allocating() {
    // Metadata v0, a 14-byte frame: header (key 3, version 0, correlation id 1, null client
    // id), then a body of four bytes claiming 2^31 - 1 topics. The crate's own decoder reserves
    // room for all of them first (some 150 GiB), which aborts the process.
    let frame = [0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
    let mut frame = Bytes::copy_from_slice(&frame);
    let header = decode_header(&mut frame).expect("the header decodes");
    let (result, largest) = decode_tracked(ApiKey::Metadata, header.api_version, &frame);
    assert_eq!(
        result,
        Err(DecodeError::Invalid {
            field: "topics",
            reason: "array longer than the bytes left"
        })
    );
    assert!(largest <= BOOKKEEPING_BYTES, "a {largest}-byte allocation");
}

#[test]
fn huge_counts_in_flexible_versions_are_refused() {
    // Metadata v12: compact array count 2^32 - 2 (varint ff ff ff ff 0f).
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
    assert!(matches!(
        decode_bounded(ApiKey::Metadata, 12, &body),
        Err(DecodeError::Invalid {
            field: "topics",
            ..
        })
    ));
    // DescribeGroups v5: a million groups promised, three bytes present.
    let body = [0xc1, 0x84, 0x3d, 1, 1, 1];
    assert!(matches!(
        decode_bounded(ApiKey::DescribeGroups, 5, &body),
        Err(DecodeError::Invalid {
            field: "groups",
            ..
        })
    ));
    // A varint longer than 32 bits.
    let body = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0];
    assert!(matches!(
        decode_bounded(ApiKey::Metadata, 12, &body),
        Err(DecodeError::Invalid {
            reason: "varint longer than 32 bits",
            ..
        })
    ));
    // More tagged fields than bytes: ApiVersions v3 with two empty strings, then 2^28 tags.
    let body = [1, 1, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0];
    assert!(matches!(
        decode_bounded(ApiKey::ApiVersions, 3, &body),
        Err(DecodeError::Invalid { .. })
    ));
}

#[test]
fn negative_lengths_are_invalid() {
    let negative = |field| DecodeError::Invalid {
        field,
        reason: "negative length",
    };
    // Metadata v1: topics count -2.
    assert_eq!(
        decode_bounded(ApiKey::Metadata, 1, &[0xff, 0xff, 0xff, 0xfe]),
        Err(negative("topics"))
    );
    // Heartbeat v0: group id length -2.
    assert_eq!(
        decode_bounded(ApiKey::Heartbeat, 0, &[0xff, 0xfe, 0, 0]),
        Err(negative("group_id"))
    );
    // Produce v3: null transactional id, acks, timeout, one topic "t", one partition whose
    // records length is -5.
    let body = [
        0xff, 0xff, 0, 1, 0, 0, 0, 9, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff,
        0xff, 0xfb,
    ];
    assert_eq!(
        decode_bounded(ApiKey::Produce, 3, &body),
        Err(negative("records"))
    );
}

#[test]
fn null_where_a_value_is_required_is_invalid() {
    // Heartbeat v0 with a null group id.
    assert_eq!(
        decode_bounded(ApiKey::Heartbeat, 0, &[0xff, 0xff, 0, 0, 0, 1, 0, 0]),
        Err(DecodeError::Invalid {
            field: "group_id",
            reason: "null where a value is required"
        })
    );
    // Fetch v12 with a null topics array (compact count 0) after 25 bytes of fixed fields.
    let mut body = vec![0; 25];
    body.push(0);
    assert!(matches!(
        decode_bounded(ApiKey::Fetch, 12, &body),
        Err(DecodeError::Invalid {
            field: "topics",
            ..
        })
    ));
}

#[test]
fn strings_must_be_utf8() {
    // FindCoordinator v0: key of two bytes that are not UTF-8.
    assert_eq!(
        decode_bounded(ApiKey::FindCoordinator, 0, &[0, 2, 0xc3, 0x28]),
        Err(DecodeError::Invalid {
            field: "key",
            reason: "not UTF-8"
        })
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let mut body = encode(&HeartbeatRequest::sample(2, &mut Values::new(3)), 2).to_vec();
    body.extend_from_slice(&[1, 2]);
    assert_eq!(
        decode_bounded(ApiKey::Heartbeat, 2, &body),
        Err(DecodeError::TrailingBytes { bytes: 2 })
    );
}

#[test]
fn known_fetch_tags_follow_the_crate() {
    let request = FetchRequest::sample(12, &mut Values::new(1))
        .with_cluster_id(Some(StrBytes::from_static_str("cluster-1")));
    let body = encode(&request, 12);
    let decoded = decode_bounded(ApiKey::Fetch, 12, &body).expect("decodes");
    assert_eq!(FetchRequest::unwrap(decoded), Some(request.clone()));
    // Tag 1 (replica_state) arrives in v15: at v12 the crate refuses it, and so do we. The
    // crate's encoder will not write it, so the body's last byte (no tagged fields) is
    // replaced by one tagged field: tag 1, 13 bytes.
    let without_tags = request
        .with_cluster_id(None)
        .with_unknown_tagged_fields(BTreeMap::new());
    let mut body = encode(&without_tags, 12).to_vec();
    assert_eq!(body.pop(), Some(0), "no tagged fields");
    body.extend_from_slice(&[1, 1, 13]);
    body.extend_from_slice(&[0; 13]);
    let body = Bytes::from(body);
    assert!(FetchRequest::decode(&mut body.clone(), 12).is_err());
    assert_eq!(
        decode_bounded(ApiKey::Fetch, 12, &body),
        Err(DecodeError::Invalid {
            field: "replica_state",
            reason: "tagged field not in this version"
        })
    );
}

/// A tag may appear once. Found by the `kafka_frame` fuzz target: a Fetch whose first
/// `cluster_id` (tag 0) held a compact string longer than its tag, and whose second was valid.
/// Ours kept the last and accepted; the crate reads tags in order, ran off the end reading the
/// first, and refused: the two read different requests in the same bytes. Now both refuse.
#[test]
fn a_repeated_tag_is_refused() {
    let request = FetchRequest::sample(12, &mut Values::new(1))
        .with_cluster_id(None)
        .with_unknown_tagged_fields(BTreeMap::new());
    let mut body = encode(&request, 12).to_vec();
    assert_eq!(body.pop(), Some(0), "no tagged fields");
    // Two tagged fields: tag 0 of 1 byte claiming a 40-byte string, then tag 0 holding "".
    body.extend_from_slice(&[2, 0, 1, 41, 0, 1, 1]);
    let body = Bytes::from(body);
    assert!(FetchRequest::decode(&mut body.clone(), 12).is_err());
    assert_eq!(
        decode_bounded(ApiKey::Fetch, 12, &body),
        Err(DecodeError::Invalid {
            field: "FetchRequest",
            reason: "a tag repeated"
        })
    );
    // The same tag twice, both valid: still refused (an unknown tag, too).
    for tag in [0, 7] {
        let mut body = encode(&request, 12).to_vec();
        body.pop();
        body.extend_from_slice(&[2, tag, 1, 1, tag, 1, 1]);
        assert_eq!(
            decode_bounded(ApiKey::Fetch, 12, &body),
            Err(DecodeError::Invalid {
                field: "FetchRequest",
                reason: "a tag repeated"
            })
        );
    }
}

/// An API served, a version of it, and a sample body.
fn sample_body(api_index: usize, version_pick: u16, seed: u64) -> (ApiKey, i16, Bytes) {
    let api = SUPPORTED_APIS[api_index % SUPPORTED_APIS.len()];
    let span = (api.max_version - api.min_version + 1) as u16;
    let version = api.min_version + (version_pick % span) as i16;
    let mut body = None;
    fn pick<T: Sample>(key: ApiKey, version: i16, seed: u64, body: &mut Option<Bytes>) {
        if T::KEY == key {
            *body = Some(encode(&T::sample(version, &mut Values::new(seed)), version));
        }
    }
    for_each_api!(pick(api.key, version, seed, &mut body));
    (api.key, version, body.expect("every API has a sample"))
}

/// Whatever ours accepts, the crate decodes to the same request.
fn agrees_with_the_crate(key: ApiKey, version: i16, body: &Bytes, decoded: KafkaRequest) {
    fn check<T: Sample>(key: ApiKey, version: i16, body: &Bytes, decoded: &KafkaRequest) {
        if T::KEY == key {
            let ours = T::unwrap(decoded.clone()).expect("the variant of the key");
            assert_eq!(ours, crate_decode::<T>(body, version), "{key:?} v{version}");
        }
    }
    for_each_api!(check(key, version, body, &decoded));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random values in every field, beyond the fixed seeds of the round-trip test.
    #[test]
    fn samples_round_trip(api in 0..SUPPORTED_APIS.len(), version in any::<u16>(), seed in any::<u64>()) {
        let (key, version, body) = sample_body(api, version, seed);
        let decoded = decode_bounded(key, version, &body);
        prop_assert!(decoded.is_ok(), "{:?} v{} seed {}: {:?}", key, version, seed, decoded);
        agrees_with_the_crate(key, version, &body, decoded.expect("checked"));
    }

    /// A valid body with bytes overwritten: an error, or (when the result is still valid) the
    /// crate's own reading of it; never a panic or an outsized allocation.
    #[test]
    fn mutated_samples_never_panic(
        api in 0..SUPPORTED_APIS.len(),
        version in any::<u16>(),
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let (key, version, body) = sample_body(api, version, seed);
        let mut body = body.to_vec();
        if body.is_empty() {
            return Ok(());
        }
        for (at, byte) in edits {
            let at = at.index(body.len());
            body[at] = byte;
        }
        let body = Bytes::from(body);
        if let Ok(decoded) = decode_bounded(key, version, &body) {
            agrees_with_the_crate(key, version, &body, decoded);
        }
    }

    /// Random bytes as any API and version served, and as a whole frame.
    #[test]
    fn random_bytes_never_panic(
        api in 0..SUPPORTED_APIS.len(),
        version in any::<u16>(),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let api = SUPPORTED_APIS[api];
        let span = (api.max_version - api.min_version + 1) as u16;
        let version = api.min_version + (version % span) as i16;
        let body = Bytes::from(bytes);
        if let Ok(decoded) = decode_bounded(api.key, version, &body) {
            agrees_with_the_crate(api.key, version, &body, decoded);
        }
        let mut frame = body.clone();
        if let Ok(header) = decode_header(&mut frame) {
            let _ = decode_request(&header, &mut frame);
        }
    }
}

//! Bytes from a socket, decoded as a Kafka request: `decode_header` and `decode_request` return
//! a request or an error, never a panic, and never an allocation sized by a count or length the
//! bytes cannot back. A request they return is what the `kafka-protocol` crate's own decoder
//! reads from the same bytes (safe to call once ours has bounded every count), and it survives
//! being encoded by the crate and decoded again.
//!
//! Input: byte 0 is a mode. Bit 0 clear: the rest is a whole frame (header, then body), so the
//! header parser is fuzzed too. Bit 0 set: bytes 1 and 2 pick an API served and a version in its
//! range, and the rest is the body, so mutations reach every body decoder rather than dying in
//! the header.

#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use libfuzzer_sys::fuzz_target;
use logbus::kafka::decode::{
    decode_header, decode_request, KafkaRequest, RequestHeader, SUPPORTED_APIS,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let mut frame = Bytes::copy_from_slice(rest);
        let Ok(header) = decode_header(&mut frame) else {
            return;
        };
        check(&header, frame);
    } else {
        let [api, version, body @ ..] = rest else {
            return;
        };
        let api = SUPPORTED_APIS[usize::from(*api) % SUPPORTED_APIS.len()];
        let span = u8::try_from(api.max_version - api.min_version + 1).expect("a short range");
        let header = RequestHeader {
            api_key: api.key as i16,
            api_version: api.min_version + i16::from(version % span),
            correlation_id: 0,
            client_id: None,
        };
        check(&header, Bytes::copy_from_slice(body));
    }
});

/// Decodes `body`; a request it yields must match the crate's reading and survive a round trip.
fn check(header: &RequestHeader, body: Bytes) {
    let Ok(request) = decode_request(header, &mut body.clone()) else {
        return;
    };
    let version = header.api_version;
    macro_rules! agree {
        ($($variant:ident($ty:ty)),*) => {
            match request {
                $(KafkaRequest::$variant(ours) => {
                    let theirs = <$ty>::decode(&mut body.clone(), version)
                        .expect("the crate reads what ours accepted");
                    assert_eq!(ours, theirs, "the crate reads these bytes differently");
                    let mut encoded = BytesMut::new();
                    ours.encode(&mut encoded, version).expect("a decoded request encodes");
                    let again = decode_request(header, &mut encoded.freeze())
                        .expect("a re-encoded request decodes");
                    assert_eq!(again, KafkaRequest::$variant(ours), "a round trip changed it");
                })*
            }
        };
    }
    agree!(
        Produce(ProduceRequest),
        Fetch(FetchRequest),
        ListOffsets(ListOffsetsRequest),
        Metadata(MetadataRequest),
        OffsetCommit(OffsetCommitRequest),
        OffsetFetch(OffsetFetchRequest),
        FindCoordinator(FindCoordinatorRequest),
        JoinGroup(JoinGroupRequest),
        Heartbeat(HeartbeatRequest),
        LeaveGroup(LeaveGroupRequest),
        SyncGroup(SyncGroupRequest),
        DescribeGroups(DescribeGroupsRequest),
        ListGroups(ListGroupsRequest),
        ApiVersions(ApiVersionsRequest),
        CreateTopics(CreateTopicsRequest),
        DeleteTopics(DeleteTopicsRequest),
        InitProducerId(InitProducerIdRequest),
        OffsetForLeaderEpoch(OffsetForLeaderEpochRequest)
    );
}

//! What brokers read from each other: the bounded response decoders (Fetch v12,
//! OffsetForLeaderEpoch v4) against the `kafka-protocol` crate's encoders, and the private
//! peer messages; all of them against truncated and lying bytes.

#![cfg(feature = "kafka")]

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    BrokerId, FetchResponse, OffsetForLeaderEpochResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use logbus::kafka::decode::peer::{
    decode_controlled_shutdown_response, decode_leader_and_isr_response, decode_peer_request,
    encode_controlled_shutdown_response, encode_peer_request, i64_tag, ControlledShutdown,
    LeaderAndIsr, PeerRequest, CONTROLLED_SHUTDOWN_KEY, LEADER_AND_ISR_KEY, LOG_END_OFFSET_TAG,
};
use logbus::kafka::decode::response::{
    decode_fetch_response, decode_offset_for_leader_epoch_response, decode_response_header,
};
use logbus::kafka::decode::DecodeError;
use logbus::replication::{FetchedData, ReplicaError};

fn encoded<R: Encodable>(message: &R, version: i16) -> Bytes {
    let mut body = BytesMut::new();
    message.encode(&mut body, version).expect("encodes");
    body.freeze()
}

fn sample_fetch_response() -> FetchResponse {
    let mut ok = PartitionData::default();
    ok.partition_index = 2;
    ok.high_watermark = 40;
    ok.last_stable_offset = 40;
    ok.log_start_offset = 5;
    ok.preferred_read_replica = BrokerId(-1);
    ok.records = Some(Bytes::from_static(b"raw batches as they lie in the log"));
    ok.aborted_transactions = Some(vec![AbortedTransaction::default()
        .with_producer_id(ProducerId(7))
        .with_first_offset(9)]);
    ok.unknown_tagged_fields
        .insert(LOG_END_OFFSET_TAG, i64_tag(44));
    let mut fenced = PartitionData::default();
    fenced.partition_index = 0;
    fenced.error_code = 74;
    fenced.high_watermark = -1;
    fenced.records = None;
    let mut topic = FetchableTopicResponse::default();
    topic.topic = TopicName(StrBytes::from_static_str("orders"));
    topic.partitions = vec![ok, fenced];
    let mut response = FetchResponse::default();
    response.responses = vec![topic];
    response
}

#[test]
fn a_fetch_response_encoded_by_the_crate_decodes_into_replication_types() {
    let mut body = encoded(&sample_fetch_response(), 12);
    let (error_code, response) = decode_fetch_response(&mut body).expect("decodes");
    assert_eq!(error_code, 0);
    assert_eq!(response.partitions.len(), 2);
    let ok = &response.partitions[0];
    assert_eq!((&*ok.topic, ok.partition), ("orders", 2));
    assert_eq!(
        ok.result,
        Ok(FetchedData {
            high_watermark: 40,
            log_start_offset: 5,
            log_end_offset: 44,
            records: Bytes::from_static(b"raw batches as they lie in the log"),
        })
    );
    assert_eq!(
        response.partitions[1].result,
        Err(ReplicaError::FencedLeaderEpoch)
    );
}

#[test]
fn an_epoch_response_encoded_by_the_crate_decodes_into_replication_types() {
    let mut topic = OffsetForLeaderTopicResult::default();
    topic.topic = TopicName(StrBytes::from_static_str("orders"));
    topic.partitions = vec![
        EpochEndOffset::default()
            .with_partition(0)
            .with_leader_epoch(3)
            .with_end_offset(120),
        EpochEndOffset::default()
            .with_partition(1)
            .with_leader_epoch(-1)
            .with_end_offset(-1),
        EpochEndOffset::default()
            .with_partition(2)
            .with_error_code(6)
            .with_leader_epoch(-1)
            .with_end_offset(-1),
    ];
    let mut response = OffsetForLeaderEpochResponse::default();
    response.topics = vec![topic];
    let mut body = encoded(&response, 4);
    let answers = decode_offset_for_leader_epoch_response(&mut body).expect("decodes");
    let results: Vec<_> = answers
        .partitions
        .iter()
        .map(|a| (Arc::clone(&a.topic), a.partition, a.result))
        .collect();
    let orders: Arc<str> = Arc::from("orders");
    assert_eq!(
        results,
        vec![
            (Arc::clone(&orders), 0, Ok(Some((3, 120)))),
            (Arc::clone(&orders), 1, Ok(None)),
            (orders, 2, Err(ReplicaError::NotLeaderOrFollower)),
        ]
    );
}

#[test]
fn every_truncation_of_a_response_is_an_error_not_a_panic() {
    let full = encoded(&sample_fetch_response(), 12);
    for len in 0..full.len() {
        let mut cut = full.slice(..len);
        assert!(decode_fetch_response(&mut cut).is_err(), "prefix of {len}");
    }
    let mut longer = BytesMut::from(&full[..]);
    longer.put_u8(0);
    assert_eq!(
        decode_fetch_response(&mut longer.freeze()),
        Err(DecodeError::TrailingBytes { bytes: 1 })
    );
}

#[test]
fn a_lying_array_count_is_refused_before_anything_is_allocated_for_it() {
    // throttle, error, session, then a compact array claiming 2^31 topics in 3 bytes.
    let mut body = BytesMut::new();
    body.put_i32(0);
    body.put_i16(0);
    body.put_i32(0);
    body.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x07, 0, 0, 0]);
    assert!(matches!(
        decode_fetch_response(&mut body.freeze()),
        Err(DecodeError::Invalid { .. })
    ));
}

#[test]
fn a_negative_high_watermark_without_an_error_is_invalid() {
    let mut response = sample_fetch_response();
    response.responses[0].partitions[0].high_watermark = -5;
    assert!(matches!(
        decode_fetch_response(&mut encoded(&response, 12)),
        Err(DecodeError::Invalid {
            field: "high_watermark",
            ..
        })
    ));
}

#[test]
fn a_response_header_names_its_correlation_id() {
    let mut frame = Bytes::from_static(&[0, 0, 0, 42, 0, 9]);
    assert_eq!(decode_response_header(&mut frame, 1), Ok(42));
    assert_eq!(&frame[..], &[9]);
    assert!(decode_response_header(&mut Bytes::from_static(&[0, 0]), 0).is_err());
}

#[test]
fn peer_requests_round_trip_and_refuse_bad_bodies() {
    let requests = [
        PeerRequest::LeaderAndIsr(LeaderAndIsr {
            controller_id: 1,
            controller_epoch: 4,
            partitions: vec![("orders".to_owned(), 0), ("orders".to_owned(), 3)],
        }),
        PeerRequest::ControlledShutdown(ControlledShutdown {
            broker_id: 2,
            broker_epoch: 0x1_0000_0005,
        }),
    ];
    for (key, request) in [LEADER_AND_ISR_KEY, CONTROLLED_SHUTDOWN_KEY]
        .into_iter()
        .zip(requests)
    {
        let body = encode_peer_request(&request).freeze();
        assert_eq!(decode_peer_request(key, 0, &mut body.clone()), Ok(request));
        for len in 0..body.len() {
            assert!(decode_peer_request(key, 0, &mut body.slice(..len)).is_err());
        }
        assert_eq!(
            decode_peer_request(key, 1, &mut body.clone()),
            Err(DecodeError::UnsupportedVersion {
                api_key: key,
                version: 1
            })
        );
    }
    assert_eq!(
        decode_peer_request(4, 0, &mut Bytes::new()),
        Err(DecodeError::UnknownApi { api_key: 4 })
    );
}

#[test]
fn peer_responses_decode_and_refuse_bad_bodies() {
    let mut body = encode_controlled_shutdown_response(0, 3).freeze();
    assert_eq!(decode_controlled_shutdown_response(&mut body), Ok((0, 3)));
    assert!(decode_controlled_shutdown_response(&mut Bytes::from_static(&[0, 0, 0])).is_err());
    assert_eq!(
        decode_leader_and_isr_response(&mut Bytes::from_static(&[0, 41])),
        Ok(41)
    );
    assert_eq!(
        decode_leader_and_isr_response(&mut Bytes::from_static(&[0, 0, 1])),
        Err(DecodeError::TrailingBytes { bytes: 1 })
    );
}

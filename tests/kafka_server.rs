//! The Kafka-protocol server against raw sockets: hostile frames, version negotiation, ordering,
//! long-poll fetches, acks=0. Requests are encoded with the `kafka-protocol` crate, as a client
//! would.

#![cfg(feature = "kafka")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use logbus::broker::{Broker, TopicConfig};
use logbus::kafka::{KafkaServer, KafkaServerConfig};
use logbus::record::{BatchBuilder, BatchSpec};

struct Served {
    broker: Broker,
    server: KafkaServer,
    _dir: tempfile::TempDir,
}

fn serve(config: KafkaServerConfig) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::open(dir.path()).expect("open");
    let server = KafkaServer::bind(broker.clone(), "127.0.0.1:0", config).expect("serve");
    Served {
        broker,
        server,
        _dir: dir,
    }
}

fn connect(served: &Served) -> TcpStream {
    let stream = TcpStream::connect(served.server.local_addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// A whole frame (size prefix included) carrying `request`.
fn frame<R: Encodable>(key: ApiKey, version: i16, correlation_id: i32, request: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")));
    let mut body = BytesMut::new();
    encode_request_header_into_buffer(&mut body, &header).expect("header");
    request.encode(&mut body, version).expect("body");
    let mut framed = Vec::with_capacity(body.len() + 4);
    framed.extend_from_slice(&(body.len() as i32).to_be_bytes());
    framed.extend_from_slice(&body);
    framed
}

/// Reads one response frame: (correlation id, body after the header of `header_version`).
fn read_response(stream: &mut TcpStream, header_version: i16) -> (i32, Bytes) {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("response body");
    let mut body = Bytes::from(body);
    let correlation_id = body.get_i32();
    if header_version >= 1 {
        assert_eq!(body.get_u8(), 0, "no tagged fields in the response header");
    }
    (correlation_id, body)
}

fn decode<R: Decodable>(key: ApiKey, version: i16, stream: &mut TcpStream) -> (i32, R) {
    let (correlation_id, mut body) = read_response(stream, key.response_header_version(version));
    let response = R::decode(&mut body, version).expect("response decodes");
    assert!(!body.has_remaining(), "response has trailing bytes");
    (correlation_id, response)
}

/// Whether the server closed the connection (a read sees end of file or a reset).
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn api_versions_works(served: &Served) {
    let mut stream = connect(served);
    stream
        .write_all(&frame(
            ApiKey::ApiVersions,
            3,
            1,
            &ApiVersionsRequest::default(),
        ))
        .expect("write");
    let (id, response): (i32, ApiVersionsResponse) = decode(ApiKey::ApiVersions, 3, &mut stream);
    assert_eq!(id, 1);
    assert_eq!(response.error_code, 0);
}

#[test]
fn an_oversized_frame_is_refused_before_allocation_and_the_server_carries_on() {
    let served = serve(KafkaServerConfig {
        socket_request_max_bytes: 1 << 20,
        ..KafkaServerConfig::default()
    });
    for declared in [(1 << 20) + 1, i32::MAX, -1, i32::MIN] {
        let mut stream = connect(&served);
        // Only the size prefix: the server must refuse on it, not wait for (or allocate) the body.
        stream.write_all(&declared.to_be_bytes()).expect("write");
        assert!(
            closed(&mut stream),
            "a frame of {declared} bytes was not refused"
        );
    }
    assert_eq!(served.server.stats().oversized_frames, 4);
    api_versions_works(&served);
}

#[test]
fn a_malformed_frame_closes_only_its_connection() {
    let served = serve(KafkaServerConfig::default());
    let mut bystander = connect(&served);
    let cases: Vec<Vec<u8>> = vec![
        // A size with fewer bytes than the header needs.
        vec![0, 0, 0, 3, 0, 18, 0],
        // An unknown API key.
        {
            let mut body = vec![0x7f, 0x00, 0, 0, 0, 0, 0, 7, 0xff, 0xff];
            let mut framed = (body.len() as i32).to_be_bytes().to_vec();
            framed.append(&mut body);
            framed
        },
        // Metadata v1 claiming two billion topics in a few bytes.
        {
            let mut body = BytesMut::new();
            body.put_i16(ApiKey::Metadata as i16);
            body.put_i16(1);
            body.put_i32(9);
            body.put_i16(-1);
            body.put_i32(0x7fff_ffff);
            body.put_u8(0);
            let mut framed = (body.len() as i32).to_be_bytes().to_vec();
            framed.extend_from_slice(&body);
            framed
        },
        // Produce v3 with a version the server does not answer (v2).
        frame(ApiKey::Produce, 3, 5, &ProduceRequest::default())
            .into_iter()
            .enumerate()
            .map(|(i, byte)| if i == 7 { 2 } else { byte })
            .collect(),
    ];
    let count = cases.len() as u64;
    for case in cases {
        let mut stream = connect(&served);
        stream.write_all(&case).expect("write");
        assert!(closed(&mut stream), "{case:?} did not close its connection");
    }
    assert_eq!(served.server.stats().malformed_frames, count);
    // The other connection is untouched.
    bystander
        .write_all(&frame(
            ApiKey::ApiVersions,
            0,
            42,
            &ApiVersionsRequest::default(),
        ))
        .expect("write");
    let (id, response): (i32, ApiVersionsResponse) = decode(ApiKey::ApiVersions, 0, &mut bystander);
    assert_eq!((id, response.error_code), (42, 0));
}

#[test]
fn a_newer_api_versions_request_gets_error_35_and_the_supported_ranges() {
    let served = serve(KafkaServerConfig::default());
    let mut stream = connect(&served);
    let mut request = frame(ApiKey::ApiVersions, 3, 77, &ApiVersionsRequest::default());
    request[6..8].copy_from_slice(&99i16.to_be_bytes());
    stream.write_all(&request).expect("write");
    // Answered as v0 (header v0), so any client can read it.
    let (id, response): (i32, ApiVersionsResponse) = decode(ApiKey::ApiVersions, 0, &mut stream);
    assert_eq!(id, 77);
    assert_eq!(response.error_code, 35);
    let produce = response
        .api_keys
        .iter()
        .find(|api| api.api_key == ApiKey::Produce as i16)
        .expect("produce advertised");
    assert_eq!((produce.min_version, produce.max_version), (3, 9));
    let fetch = response
        .api_keys
        .iter()
        .find(|api| api.api_key == ApiKey::Fetch as i16)
        .expect("fetch advertised");
    assert_eq!((fetch.min_version, fetch.max_version), (4, 12));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let served = serve(KafkaServerConfig::default());
    let mut stream = connect(&served);
    let mut burst = Vec::new();
    for id in 0..20 {
        if id % 2 == 0 {
            burst.extend(frame(
                ApiKey::ApiVersions,
                2,
                id,
                &ApiVersionsRequest::default(),
            ));
        } else {
            burst.extend(frame(
                ApiKey::Metadata,
                9,
                id,
                &MetadataRequest::default().with_topics(Some(vec![])),
            ));
        }
    }
    stream.write_all(&burst).expect("write");
    for id in 0..20 {
        if id % 2 == 0 {
            let (got, _): (i32, ApiVersionsResponse) = decode(ApiKey::ApiVersions, 2, &mut stream);
            assert_eq!(got, id);
        } else {
            let (got, response): (i32, MetadataResponse) = decode(ApiKey::Metadata, 9, &mut stream);
            assert_eq!(got, id);
            assert_eq!(response.brokers.len(), 1);
        }
    }
}

fn batch(values: &[&str]) -> Bytes {
    let mut builder = BatchBuilder::with_capacity(BatchSpec::default(), 1024);
    for value in values {
        builder.append(1_700_000_000_000, None, Some(value.as_bytes()), &[]);
    }
    builder.finish().into_bytes()
}

fn produce_request(topic: &str, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_partition_max_bytes(1 << 20)])])
}

#[test]
fn a_fetch_at_the_end_waits_until_an_append_and_returns_the_bytes_on_disk() {
    let served = serve(KafkaServerConfig::default());
    served
        .broker
        .create_topic("waits", TopicConfig::default())
        .expect("create");
    let mut consumer = connect(&served);
    consumer
        .write_all(&frame(
            ApiKey::Fetch,
            12,
            1,
            &fetch_request("waits", 0, 5_000),
        ))
        .expect("write");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let mut producer = connect(&served);
    producer
        .write_all(&frame(
            ApiKey::Produce,
            9,
            2,
            &produce_request("waits", -1, batch(&["first", "second"])),
        ))
        .expect("write");
    let (_, produced): (i32, kafka_protocol::messages::ProduceResponse) =
        decode(ApiKey::Produce, 9, &mut producer);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);

    let (id, fetched): (i32, FetchResponse) = decode(ApiKey::Fetch, 12, &mut consumer);
    let waited = started.elapsed();
    assert_eq!(id, 1);
    assert!(
        waited >= Duration::from_millis(250),
        "answered before the append: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(4_000),
        "woken late: {waited:?}"
    );
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert_eq!(partition.high_watermark, 2);
    let on_disk = served
        .broker
        .replica("waits", 0)
        .expect("replica")
        .log()
        .read(0, 1 << 20)
        .expect("read")
        .bytes;
    assert_eq!(
        partition.records.as_ref(),
        Some(&on_disk),
        "bytes differ from the log's"
    );
}

#[test]
fn acks_zero_gets_no_response() {
    let served = serve(KafkaServerConfig::default());
    served
        .broker
        .create_topic("fire", TopicConfig::default())
        .expect("create");
    let mut stream = connect(&served);
    let mut burst = frame(
        ApiKey::Produce,
        7,
        1,
        &produce_request("fire", 0, batch(&["x"])),
    );
    burst.extend(frame(
        ApiKey::ApiVersions,
        0,
        2,
        &ApiVersionsRequest::default(),
    ));
    stream.write_all(&burst).expect("write");
    // The first response is the ApiVersions one: the produce had none.
    let (id, _): (i32, ApiVersionsResponse) = decode(ApiKey::ApiVersions, 0, &mut stream);
    assert_eq!(id, 2);
    assert_eq!(
        served
            .broker
            .replica("fire", 0)
            .expect("replica")
            .log()
            .log_end_offset(),
        1
    );
}

#[test]
fn a_fetch_to_a_broker_that_does_not_lead_answers_not_leader() {
    let served = serve(KafkaServerConfig::default());
    let mut stream = connect(&served);
    stream
        .write_all(&frame(
            ApiKey::Fetch,
            12,
            3,
            &fetch_request("missing", 0, 100),
        ))
        .expect("write");
    let (_, fetched): (i32, FetchResponse) = decode(ApiKey::Fetch, 12, &mut stream);
    assert_eq!(fetched.responses[0].partitions[0].error_code, 3);
}

//! [`KafkaTransport`]: replication between brokers in different processes, over Kafka's
//! protocol (the peer's [`KafkaServer`](super::KafkaServer) answers).
//!
//! | `Transport` call   | on the wire                                                        |
//! |--------------------|--------------------------------------------------------------------|
//! | `fetch`            | Fetch v12, `replica_id` = the follower, broker epoch in tag 10000  |
//! | `end_offsets`      | OffsetForLeaderEpoch v4, `replica_id` = the follower               |
//! | `leader_and_isr`   | LogbusLeaderAndIsr (private key 10004), a wake-up                  |
//! | `controlled_shutdown` | LogbusControlledShutdown (private key 10007), to the controller |
//!
//! (See `decode::peer` for the private messages.) A peer's address is its registered
//! endpoint in `/brokers/ids/<id>`, read through the session of the broker this transport is
//! bound to, cached, and read again after a failure. Each peer has a small pool of idle
//! connections; a request borrows one (or opens one) and gives it back only after a whole,
//! matching response.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use parking_lot::{Mutex, RwLock};

use super::decode::peer::{
    decode_controlled_shutdown_response, decode_leader_and_isr_response, encode_peer_request,
    i64_tag, ControlledShutdown, LeaderAndIsr, PeerRequest, CONTROLLED_SHUTDOWN_KEY,
    LEADER_AND_ISR_KEY, REPLICA_BROKER_EPOCH_TAG,
};
use super::decode::response::{
    decode_fetch_response, decode_offset_for_leader_epoch_response, decode_response_header,
};
use super::decode::DecodeError;
use super::errors::{self, replica_error_of};
use crate::replication::{
    self, Endpoint, EpochRequest, EpochResponse, FetchResponse, FetchedPartition,
    LeaderAndIsrNotice, ReplicaManager, Transport, TransportError,
};

const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;

/// How a [`KafkaTransport`] reaches its peers.
///
/// ## Defaults
/// - `connect_timeout_ms`: 3000
/// - `request_timeout_ms`: 30000 (Kafka's `replica.socket.timeout.ms`): how long a request may
///   go unanswered; a fetch may take its `max_wait_ms` more.
/// - `max_response_bytes`: 104857600 (100 MiB): larger response frames are refused before
///   anything is allocated for them.
/// - `max_idle_connections_per_peer`: 4
#[derive(Debug, Clone)]
pub struct KafkaTransportConfig {
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub max_response_bytes: usize,
    pub max_idle_connections_per_peer: usize,
}

impl Default for KafkaTransportConfig {
    fn default() -> Self {
        KafkaTransportConfig {
            connect_timeout_ms: 3_000,
            request_timeout_ms: 30_000,
            max_response_bytes: 100 << 20,
            max_idle_connections_per_peer: 4,
        }
    }
}

/// A [`Transport`] that sends Kafka requests to the peers' registered endpoints. One per
/// broker: give it to [`BrokerConfig::transport`](crate::broker::BrokerConfig), which binds
/// it to the broker's replica manager.
pub struct KafkaTransport {
    config: KafkaTransportConfig,
    /// The broker this transport sends for (its session finds peers; its epoch signs a
    /// controlled shutdown).
    local: RwLock<Option<Weak<ReplicaManager>>>,
    /// Known endpoints, refreshed from the coordinator on a miss or a failure.
    endpoints: RwLock<HashMap<i32, Endpoint>>,
    /// Idle connections per peer, each tagged with the endpoint it was opened to.
    idle: Mutex<HashMap<i32, Vec<(Endpoint, TcpStream)>>>,
    next_correlation_id: AtomicI32,
}

impl std::fmt::Debug for KafkaTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTransport")
            .field("config", &self.config)
            .field("endpoints", &*self.endpoints.read())
            .finish_non_exhaustive()
    }
}

/// How a call failed, before it is told apart into `Unreachable` and `ResponseLost`.
enum Failure {
    /// The request did not leave: no endpoint, no connection, or the write failed.
    NotSent,
    /// The request was written; its answer did not come back whole.
    Lost,
}

impl KafkaTransport {
    pub fn new(config: KafkaTransportConfig) -> Arc<KafkaTransport> {
        Arc::new(KafkaTransport {
            config,
            local: RwLock::new(None),
            endpoints: RwLock::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
            next_correlation_id: AtomicI32::new(0),
        })
    }

    fn local(&self) -> Option<Arc<ReplicaManager>> {
        self.local.read().as_ref()?.upgrade()
    }

    /// The endpoint of broker `to`, from the cache or else from the coordinator.
    fn endpoint(&self, to: i32) -> Option<Endpoint> {
        if let Some(endpoint) = self.endpoints.read().get(&to) {
            return Some(endpoint.clone());
        }
        let session = self.local()?.session();
        let endpoints = replication::broker_endpoints(session.as_ref()).ok()?;
        let found = endpoints.get(&to).cloned();
        *self.endpoints.write() = endpoints.into_iter().collect();
        found
    }

    /// Forgets `to`'s endpoint and idle connections, after a failure: it may have restarted
    /// on another port, or be gone.
    fn forget(&self, to: i32) {
        self.endpoints.write().remove(&to);
        self.idle.lock().remove(&to);
    }

    fn connection(&self, to: i32) -> Result<(Endpoint, TcpStream), Failure> {
        let endpoint = self.endpoint(to).ok_or(Failure::NotSent)?;
        if let Some(pooled) = self.idle.lock().get_mut(&to).and_then(|idle| {
            let at = idle.iter().rposition(|(at, _)| *at == endpoint)?;
            Some(idle.swap_remove(at))
        }) {
            return Ok(pooled);
        }
        let timeout = Duration::from_millis(self.config.connect_timeout_ms.max(1));
        let addresses = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|_| Failure::NotSent)?;
        for address in addresses {
            if let Ok(stream) = TcpStream::connect_timeout(&address, timeout) {
                let _ = stream.set_nodelay(true);
                return Ok((endpoint, stream));
            }
        }
        Err(Failure::NotSent)
    }

    fn give_back(&self, to: i32, endpoint: Endpoint, stream: TcpStream) {
        let mut idle = self.idle.lock();
        let pool = idle.entry(to).or_default();
        if pool.len() < self.config.max_idle_connections_per_peer {
            pool.push((endpoint, stream));
        }
    }

    /// Sends one request to `to` and returns the body of its response.
    fn call(
        &self,
        from: i32,
        to: i32,
        api: (i16, i16, i16),
        body: &[u8],
        extra_wait_ms: u64,
    ) -> Result<Bytes, TransportError> {
        let (api_key, api_version, response_header_version) = api;
        let result = self.exchange(from, to, api, body, extra_wait_ms);
        match result {
            Ok(response) => Ok(response),
            Err(failure) => {
                self.forget(to);
                match failure {
                    Failure::NotSent => Err(TransportError::Unreachable { from, to }),
                    Failure::Lost => {
                        ::log::debug!(
                            "kafka transport: broker {to} did not answer API {api_key} \
                             v{api_version} (header v{response_header_version}) whole"
                        );
                        Err(TransportError::ResponseLost { from, to })
                    }
                }
            }
        }
    }

    fn exchange(
        &self,
        from: i32,
        to: i32,
        (api_key, api_version, response_header_version): (i16, i16, i16),
        body: &[u8],
        extra_wait_ms: u64,
    ) -> Result<Bytes, Failure> {
        let (endpoint, mut stream) = self.connection(to)?;
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = request_frame(from, api_key, api_version, correlation_id, body);
        let request_timeout = Duration::from_millis(self.config.request_timeout_ms.max(1));
        let read_timeout = request_timeout + Duration::from_millis(extra_wait_ms);
        if stream.set_write_timeout(Some(request_timeout)).is_err()
            || stream.set_read_timeout(Some(read_timeout)).is_err()
        {
            return Err(Failure::NotSent);
        }
        // A frame that did not leave whole is not answered: the peer waits for its end.
        stream.write_all(&frame).map_err(|_| Failure::NotSent)?;
        let mut response =
            read_frame(&mut stream, self.config.max_response_bytes).map_err(|error| {
                ::log::debug!("kafka transport: reading from broker {to}: {error}");
                Failure::Lost
            })?;
        match decode_response_header(&mut response, response_header_version) {
            Ok(id) if id == correlation_id => {}
            _ => return Err(Failure::Lost),
        }
        self.give_back(to, endpoint, stream);
        Ok(response)
    }
}

/// A request frame: size, header v1 (or v2 for a flexible version), body.
fn request_frame(
    from: i32,
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    body: &[u8],
) -> BytesMut {
    let client_id = format!("logbus-broker-{from}");
    let header_version = ApiKey::try_from(api_key)
        .map(|key| key.request_header_version(api_version))
        .unwrap_or(1);
    let header_len = 2 + 2 + 4 + 2 + client_id.len() + usize::from(header_version >= 2);
    let mut frame = BytesMut::with_capacity(4 + header_len + body.len());
    frame.put_i32(i32::try_from(header_len + body.len()).unwrap_or(i32::MAX));
    frame.put_i16(api_key);
    frame.put_i16(api_version);
    frame.put_i32(correlation_id);
    frame.put_i16(client_id.len() as i16);
    frame.put_slice(client_id.as_bytes());
    if header_version >= 2 {
        frame.put_u8(0); // no tagged fields
    }
    frame.put_slice(body);
    frame
}

/// Why a response frame was not read.
#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("response frame of {size} bytes refused (max_response_bytes {max})")]
    Oversized { size: i32, max: usize },
    #[error("connection closed inside a response frame")]
    Closed,
}

/// Reads one size-prefixed frame: its declared size is checked before anything is allocated,
/// and the buffer grows with the bytes that actually arrive.
fn read_frame(reader: &mut impl Read, max_bytes: usize) -> Result<Bytes, FrameError> {
    let mut size = [0u8; 4];
    reader.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    let Some(len) = usize::try_from(size).ok().filter(|&len| len <= max_bytes) else {
        return Err(FrameError::Oversized {
            size,
            max: max_bytes,
        });
    };
    let mut frame = Vec::with_capacity(len.min(64 << 10));
    let read = reader.take(len as u64).read_to_end(&mut frame)?;
    if read < len {
        return Err(FrameError::Closed);
    }
    Ok(Bytes::from(frame))
}

fn encode_body<R: Encodable>(request: &R, version: i16) -> BytesMut {
    let mut body = BytesMut::new();
    // Encoding fails only for values the schema cannot hold (a string over 32767 bytes, an
    // array over i32::MAX); topic names are at most 249 bytes and requests are built here.
    request
        .encode(&mut body, version)
        .expect("a replication request always encodes");
    body
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// The partitions of a request grouped by topic, in first-seen order.
fn by_topic<T>(items: Vec<(Arc<str>, T)>) -> Vec<(Arc<str>, Vec<T>)> {
    let mut grouped: Vec<(Arc<str>, Vec<T>)> = Vec::new();
    for (topic, item) in items {
        match grouped.iter_mut().find(|(known, _)| *known == topic) {
            Some((_, items)) => items.push(item),
            None => grouped.push((topic, vec![item])),
        }
    }
    grouped
}

fn fetch_request(request: &replication::FetchRequest) -> FetchRequest {
    let max_partition_bytes = i32::try_from(request.max_partition_bytes).unwrap_or(i32::MAX);
    let partitions = request
        .partitions
        .iter()
        .map(|wanted| {
            let mut partition = FetchPartition::default();
            partition.partition = i32::try_from(wanted.partition).unwrap_or(i32::MAX);
            partition.current_leader_epoch = wanted.current_leader_epoch;
            partition.fetch_offset = i64::try_from(wanted.fetch_offset).unwrap_or(i64::MAX);
            partition.last_fetched_epoch = -1;
            partition.log_start_offset = -1;
            partition.partition_max_bytes = max_partition_bytes;
            (Arc::clone(&wanted.topic), partition)
        })
        .collect();
    let mut fetch = FetchRequest::default();
    fetch.replica_id = BrokerId(request.replica_id);
    fetch.max_wait_ms = i32::try_from(request.max_wait_ms).unwrap_or(i32::MAX);
    fetch.min_bytes = 1;
    fetch.max_bytes = i32::MAX;
    fetch.isolation_level = 0;
    fetch.session_id = 0;
    fetch.session_epoch = -1;
    fetch.topics = by_topic(partitions)
        .into_iter()
        .map(|(topic, partitions)| {
            let mut wanted = FetchTopic::default();
            wanted.topic = TopicName(text(&topic));
            wanted.partitions = partitions;
            wanted
        })
        .collect();
    fetch.unknown_tagged_fields.insert(
        REPLICA_BROKER_EPOCH_TAG,
        i64_tag(request.replica_broker_epoch),
    );
    fetch
}

fn epoch_request(request: &EpochRequest) -> OffsetForLeaderEpochRequest {
    let partitions = request
        .partitions
        .iter()
        .map(|query| {
            let mut partition = OffsetForLeaderPartition::default();
            partition.partition = i32::try_from(query.partition).unwrap_or(i32::MAX);
            partition.current_leader_epoch = query.current_leader_epoch;
            partition.leader_epoch = query.leader_epoch;
            (Arc::clone(&query.topic), partition)
        })
        .collect();
    let mut epochs = OffsetForLeaderEpochRequest::default();
    epochs.replica_id = BrokerId(request.replica_id);
    epochs.topics = by_topic(partitions)
        .into_iter()
        .map(|(topic, partitions)| {
            let mut wanted = OffsetForLeaderTopic::default();
            wanted.topic = TopicName(text(&topic));
            wanted.partitions = partitions;
            wanted
        })
        .collect();
    epochs
}

/// A response body that did not decode: the request took effect or not, nobody knows.
fn lost(from: i32, to: i32, what: &str, error: &DecodeError) -> TransportError {
    ::log::warn!("kafka transport: {what} from broker {to} does not decode: {error}");
    TransportError::ResponseLost { from, to }
}

impl Transport for KafkaTransport {
    fn fetch(
        &self,
        from: i32,
        to: i32,
        request: replication::FetchRequest,
    ) -> Result<FetchResponse, TransportError> {
        let body = encode_body(&fetch_request(&request), FETCH_VERSION);
        let api = (
            ApiKey::Fetch as i16,
            FETCH_VERSION,
            ApiKey::Fetch.response_header_version(FETCH_VERSION),
        );
        let mut response = self.call(from, to, api, &body, request.max_wait_ms)?;
        let (error_code, mut answer) =
            decode_fetch_response(&mut response).map_err(|e| lost(from, to, "Fetch", &e))?;
        if let Some(error) = replica_error_of(error_code) {
            // A top-level error fails every partition asked for.
            answer.partitions = request
                .partitions
                .into_iter()
                .map(|wanted| FetchedPartition {
                    topic: wanted.topic,
                    partition: wanted.partition,
                    result: Err(error),
                })
                .collect();
        }
        Ok(answer)
    }

    fn end_offsets(
        &self,
        from: i32,
        to: i32,
        request: EpochRequest,
    ) -> Result<EpochResponse, TransportError> {
        let version = OFFSET_FOR_LEADER_EPOCH_VERSION;
        let body = encode_body(&epoch_request(&request), version);
        let key = ApiKey::OffsetForLeaderEpoch;
        let api = (key as i16, version, key.response_header_version(version));
        let mut response = self.call(from, to, api, &body, 0)?;
        decode_offset_for_leader_epoch_response(&mut response)
            .map_err(|e| lost(from, to, "OffsetForLeaderEpoch", &e))
    }

    fn leader_and_isr(
        &self,
        from: i32,
        to: i32,
        notice: LeaderAndIsrNotice,
    ) -> Result<(), TransportError> {
        let body = encode_peer_request(&PeerRequest::LeaderAndIsr(LeaderAndIsr {
            controller_id: notice.controller_id,
            controller_epoch: notice.controller_epoch,
            partitions: notice
                .partitions
                .iter()
                .map(|(topic, partition)| {
                    (topic.to_string(), i32::try_from(*partition).unwrap_or(-1))
                })
                .collect(),
        }));
        let mut response = self.call(from, to, (LEADER_AND_ISR_KEY, 0, 0), &body, 0)?;
        let code = decode_leader_and_isr_response(&mut response)
            .map_err(|e| lost(from, to, "LogbusLeaderAndIsr", &e))?;
        if code != errors::NONE {
            ::log::debug!("kafka transport: broker {to} refused a leader-and-ISR notice: {code}");
        }
        Ok(())
    }

    fn controlled_shutdown(
        &self,
        from: i32,
        to: i32,
        broker_id: i32,
    ) -> Result<Option<u32>, TransportError> {
        let broker_epoch = self
            .local()
            .filter(|local| local.broker_id() == broker_id)
            .map_or(replication::UNKNOWN_BROKER_EPOCH, |local| {
                local.broker_epoch()
            });
        let body = encode_peer_request(&PeerRequest::ControlledShutdown(ControlledShutdown {
            broker_id,
            broker_epoch,
        }));
        let mut response = self.call(from, to, (CONTROLLED_SHUTDOWN_KEY, 0, 0), &body, 0)?;
        let (code, remaining) = decode_controlled_shutdown_response(&mut response)
            .map_err(|e| lost(from, to, "LogbusControlledShutdown", &e))?;
        // NOT_CONTROLLER or STALE_BROKER_EPOCH: the caller looks for the controller again.
        Ok((code == errors::NONE)
            .then(|| u32::try_from(remaining).ok())
            .flatten())
    }

    fn bind(&self, local: Weak<ReplicaManager>) {
        *self.local.write() = Some(local);
    }
}

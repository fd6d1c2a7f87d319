//! The listener and its connections.
//!
//! One thread per connection reads a frame, answers it and only then reads the next, as a Kafka
//! broker mutes a connection while one of its requests is in flight: requests on a connection
//! are answered in order and at most one is in flight per connection (clients pipeline the
//! rest in the socket buffer, which the kernel bounds).

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;

use super::decode::peer::{decode_peer_request, is_peer_api};
use super::decode::{decode_header, decode_request, DecodeError, RequestHeader};
use super::handler::Handler;
use crate::broker::Broker;

/// Server configuration, with Kafka's names.
///
/// ## Defaults (Kafka's)
/// - `socket_request_max_bytes`: 104857600 (100 MiB)
/// - `advertised_host` / `advertised_port`: the bound address
/// - `auto_create_topics_enable`: true, with `num_partitions` 1 and
///   `default_replication_factor` 1 (capped at the live brokers)
/// - `max_connections`: 1000 (Kafka has no limit by default; a bound keeps threads bounded)
#[derive(Debug, Clone)]
pub struct KafkaServerConfig {
    pub socket_request_max_bytes: usize,
    pub advertised_host: Option<String>,
    pub advertised_port: Option<u16>,
    pub auto_create_topics_enable: bool,
    pub num_partitions: u32,
    pub default_replication_factor: u16,
    pub max_connections: usize,
    /// The cluster id reported in Metadata.
    pub cluster_id: String,
}

impl Default for KafkaServerConfig {
    fn default() -> Self {
        KafkaServerConfig {
            socket_request_max_bytes: 100 << 20,
            advertised_host: None,
            advertised_port: None,
            auto_create_topics_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            max_connections: 1000,
            cluster_id: "logbus".to_owned(),
        }
    }
}

/// What the server has seen, for operators and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub requests: u64,
    /// Frames refused for their declared size, before anything was allocated for them.
    pub oversized_frames: u64,
    /// Connections closed because a frame did not decode.
    pub malformed_frames: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    requests: AtomicU64,
    oversized_frames: AtomicU64,
    malformed_frames: AtomicU64,
}

struct Shared {
    handler: Handler,
    config: KafkaServerConfig,
    counters: Counters,
    stopping: AtomicBool,
    /// A clone of every open connection's socket, to unblock its thread on shutdown.
    connections: Mutex<HashMap<u64, TcpStream>>,
}

/// A Kafka-protocol server in front of a [`Broker`]. Dropping it stops it.
pub struct KafkaServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KafkaServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl KafkaServer {
    /// Binds `addr` and serves `broker` on it.
    ///
    /// # Errors
    /// Binding errors.
    pub fn bind(
        broker: Broker,
        addr: impl ToSocketAddrs,
        config: KafkaServerConfig,
    ) -> io::Result<KafkaServer> {
        KafkaServer::serve(broker, TcpListener::bind(addr)?, config)
    }

    /// Serves `broker` on an already bound listener (so a broker can learn its port before it
    /// opens and registers its address).
    ///
    /// # Errors
    /// Errors reading the listener's address.
    pub fn serve(
        broker: Broker,
        listener: TcpListener,
        config: KafkaServerConfig,
    ) -> io::Result<KafkaServer> {
        let local_addr = listener.local_addr()?;
        let host = config
            .advertised_host
            .clone()
            .unwrap_or_else(|| local_addr.ip().to_string());
        let port = config.advertised_port.unwrap_or(local_addr.port());
        let shared = Arc::new(Shared {
            handler: Handler::new(broker, config.clone(), host, port),
            config,
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("kafka-accept-{}", local_addr.port()))
                .spawn(move || accept_loop(&shared, &listener))?
        };
        Ok(KafkaServer {
            shared,
            local_addr,
            acceptor: Some(acceptor),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> ServerStats {
        let c = &self.shared.counters;
        ServerStats {
            connections_accepted: c.connections_accepted.load(Ordering::Relaxed),
            connections_refused: c.connections_refused.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            oversized_frames: c.oversized_frames.load(Ordering::Relaxed),
            malformed_frames: c.malformed_frames.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting, closes every connection and waits for the acceptor.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect(self.local_addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for (_, stream) in self.shared.connections.lock().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for KafkaServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            continue;
        };
        let id = next_id;
        next_id += 1;
        {
            let mut connections = shared.connections.lock();
            if connections.len() >= shared.config.max_connections {
                shared
                    .counters
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                ::log::warn!(
                    "kafka: refusing a connection: {} connections open (max_connections)",
                    connections.len()
                );
                continue;
            }
            match stream.try_clone() {
                Ok(clone) => connections.insert(id, clone),
                Err(_) => continue,
            };
        }
        shared
            .counters
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let worker = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("kafka-conn-{id}"))
            .spawn(move || {
                let peer = stream.peer_addr().ok();
                match serve_connection(&worker, stream) {
                    Err(ConnectionEnd::Closed) | Ok(()) => {
                        ::log::debug!("kafka: {peer:?} closed its connection");
                    }
                    Err(_) if worker.stopping.load(Ordering::SeqCst) => {}
                    Err(reason) => {
                        ::log::info!("kafka: closing connection from {peer:?}: {reason}")
                    }
                }
                worker.connections.lock().remove(&id);
            });
        if spawned.is_err() {
            shared.connections.lock().remove(&id);
        }
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionEnd {
    #[error("peer closed the connection")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {size} bytes refused (socket_request_max_bytes {max})")]
    Oversized { size: i64, max: usize },
    #[error("malformed request: {0}")]
    Malformed(#[from] DecodeError),
    #[error("response does not encode: {0}")]
    Encode(String),
}

fn serve_connection(shared: &Shared, stream: TcpStream) -> Result<(), ConnectionEnd> {
    let mut reader = BufReader::with_capacity(64 << 10, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(64 << 10, stream);
    loop {
        let frame = match read_frame(&mut reader, shared.config.socket_request_max_bytes) {
            Ok(frame) => frame,
            Err(end @ ConnectionEnd::Oversized { .. }) => {
                shared
                    .counters
                    .oversized_frames
                    .fetch_add(1, Ordering::Relaxed);
                ::log::warn!("kafka: {end}");
                return Err(end);
            }
            Err(end) => return Err(end),
        };
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut body = frame;
        let header = match decode_header(&mut body) {
            Ok(header) => header,
            Err(error) => return Err(malformed(shared, error)),
        };
        if is_peer_api(header.api_key) {
            let request = decode_peer_request(header.api_key, header.api_version, &mut body)
                .map_err(|error| malformed(shared, error))?;
            write_response(&mut writer, &header, shared.handler.handle_peer(request))?;
            writer.flush()?;
            continue;
        }
        let request = decode_request(&header, &mut body);
        let response = match request {
            Ok(request) => shared.handler.handle(&header, request),
            Err(DecodeError::UnsupportedVersion { .. })
                if header.api_key == kafka_protocol::messages::ApiKey::ApiVersions as i16 =>
            {
                Some(shared.handler.unsupported_api_versions())
            }
            Err(error) => return Err(malformed(shared, error)),
        };
        if let Some(response) = response {
            let response = response.map_err(ConnectionEnd::Encode)?;
            write_response(&mut writer, &header, response)?;
            writer.flush()?;
        }
    }
}

fn malformed(shared: &Shared, error: DecodeError) -> ConnectionEnd {
    shared
        .counters
        .malformed_frames
        .fetch_add(1, Ordering::Relaxed);
    ::log::warn!("kafka: malformed request: {error}");
    ConnectionEnd::Malformed(error)
}

/// Reads one size-prefixed frame. The declared size is checked before anything is allocated,
/// and the buffer grows with the bytes that actually arrive.
fn read_frame(reader: &mut impl Read, max_bytes: usize) -> Result<Bytes, ConnectionEnd> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(ConnectionEnd::Closed)
        }
        Err(error) => return Err(error.into()),
    }
    let size = i32::from_be_bytes(size);
    let Some(len) = usize::try_from(size).ok().filter(|&len| len <= max_bytes) else {
        return Err(ConnectionEnd::Oversized {
            size: i64::from(size),
            max: max_bytes,
        });
    };
    let mut frame = Vec::with_capacity(len.min(64 << 10));
    let read = reader.take(len as u64).read_to_end(&mut frame)?;
    if read < len {
        return Err(ConnectionEnd::Closed);
    }
    Ok(Bytes::from(frame))
}

/// An encoded response body, with the version of the response header it needs.
pub(crate) struct EncodedResponse {
    pub header_version: i16,
    pub body: BytesMut,
}

fn write_response(
    writer: &mut impl Write,
    header: &RequestHeader,
    response: EncodedResponse,
) -> Result<(), ConnectionEnd> {
    let mut prefix = BytesMut::with_capacity(9);
    let header_len = if response.header_version >= 1 { 5 } else { 4 };
    let total = header_len + response.body.len();
    let total =
        i32::try_from(total).map_err(|_| ConnectionEnd::Encode("response too large".into()))?;
    prefix.put_i32(total);
    prefix.put_i32(header.correlation_id);
    if response.header_version >= 1 {
        prefix.put_u8(0); // no tagged fields
    }
    writer.write_all(&prefix)?;
    writer.write_all(&response.body)?;
    Ok(())
}

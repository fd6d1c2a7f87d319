//! A Kafka-protocol front end: a TCP server that serves a [`Broker`](crate::broker::Broker) to
//! Kafka's own clients (the `kafka` feature).
//!
//! - [`decode`]: request frames, decoded with bounds (no field read from the wire sizes an
//!   allocation beyond the frame that carries it).
//! - [`KafkaServer`]: the listener, one thread per connection, requests answered in order.
//! - `replica`: the server's answers to peer brokers (replica fetches, epoch queries, the
//!   private control messages).
//! - [`KafkaTransport`]: replication to brokers in other processes over this protocol.

pub mod decode;
mod errors;
mod handler;
mod replica;
mod server;
mod transport;

pub use server::{KafkaServer, KafkaServerConfig, ServerStats};
pub use transport::{KafkaTransport, KafkaTransportConfig};

//! The answers: each decoded request against the broker, as Kafka's broker answers it.
//!
//! # Layout
//! The same families as `decode`'s:
//! - `produce`: Produce, InitProducerId.
//! - `fetch`: Fetch, ListOffsets, OffsetForLeaderEpoch.
//! - `metadata`: Metadata, ApiVersions, CreateTopics, DeleteTopics.
//! - `group`: FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, DescribeGroups,
//!   ListGroups.
//! - `offsets`: OffsetCommit, OffsetFetch.

mod fetch;
mod group;
mod metadata;
mod offsets;
mod produce;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::decode::peer::PeerRequest;
use super::decode::{KafkaRequest, RequestHeader};
use super::errors;
use super::replica;
use super::server::{EncodedResponse, KafkaServerConfig};
use crate::broker::Broker;

pub(crate) type Answer = Option<Result<EncodedResponse, String>>;

pub(crate) struct Handler {
    broker: Broker,
    config: KafkaServerConfig,
    host: String,
    port: u16,
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

fn encode<R: Encodable>(key: ApiKey, version: i16, response: &R) -> Answer {
    let mut body = BytesMut::new();
    Some(
        response
            .encode(&mut body, version)
            .map(|()| EncodedResponse {
                header_version: key.response_header_version(version),
                body,
            })
            .map_err(|error| format!("{key:?} v{version}: {error}")),
    )
}

/// A partition index from the wire: Kafka's are non-negative `i32`s.
fn partition_index(index: i32) -> Option<u32> {
    u32::try_from(index).ok()
}

impl Handler {
    pub(crate) fn new(broker: Broker, config: KafkaServerConfig, host: String, port: u16) -> Self {
        Handler {
            broker,
            config,
            host,
            port,
        }
    }

    pub(crate) fn handle(&self, header: &RequestHeader, request: KafkaRequest) -> Answer {
        let v = header.api_version;
        match request {
            KafkaRequest::ApiVersions(_) => encode(ApiKey::ApiVersions, v, &self.api_versions(0)),
            KafkaRequest::Metadata(request) => {
                encode(ApiKey::Metadata, v, &self.metadata(v, &request))
            }
            KafkaRequest::Produce(request) => {
                let response = self.produce(&request);
                if request.acks == 0 {
                    None
                } else {
                    encode(ApiKey::Produce, v, &response)
                }
            }
            KafkaRequest::InitProducerId(request) => {
                encode(ApiKey::InitProducerId, v, &self.init_producer_id(&request))
            }
            KafkaRequest::Fetch(request) if replica::from_replica(request.replica_id.0) => encode(
                ApiKey::Fetch,
                v,
                &replica::replica_fetch(&self.broker, &request),
            ),
            KafkaRequest::Fetch(request) => encode(ApiKey::Fetch, v, &self.fetch(&request)),
            KafkaRequest::ListOffsets(request) => {
                encode(ApiKey::ListOffsets, v, &self.list_offsets(v, &request))
            }
            KafkaRequest::OffsetForLeaderEpoch(request)
                if replica::from_replica(request.replica_id.0) =>
            {
                encode(
                    ApiKey::OffsetForLeaderEpoch,
                    v,
                    &replica::replica_end_offsets(&self.broker, &request),
                )
            }
            KafkaRequest::OffsetForLeaderEpoch(request) => encode(
                ApiKey::OffsetForLeaderEpoch,
                v,
                &self.offset_for_leader_epoch(&request),
            ),
            KafkaRequest::FindCoordinator(request) => encode(
                ApiKey::FindCoordinator,
                v,
                &self.find_coordinator(v, &request),
            ),
            KafkaRequest::JoinGroup(request) => {
                encode(ApiKey::JoinGroup, v, &self.join_group(v, header, &request))
            }
            KafkaRequest::SyncGroup(request) => {
                encode(ApiKey::SyncGroup, v, &self.sync_group(&request))
            }
            KafkaRequest::Heartbeat(request) => {
                encode(ApiKey::Heartbeat, v, &self.heartbeat(&request))
            }
            KafkaRequest::LeaveGroup(request) => {
                encode(ApiKey::LeaveGroup, v, &self.leave_group(v, &request))
            }
            KafkaRequest::OffsetCommit(request) => {
                encode(ApiKey::OffsetCommit, v, &self.offset_commit(&request))
            }
            KafkaRequest::OffsetFetch(request) => {
                encode(ApiKey::OffsetFetch, v, &self.offset_fetch(v, &request))
            }
            KafkaRequest::ListGroups(request) => {
                encode(ApiKey::ListGroups, v, &self.list_groups(&request))
            }
            KafkaRequest::DescribeGroups(request) => {
                encode(ApiKey::DescribeGroups, v, &self.describe_groups(&request))
            }
            KafkaRequest::CreateTopics(request) => {
                encode(ApiKey::CreateTopics, v, &self.create_topics(&request))
            }
            KafkaRequest::DeleteTopics(request) => {
                encode(ApiKey::DeleteTopics, v, &self.delete_topics(v, &request))
            }
        }
    }

    /// A logbus-private request from a peer broker (see `decode::peer`).
    pub(crate) fn handle_peer(&self, request: PeerRequest) -> EncodedResponse {
        replica::peer_request(&self.broker, request)
    }

    /// The answer to an ApiVersions request of a version newer than this server knows: v0,
    /// error 35 and the supported ranges, so the client retries with one of them.
    pub(crate) fn unsupported_api_versions(&self) -> Result<EncodedResponse, String> {
        encode(
            ApiKey::ApiVersions,
            0,
            &self.api_versions(errors::UNSUPPORTED_VERSION),
        )
        .expect("encode always answers")
    }
}

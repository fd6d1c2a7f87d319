//! The server's side of replication between brokers: Fetch and OffsetForLeaderEpoch from a
//! replica (`replica_id >= 0`) and the two private APIs (see `decode::peer`), answered by the
//! broker's [`ReplicaService`] after converting the Kafka messages to the replication
//! layer's. Records travel as the raw bytes of the leader's log.
//!
//! Peers are trusted as Kafka trusts them without an authorizer; what is checked is that a
//! message names a registered broker: a replica fetch must carry the follower's broker epoch
//! (`decode::peer`), a leader-and-ISR notice must come from a registered broker, and a
//! controlled shutdown must name a broker by its current registration.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};

use super::decode::peer::{
    encode_controlled_shutdown_response, encode_leader_and_isr_response, i64_tag, read_i64_tag,
    ControlledShutdown, LeaderAndIsr, PeerRequest, LOG_END_OFFSET_TAG, REPLICA_BROKER_EPOCH_TAG,
};
use super::errors::{self, code_of_replica};
use super::server::EncodedResponse;
use crate::broker::Broker;
use crate::replication::{
    self, EpochQuery, EpochRequest, FetchedData, LeaderAndIsrNotice, ReplicaError, ReplicaService,
};

/// The longest a replica's Fetch may wait, whatever it asks (a connection thread's bound).
const MAX_REPLICA_WAIT_MS: i32 = 30_000;

/// Whether a Fetch or OffsetForLeaderEpoch comes from a replica rather than a client
/// (consumers send -1, Kafka's debug consumers -2).
pub(super) fn from_replica(replica_id: i32) -> bool {
    replica_id >= 0
}

type Key = (Arc<str>, u32);

/// A replica's Fetch, answered by the broker's replica service.
pub(super) fn replica_fetch(broker: &Broker, request: &FetchRequest) -> FetchResponse {
    let broker_epoch = request
        .unknown_tagged_fields
        .get(&REPLICA_BROKER_EPOCH_TAG)
        .and_then(|value| read_i64_tag(value.clone(), "replica_broker_epoch").ok());
    let mut partitions = Vec::new();
    let mut max_partition_bytes = 0usize;
    for topic in &request.topics {
        let name: Arc<str> = Arc::from(topic.topic.0.as_str());
        for wanted in &topic.partitions {
            if let (Ok(partition), Ok(fetch_offset)) = (
                u32::try_from(wanted.partition),
                u64::try_from(wanted.fetch_offset),
            ) {
                partitions.push(replication::FetchPartition {
                    topic: Arc::clone(&name),
                    partition,
                    fetch_offset,
                    current_leader_epoch: wanted.current_leader_epoch,
                });
            }
            max_partition_bytes =
                max_partition_bytes.max(usize::try_from(wanted.partition_max_bytes).unwrap_or(0));
        }
    }
    let mut answers: HashMap<Key, Result<FetchedData, ReplicaError>> = HashMap::new();
    // Without the broker epoch the fetch is not a broker's of this cluster: every partition
    // then answers that this broker has no such replica.
    if let Some(replica_broker_epoch) = broker_epoch {
        let served = broker
            .replication()
            .handle_fetch(replication::FetchRequest {
                replica_id: request.replica_id.0,
                replica_broker_epoch,
                max_wait_ms: request.max_wait_ms.clamp(0, MAX_REPLICA_WAIT_MS) as u64,
                max_partition_bytes,
                partitions,
            });
        for answer in served.partitions {
            answers.insert((answer.topic, answer.partition), answer.result);
        }
    }
    let mut response = FetchResponse::default();
    for topic in &request.topics {
        let mut answer = FetchableTopicResponse::default();
        answer.topic = topic.topic.clone();
        let name: Arc<str> = Arc::from(topic.topic.0.as_str());
        for wanted in &topic.partitions {
            let key = u32::try_from(wanted.partition).map(|p| (Arc::clone(&name), p));
            let result = match key {
                Ok(key) => answers
                    .remove(&key)
                    .unwrap_or(Err(if wanted.fetch_offset < 0 {
                        ReplicaError::OffsetOutOfRange
                    } else {
                        ReplicaError::NotLeaderOrFollower
                    })),
                Err(_) => Err(ReplicaError::UnknownTopicOrPartition),
            };
            answer
                .partitions
                .push(partition_data(wanted.partition, result));
        }
        response.responses.push(answer);
    }
    response
}

fn partition_data(index: i32, result: Result<FetchedData, ReplicaError>) -> PartitionData {
    let mut partition = PartitionData::default();
    partition.partition_index = index;
    partition.preferred_read_replica = BrokerId(-1);
    match result {
        Ok(data) => {
            partition.high_watermark = data.high_watermark as i64;
            partition.last_stable_offset = data.high_watermark as i64;
            partition.log_start_offset = data.log_start_offset as i64;
            partition
                .unknown_tagged_fields
                .insert(LOG_END_OFFSET_TAG, i64_tag(data.log_end_offset as i64));
            partition.records = Some(data.records);
        }
        Err(error) => {
            partition.error_code = code_of_replica(error);
            partition.high_watermark = -1;
            partition.last_stable_offset = -1;
            partition.log_start_offset = -1;
        }
    }
    partition
}

/// A replica's OffsetForLeaderEpoch, answered by the broker's replica service.
pub(super) fn replica_end_offsets(
    broker: &Broker,
    request: &OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut queries = Vec::new();
    for topic in &request.topics {
        let name: Arc<str> = Arc::from(topic.topic.0.as_str());
        for wanted in &topic.partitions {
            if let Ok(partition) = u32::try_from(wanted.partition) {
                queries.push(EpochQuery {
                    topic: Arc::clone(&name),
                    partition,
                    current_leader_epoch: wanted.current_leader_epoch,
                    leader_epoch: wanted.leader_epoch,
                });
            }
        }
    }
    let served = broker.replication().handle_end_offsets(EpochRequest {
        replica_id: request.replica_id.0,
        partitions: queries,
    });
    let mut answers: HashMap<Key, Result<Option<(i32, u64)>, ReplicaError>> = served
        .partitions
        .into_iter()
        .map(|answer| ((answer.topic, answer.partition), answer.result))
        .collect();
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in &request.topics {
        let mut answer = OffsetForLeaderTopicResult::default();
        answer.topic = topic.topic.clone();
        let name: Arc<str> = Arc::from(topic.topic.0.as_str());
        for wanted in &topic.partitions {
            let mut partition = EpochEndOffset::default();
            partition.partition = wanted.partition;
            partition.leader_epoch = -1;
            partition.end_offset = -1;
            let result = u32::try_from(wanted.partition)
                .ok()
                .and_then(|p| answers.remove(&(Arc::clone(&name), p)))
                .unwrap_or(Err(ReplicaError::UnknownTopicOrPartition));
            match result {
                Ok(Some((epoch, end))) => {
                    partition.leader_epoch = epoch;
                    partition.end_offset = end as i64;
                }
                Ok(None) => {}
                Err(error) => partition.error_code = code_of_replica(error),
            }
            answer.partitions.push(partition);
        }
        response.topics.push(answer);
    }
    response
}

/// A private request from a peer: the encoded answer (response header v0).
pub(super) fn peer_request(broker: &Broker, request: PeerRequest) -> EncodedResponse {
    let body = match request {
        PeerRequest::LeaderAndIsr(notice) => leader_and_isr(broker, notice),
        PeerRequest::ControlledShutdown(shutdown) => controlled_shutdown(broker, shutdown),
    };
    EncodedResponse {
        header_version: 0,
        body,
    }
}

fn leader_and_isr(broker: &Broker, notice: LeaderAndIsr) -> BytesMut {
    let session = broker.replication().session();
    let registered = replication::live_broker_ids(session.as_ref())
        .map(|ids| ids.contains(&notice.controller_id))
        .unwrap_or(false);
    if !registered {
        return encode_leader_and_isr_response(errors::NOT_CONTROLLER);
    }
    let partitions = notice
        .partitions
        .into_iter()
        .filter_map(|(topic, partition)| {
            u32::try_from(partition)
                .ok()
                .map(|partition| (Arc::from(topic.as_str()), partition))
        })
        .collect();
    broker
        .replication()
        .handle_leader_and_isr(LeaderAndIsrNotice {
            controller_id: notice.controller_id,
            controller_epoch: notice.controller_epoch,
            partitions,
        });
    encode_leader_and_isr_response(errors::NONE)
}

fn controlled_shutdown(broker: &Broker, shutdown: ControlledShutdown) -> BytesMut {
    let session = broker.replication().session();
    let registered = replication::live_brokers(session.as_ref())
        .ok()
        .and_then(|brokers| brokers.get(&shutdown.broker_id).copied());
    if registered.map(|epoch| epoch.epoch) != Some(shutdown.broker_epoch) {
        return encode_controlled_shutdown_response(errors::STALE_BROKER_EPOCH, -1);
    }
    match broker
        .replication()
        .handle_controlled_shutdown(shutdown.broker_id)
    {
        Some(remaining) => encode_controlled_shutdown_response(
            errors::NONE,
            i32::try_from(remaining).unwrap_or(i32::MAX),
        ),
        None => encode_controlled_shutdown_response(errors::NOT_CONTROLLER, -1),
    }
}

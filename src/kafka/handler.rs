//! The answers: each decoded request against the broker, as Kafka's broker answers it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FetchRequest, FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, InitProducerIdRequest, InitProducerIdResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse,
    ProducerId, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::decode::peer::PeerRequest;
use super::decode::{KafkaRequest, RequestHeader, SUPPORTED_APIS};
use super::errors::{self, code_of_broker, code_of_group};
use super::replica;
use super::server::{EncodedResponse, KafkaServerConfig};
use crate::broker::{Broker, BrokerError, TopicConfig};
use crate::group::{
    BlockingCoordinator, CommitRequest, GroupError, JoinRequest, MemberRef, OffsetAndMetadata,
    Protocol, SyncRequest, TopicPartition, OFFSETS_TOPIC,
};
use crate::partition::{Notifier, Replica};
use crate::record::RecordBatch;
use crate::replication::{AckLevel, PendingAppend, ReplicatedPartition};

/// The longest a Fetch may wait, whatever it asks (a bound on a connection thread's sleep).
const MAX_FETCH_WAIT_MS: i32 = 30_000;

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

    fn api_versions(&self, error_code: i16) -> ApiVersionsResponse {
        let mut response = ApiVersionsResponse::default();
        response.error_code = error_code;
        response.api_keys = SUPPORTED_APIS
            .iter()
            .map(|api| {
                let mut version = ApiVersion::default();
                version.api_key = api.key as i16;
                version.min_version = api.min_version;
                version.max_version = api.max_version;
                version
            })
            .collect();
        response
    }

    // ---- Metadata -------------------------------------------------------------------------

    fn brokers(&self) -> Vec<MetadataResponseBroker> {
        let session = self.broker.replication().session();
        let endpoints = crate::replication::broker_endpoints(session.as_ref()).unwrap_or_default();
        let mut brokers: Vec<MetadataResponseBroker> = endpoints
            .into_iter()
            .filter(|(id, _)| *id != self.broker.id())
            .map(|(id, endpoint)| {
                let mut broker = MetadataResponseBroker::default();
                broker.node_id = BrokerId(id);
                broker.host = text(&endpoint.host);
                broker.port = i32::from(endpoint.port);
                broker
            })
            .collect();
        let mut own = MetadataResponseBroker::default();
        own.node_id = BrokerId(self.broker.id());
        own.host = text(&self.host);
        own.port = i32::from(self.port);
        brokers.push(own);
        brokers.sort_by_key(|broker| broker.node_id);
        brokers
    }

    fn metadata(&self, version: i16, request: &MetadataRequest) -> MetadataResponse {
        let mut response = MetadataResponse::default();
        response.brokers = self.brokers();
        response.cluster_id = Some(text(&self.config.cluster_id));
        response.controller_id = BrokerId(self.controller_id());
        // v0: an empty list means every topic; v1+: null does.
        let names: Vec<String> = match &request.topics {
            Some(topics) if !(version == 0 && topics.is_empty()) => topics
                .iter()
                .filter_map(|topic| topic.name.as_ref().map(|name| name.0.to_string()))
                .collect(),
            _ => self
                .broker
                .list_topics()
                .into_iter()
                .filter(|name| name != OFFSETS_TOPIC)
                .collect(),
        };
        let allow_create = self.config.auto_create_topics_enable
            && (version < 4 || request.allow_auto_topic_creation);
        response.topics = names
            .iter()
            .map(|name| self.topic_metadata(name, allow_create))
            .collect();
        response
    }

    fn controller_id(&self) -> i32 {
        let session = self.broker.replication().session();
        crate::replication::controller_id(session.as_ref())
            .ok()
            .flatten()
            .unwrap_or(self.broker.id())
    }

    fn topic_metadata(&self, name: &str, allow_create: bool) -> MetadataResponseTopic {
        let mut topic = MetadataResponseTopic::default();
        topic.name = Some(topic_name(name));
        topic.is_internal = name == OFFSETS_TOPIC;
        let count = match self.broker.topic(name) {
            Ok(existing) => existing.partition_count(),
            Err(BrokerError::UnknownTopic { .. }) if allow_create => match self.auto_create(name) {
                Ok(count) => count,
                Err(error) => {
                    topic.error_code = code_of_broker(&error);
                    return topic;
                }
            },
            Err(error) => {
                topic.error_code = code_of_broker(&error);
                return topic;
            }
        };
        let session = self.broker.replication().session();
        let assignment = crate::replication::read_assignment(session.as_ref(), name)
            .ok()
            .flatten();
        for index in 0..count {
            let mut partition = MetadataResponsePartition::default();
            partition.partition_index = index as i32;
            let replicas = assignment
                .as_ref()
                .and_then(|assignment| assignment.partitions.get(index as usize).cloned())
                .unwrap_or_default();
            match crate::replication::read_state(session.as_ref(), name, index) {
                Ok(Some(state)) if state.leader >= 0 => {
                    partition.leader_id = BrokerId(state.leader);
                    partition.leader_epoch = state.leader_epoch;
                    partition.isr_nodes = state.isr.iter().copied().map(BrokerId).collect();
                }
                _ => {
                    partition.error_code = errors::LEADER_NOT_AVAILABLE;
                    partition.leader_id = BrokerId(-1);
                    partition.leader_epoch = -1;
                }
            }
            partition.replica_nodes = replicas.into_iter().map(BrokerId).collect();
            topic.partitions.push(partition);
        }
        topic
    }

    /// Kafka's `auto.create.topics.enable`: a topic named in Metadata is created with
    /// `num.partitions` and `default.replication.factor` (at most the live brokers).
    fn auto_create(&self, name: &str) -> Result<u32, BrokerError> {
        let live = self.live_brokers().max(1);
        let config = TopicConfig {
            partitions: self.config.num_partitions,
            replication_factor: self.config.default_replication_factor.min(live),
            ..TopicConfig::default()
        };
        match self.broker.create_topic(name, config) {
            Ok(topic) => {
                self.wait_for_leaders(name, topic.partition_count());
                Ok(topic.partition_count())
            }
            // Another connection created it first.
            Err(BrokerError::TopicExists { .. }) => {
                self.broker.topic(name).map(|topic| topic.partition_count())
            }
            Err(error) => Err(error),
        }
    }

    /// Gives the controller a moment to elect the new topic's leaders, so the first Metadata
    /// answer already names them (clients retry on LEADER_NOT_AVAILABLE otherwise).
    fn wait_for_leaders(&self, name: &str, partitions: u32) {
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if (0..partitions).all(|p| self.broker.leader_of(name, p).is_some()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn live_brokers(&self) -> u16 {
        let session = self.broker.replication().session();
        crate::replication::live_broker_ids(session.as_ref())
            .map(|ids| u16::try_from(ids.len()).unwrap_or(u16::MAX))
            .unwrap_or(1)
    }

    // ---- Produce --------------------------------------------------------------------------

    fn produce(&self, request: &ProduceRequest) -> ProduceResponse {
        let acks = match request.acks {
            -1 => AckLevel::All,
            _ => AckLevel::Leader,
        };
        let mut response = ProduceResponse::default();
        if request.transactional_id.is_some() {
            for topic in &request.topic_data {
                let mut answer = TopicProduceResponse::default();
                answer.name = topic.name.clone();
                for data in &topic.partition_data {
                    let mut partition = PartitionProduceResponse::default();
                    partition.index = data.index;
                    partition.error_code = errors::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                    partition.base_offset = -1;
                    answer.partition_responses.push(partition);
                }
                response.responses.push(answer);
            }
            return response;
        }
        // Append everything first, then wait: the partitions replicate in parallel.
        let mut pending: Vec<(usize, usize, String, u32, Vec<PendingAppend>)> = Vec::new();
        for (t, topic) in request.topic_data.iter().enumerate() {
            let mut answer = TopicProduceResponse::default();
            answer.name = topic.name.clone();
            let name = topic.name.0.as_str();
            for (p, data) in topic.partition_data.iter().enumerate() {
                let mut partition = PartitionProduceResponse::default();
                partition.index = data.index;
                partition.base_offset = -1;
                partition.log_append_time_ms = -1;
                partition.log_start_offset = -1;
                let appended = match partition_index(data.index) {
                    Some(index) => self.append_all(name, index, data.records.as_ref(), acks),
                    None => Err(errors::UNKNOWN_TOPIC_OR_PARTITION),
                };
                match appended {
                    Ok(appends) => {
                        if let Some(first) = appends.first() {
                            partition.base_offset = first.result.base_offset as i64;
                            partition.log_append_time_ms =
                                first.result.log_append_time.unwrap_or(-1);
                        }
                        pending.push((t, p, name.to_owned(), data.index as u32, appends));
                    }
                    Err(code) => partition.error_code = code,
                }
                answer.partition_responses.push(partition);
            }
            response.responses.push(answer);
        }
        for (t, p, name, index, appends) in pending {
            let mut code = errors::NONE;
            for append in &appends {
                if let Err(error) = self.broker.wait_append(&name, index, append) {
                    code = code_of_broker(&error);
                    break;
                }
            }
            let partition = &mut response.responses[t].partition_responses[p];
            partition.error_code = code;
            if code != errors::NONE {
                partition.base_offset = -1;
            } else if let Ok(replica) = self.broker.replica(&name, index) {
                partition.log_start_offset = replica.log().log_start_offset() as i64;
            }
        }
        response
    }

    /// Appends every batch of one partition's records, in order; stops at the first failure.
    fn append_all(
        &self,
        topic: &str,
        partition: u32,
        records: Option<&Bytes>,
        acks: AckLevel,
    ) -> Result<Vec<PendingAppend>, i16> {
        let Some(records) = records else {
            return Err(errors::CORRUPT_MESSAGE);
        };
        let mut rest = records.clone();
        let mut appends = Vec::new();
        while !rest.is_empty() {
            let (batch, tail) =
                RecordBatch::split_from(&rest, rest.len()).map_err(|_| errors::CORRUPT_MESSAGE)?;
            rest = tail;
            let append = self
                .broker
                .append(topic, partition, &batch, acks)
                .map_err(|error| code_of_broker(&error))?;
            appends.push(append);
        }
        if appends.is_empty() {
            return Err(errors::CORRUPT_MESSAGE);
        }
        Ok(appends)
    }

    fn init_producer_id(&self, request: &InitProducerIdRequest) -> InitProducerIdResponse {
        let mut response = InitProducerIdResponse::default();
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
        if request.transactional_id.is_some() {
            // Transactions are not built: say so in the client's terms.
            response.error_code = errors::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            return response;
        }
        match self.broker.init_producer_id() {
            Ok((id, epoch)) => {
                response.producer_id = ProducerId(id);
                response.producer_epoch = epoch;
            }
            Err(error) => response.error_code = code_of_broker(&error),
        }
        response
    }

    // ---- Fetch ----------------------------------------------------------------------------

    /// The local replica of a partition this broker leads, checked against the epoch the
    /// client believes in (`-1`: no check).
    fn leading(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<(Arc<ReplicatedPartition>, Arc<Replica>), i16> {
        let index = partition_index(partition).ok_or(errors::UNKNOWN_TOPIC_OR_PARTITION)?;
        let local = match self.broker.replicated_partition(topic, index) {
            Ok(local) => local,
            Err(_) => {
                return Err(match self.broker.topic(topic) {
                    Ok(found) if index < found.partition_count() => errors::NOT_LEADER_OR_FOLLOWER,
                    _ => errors::UNKNOWN_TOPIC_OR_PARTITION,
                })
            }
        };
        if !local.is_leader() {
            return Err(errors::NOT_LEADER_OR_FOLLOWER);
        }
        let (_, epoch) = local.leader();
        if current_leader_epoch >= 0 && current_leader_epoch < epoch {
            return Err(errors::FENCED_LEADER_EPOCH);
        }
        if current_leader_epoch > epoch {
            return Err(errors::UNKNOWN_LEADER_EPOCH);
        }
        let replica = Arc::clone(local.replica());
        Ok((local, replica))
    }

    fn fetch(&self, request: &FetchRequest) -> FetchResponse {
        let wait_ms = request.max_wait_ms.clamp(0, MAX_FETCH_WAIT_MS);
        let deadline = Instant::now() + Duration::from_millis(wait_ms as u64);
        let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
        let notifier = Notifier::new();
        let mut watched: Vec<Arc<Replica>> = Vec::new();
        let response = loop {
            notifier.reset();
            let (response, bytes, failed) = self.fetch_once(request, &mut watched, &notifier);
            if bytes >= min_bytes.max(1) || failed || Instant::now() >= deadline {
                break response;
            }
            notifier.wait_until(deadline);
        };
        for replica in &watched {
            replica.unregister_waiter(&notifier);
        }
        response
    }

    /// One pass over the requested partitions: the response, its record bytes, and whether a
    /// partition answered an error (which ends the long poll, as in Kafka).
    fn fetch_once(
        &self,
        request: &FetchRequest,
        watched: &mut Vec<Arc<Replica>>,
        notifier: &Arc<Notifier>,
    ) -> (FetchResponse, usize, bool) {
        let mut response = FetchResponse::default();
        let mut budget = usize::try_from(request.max_bytes).unwrap_or(0);
        let mut total = 0usize;
        let mut failed = false;
        for topic in &request.topics {
            let mut answer = FetchableTopicResponse::default();
            answer.topic = topic.topic.clone();
            answer.topic_id = topic.topic_id;
            let name = topic.topic.0.as_str();
            for wanted in &topic.partitions {
                let mut partition = PartitionData::default();
                partition.partition_index = wanted.partition;
                partition.high_watermark = -1;
                partition.last_stable_offset = -1;
                partition.log_start_offset = -1;
                partition.preferred_read_replica = BrokerId(-1);
                partition.aborted_transactions = if request.isolation_level == 1 {
                    Some(Vec::new())
                } else {
                    None
                };
                match self.leading(name, wanted.partition, wanted.current_leader_epoch) {
                    Err(code) => {
                        partition.error_code = code;
                        failed = true;
                    }
                    Ok((_, replica)) => {
                        if !watched.iter().any(|known| Arc::ptr_eq(known, &replica)) {
                            replica.register_waiter(notifier);
                            watched.push(Arc::clone(&replica));
                        }
                        let high_watermark = replica.high_watermark();
                        partition.high_watermark = high_watermark as i64;
                        partition.last_stable_offset = high_watermark as i64;
                        partition.log_start_offset = replica.log().log_start_offset() as i64;
                        let max_bytes = usize::try_from(wanted.partition_max_bytes)
                            .unwrap_or(0)
                            .min(budget);
                        // KIP-74: the first partition with data answers at least one batch,
                        // whatever the limits, so a large batch cannot stall the consumer.
                        let max_bytes = if total == 0 {
                            max_bytes.max(1)
                        } else {
                            max_bytes
                        };
                        match u64::try_from(wanted.fetch_offset) {
                            Ok(offset) if max_bytes > 0 => {
                                match replica.read_committed(offset, max_bytes) {
                                    Ok(read) => {
                                        total += read.bytes.len();
                                        budget = budget.saturating_sub(read.bytes.len());
                                        partition.records = Some(read.bytes);
                                    }
                                    Err(error) => {
                                        partition.error_code = errors::code_of_partition(&error);
                                        failed = true;
                                    }
                                }
                            }
                            Ok(_) => partition.records = Some(Bytes::new()),
                            Err(_) => {
                                partition.error_code = errors::OFFSET_OUT_OF_RANGE;
                                failed = true;
                            }
                        }
                    }
                }
                answer.partitions.push(partition);
            }
            response.responses.push(answer);
        }
        (response, total, failed)
    }

    fn list_offsets(&self, version: i16, request: &ListOffsetsRequest) -> ListOffsetsResponse {
        let mut response = ListOffsetsResponse::default();
        for topic in &request.topics {
            let mut answer = ListOffsetsTopicResponse::default();
            answer.name = topic.name.clone();
            for wanted in &topic.partitions {
                let mut partition = ListOffsetsPartitionResponse::default();
                partition.partition_index = wanted.partition_index;
                partition.timestamp = -1;
                partition.offset = -1;
                partition.leader_epoch = -1;
                match self.leading(
                    topic.name.0.as_str(),
                    wanted.partition_index,
                    wanted.current_leader_epoch,
                ) {
                    Err(code) => partition.error_code = code,
                    Ok((local, replica)) => {
                        if version >= 4 {
                            partition.leader_epoch = local.leader().1;
                        }
                        match list_offset(&replica, wanted.timestamp) {
                            Ok(Some((offset, timestamp))) => {
                                partition.offset = offset;
                                partition.timestamp = timestamp;
                            }
                            Ok(None) => {}
                            Err(code) => partition.error_code = code,
                        }
                    }
                }
                answer.partitions.push(partition);
            }
            response.topics.push(answer);
        }
        response
    }

    fn offset_for_leader_epoch(
        &self,
        request: &OffsetForLeaderEpochRequest,
    ) -> OffsetForLeaderEpochResponse {
        let mut response = OffsetForLeaderEpochResponse::default();
        for topic in &request.topics {
            let mut answer = OffsetForLeaderTopicResult::default();
            answer.topic = topic.topic.clone();
            for wanted in &topic.partitions {
                let mut partition = EpochEndOffset::default();
                partition.partition = wanted.partition;
                partition.leader_epoch = -1;
                partition.end_offset = -1;
                match self.leading(
                    topic.topic.0.as_str(),
                    wanted.partition,
                    wanted.current_leader_epoch,
                ) {
                    Err(code) => partition.error_code = code,
                    Ok((_, replica)) => {
                        if let Some((epoch, end)) =
                            replica.log().end_offset_for_epoch(wanted.leader_epoch)
                        {
                            partition.leader_epoch = epoch;
                            partition.end_offset = end as i64;
                        }
                    }
                }
                answer.partitions.push(partition);
            }
            response.topics.push(answer);
        }
        response
    }

    // ---- Groups ---------------------------------------------------------------------------

    fn groups(&self) -> Result<Arc<BlockingCoordinator>, i16> {
        self.broker
            .group_coordinator()
            .map_err(|error| code_of_broker(&error))
    }

    fn find_coordinator(
        &self,
        version: i16,
        request: &FindCoordinatorRequest,
    ) -> FindCoordinatorResponse {
        let mut response = FindCoordinatorResponse::default();
        response.node_id = BrokerId(-1);
        response.port = -1;
        if request.key_type != 0 {
            // Transaction coordinators: transactions are not built.
            response.error_code = errors::COORDINATOR_NOT_AVAILABLE;
            response.error_message = Some(text("transactions are not supported"));
            return response;
        }
        match self.coordinator_endpoint(request.key.as_str()) {
            Ok((id, host, port)) => {
                response.node_id = BrokerId(id);
                response.host = text(&host);
                response.port = i32::from(port);
            }
            Err(code) => response.error_code = code,
        }
        if version >= 1 && response.error_code != errors::NONE {
            response.error_message = Some(text("group coordinator unavailable"));
        }
        response
    }

    /// Where `group`'s coordinator serves Kafka's protocol: the leader of the group's
    /// `__consumer_offsets` partition, this broker or another.
    fn coordinator_endpoint(&self, group: &str) -> Result<(i32, String, u16), i16> {
        let id = self
            .broker
            .group_coordinator_id(group)
            .map_err(|error| code_of_broker(&error))?;
        if id == self.broker.id() {
            // Its coordinator loads the partition on first use.
            self.groups()?;
            return Ok((id, self.host.clone(), self.port));
        }
        let session = self.broker.replication().session();
        crate::replication::broker_endpoints(session.as_ref())
            .ok()
            .and_then(|mut endpoints| endpoints.remove(&id))
            .map(|endpoint| (id, endpoint.host, endpoint.port))
            .ok_or(errors::COORDINATOR_NOT_AVAILABLE)
    }

    fn join_group(
        &self,
        version: i16,
        header: &RequestHeader,
        request: &JoinGroupRequest,
    ) -> JoinGroupResponse {
        let mut response = JoinGroupResponse::default();
        response.generation_id = -1;
        response.member_id = request.member_id.clone();
        let groups = match self.groups() {
            Ok(groups) => groups,
            Err(code) => {
                response.error_code = code;
                return response;
            }
        };
        let join = JoinRequest {
            group_id: request.group_id.0.to_string(),
            member_id: request.member_id.to_string(),
            group_instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
            client_id: header.client_id.clone().unwrap_or_default(),
            client_host: String::new(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: if version == 0 {
                request.session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            },
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .iter()
                .map(|protocol| Protocol {
                    name: protocol.name.to_string(),
                    metadata: protocol.metadata.clone(),
                })
                .collect(),
            // KIP-394: JoinGroup v4+ clients expect the member-id round.
            require_known_member_id: version >= 4,
        };
        match groups.join(&join) {
            Ok(joined) => {
                response.generation_id = joined.generation_id;
                response.protocol_type = Some(request.protocol_type.clone());
                response.protocol_name = joined.protocol_name.as_deref().map(text);
                response.leader = text(&joined.leader_id);
                response.member_id = text(&joined.member_id);
                response.skip_assignment = joined.skip_assignment;
                response.members = joined
                    .members
                    .iter()
                    .map(|member| {
                        let mut answer = JoinGroupResponseMember::default();
                        answer.member_id = text(&member.member_id);
                        answer.group_instance_id = member.group_instance_id.as_deref().map(text);
                        answer.metadata = member.metadata.clone();
                        answer
                    })
                    .collect();
            }
            Err(error) => {
                response.error_code = code_of_group(&error);
                if let GroupError::MemberIdRequired { member_id, .. } = &error {
                    response.member_id = text(member_id);
                }
            }
        }
        response
    }

    fn member(
        group_id: &GroupId,
        member_id: &StrBytes,
        instance_id: Option<&StrBytes>,
        generation_id: i32,
    ) -> MemberRef {
        MemberRef {
            group_id: group_id.0.to_string(),
            member_id: member_id.to_string(),
            group_instance_id: instance_id.map(|id| id.to_string()),
            generation_id,
        }
    }

    fn sync_group(&self, request: &SyncGroupRequest) -> SyncGroupResponse {
        let mut response = SyncGroupResponse::default();
        response.protocol_type = request.protocol_type.clone();
        response.protocol_name = request.protocol_name.clone();
        let sync = SyncRequest {
            member: Self::member(
                &request.group_id,
                &request.member_id,
                request.group_instance_id.as_ref(),
                request.generation_id,
            ),
            assignments: request
                .assignments
                .iter()
                .map(|assignment| {
                    (
                        assignment.member_id.to_string(),
                        assignment.assignment.clone(),
                    )
                })
                .collect(),
        };
        match self
            .groups()
            .and_then(|groups| groups.sync(&sync).map_err(|error| code_of_group(&error)))
        {
            Ok(assignment) => response.assignment = assignment,
            Err(code) => response.error_code = code,
        }
        response
    }

    fn heartbeat(&self, request: &HeartbeatRequest) -> HeartbeatResponse {
        let mut response = HeartbeatResponse::default();
        let member = Self::member(
            &request.group_id,
            &request.member_id,
            request.group_instance_id.as_ref(),
            request.generation_id,
        );
        if let Err(code) = self.groups().and_then(|groups| {
            groups
                .heartbeat(&member)
                .map_err(|error| code_of_group(&error))
        }) {
            response.error_code = code;
        }
        response
    }

    fn leave_group(&self, version: i16, request: &LeaveGroupRequest) -> LeaveGroupResponse {
        let mut response = LeaveGroupResponse::default();
        let groups = match self.groups() {
            Ok(groups) => groups,
            Err(code) => {
                response.error_code = code;
                return response;
            }
        };
        let group = request.group_id.0.as_str();
        if version < 3 {
            if let Err(error) = groups.leave(group, request.member_id.as_str(), None) {
                response.error_code = code_of_group(&error);
            }
            return response;
        }
        for member in &request.members {
            let mut answer = MemberResponse::default();
            answer.member_id = member.member_id.clone();
            answer.group_instance_id = member.group_instance_id.clone();
            if let Err(error) = groups.leave(
                group,
                member.member_id.as_str(),
                member.group_instance_id.as_ref().map(|id| id.as_str()),
            ) {
                answer.error_code = code_of_group(&error);
            }
            response.members.push(answer);
        }
        response
    }

    fn offset_commit(&self, request: &OffsetCommitRequest) -> OffsetCommitResponse {
        let now_ms = self.broker.clock().now_ms();
        let mut offsets = Vec::new();
        let mut invalid = Vec::new();
        for topic in &request.topics {
            for partition in &topic.partitions {
                match (
                    partition_index(partition.partition_index),
                    u64::try_from(partition.committed_offset),
                ) {
                    (Some(index), Ok(offset)) => offsets.push((
                        TopicPartition {
                            topic: topic.name.0.to_string(),
                            partition: index,
                        },
                        OffsetAndMetadata {
                            offset,
                            leader_epoch: (partition.committed_leader_epoch >= 0)
                                .then_some(partition.committed_leader_epoch),
                            metadata: partition
                                .committed_metadata
                                .as_ref()
                                .map(|m| m.to_string())
                                .unwrap_or_default(),
                            commit_timestamp_ms: now_ms,
                        },
                    )),
                    _ => invalid.push((topic.name.0.to_string(), partition.partition_index)),
                }
            }
        }
        let commit = CommitRequest {
            member: Self::member(
                &request.group_id,
                &request.member_id,
                request.group_instance_id.as_ref(),
                request.generation_id_or_member_epoch,
            ),
            offsets,
        };
        let code = match self.groups().and_then(|groups| {
            groups
                .commit_offsets(&commit)
                .map_err(|error| code_of_group(&error))
        }) {
            Ok(()) => errors::NONE,
            Err(code) => code,
        };
        let mut response = OffsetCommitResponse::default();
        for topic in &request.topics {
            let mut answer = OffsetCommitResponseTopic::default();
            answer.name = topic.name.clone();
            for partition in &topic.partitions {
                let mut result = OffsetCommitResponsePartition::default();
                result.partition_index = partition.partition_index;
                result.error_code = if invalid
                    .iter()
                    .any(|(t, p)| t == topic.name.0.as_str() && *p == partition.partition_index)
                {
                    errors::INVALID_COMMIT_OFFSET_SIZE
                } else {
                    code
                };
                answer.partitions.push(result);
            }
            response.topics.push(answer);
        }
        response
    }

    fn offset_fetch(&self, version: i16, request: &OffsetFetchRequest) -> OffsetFetchResponse {
        let response = self.offset_fetch_all(request);
        match response {
            Ok(response) => response,
            Err(code) => {
                let mut response = OffsetFetchResponse::default();
                if version >= 2 {
                    response.error_code = code;
                } else {
                    // v1 has no top-level error: every requested partition carries it.
                    for topic in request.topics.iter().flatten() {
                        let mut answer = OffsetFetchResponseTopic::default();
                        answer.name = topic.name.clone();
                        for &index in &topic.partition_indexes {
                            let mut partition = OffsetFetchResponsePartition::default();
                            partition.partition_index = index;
                            partition.committed_offset = -1;
                            partition.error_code = code;
                            answer.partitions.push(partition);
                        }
                        response.topics.push(answer);
                    }
                }
                response
            }
        }
    }

    fn offset_fetch_all(&self, request: &OffsetFetchRequest) -> Result<OffsetFetchResponse, i16> {
        let mut response = OffsetFetchResponse::default();
        let groups = self.groups()?;
        let group = request.group_id.0.as_str();
        let wanted: Option<Vec<TopicPartition>> = request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .flat_map(|topic| {
                    topic
                        .partition_indexes
                        .iter()
                        .filter_map(|&index| partition_index(index))
                        .map(|partition| TopicPartition {
                            topic: topic.name.0.to_string(),
                            partition,
                        })
                })
                .collect()
        });
        let committed = match groups.committed(group, wanted.as_deref()) {
            Ok(committed) => committed,
            Err(GroupError::GroupIdNotFound { .. }) => BTreeMap::new(),
            Err(error) => return Err(code_of_group(&error)),
        };
        let answer_partition = |index: i32, found: Option<&OffsetAndMetadata>| {
            let mut partition = OffsetFetchResponsePartition::default();
            partition.partition_index = index;
            partition.committed_offset = -1;
            partition.committed_leader_epoch = -1;
            partition.metadata = Some(StrBytes::default());
            if let Some(found) = found {
                partition.committed_offset = found.offset as i64;
                partition.committed_leader_epoch = found.leader_epoch.unwrap_or(-1);
                partition.metadata = Some(text(&found.metadata));
            }
            partition
        };
        match &request.topics {
            Some(topics) => {
                for topic in topics {
                    let mut answer = OffsetFetchResponseTopic::default();
                    answer.name = topic.name.clone();
                    for &index in &topic.partition_indexes {
                        let found = partition_index(index).and_then(|partition| {
                            committed.get(&TopicPartition {
                                topic: topic.name.0.to_string(),
                                partition,
                            })
                        });
                        answer.partitions.push(answer_partition(index, found));
                    }
                    response.topics.push(answer);
                }
            }
            None => {
                let mut by_topic: BTreeMap<&str, OffsetFetchResponseTopic> = BTreeMap::new();
                for (tp, found) in &committed {
                    let answer = by_topic.entry(tp.topic.as_str()).or_insert_with(|| {
                        let mut answer = OffsetFetchResponseTopic::default();
                        answer.name = topic_name(&tp.topic);
                        answer
                    });
                    answer
                        .partitions
                        .push(answer_partition(tp.partition as i32, Some(found)));
                }
                response.topics = by_topic.into_values().collect();
            }
        }
        Ok(response)
    }

    fn list_groups(&self, request: &ListGroupsRequest) -> ListGroupsResponse {
        let mut response = ListGroupsResponse::default();
        match self.groups() {
            Ok(groups) => {
                for listing in groups.list() {
                    let state = listing.state.kafka_name();
                    if !request.states_filter.is_empty()
                        && !request
                            .states_filter
                            .iter()
                            .any(|wanted| wanted.as_str().eq_ignore_ascii_case(state))
                    {
                        continue;
                    }
                    let mut group = ListedGroup::default();
                    group.group_id = GroupId(text(&listing.group_id));
                    group.protocol_type = text(listing.protocol_type.as_deref().unwrap_or(""));
                    group.group_state = text(state);
                    group.group_type = text("classic");
                    response.groups.push(group);
                }
            }
            Err(code) => response.error_code = code,
        }
        response
    }

    fn describe_groups(&self, request: &DescribeGroupsRequest) -> DescribeGroupsResponse {
        let mut response = DescribeGroupsResponse::default();
        let groups = self.groups();
        for group_id in &request.groups {
            let mut described = DescribedGroup::default();
            described.group_id = group_id.clone();
            described.authorized_operations = i32::MIN;
            let result = groups.as_ref().map_err(|&code| code).and_then(|groups| {
                groups
                    .describe(group_id.0.as_str())
                    .map_err(|error| code_of_group(&error))
            });
            match result {
                Ok(description) => {
                    described.group_state = text(description.state.kafka_name());
                    described.protocol_type =
                        text(description.protocol_type.as_deref().unwrap_or(""));
                    described.protocol_data = text(description.protocol.as_deref().unwrap_or(""));
                    described.members = description
                        .members
                        .iter()
                        .map(|member| {
                            let mut answer = DescribedGroupMember::default();
                            answer.member_id = text(&member.member_id);
                            answer.group_instance_id =
                                member.group_instance_id.as_deref().map(text);
                            answer.client_id = text(&member.client_id);
                            answer.client_host = text(&member.client_host);
                            answer.member_metadata = member.metadata.clone();
                            answer.member_assignment = member.assignment.clone();
                            answer
                        })
                        .collect();
                }
                Err(code) if code == errors::GROUP_ID_NOT_FOUND => {
                    // Kafka describes an unknown group as Dead, without an error.
                    described.group_state = text("Dead");
                }
                Err(code) => described.error_code = code,
            }
            response.groups.push(described);
        }
        response
    }

    // ---- Topics ---------------------------------------------------------------------------

    fn create_topics(&self, request: &CreateTopicsRequest) -> CreateTopicsResponse {
        let mut response = CreateTopicsResponse::default();
        let live = self.live_brokers().max(1);
        for wanted in &request.topics {
            let mut result = CreatableTopicResult::default();
            result.name = wanted.name.clone();
            result.num_partitions = -1;
            result.replication_factor = -1;
            let name = wanted.name.0.as_str();
            let config = self.creatable_config(wanted, live);
            let outcome = config.and_then(|config| {
                if !wanted.assignments.is_empty() {
                    return Err((
                        errors::INVALID_REQUEST,
                        "manual replica assignments are not supported".to_owned(),
                    ));
                }
                let created = if request.validate_only {
                    crate::log::validate_topic_name(name)
                        .map_err(BrokerError::Log)
                        .and_then(|()| config.validate(live))
                        .and_then(|()| match self.broker.topic(name) {
                            Ok(_) => Err(BrokerError::TopicExists {
                                topic: name.to_owned(),
                            }),
                            Err(_) => Ok(()),
                        })
                } else {
                    self.broker.create_topic(name, config.clone()).map(|topic| {
                        self.wait_for_leaders(name, topic.partition_count());
                    })
                };
                created
                    .map(|()| config)
                    .map_err(|error| (code_of_broker(&error), error.to_string()))
            });
            match outcome {
                Ok(config) => {
                    result.num_partitions = config.partitions as i32;
                    result.replication_factor = config.replication_factor as i16;
                }
                Err((code, message)) => {
                    result.error_code = code;
                    result.error_message = Some(text(&message));
                }
            }
            response.topics.push(result);
        }
        response
    }

    /// A CreateTopics entry as a topic configuration: -1 counts take the server's defaults;
    /// configs are Kafka property names.
    fn creatable_config(
        &self,
        wanted: &kafka_protocol::messages::create_topics_request::CreatableTopic,
        live: u16,
    ) -> Result<TopicConfig, (i16, String)> {
        let mut properties = String::new();
        for entry in &wanted.configs {
            if let Some(value) = &entry.value {
                properties.push_str(&format!("{}={}\n", entry.name.as_str(), value.as_str()));
            }
        }
        let mut config = TopicConfig::from_properties(&properties)
            .map_err(|error| (errors::INVALID_CONFIG, error.to_string()))?;
        config.partitions = match wanted.num_partitions {
            -1 => self.config.num_partitions,
            n => u32::try_from(n).map_err(|_| {
                (
                    errors::INVALID_PARTITIONS,
                    format!("invalid partition count {n}"),
                )
            })?,
        };
        config.replication_factor = match wanted.replication_factor {
            -1 => self.config.default_replication_factor.min(live),
            n => u16::try_from(n).map_err(|_| {
                (
                    errors::INVALID_REPLICATION_FACTOR,
                    format!("invalid replication factor {n}"),
                )
            })?,
        };
        Ok(config)
    }

    fn delete_topics(&self, version: i16, request: &DeleteTopicsRequest) -> DeleteTopicsResponse {
        let mut response = DeleteTopicsResponse::default();
        let names: Vec<Option<TopicName>> = if version >= 6 {
            request
                .topics
                .iter()
                .map(|topic| topic.name.clone())
                .collect()
        } else {
            request.topic_names.iter().cloned().map(Some).collect()
        };
        for name in names {
            let mut result = DeletableTopicResult::default();
            match &name {
                None => {
                    // Deletion by topic id: this broker has no topic ids.
                    result.error_code = errors::UNKNOWN_TOPIC_ID;
                }
                Some(name) if name.0.as_str() == OFFSETS_TOPIC => {
                    result.error_code = errors::INVALID_REQUEST;
                    result.error_message =
                        Some(text("the internal offsets topic cannot be deleted"));
                }
                Some(name) => {
                    if let Err(error) = self.broker.delete_topic(name.0.as_str()) {
                        result.error_code = code_of_broker(&error);
                        result.error_message = Some(text(&error.to_string()));
                    }
                }
            }
            result.name = name;
            response.responses.push(result);
        }
        response
    }
}

/// ListOffsets for one partition: `-2` earliest, `-1` latest (the high watermark: records
/// above it are not visible to consumers), `-3` the record with the largest timestamp, else
/// the first offset at or after the timestamp. Answers (offset, timestamp).
fn list_offset(replica: &Replica, timestamp: i64) -> Result<Option<(i64, i64)>, i16> {
    let log = replica.log();
    let high_watermark = replica.high_watermark();
    let visible = |found: Option<(u64, i64)>| {
        found
            .filter(|(offset, _)| *offset < high_watermark)
            .map(|(offset, timestamp)| (offset as i64, timestamp))
    };
    match timestamp {
        -2 => Ok(Some((log.log_start_offset() as i64, -1))),
        -1 => Ok(Some((high_watermark as i64, -1))),
        -3 => log
            .max_timestamp()
            .map(visible)
            .map_err(|error| errors::code_of_log(&error)),
        t if t >= 0 => log
            .offset_for_timestamp(t)
            .map(visible)
            .map_err(|error| errors::code_of_log(&error)),
        _ => Err(errors::INVALID_REQUEST),
    }
}

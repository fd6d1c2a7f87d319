//! Metadata, ApiVersions, CreateTopics and DeleteTopics: what the cluster holds, what this
//! server speaks, and topics created (by request or on first mention) and deleted.

use std::time::{Duration, Instant};

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiVersionsResponse, BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, MetadataRequest, MetadataResponse, TopicName,
};

use super::{text, topic_name, Handler};
use crate::broker::{BrokerError, TopicConfig};
use crate::group::OFFSETS_TOPIC;
use crate::kafka::decode::SUPPORTED_APIS;
use crate::kafka::errors::{self, code_of_broker};

impl Handler {
    pub(super) fn api_versions(&self, error_code: i16) -> ApiVersionsResponse {
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

    pub(super) fn metadata(&self, version: i16, request: &MetadataRequest) -> MetadataResponse {
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

    pub(super) fn create_topics(&self, request: &CreateTopicsRequest) -> CreateTopicsResponse {
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

    pub(super) fn delete_topics(
        &self,
        version: i16,
        request: &DeleteTopicsRequest,
    ) -> DeleteTopicsResponse {
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

//! Metadata, ApiVersions, CreateTopics and DeleteTopics bodies.

use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest,
    TopicName,
};
use uuid::Uuid;

use super::reader::Reader;
use super::DecodeError;

pub(super) fn metadata(r: &mut Reader<'_>, version: i16) -> Result<MetadataRequest, DecodeError> {
    // Null asks for every topic (v1 and later; the crate accepts it at v0 too).
    let topics = r.nullable_array("topics", |r| metadata_topic(r, version))?;
    let allow_auto_topic_creation = if version >= 4 {
        r.bool("allow_auto_topic_creation")?
    } else {
        true
    };
    let include_cluster_authorized_operations = if (8..=10).contains(&version) {
        r.bool("include_cluster_authorized_operations")?
    } else {
        false
    };
    let include_topic_authorized_operations = if version >= 8 {
        r.bool("include_topic_authorized_operations")?
    } else {
        false
    };
    let unknown_tagged_fields = r.tagged_fields("MetadataRequest")?;
    Ok(MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(allow_auto_topic_creation)
        .with_include_cluster_authorized_operations(include_cluster_authorized_operations)
        .with_include_topic_authorized_operations(include_topic_authorized_operations)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn metadata_topic(r: &mut Reader<'_>, version: i16) -> Result<MetadataRequestTopic, DecodeError> {
    let topic_id = if version >= 10 {
        r.uuid("topics.topic_id")?
    } else {
        Uuid::nil()
    };
    let name = r.nullable_string("topics.name")?;
    let unknown_tagged_fields = r.tagged_fields("MetadataRequestTopic")?;
    Ok(MetadataRequestTopic::default()
        .with_topic_id(topic_id)
        .with_name(name.map(TopicName))
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn api_versions(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<ApiVersionsRequest, DecodeError> {
    let client_software_name = if version >= 3 {
        r.string("client_software_name")?
    } else {
        Default::default()
    };
    let client_software_version = if version >= 3 {
        r.string("client_software_version")?
    } else {
        Default::default()
    };
    let unknown_tagged_fields = r.tagged_fields("ApiVersionsRequest")?;
    Ok(ApiVersionsRequest::default()
        .with_client_software_name(client_software_name)
        .with_client_software_version(client_software_version)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn create_topics(
    r: &mut Reader<'_>,
    _version: i16,
) -> Result<CreateTopicsRequest, DecodeError> {
    let topics = r.array("topics", creatable_topic)?;
    let timeout_ms = r.i32("timeout_ms")?;
    let validate_only = r.bool("validate_only")?;
    let unknown_tagged_fields = r.tagged_fields("CreateTopicsRequest")?;
    Ok(CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(timeout_ms)
        .with_validate_only(validate_only)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn creatable_topic(r: &mut Reader<'_>) -> Result<CreatableTopic, DecodeError> {
    let name = r.string("topics.name")?;
    let num_partitions = r.i32("num_partitions")?;
    let replication_factor = r.i16("replication_factor")?;
    let assignments = r.array("assignments", replica_assignment)?;
    let configs = r.array("configs", topic_config)?;
    let unknown_tagged_fields = r.tagged_fields("CreatableTopic")?;
    Ok(CreatableTopic::default()
        .with_name(TopicName(name))
        .with_num_partitions(num_partitions)
        .with_replication_factor(replication_factor)
        .with_assignments(assignments)
        .with_configs(configs)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn replica_assignment(r: &mut Reader<'_>) -> Result<CreatableReplicaAssignment, DecodeError> {
    let partition_index = r.i32("assignments.partition_index")?;
    let broker_ids = r.array("broker_ids", |r| r.i32("broker_ids").map(BrokerId))?;
    let unknown_tagged_fields = r.tagged_fields("CreatableReplicaAssignment")?;
    Ok(CreatableReplicaAssignment::default()
        .with_partition_index(partition_index)
        .with_broker_ids(broker_ids)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn topic_config(r: &mut Reader<'_>) -> Result<CreatableTopicConfig, DecodeError> {
    let name = r.string("configs.name")?;
    let value = r.nullable_string("configs.value")?;
    let unknown_tagged_fields = r.tagged_fields("CreatableTopicConfig")?;
    Ok(CreatableTopicConfig::default()
        .with_name(name)
        .with_value(value)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn delete_topics(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<DeleteTopicsRequest, DecodeError> {
    let topics = if version >= 6 {
        r.array("topics", |r| delete_topic_state(r, version))?
    } else {
        Vec::new()
    };
    let topic_names = if version <= 5 {
        r.array("topic_names", |r| r.string("topic_names").map(TopicName))?
    } else {
        Vec::new()
    };
    let timeout_ms = r.i32("timeout_ms")?;
    let unknown_tagged_fields = r.tagged_fields("DeleteTopicsRequest")?;
    Ok(DeleteTopicsRequest::default()
        .with_topics(topics)
        .with_topic_names(topic_names)
        .with_timeout_ms(timeout_ms)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn delete_topic_state(r: &mut Reader<'_>, version: i16) -> Result<DeleteTopicState, DecodeError> {
    let name = if version >= 6 {
        r.nullable_string("topics.name")?
    } else {
        None
    };
    let topic_id = if version >= 6 {
        r.uuid("topics.topic_id")?
    } else {
        Uuid::nil()
    };
    let unknown_tagged_fields = r.tagged_fields("DeleteTopicState")?;
    Ok(DeleteTopicState::default()
        .with_name(name.map(TopicName))
        .with_topic_id(topic_id)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

//! Fetch, ListOffsets and OffsetForLeaderEpoch bodies.

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, ListOffsetsRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::reader::{tagged_value, Reader};
use super::DecodeError;

/// FetchRequest's known tagged fields: `cluster_id` (tag 0, any flexible version) and
/// `replica_state` (tag 1, v15 and later, past the range served).
const CLUSTER_ID_TAG: i32 = 0;
const REPLICA_STATE_TAG: i32 = 1;
/// FetchPartition's known tagged fields, both past the range served: `replica_directory_id`
/// (tag 0, v17 and later) and `high_watermark` (tag 1, v18 and later).
const REPLICA_DIRECTORY_ID_TAG: i32 = 0;
const HIGH_WATERMARK_TAG: i32 = 1;

pub(super) fn fetch(r: &mut Reader<'_>, version: i16) -> Result<FetchRequest, DecodeError> {
    let replica_id = r.i32("replica_id")?;
    let max_wait_ms = r.i32("max_wait_ms")?;
    let min_bytes = r.i32("min_bytes")?;
    // The crate decodes Fetch from v4, where `max_bytes` and `isolation_level` are present.
    let max_bytes = r.i32("max_bytes")?;
    let isolation_level = r.i8("isolation_level")?;
    let session_id = if version >= 7 {
        r.i32("session_id")?
    } else {
        0
    };
    let session_epoch = if version >= 7 {
        r.i32("session_epoch")?
    } else {
        -1
    };
    let topics = r.array("topics", |r| fetch_topic(r, version))?;
    let forgotten_topics_data = if version >= 7 {
        r.array("forgotten_topics_data", forgotten_topic)?
    } else {
        Vec::new()
    };
    let rack_id = if version >= 11 {
        r.string("rack_id")?
    } else {
        StrBytes::from_static_str("")
    };
    let mut unknown_tagged_fields = r.tagged_fields("FetchRequest")?;
    let cluster_id = match unknown_tagged_fields.remove(&CLUSTER_ID_TAG) {
        Some(value) => tagged_value(value, "cluster_id", |r| r.nullable_string("cluster_id"))?,
        None => None,
    };
    // The crate rejects a known tag sent at a version without it, so do we.
    if unknown_tagged_fields.contains_key(&REPLICA_STATE_TAG) {
        return Err(tag_not_in_version("replica_state"));
    }
    Ok(FetchRequest::default()
        .with_cluster_id(cluster_id)
        .with_replica_id(BrokerId(replica_id))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_isolation_level(isolation_level)
        .with_session_id(session_id)
        .with_session_epoch(session_epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten_topics_data)
        .with_rack_id(rack_id)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn fetch_topic(r: &mut Reader<'_>, version: i16) -> Result<FetchTopic, DecodeError> {
    let topic = r.string("topics.topic")?;
    let partitions = r.array("topics.partitions", |r| fetch_partition(r, version))?;
    let unknown_tagged_fields = r.tagged_fields("FetchTopic")?;
    Ok(FetchTopic::default()
        .with_topic(TopicName(topic))
        .with_partitions(partitions)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn fetch_partition(r: &mut Reader<'_>, version: i16) -> Result<FetchPartition, DecodeError> {
    let partition = r.i32("partitions.partition")?;
    let current_leader_epoch = if version >= 9 {
        r.i32("current_leader_epoch")?
    } else {
        -1
    };
    let fetch_offset = r.i64("fetch_offset")?;
    let last_fetched_epoch = if version >= 12 {
        r.i32("last_fetched_epoch")?
    } else {
        -1
    };
    let log_start_offset = if version >= 5 {
        r.i64("log_start_offset")?
    } else {
        -1
    };
    let partition_max_bytes = r.i32("partition_max_bytes")?;
    let unknown_tagged_fields = r.tagged_fields("FetchPartition")?;
    if unknown_tagged_fields.contains_key(&REPLICA_DIRECTORY_ID_TAG) {
        return Err(tag_not_in_version("replica_directory_id"));
    }
    if unknown_tagged_fields.contains_key(&HIGH_WATERMARK_TAG) {
        return Err(tag_not_in_version("high_watermark"));
    }
    Ok(FetchPartition::default()
        .with_partition(partition)
        .with_current_leader_epoch(current_leader_epoch)
        .with_fetch_offset(fetch_offset)
        .with_last_fetched_epoch(last_fetched_epoch)
        .with_log_start_offset(log_start_offset)
        .with_partition_max_bytes(partition_max_bytes)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn forgotten_topic(r: &mut Reader<'_>) -> Result<ForgottenTopic, DecodeError> {
    // Only read from v7, where both fields are present.
    let topic = r.string("forgotten_topics_data.topic")?;
    let partitions = r.array("forgotten_topics_data.partitions", |r| {
        r.i32("forgotten_topics_data.partitions")
    })?;
    let unknown_tagged_fields = r.tagged_fields("ForgottenTopic")?;
    Ok(ForgottenTopic::default()
        .with_topic(TopicName(topic))
        .with_partitions(partitions)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

/// A known tag sent at a version whose schema does not have it (the crate rejects it too).
fn tag_not_in_version(field: &'static str) -> DecodeError {
    DecodeError::Invalid {
        field,
        reason: "tagged field not in this version",
    }
}

pub(super) fn list_offsets(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<ListOffsetsRequest, DecodeError> {
    let replica_id = r.i32("replica_id")?;
    let isolation_level = if version >= 2 {
        r.i8("isolation_level")?
    } else {
        0
    };
    let topics = r.array("topics", |r| list_offsets_topic(r, version))?;
    let unknown_tagged_fields = r.tagged_fields("ListOffsetsRequest")?;
    Ok(ListOffsetsRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_isolation_level(isolation_level)
        .with_topics(topics)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn list_offsets_topic(r: &mut Reader<'_>, version: i16) -> Result<ListOffsetsTopic, DecodeError> {
    let name = r.string("topics.name")?;
    let partitions = r.array("topics.partitions", |r| list_offsets_partition(r, version))?;
    let unknown_tagged_fields = r.tagged_fields("ListOffsetsTopic")?;
    Ok(ListOffsetsTopic::default()
        .with_name(TopicName(name))
        .with_partitions(partitions)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn list_offsets_partition(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<ListOffsetsPartition, DecodeError> {
    let partition_index = r.i32("partitions.partition_index")?;
    let current_leader_epoch = if version >= 4 {
        r.i32("current_leader_epoch")?
    } else {
        -1
    };
    let timestamp = r.i64("timestamp")?;
    let unknown_tagged_fields = r.tagged_fields("ListOffsetsPartition")?;
    Ok(ListOffsetsPartition::default()
        .with_partition_index(partition_index)
        .with_current_leader_epoch(current_leader_epoch)
        .with_timestamp(timestamp)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn offset_for_leader_epoch(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<OffsetForLeaderEpochRequest, DecodeError> {
    let replica_id = if version >= 3 {
        r.i32("replica_id")?
    } else {
        -2
    };
    let topics = r.array("topics", offset_for_leader_topic)?;
    let unknown_tagged_fields = r.tagged_fields("OffsetForLeaderEpochRequest")?;
    Ok(OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_topics(topics)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn offset_for_leader_topic(r: &mut Reader<'_>) -> Result<OffsetForLeaderTopic, DecodeError> {
    let topic = r.string("topics.topic")?;
    let partitions = r.array("topics.partitions", offset_for_leader_partition)?;
    let unknown_tagged_fields = r.tagged_fields("OffsetForLeaderTopic")?;
    Ok(OffsetForLeaderTopic::default()
        .with_topic(TopicName(topic))
        .with_partitions(partitions)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn offset_for_leader_partition(
    r: &mut Reader<'_>,
) -> Result<OffsetForLeaderPartition, DecodeError> {
    let partition = r.i32("partitions.partition")?;
    let current_leader_epoch = r.i32("current_leader_epoch")?;
    let leader_epoch = r.i32("leader_epoch")?;
    let unknown_tagged_fields = r.tagged_fields("OffsetForLeaderPartition")?;
    Ok(OffsetForLeaderPartition::default()
        .with_partition(partition)
        .with_current_leader_epoch(current_leader_epoch)
        .with_leader_epoch(leader_epoch)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

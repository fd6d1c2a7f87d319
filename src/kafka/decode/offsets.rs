//! OffsetCommit and OffsetFetch bodies.

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName};

use super::reader::Reader;
use super::DecodeError;

pub(super) fn offset_commit(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<OffsetCommitRequest, DecodeError> {
    let group_id = r.string("group_id")?;
    let generation_id_or_member_epoch = r.i32("generation_id_or_member_epoch")?;
    let member_id = r.string("member_id")?;
    let group_instance_id = if version >= 7 {
        r.nullable_string("group_instance_id")?
    } else {
        None
    };
    let retention_time_ms = if version <= 4 {
        r.i64("retention_time_ms")?
    } else {
        -1
    };
    let topics = r.array("topics", |r| offset_commit_topic(r, version))?;
    let unknown_tagged_fields = r.tagged_fields("OffsetCommitRequest")?;
    Ok(OffsetCommitRequest::default()
        .with_group_id(GroupId(group_id))
        .with_generation_id_or_member_epoch(generation_id_or_member_epoch)
        .with_member_id(member_id)
        .with_group_instance_id(group_instance_id)
        .with_retention_time_ms(retention_time_ms)
        .with_topics(topics)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn offset_commit_topic(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<OffsetCommitRequestTopic, DecodeError> {
    let name = r.string("topics.name")?;
    let partitions = r.array("topics.partitions", |r| offset_commit_partition(r, version))?;
    let unknown_tagged_fields = r.tagged_fields("OffsetCommitRequestTopic")?;
    // `topic_id` arrives in v10, past the crate's decoder, which leaves it nil.
    Ok(OffsetCommitRequestTopic::default()
        .with_name(TopicName(name))
        .with_partitions(partitions)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn offset_commit_partition(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<OffsetCommitRequestPartition, DecodeError> {
    let partition_index = r.i32("partitions.partition_index")?;
    let committed_offset = r.i64("committed_offset")?;
    let committed_leader_epoch = if version >= 6 {
        r.i32("committed_leader_epoch")?
    } else {
        -1
    };
    let committed_metadata = r.nullable_string("committed_metadata")?;
    let unknown_tagged_fields = r.tagged_fields("OffsetCommitRequestPartition")?;
    Ok(OffsetCommitRequestPartition::default()
        .with_partition_index(partition_index)
        .with_committed_offset(committed_offset)
        .with_committed_leader_epoch(committed_leader_epoch)
        .with_committed_metadata(committed_metadata)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

/// OffsetFetch up to v7, one group per request; v8 moved to a `groups` array, which stays
/// empty here until the range served is widened.
pub(super) fn offset_fetch(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<OffsetFetchRequest, DecodeError> {
    let group_id = r.string("group_id")?;
    // Null asks for every committed offset of the group (v2 and later).
    let topics = r.nullable_array("topics", offset_fetch_topic)?;
    let require_stable = if version >= 7 {
        r.bool("require_stable")?
    } else {
        false
    };
    let unknown_tagged_fields = r.tagged_fields("OffsetFetchRequest")?;
    Ok(OffsetFetchRequest::default()
        .with_group_id(GroupId(group_id))
        .with_topics(topics)
        .with_require_stable(require_stable)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn offset_fetch_topic(r: &mut Reader<'_>) -> Result<OffsetFetchRequestTopic, DecodeError> {
    let name = r.string("topics.name")?;
    let partition_indexes = r.array("partition_indexes", |r| r.i32("partition_indexes"))?;
    let unknown_tagged_fields = r.tagged_fields("OffsetFetchRequestTopic")?;
    Ok(OffsetFetchRequestTopic::default()
        .with_name(TopicName(name))
        .with_partition_indexes(partition_indexes)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

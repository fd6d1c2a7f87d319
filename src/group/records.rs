//! The records of `__consumer_offsets`, byte for byte in Kafka's own schema, so a Kafka tool
//! reading the topic (or a custom broker on logbus) sees what Kafka would have written.
//!
//! Keys, all big-endian, strings as int16 length + UTF-8 (`?` = nullable, -1 for null):
//! ```text
//! OffsetCommitKey v1      version int16 = 1 (0 is read too), group string, topic string,
//!                         partition int32
//! GroupMetadataKey v2     version int16 = 2, group string
//! ```
//! Values (a null value is a tombstone: the key's offset or group was deleted):
//! ```text
//! OffsetCommitValue v3    version int16 = 3, offset int64, leader_epoch int32 (-1 = none),
//!                         metadata string, commit_timestamp int64
//!                         (v0 and v2 lack leader_epoch; v1 adds expire_timestamp int64 last)
//! GroupMetadataValue v3   version int16 = 3, protocol_type string, generation int32,
//!                         protocol string?, leader string?, current_state_timestamp int64,
//!                         members int32 count, each:
//!                           member_id string, group_instance_id string?, client_id string,
//!                           client_host string, rebalance_timeout int32,
//!                           session_timeout int32, subscription bytes, assignment bytes
//!                         (v0 lacks the timestamp, rebalance timeout and instance id; v1 has
//!                         the rebalance timeout; v2 the timestamp)
//! ```
//! The partition of a group is Kafka's `abs(groupId.hashCode()) % 50`, with Java's
//! `String.hashCode` over UTF-16 code units and `abs(i32::MIN) = 0`.

use bytes::Bytes;

use super::error::DecodeFailure;
use super::wire::{Decoded, Reader, Writer};
use super::TopicPartition;

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offsets.topic.num.partitions` default.
pub const OFFSETS_TOPIC_PARTITIONS: u32 = 50;

const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;
/// Members a group metadata value may list, bounding what a record from disk can make us hold.
pub const MAX_GROUP_MEMBERS: usize = 10_000;

/// Java's `String.hashCode`.
pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition holding `group` among `partitions` partitions.
///
/// # Panics
/// If `partitions` is 0.
pub fn offsets_partition_for(group: &str, partitions: u32) -> u32 {
    assert!(partitions > 0, "the offsets topic has partitions");
    let hash = java_string_hash(group);
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive as u32 % partitions
}

/// A committed offset with what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: u64,
    /// The leader epoch of the last consumed record, when the consumer knew it.
    pub leader_epoch: Option<i32>,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

impl OffsetAndMetadata {
    pub fn new(offset: u64) -> Self {
        OffsetAndMetadata {
            offset,
            leader_epoch: None,
            metadata: String::new(),
            commit_timestamp_ms: -1,
        }
    }
}

/// The stored form of a group (Kafka's `GroupMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// One member in a [`GroupMetadataValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The consumer protocol subscription of the group's protocol.
    pub subscription: Bytes,
    /// The consumer protocol assignment.
    pub assignment: Bytes,
}

/// A decoded key of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    OffsetCommit {
        group: String,
        partition: TopicPartition,
    },
    GroupMetadata {
        group: String,
    },
}

impl RecordKey {
    pub fn group(&self) -> &str {
        match self {
            RecordKey::OffsetCommit { group, .. } | RecordKey::GroupMetadata { group } => group,
        }
    }
}

/// Encodes an offset commit key (v1).
pub fn encode_offset_key(group: &str, partition: &TopicPartition) -> Vec<u8> {
    let mut writer = Writer::default();
    writer
        .i16(OFFSET_COMMIT_KEY_VERSION)
        .string(group)
        .string(&partition.topic)
        .i32(partition.partition as i32);
    writer.buf
}

/// Encodes a group metadata key (v2).
pub fn encode_group_key(group: &str) -> Vec<u8> {
    let mut writer = Writer::default();
    writer.i16(GROUP_METADATA_KEY_VERSION).string(group);
    writer.buf
}

/// Decodes either kind of key.
///
/// # Errors
/// A [`DecodeFailure`] for unknown versions, truncation, bad UTF-8 or a negative partition.
pub fn decode_key(bytes: &[u8]) -> Decoded<RecordKey> {
    let mut reader = Reader::new(bytes);
    let key = match reader.i16()? {
        0 | 1 => {
            let group = reader.string()?;
            let topic = reader.string()?;
            let partition =
                u32::try_from(reader.i32()?).map_err(|_| DecodeFailure("negative partition"))?;
            RecordKey::OffsetCommit {
                group,
                partition: TopicPartition { topic, partition },
            }
        }
        2 => RecordKey::GroupMetadata {
            group: reader.string()?,
        },
        _ => return Err(DecodeFailure("unknown key version")),
    };
    finished(&reader, key)
}

fn finished<T>(reader: &Reader<'_>, value: T) -> Decoded<T> {
    if reader.remaining() == 0 {
        Ok(value)
    } else {
        Err(DecodeFailure("bytes after the record"))
    }
}

/// Encodes an offset commit value (v3).
pub fn encode_offset_value(offset: &OffsetAndMetadata) -> Vec<u8> {
    let mut writer = Writer::default();
    writer
        .i16(OFFSET_COMMIT_VALUE_VERSION)
        .i64(offset.offset as i64)
        .i32(offset.leader_epoch.unwrap_or(-1))
        .string(&offset.metadata)
        .i64(offset.commit_timestamp_ms);
    writer.buf
}

/// Decodes an offset commit value of versions 0 to 3.
///
/// # Errors
/// A [`DecodeFailure`] for other versions, truncation, trailing bytes or a negative offset.
pub fn decode_offset_value(bytes: &[u8]) -> Decoded<OffsetAndMetadata> {
    let mut reader = Reader::new(bytes);
    let version = reader.i16()?;
    if !(0..=3).contains(&version) {
        return Err(DecodeFailure("unknown offset commit value version"));
    }
    let offset =
        u64::try_from(reader.i64()?).map_err(|_| DecodeFailure("negative committed offset"))?;
    let leader_epoch = if version >= 3 { reader.i32()? } else { -1 };
    let metadata = reader.string()?;
    let commit_timestamp_ms = reader.i64()?;
    if version == 1 {
        reader.i64()?; // expire_timestamp, unused since Kafka 2.1
    }
    let value = OffsetAndMetadata {
        offset,
        leader_epoch: (leader_epoch >= 0).then_some(leader_epoch),
        metadata,
        commit_timestamp_ms,
    };
    finished(&reader, value)
}

/// Encodes a group metadata value (v3).
pub fn encode_group_value(group: &GroupMetadataValue) -> Vec<u8> {
    let mut writer = Writer::default();
    writer
        .i16(GROUP_METADATA_VALUE_VERSION)
        .string(&group.protocol_type)
        .i32(group.generation)
        .nullable_string(group.protocol.as_deref())
        .nullable_string(group.leader.as_deref())
        .i64(group.current_state_timestamp_ms)
        .array_len(group.members.len());
    for member in &group.members {
        writer
            .string(&member.member_id)
            .nullable_string(member.group_instance_id.as_deref())
            .string(&member.client_id)
            .string(&member.client_host)
            .i32(member.rebalance_timeout_ms)
            .i32(member.session_timeout_ms)
            .bytes(&member.subscription)
            .bytes(&member.assignment);
    }
    writer.buf
}

/// Decodes a group metadata value of versions 0 to 3.
///
/// # Errors
/// A [`DecodeFailure`] for other versions, truncation, trailing bytes, or more than
/// [`MAX_GROUP_MEMBERS`] members.
pub fn decode_group_value(bytes: &[u8]) -> Decoded<GroupMetadataValue> {
    let mut reader = Reader::new(bytes);
    let version = reader.i16()?;
    if !(0..=3).contains(&version) {
        return Err(DecodeFailure("unknown group metadata value version"));
    }
    let protocol_type = reader.string()?;
    let generation = reader.i32()?;
    let protocol = reader.nullable_string()?;
    let leader = reader.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { reader.i64()? } else { -1 };
    // A member takes at least its three strings' lengths, two ints and two byte lengths.
    let count = reader.array_len(2 + 2 + 2 + 4 + 4 + 4)?;
    if count > MAX_GROUP_MEMBERS {
        return Err(DecodeFailure("too many members"));
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        members.push(decode_member(&mut reader, version)?);
    }
    let value = GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    };
    finished(&reader, value)
}

fn decode_member(reader: &mut Reader<'_>, version: i16) -> Decoded<MemberMetadata> {
    let member_id = reader.string()?;
    let group_instance_id = if version >= 3 {
        reader.nullable_string()?
    } else {
        None
    };
    let client_id = reader.string()?;
    let client_host = reader.string()?;
    let rebalance_timeout_ms = if version >= 1 { reader.i32()? } else { -1 };
    let session_timeout_ms = reader.i32()?;
    let subscription = Bytes::copy_from_slice(reader.bytes()?);
    let assignment = Bytes::copy_from_slice(reader.bytes()?);
    let rebalance_timeout_ms = if rebalance_timeout_ms < 0 {
        session_timeout_ms
    } else {
        rebalance_timeout_ms
    };
    Ok(MemberMetadata {
        member_id,
        group_instance_id,
        client_id,
        client_host,
        rebalance_timeout_ms,
        session_timeout_ms,
        subscription,
        assignment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_and_partition_match_kafka() {
        // Values from Java: "".hashCode() == 0, "a" == 97, "hello" == 99162322,
        // "polygenelubricants" == Integer.MIN_VALUE (so abs gives 0).
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(offsets_partition_for("polygenelubricants", 50), 0);
        assert_eq!(offsets_partition_for("hello", 50), 99_162_322 % 50);
        // A negative hash: "my-group-100".hashCode() is negative in Java.
        let hash = java_string_hash("my-group-100");
        assert_eq!(
            offsets_partition_for("my-group-100", 50),
            (hash.unsigned_abs() % 50)
        );
    }

    #[test]
    fn offset_records_are_kafkas_bytes() {
        let key = encode_offset_key("g", &TopicPartition::new("t", 3));
        assert_eq!(key, [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        let value = encode_offset_value(&OffsetAndMetadata {
            offset: 42,
            leader_epoch: None,
            metadata: "m".into(),
            commit_timestamp_ms: 7,
        });
        let expected: Vec<u8> = [0, 3]
            .into_iter()
            .chain(42i64.to_be_bytes())
            .chain((-1i32).to_be_bytes())
            .chain([0, 1, b'm'])
            .chain(7i64.to_be_bytes())
            .collect();
        assert_eq!(value, expected);
        assert_eq!(decode_offset_value(&value).unwrap().offset, 42);
        assert_eq!(encode_group_key("g"), [0, 2, 0, 1, b'g']);
    }

    #[test]
    fn group_value_round_trips() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp_ms: 99,
            members: vec![MemberMetadata {
                member_id: "m-1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group_value(&encode_group_value(&value)), Ok(value));
    }

    #[test]
    fn bad_records_are_decode_failures() {
        assert!(decode_key(&[0, 9, 0, 0]).is_err());
        assert!(decode_key(&[0, 1, 0, 1, b'g']).is_err());
        assert!(decode_key(&[0, 2, 0, 1, b'g', 0]).is_err());
        let mut value = encode_offset_value(&OffsetAndMetadata::new(1));
        value[2] = 0x80; // negative offset
        assert!(decode_offset_value(&value).is_err());
        let huge_members = [
            0, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff,
            0xff, 0xff,
        ];
        assert!(decode_group_value(&huge_members).is_err());
    }
}

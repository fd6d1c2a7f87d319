//! Kafka's consumer protocol (protocol type `consumer`): the subscription a member sends in
//! JoinGroup and the assignment the leader returns in SyncGroup. The coordinator keeps both as
//! opaque bytes; members encode and decode them.
//!
//! ```text
//! Subscription v2   version int16 = 2, topics [string], user_data bytes? (-1 = null),
//!                   owned_partitions [topic string, partitions [int32]], generation_id int32
//! Assignment v2     version int16 = 2, assigned_partitions [topic string, partitions [int32]],
//!                   user_data bytes?
//! ```
//! Arrays are an int32 count then the elements. Versions 0 and 1 are read too (v0 has neither
//! owned partitions nor generation; v1 no generation); newer versions are read as v2, as Kafka
//! does, by ignoring what follows.

use std::collections::BTreeMap;

use super::error::DecodeFailure;
use super::wire::{check_string, Decoded, Reader, Writer};
use super::TopicPartition;

/// The protocol type of consumer groups.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
const VERSION: i16 = 2;
/// Topics or partitions a subscription or assignment may list.
pub const MAX_PROTOCOL_ENTRIES: usize = 100_000;

/// What a member asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub user_data: Option<Vec<u8>>,
    pub owned_partitions: Vec<TopicPartition>,
    pub generation: i32,
}

/// What the leader gives a member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberAssignment {
    pub partitions: Vec<TopicPartition>,
    pub user_data: Option<Vec<u8>>,
}

/// Whether every name fits Kafka's string lengths.
pub fn names_fit(topics: &[String]) -> bool {
    topics.iter().all(|topic| check_string(topic))
}

impl Subscription {
    /// # Panics
    /// If a topic name is longer than `i16::MAX` bytes (topic names are validated long before).
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::default();
        writer.i16(VERSION).array_len(self.topics.len());
        for topic in &self.topics {
            writer.string(topic);
        }
        writer.nullable_bytes(self.user_data.as_deref());
        write_partitions(&mut writer, &self.owned_partitions);
        writer.i32(self.generation);
        writer.buf
    }

    /// # Errors
    /// A [`DecodeFailure`] for truncated or oversized input.
    pub fn decode(bytes: &[u8]) -> Decoded<Subscription> {
        let mut reader = Reader::new(bytes);
        let version = reader.i16()?;
        if version < 0 {
            return Err(DecodeFailure("negative subscription version"));
        }
        let count = bounded(reader.array_len(2)?)?;
        let topics = (0..count)
            .map(|_| reader.string())
            .collect::<Decoded<Vec<_>>>()?;
        let user_data = reader.nullable_bytes()?.map(<[u8]>::to_vec);
        let owned_partitions = if version >= 1 {
            read_partitions(&mut reader)?
        } else {
            Vec::new()
        };
        let generation = if version >= 2 { reader.i32()? } else { -1 };
        Ok(Subscription {
            topics,
            user_data,
            owned_partitions,
            generation,
        })
    }
}

impl MemberAssignment {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::default();
        writer.i16(VERSION);
        write_partitions(&mut writer, &self.partitions);
        writer.nullable_bytes(self.user_data.as_deref());
        writer.buf
    }

    /// An empty byte string (what a coordinator holds before any sync) is an empty assignment.
    ///
    /// # Errors
    /// A [`DecodeFailure`] for truncated or oversized input.
    pub fn decode(bytes: &[u8]) -> Decoded<MemberAssignment> {
        if bytes.is_empty() {
            return Ok(MemberAssignment::default());
        }
        let mut reader = Reader::new(bytes);
        if reader.i16()? < 0 {
            return Err(DecodeFailure("negative assignment version"));
        }
        let partitions = read_partitions(&mut reader)?;
        let user_data = reader.nullable_bytes()?.map(<[u8]>::to_vec);
        Ok(MemberAssignment {
            partitions,
            user_data,
        })
    }
}

fn bounded(count: usize) -> Decoded<usize> {
    if count > MAX_PROTOCOL_ENTRIES {
        Err(DecodeFailure("too many entries"))
    } else {
        Ok(count)
    }
}

/// Partitions grouped by topic, topics in order.
fn write_partitions(writer: &mut Writer, partitions: &[TopicPartition]) {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for partition in partitions {
        by_topic
            .entry(&partition.topic)
            .or_default()
            .push(partition.partition as i32);
    }
    writer.array_len(by_topic.len());
    for (topic, numbers) in by_topic {
        writer.string(topic).array_len(numbers.len());
        for number in numbers {
            writer.i32(number);
        }
    }
}

fn read_partitions(reader: &mut Reader<'_>) -> Decoded<Vec<TopicPartition>> {
    let topics = bounded(reader.array_len(2 + 4)?)?;
    let mut partitions = Vec::new();
    for _ in 0..topics {
        let topic = reader.string()?;
        let count = bounded(reader.array_len(4)?)?;
        if partitions.len() + count > MAX_PROTOCOL_ENTRIES {
            return Err(DecodeFailure("too many partitions"));
        }
        for _ in 0..count {
            let partition =
                u32::try_from(reader.i32()?).map_err(|_| DecodeFailure("negative partition"))?;
            partitions.push(TopicPartition::new(topic.clone(), partition));
        }
    }
    Ok(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trips_and_matches_kafkas_layout() {
        let subscription = Subscription {
            topics: vec!["t".into()],
            user_data: None,
            owned_partitions: vec![TopicPartition::new("t", 1)],
            generation: 5,
        };
        let bytes = subscription.encode();
        let expected: Vec<u8> = [0, 2, 0, 0, 0, 1, 0, 1, b't']
            .into_iter()
            .chain((-1i32).to_be_bytes())
            .chain([0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 1])
            .chain(5i32.to_be_bytes())
            .collect();
        assert_eq!(bytes, expected);
        assert_eq!(Subscription::decode(&bytes), Ok(subscription));
    }

    #[test]
    fn assignment_round_trips_and_empty_means_none() {
        let assignment = MemberAssignment {
            partitions: vec![TopicPartition::new("a", 0), TopicPartition::new("b", 2)],
            user_data: Some(b"u".to_vec()),
        };
        assert_eq!(
            MemberAssignment::decode(&assignment.encode()),
            Ok(assignment)
        );
        assert_eq!(
            MemberAssignment::decode(&[]),
            Ok(MemberAssignment::default())
        );
        assert!(MemberAssignment::decode(&[0, 2, 0x7f, 0, 0, 0]).is_err());
    }
}

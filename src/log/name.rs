//! Topic and partition directory names, with Kafka's rules.

use super::LogError;

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_CHARS: usize = 249;

/// Checks a topic name against Kafka's rule: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not
/// `.` or `..`.
///
/// # Errors
/// `InvalidTopicName` with the reason.
pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let invalid = |reason| {
        Err(LogError::InvalidTopicName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > MAX_TOPIC_NAME_CHARS {
        return invalid("longer than 249 characters");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if !name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// A partition directory's name, `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionName {
    pub topic: String,
    pub partition: u32,
}

impl PartitionName {
    /// Parses `<topic>-<partition>`, splitting at the last `-`.
    ///
    /// # Errors
    /// `InvalidDirectoryName` when there is no partition number, `InvalidTopicName` for the topic.
    pub fn parse(name: &str) -> Result<PartitionName, LogError> {
        let invalid = |reason| {
            Err(LogError::InvalidDirectoryName {
                name: name.to_owned(),
                reason,
            })
        };
        let Some((topic, partition)) = name.rsplit_once('-') else {
            return invalid("expected <topic>-<partition>");
        };
        if partition.is_empty() || !partition.bytes().all(|byte| byte.is_ascii_digit()) {
            return invalid("the partition is not a number");
        }
        let Ok(partition) = partition.parse::<u32>() else {
            return invalid("the partition number is too large");
        };
        if partition > i32::MAX as u32 {
            return invalid("the partition number is too large");
        }
        validate_topic_name(topic)?;
        Ok(PartitionName {
            topic: topic.to_owned(),
            partition,
        })
    }

    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka() {
        for good in ["a", "orders.v1", "A_b-C", &"x".repeat(249)] {
            validate_topic_name(good).unwrap();
        }
        for bad in ["", ".", "..", "has space", "slash/", "é", &"x".repeat(250)] {
            assert!(
                matches!(
                    validate_topic_name(bad),
                    Err(LogError::InvalidTopicName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn partition_directories_parse() {
        let name = PartitionName::parse("my-topic-12").unwrap();
        assert_eq!((name.topic.as_str(), name.partition), ("my-topic", 12));
        assert_eq!(name.dir_name(), "my-topic-12");
        for bad in [
            "topic",
            "topic-",
            "topic-x",
            "-3",
            "t-99999999999",
            "t-4294967295",
            "bad name-0",
        ] {
            assert!(PartitionName::parse(bad).is_err(), "{bad:?}");
        }
    }
}

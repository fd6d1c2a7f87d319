//! Topic and broker configuration, named as Kafka names them, and their properties-file form.

pub use crate::log::CleanupPolicy;
use crate::log::{DirtyRatio, FlushPolicy, LogConfig};
use crate::record::TimestampType;

use super::BrokerError;

/// Per-topic configuration.
///
/// ## Defaults (Kafka's)
/// - `partitions`: 1
/// - `replication_factor`: 1, `min_insync_replicas`: 1
/// - `retention_ms`: 7 days, `retention_bytes`: none
/// - `segment_bytes`: 1 GiB, `segment_ms`: 7 days
/// - `max_message_bytes`: 1048588
/// - `cleanup_policy`: `Delete`
/// - `delete_retention_ms`: 1 day, `min_cleanable_dirty_ratio`: 0.5, `min_compaction_lag_ms`: 0
///   (compacted topics; see [`LogConfig`])
/// - `message_timestamp_type`: `CreateTime`
/// - `flush`: `FlushPolicy::OsDecides`
/// - `unclean_leader_election`: false
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    pub partitions: u32,
    pub replication_factor: u16,
    pub min_insync_replicas: u16,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: u32,
    pub segment_ms: u64,
    pub max_message_bytes: u32,
    pub cleanup_policy: CleanupPolicy,
    pub delete_retention_ms: u64,
    pub min_cleanable_dirty_ratio: DirtyRatio,
    pub min_compaction_lag_ms: u64,
    pub message_timestamp_type: TimestampType,
    pub flush: FlushPolicy,
    /// Whether a replica outside the ISR may be elected when no ISR member lives (Kafka's
    /// `unclean.leader.election.enable`): availability at the price of acknowledged records.
    pub unclean_leader_election: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        let log = LogConfig::default();
        TopicConfig {
            partitions: 1,
            replication_factor: 1,
            min_insync_replicas: 1,
            retention_ms: log.retention_ms,
            retention_bytes: log.retention_bytes,
            segment_bytes: log.segment_bytes,
            segment_ms: log.segment_ms,
            max_message_bytes: log.max_message_bytes,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: log.delete_retention_ms,
            min_cleanable_dirty_ratio: log.min_cleanable_dirty_ratio,
            min_compaction_lag_ms: log.min_compaction_lag_ms,
            message_timestamp_type: TimestampType::CreateTime,
            flush: FlushPolicy::OsDecides,
            unclean_leader_election: false,
        }
    }
}

/// Partitions a topic may have (Kafka has no hard limit; this bounds what input can ask for).
pub const MAX_PARTITIONS: u32 = 10_000;

impl TopicConfig {
    /// A default configuration with `partitions` partitions.
    pub fn with_partitions(partitions: u32) -> Self {
        TopicConfig {
            partitions,
            ..TopicConfig::default()
        }
    }

    /// The log configuration each partition of the topic gets.
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            max_message_bytes: self.max_message_bytes,
            flush: self.flush,
            cleanup_policy: self.cleanup_policy,
            delete_retention_ms: self.delete_retention_ms,
            min_cleanable_dirty_ratio: self.min_cleanable_dirty_ratio,
            min_compaction_lag_ms: self.min_compaction_lag_ms,
            ..LogConfig::default()
        }
    }

    /// Checks the configuration for a broker with `live_brokers` brokers.
    ///
    /// # Errors
    /// `InvalidConfig`, `InvalidPartitions`, `InvalidReplicationFactor`.
    pub fn validate(&self, live_brokers: u16) -> Result<(), BrokerError> {
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(BrokerError::InvalidPartitions {
                requested: self.partitions,
                max: MAX_PARTITIONS,
            });
        }
        if self.replication_factor == 0 || self.replication_factor > live_brokers {
            return Err(BrokerError::InvalidReplicationFactor {
                requested: self.replication_factor,
                live_brokers,
            });
        }
        if self.min_insync_replicas == 0 || self.min_insync_replicas > self.replication_factor {
            return Err(BrokerError::InvalidConfig(
                "min_insync_replicas must be between 1 and replication_factor",
            ));
        }
        self.log_config().validate().map_err(|error| match error {
            crate::log::LogError::InvalidConfig(reason) => BrokerError::InvalidConfig(reason),
            _ => BrokerError::InvalidConfig("invalid log configuration"),
        })
    }

    /// The configuration as Kafka-named properties, one `key=value` per line.
    pub fn to_properties(&self) -> String {
        let optional =
            |value: Option<u64>| value.map_or("-1".to_owned(), |value| value.to_string());
        let (flush_messages, flush_ms) = match self.flush {
            FlushPolicy::OsDecides => (i64::MAX as u64, i64::MAX as u64),
            FlushPolicy::EveryAppend => (1, i64::MAX as u64),
            FlushPolicy::Every {
                messages,
                interval_ms,
            } => (messages, interval_ms),
        };
        let lines = [
            format!("partitions={}", self.partitions),
            format!("replication.factor={}", self.replication_factor),
            format!("min.insync.replicas={}", self.min_insync_replicas),
            format!("retention.ms={}", optional(self.retention_ms)),
            format!("retention.bytes={}", optional(self.retention_bytes)),
            format!("segment.bytes={}", self.segment_bytes),
            format!("segment.ms={}", self.segment_ms),
            format!("max.message.bytes={}", self.max_message_bytes),
            format!(
                "unclean.leader.election.enable={}",
                self.unclean_leader_election
            ),
            format!(
                "cleanup.policy={}",
                match self.cleanup_policy {
                    CleanupPolicy::Delete => "delete",
                    CleanupPolicy::Compact => "compact",
                    CleanupPolicy::CompactAndDelete => "compact,delete",
                }
            ),
            format!("delete.retention.ms={}", self.delete_retention_ms),
            format!(
                "min.cleanable.dirty.ratio={}",
                self.min_cleanable_dirty_ratio
            ),
            format!("min.compaction.lag.ms={}", self.min_compaction_lag_ms),
            format!(
                "message.timestamp.type={}",
                match self.message_timestamp_type {
                    TimestampType::CreateTime => "CreateTime",
                    TimestampType::LogAppendTime => "LogAppendTime",
                }
            ),
            format!("flush.messages={flush_messages}"),
            format!("flush.ms={flush_ms}"),
        ];
        lines.join("\n") + "\n"
    }

    /// Parses [`TopicConfig::to_properties`] output; unknown keys are an error.
    ///
    /// # Errors
    /// `InvalidProperty` naming the line.
    pub fn from_properties(text: &str) -> Result<TopicConfig, BrokerError> {
        let mut config = TopicConfig::default();
        let (mut flush_messages, mut flush_ms) = (i64::MAX as u64, i64::MAX as u64);
        for line in text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
        {
            let invalid = || BrokerError::InvalidProperty {
                line: line.to_owned(),
            };
            let (key, value) = line.split_once('=').ok_or_else(invalid)?;
            let number = || value.parse::<u64>().map_err(|_| invalid());
            let optional = || -> Result<Option<u64>, BrokerError> {
                if value == "-1" {
                    Ok(None)
                } else {
                    number().map(Some)
                }
            };
            let narrow = |value: u64| u32::try_from(value).map_err(|_| invalid());
            match key {
                "partitions" => config.partitions = narrow(number()?)?,
                "replication.factor" => {
                    config.replication_factor = u16::try_from(number()?).map_err(|_| invalid())?
                }
                "min.insync.replicas" => {
                    config.min_insync_replicas = u16::try_from(number()?).map_err(|_| invalid())?
                }
                "retention.ms" => config.retention_ms = optional()?,
                "retention.bytes" => config.retention_bytes = optional()?,
                "segment.bytes" => config.segment_bytes = narrow(number()?)?,
                "segment.ms" => config.segment_ms = number()?,
                "max.message.bytes" => config.max_message_bytes = narrow(number()?)?,
                "cleanup.policy" => {
                    config.cleanup_policy = match value {
                        "delete" => CleanupPolicy::Delete,
                        "compact" => CleanupPolicy::Compact,
                        "compact,delete" | "delete,compact" => CleanupPolicy::CompactAndDelete,
                        _ => return Err(invalid()),
                    }
                }
                "delete.retention.ms" => config.delete_retention_ms = number()?,
                "min.cleanable.dirty.ratio" => {
                    config.min_cleanable_dirty_ratio = value
                        .parse()
                        .ok()
                        .and_then(DirtyRatio::new)
                        .ok_or_else(invalid)?
                }
                "min.compaction.lag.ms" => config.min_compaction_lag_ms = number()?,
                "message.timestamp.type" => {
                    config.message_timestamp_type = match value {
                        "CreateTime" => TimestampType::CreateTime,
                        "LogAppendTime" => TimestampType::LogAppendTime,
                        _ => return Err(invalid()),
                    }
                }
                "unclean.leader.election.enable" => {
                    config.unclean_leader_election = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid()),
                    }
                }
                "flush.messages" => flush_messages = number()?,
                "flush.ms" => flush_ms = number()?,
                _ => return Err(invalid()),
            }
        }
        config.flush = match (flush_messages, flush_ms) {
            (messages, ms) if messages >= i64::MAX as u64 && ms >= i64::MAX as u64 => {
                FlushPolicy::OsDecides
            }
            (1, _) => FlushPolicy::EveryAppend,
            (messages, interval_ms) => FlushPolicy::Every {
                messages: messages.max(1),
                interval_ms,
            },
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip() {
        let configs = [
            TopicConfig::default(),
            TopicConfig {
                partitions: 12,
                retention_ms: None,
                retention_bytes: Some(1 << 30),
                message_timestamp_type: TimestampType::LogAppendTime,
                flush: FlushPolicy::Every {
                    messages: 100,
                    interval_ms: 50,
                },
                ..TopicConfig::default()
            },
            TopicConfig {
                flush: FlushPolicy::EveryAppend,
                ..TopicConfig::default()
            },
            TopicConfig {
                cleanup_policy: CleanupPolicy::Compact,
                delete_retention_ms: 5_000,
                min_cleanable_dirty_ratio: DirtyRatio::new(0.125).unwrap(),
                min_compaction_lag_ms: 60_000,
                ..TopicConfig::default()
            },
            TopicConfig {
                cleanup_policy: CleanupPolicy::CompactAndDelete,
                min_cleanable_dirty_ratio: DirtyRatio::new(0.0).unwrap(),
                ..TopicConfig::default()
            },
        ];
        for config in configs {
            assert_eq!(
                TopicConfig::from_properties(&config.to_properties()).unwrap(),
                config
            );
        }
        for bad in [
            "partitions",
            "partitions=x",
            "nonsense=1",
            "cleanup.policy=maybe",
            "segment.bytes=99999999999",
            "min.cleanable.dirty.ratio=1.5",
            "min.cleanable.dirty.ratio=NaN",
            "delete.retention.ms=-5",
        ] {
            assert!(
                matches!(
                    TopicConfig::from_properties(bad),
                    Err(BrokerError::InvalidProperty { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(matches!(
            TopicConfig::with_partitions(0).validate(1),
            Err(BrokerError::InvalidPartitions { .. })
        ));
        let replicated = TopicConfig {
            replication_factor: 3,
            ..TopicConfig::default()
        };
        assert!(matches!(
            replicated.validate(1),
            Err(BrokerError::InvalidReplicationFactor {
                requested: 3,
                live_brokers: 1
            })
        ));
        let isr = TopicConfig {
            min_insync_replicas: 2,
            ..TopicConfig::default()
        };
        assert!(matches!(
            isr.validate(1),
            Err(BrokerError::InvalidConfig(_))
        ));
        let compact = TopicConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..TopicConfig::default()
        };
        compact.validate(1).unwrap();
        assert_eq!(
            compact.log_config().cleanup_policy,
            CleanupPolicy::Compact,
            "the log gets the topic's policy"
        );
        let forever = TopicConfig {
            delete_retention_ms: u64::MAX,
            ..compact
        };
        assert!(matches!(
            forever.validate(1),
            Err(BrokerError::InvalidConfig(_))
        ));
        TopicConfig::default().validate(1).unwrap();
    }
}

//! The application-facing clients: [`Producer`] and [`Consumer`]. They talk to a [`Broker`]
//! through its in-process handle. A consumer with a `group_id` subscribes to topics and shares
//! them with its group, committing offsets to the broker's group coordinator.
//!
//! [`Broker`]: crate::broker::Broker

mod accumulator;
mod consumer;
mod coordinator_link;
mod group_member;
mod heartbeat;
mod partitioner;
mod pattern;
mod producer;
mod rebalance;
mod router;
mod sender;

pub use consumer::{
    ConsumeError, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition,
};
pub use group_member::{
    AssignmentStrategy, CommitCallback, ConsumerGroupMetadata, RebalanceListener,
};
pub use partitioner::{murmur2, partition_for_key, to_positive, DefaultPartitioner, Partitioner};
pub use pattern::TopicPattern;
pub use producer::{
    Acks, Idempotence, ProduceError, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
    SendHandle,
};

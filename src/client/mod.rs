//! The application-facing clients: [`Producer`] and [`Consumer`]. They talk to a [`Broker`]
//! through its in-process handle.
//!
//! [`Broker`]: crate::broker::Broker

mod accumulator;
mod consumer;
mod partitioner;
mod producer;
mod router;

pub use consumer::{
    ConsumeError, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition,
};
pub use partitioner::{murmur2, partition_for_key, to_positive, DefaultPartitioner, Partitioner};
pub use producer::{
    Acks, Idempotence, ProduceError, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
    SendHandle,
};

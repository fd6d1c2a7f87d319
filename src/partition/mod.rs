//! One replica of a partition: its log, high watermark, leader epoch, the state of idempotent
//! producers, and the waiters an append wakes.

mod producer_state;
mod replica;
mod waiters;

pub use producer_state::{BatchMetadata, PRODUCER_BATCHES_KEPT};
pub use replica::{AppendResult, PartitionError, Replica, HIGH_WATERMARK_CHECKPOINT};
pub use waiters::Notifier;

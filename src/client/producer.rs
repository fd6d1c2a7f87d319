//! The producer: batches records per partition and appends them from a background sender
//! thread, as Kafka's producer does, so one application thread still forms full batches.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use rustc_hash::FxHashMap;

use super::accumulator::{
    Accumulator, BatchResult, Destination, InlineOutcome, Placed, ProducerIdentity, ReadyBatch,
    RecordBytes, RecordSlot,
};
use super::partitioner::{DefaultPartitioner, Partitioner};
use super::router::{is_out_of_order_sequence, is_retriable};
use super::sender::{ack_level, run_sender};
use crate::broker::{Broker, BrokerError, TopicState};
use crate::log::FlushPolicy;
use crate::partition::{Notifier, PartitionError, PRODUCER_BATCHES_KEPT};
use crate::record::{record_bytes_bound, Header, BATCH_HEADER_BYTES};

/// When a send counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// As soon as the record is accepted by the producer; no offset is known.
    None,
    /// Once the partition leader appended it (and flushed it, if the topic flushes every append).
    Leader,
    /// Once every in-sync replica has it. With one replica this equals `Leader`.
    #[default]
    All,
}

/// Whether the producer uses a producer id and sequence numbers so retries cannot duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idempotence {
    #[default]
    Enabled,
    Disabled,
}

/// Producer configuration, with Kafka's names.
///
/// ## Defaults (Kafka's)
/// - `acks`: `All`; `idempotence`: `Enabled`
/// - `batch_size`: 16384 bytes; `linger_ms`: 0
/// - `buffer_memory`: 32 MiB; `max_block_ms`: 60000
/// - `partitioner`: [`DefaultPartitioner`] (murmur2 for keys, sticky for the rest)
/// - `delivery_timeout_ms`: 120000 (how long a batch may be retried after a retriable error,
///   such as a leader change, before its sends fail)
/// - `retry_backoff_ms`: 100
/// - `max_in_flight_per_partition`: 5 (Kafka's `max.in.flight.requests.per.connection`): how
///   many batches of one partition may be appended and waiting for their acknowledgement at
///   once. With idempotence at most [`PRODUCER_BATCHES_KEPT`] (5), the batches a broker
///   remembers per producer to answer a retry with its original offsets; order holds across
///   retries either way (a failed batch and those behind it are sent again in order), but
///   without idempotence a retry may duplicate.
/// - `inline_idle_appends`: true (not in Kafka). With `linger_ms` 0, a record sent while the
///   producer is idle, to a partition its own broker leads, is appended by `send` itself instead
///   of the sender thread (see [`Producer`]): one thread wake-up less between `send` and a
///   waiting consumer. False keeps every append on the sender thread, as Kafka's producer does.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub acks: Acks,
    pub idempotence: Idempotence,
    pub batch_size: usize,
    pub linger_ms: u64,
    pub buffer_memory: usize,
    pub max_block_ms: u64,
    pub partitioner: Option<Arc<dyn Partitioner>>,
    pub delivery_timeout_ms: u64,
    pub retry_backoff_ms: u64,
    pub max_in_flight_per_partition: usize,
    pub inline_idle_appends: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            idempotence: Idempotence::Enabled,
            batch_size: 16_384,
            linger_ms: 0,
            buffer_memory: 32 << 20,
            max_block_ms: 60_000,
            partitioner: None,
            delivery_timeout_ms: 120_000,
            retry_backoff_ms: 100,
            max_in_flight_per_partition: PRODUCER_BATCHES_KEPT,
            inline_idle_appends: true,
        }
    }
}

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    /// An explicit partition wins over the partitioner.
    pub partition: Option<u32>,
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    /// CreateTime in ms since the epoch; `None` takes the clock's time.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// A record with a key and no value: deletes the key in a compacted topic.
    pub fn tombstone(topic: impl Into<String>, key: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: Some(key.into()),
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }

    pub fn header(mut self, key: impl Into<Bytes>, value: Option<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Bytes the record takes in a batch (an upper bound; varints counted at their widest).
    pub(crate) fn encoded_bytes_bound(&self) -> usize {
        record_bytes_bound(self.key.as_deref(), self.value.as_deref(), &self.headers)
    }
}

/// Where a sent record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: u32,
    /// `None` with `Acks::None`, as Kafka reports -1.
    pub offset: Option<u64>,
    /// The record's CreateTime, or the broker's time for a LogAppendTime topic.
    pub timestamp: i64,
}

/// Why a send failed.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProduceError {
    #[error("unknown topic {topic}")]
    UnknownTopic { topic: String },
    #[error("unknown partition {topic}-{partition}")]
    UnknownPartition { topic: String, partition: u32 },
    #[error("record of {size_bytes} bytes exceeds max_message_bytes {max_bytes}")]
    RecordTooLarge { size_bytes: usize, max_bytes: usize },
    #[error("invalid timestamp {timestamp}: must be at least 0")]
    InvalidTimestamp { timestamp: i64 },
    /// `buffer_memory` stayed full for `max_block_ms`.
    #[error("buffer memory stayed full for {waited_ms} ms")]
    BufferExhausted { waited_ms: u64 },
    #[error("producer is closed")]
    Closed,
    /// `max_in_flight_per_partition` is 0, or above [`PRODUCER_BATCHES_KEPT`] with idempotence.
    #[error("max_in_flight_per_partition {requested} is out of range: {}", match .max {
        Some(max) => format!("with idempotence it must be 1 to {max}"),
        None => "it must be at least 1".to_owned(),
    })]
    MaxInFlightOutOfRange {
        requested: usize,
        /// The largest value allowed (`None`: no limit but buffer memory).
        max: Option<usize>,
    },
    #[error(transparent)]
    Partition(Arc<PartitionError>),
    #[error(transparent)]
    Broker(Arc<BrokerError>),
}

impl From<BrokerError> for ProduceError {
    fn from(error: BrokerError) -> Self {
        match error {
            BrokerError::UnknownTopic { topic } => ProduceError::UnknownTopic { topic },
            BrokerError::UnknownPartition { topic, partition } => {
                ProduceError::UnknownPartition { topic, partition }
            }
            BrokerError::Partition(error)
            | BrokerError::Replication(crate::replication::ReplicationError::Partition(error)) => {
                ProduceError::Partition(Arc::new(error))
            }
            other => ProduceError::Broker(Arc::new(other)),
        }
    }
}

/// The future result of one `send`.
#[derive(Debug)]
pub struct SendHandle {
    state: HandleState,
}

#[derive(Debug)]
enum HandleState {
    Done(Result<RecordMetadata, ProduceError>),
    Pending(RecordSlot),
}

impl SendHandle {
    /// Blocks until the send completes.
    ///
    /// # Errors
    /// The send's error.
    pub fn wait(self) -> Result<RecordMetadata, ProduceError> {
        match self.state {
            HandleState::Done(result) => result,
            HandleState::Pending(slot) => slot
                .wait(None)
                .expect("waiting without a deadline returns a result"),
        }
    }

    /// Waits up to `timeout`; `None` if the send is still in flight.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<RecordMetadata, ProduceError>> {
        match &self.state {
            HandleState::Done(result) => Some(result.clone()),
            HandleState::Pending(slot) => slot.wait(Some(Instant::now() + timeout)),
        }
    }

    pub fn is_done(&self) -> bool {
        match &self.state {
            HandleState::Done(_) => true,
            HandleState::Pending(slot) => slot.is_done(),
        }
    }
}

/// Sends records to a broker's partitions. `Send + Sync + Clone`: clones share one sender thread
/// and one buffer. Dropping the last clone completes every send in flight (each succeeds or
/// fails; none vanishes) before returning.
///
/// A sender thread appends the batches, as in Kafka's producer. With `inline_idle_appends` (the
/// default), one exception saves a thread hand-off where it would only add latency: with
/// `linger_ms` 0, a record sent while the producer is idle (nothing queued or in flight), to a
/// partition this producer's broker leads, is appended by `send` itself, a write to the page
/// cache of a few microseconds, unless the topic flushes every append. At most one such record
/// goes inline per 20 us; in a burst or a tight loop the rest form batches behind the sender
/// thread.
///
/// With idempotence, a batch that fails for good (a non-retriable error, or
/// `delivery_timeout_ms` spent on retries) leaves a gap in its partition's sequence numbers.
/// As Kafka's producer does (KIP-360), the producer then bumps its epoch (see
/// [`Producer::producer_id`]) and numbers the records sent after the failed batch afresh,
/// once nothing of it is in flight: they are not failed for the gap, keep their order, and
/// none is appended twice.
#[derive(Debug, Clone)]
pub struct Producer {
    handle: Arc<ProducerHandle>,
}

#[derive(Debug)]
struct ProducerHandle {
    shared: Arc<Shared>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub broker: Broker,
    pub config: ProducerConfig,
    pub partitioner: Arc<dyn Partitioner>,
    /// Also holds the producer id and its current epoch, which the sender bumps after a batch
    /// failed (see `sender.rs`).
    pub accumulator: Mutex<Accumulator>,
    /// The topics sent to, looked up without the broker's own table.
    topics: TopicTable,
    /// Wakes the sender: new batches, a flush, a close, or (registered with the leader
    /// replicas it has appends pending on) a high watermark that moved.
    pub wakeup: Arc<Notifier>,
    /// Signals senders blocked on buffer memory.
    pub space: Condvar,
}

impl Shared {
    /// Whether completions that leave `buffered_bytes` buffered should wake the threads
    /// blocked on buffer memory: once an eighth of it is free. Waking them on every completed
    /// batch would cost two context switches per batch while the buffer stays full, and a
    /// woken thread would only fill the one freed batch before blocking again; this way it
    /// wakes once per eighth of the buffer. A thread waiting for a record larger than an
    /// eighth is woken by each completion after that, until its record fits (at the latest
    /// when the buffer is empty).
    pub(crate) fn has_room_to_signal(&self, buffered_bytes: usize) -> bool {
        let buffer_memory = self.config.buffer_memory;
        buffered_bytes <= buffer_memory - buffer_memory / 8
    }
}

impl Producer {
    /// A producer on `broker` with the default configuration.
    ///
    /// # Errors
    /// `Broker` when no producer id can be had.
    pub fn new(broker: &Broker) -> Result<Producer, ProduceError> {
        Self::with_config(broker, ProducerConfig::default())
    }

    /// A producer on `broker` with `config`.
    ///
    /// # Errors
    /// `MaxInFlightOutOfRange`; `Broker` when no producer id can be had.
    pub fn with_config(broker: &Broker, config: ProducerConfig) -> Result<Producer, ProduceError> {
        check_max_in_flight(&config)?;
        let (id, epoch) = match config.idempotence {
            Idempotence::Enabled => broker.init_producer_id()?,
            Idempotence::Disabled => (-1, -1),
        };
        let partitioner = config
            .partitioner
            .clone()
            .unwrap_or_else(|| Arc::new(DefaultPartitioner::new(config.batch_size)));
        let shared = Arc::new(Shared {
            broker: broker.clone(),
            config,
            partitioner,
            accumulator: Mutex::new(Accumulator::new(ProducerIdentity { id, epoch })),
            topics: TopicTable::default(),
            wakeup: Notifier::new(),
            space: Condvar::new(),
        });
        let sender_shared = Arc::clone(&shared);
        let sender = std::thread::Builder::new()
            .name("logbus-producer".into())
            .spawn(move || run_sender(&sender_shared))
            .map_err(|error| {
                ProduceError::Broker(Arc::new(BrokerError::Io {
                    path: Default::default(),
                    source: error,
                }))
            })?;
        Ok(Producer {
            handle: Arc::new(ProducerHandle {
                shared,
                sender: Mutex::new(Some(sender)),
            }),
        })
    }

    /// The producer id and its current epoch ((-1, -1) without idempotence). The broker gives
    /// the id with epoch 0; the producer bumps the epoch itself each time a batch fails for
    /// good, so that the batches after it are not refused for the gap in sequence numbers
    /// (and takes a new id from the broker should the epoch pass `i16::MAX`).
    pub fn producer_id(&self) -> (i64, i16) {
        let producer = self.handle.shared.accumulator.lock().producer();
        (producer.id, producer.epoch)
    }

    /// Queues `record` and returns a handle on its result. Blocks only while `buffer_memory` is
    /// full, up to `max_block_ms`. With `linger_ms` 0, a record for an idle partition led by
    /// this producer's broker is appended before `send` returns (see [`Producer`]).
    ///
    /// # Errors
    /// `UnknownTopic`, `UnknownPartition`, `RecordTooLarge`, `InvalidTimestamp`,
    /// `BufferExhausted`, `Closed`.
    pub fn send(&self, record: ProducerRecord) -> Result<SendHandle, ProduceError> {
        let shared = &self.handle.shared;
        if let Some(timestamp) = record.timestamp.filter(|&timestamp| timestamp < 0) {
            return Err(ProduceError::InvalidTimestamp { timestamp });
        }
        let topic = shared.topics.view(&shared.broker, &record.topic)?;
        let record_bytes = record.encoded_bytes_bound();
        if record_bytes + BATCH_HEADER_BYTES > topic.max_message_bytes {
            return Err(ProduceError::RecordTooLarge {
                size_bytes: record_bytes + BATCH_HEADER_BYTES,
                max_bytes: topic.max_message_bytes,
            });
        }
        let partition = match record.partition {
            Some(partition) if partition < topic.partitions => partition,
            Some(partition) => {
                return Err(ProduceError::UnknownPartition {
                    topic: record.topic,
                    partition,
                })
            }
            None => shared.partitioner.partition(
                &record.topic,
                record.key.as_deref(),
                record_bytes,
                topic.partitions,
            ),
        };
        let timestamp = record
            .timestamp
            .unwrap_or_else(|| shared.broker.clock().now_ms());
        let sizes = RecordBytes {
            record: record_bytes,
            // No underflow: the check above keeps record_bytes + BATCH_HEADER_BYTES <= max_bytes.
            batch_limit: topic.max_message_bytes - BATCH_HEADER_BYTES,
        };
        let to = Destination {
            topic_index: topic.index,
            topic: &record.topic,
            partition,
            may_inline: shared.config.inline_idle_appends && !topic.flushes_every_append,
        };
        let slot = self.enqueue(to, &record, sizes, timestamp)?;
        if shared.config.acks == Acks::None {
            let metadata = RecordMetadata {
                topic: record.topic,
                partition,
                offset: None,
                timestamp,
            };
            return Ok(SendHandle {
                state: HandleState::Done(Ok(metadata)),
            });
        }
        Ok(SendHandle {
            state: HandleState::Pending(slot),
        })
    }

    /// Sends and waits for the result.
    ///
    /// # Errors
    /// As [`Producer::send`], and the append's error.
    pub fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata, ProduceError> {
        self.send(record)?.wait()
    }

    fn enqueue(
        &self,
        to: Destination<'_>,
        record: &ProducerRecord,
        sizes: RecordBytes,
        timestamp: i64,
    ) -> Result<RecordSlot, ProduceError> {
        let shared = &self.handle.shared;
        let record_bytes = sizes.record;
        let mut accumulator = shared.accumulator.lock();
        // Read the clock only when the buffer is full: a clock read per send is measurable.
        let mut deadline = None;
        while accumulator.buffered_bytes > 0
            && accumulator.buffered_bytes + record_bytes > shared.config.buffer_memory
        {
            if accumulator.closed {
                return Err(ProduceError::Closed);
            }
            let deadline = *deadline.get_or_insert_with(|| {
                Instant::now() + Duration::from_millis(shared.config.max_block_ms)
            });
            if shared
                .space
                .wait_until(&mut accumulator, deadline)
                .timed_out()
            {
                return Err(ProduceError::BufferExhausted {
                    waited_ms: shared.config.max_block_ms,
                });
            }
        }
        if accumulator.closed {
            return Err(ProduceError::Closed);
        }
        let to = Destination {
            may_inline: to.may_inline && !shared.broker.is_crashed(),
            ..to
        };
        match accumulator.append(shared, to, record, sizes, timestamp) {
            Placed::Queued { slot, wake } => {
                drop(accumulator);
                if wake {
                    shared.wakeup.notify();
                }
                Ok(slot)
            }
            Placed::Inline {
                slot,
                batch,
                started,
            } => {
                drop(accumulator);
                let outcome = append_inline(shared, &batch);
                let done = matches!(outcome, InlineOutcome::Done(_));
                let mut accumulator = shared.accumulator.lock();
                let wake = accumulator.finish_inline(batch, started, outcome);
                let room = done && shared.has_room_to_signal(accumulator.buffered_bytes);
                drop(accumulator);
                if wake {
                    shared.wakeup.notify();
                }
                if room {
                    shared.space.notify_all();
                }
                Ok(slot)
            }
        }
    }

    /// Sends every queued record now and waits until each has completed.
    pub fn flush(&self) {
        let shared = &self.handle.shared;
        let pending: Vec<Arc<BatchResult>> = {
            let mut accumulator = shared.accumulator.lock();
            accumulator.seal_all();
            accumulator.pending_results()
        };
        shared.wakeup.notify();
        for result in pending {
            result.wait_done();
        }
    }

    /// Flushes, stops the sender thread, and refuses later sends with `Closed`.
    pub fn close(&self) {
        self.handle.close();
    }
}

impl ProducerHandle {
    fn close(&self) {
        {
            let mut accumulator = self.shared.accumulator.lock();
            accumulator.closed = true;
            accumulator.seal_all();
        }
        self.shared.wakeup.notify();
        self.shared.space.notify_all();
        if let Some(sender) = self.sender.lock().take() {
            // The sender drains every queued batch before it exits; a panic there is a bug.
            sender
                .join()
                .expect("the producer's sender thread panicked");
        }
    }
}

impl Drop for ProducerHandle {
    fn drop(&mut self) {
        self.close();
    }
}

/// Refuses a `max_in_flight_per_partition` of 0, or one that idempotence cannot keep exact: a
/// broker remembers only a producer's last [`PRODUCER_BATCHES_KEPT`] batches per partition.
fn check_max_in_flight(config: &ProducerConfig) -> Result<(), ProduceError> {
    let requested = config.max_in_flight_per_partition;
    let max = (config.idempotence == Idempotence::Enabled).then_some(PRODUCER_BATCHES_KEPT);
    if requested == 0 || max.is_some_and(|max| requested > max) {
        return Err(ProduceError::MaxInFlightOutOfRange { requested, max });
    }
    Ok(())
}

/// Appends `batch` (one record, see the accumulator's module docs) on the producer's own
/// broker, from the sending thread.
fn append_inline(shared: &Shared, batch: &ReadyBatch) -> InlineOutcome {
    let broker = &shared.broker;
    let (topic, partition) = (&batch.topic, batch.partition);
    match broker.append(
        topic,
        partition,
        &batch.batch,
        ack_level(shared.config.acks),
    ) {
        // Appended by the leader: all that acks=Leader (or None) waits for.
        Ok(pending) if shared.config.acks != Acks::All => InlineOutcome::Done(Ok(pending.result)),
        Ok(pending) => match broker.poll_append(topic, partition, &pending) {
            Some(Ok(())) => InlineOutcome::Done(Ok(pending.result)),
            // Waiting for followers, or a failure the sender knows how to retry.
            _ => InlineOutcome::Pending {
                broker: broker.clone(),
                pending,
            },
        },
        Err(error) if is_retriable(&error) => InlineOutcome::Retry,
        Err(error) if is_out_of_order_sequence(&error) => InlineOutcome::OutOfOrderSequence,
        Err(error) => InlineOutcome::Done(Err(error.into())),
    }
}

/// The topics a producer sends to, by name: the broker's shared state of each, and the index
/// of its queues in the accumulator (indexes are never reused, as names are never removed).
/// Every send looks its topic up here, with a fast hash and a lock only this producer takes,
/// rather than in the broker's table.
#[derive(Debug, Default)]
struct TopicTable {
    by_name: RwLock<FxHashMap<Arc<str>, TopicEntry>>,
}

#[derive(Debug)]
struct TopicEntry {
    state: Arc<TopicState>,
    index: usize,
    /// From the topic's config, which never changes them.
    max_message_bytes: usize,
    flushes_every_append: bool,
}

/// What a send needs of its topic.
struct TopicView {
    index: usize,
    partitions: u32,
    max_message_bytes: usize,
    flushes_every_append: bool,
}

impl TopicTable {
    /// `name`'s view, asking the broker on the first send to it or after it was deleted (it
    /// may have been created again).
    fn view(&self, broker: &Broker, name: &str) -> Result<TopicView, ProduceError> {
        if let Some(entry) = self.by_name.read().get(name) {
            if !entry.state.deleted.load(Ordering::Acquire) {
                return Ok(entry.view());
            }
        }
        let state = broker.topic_state(name)?;
        let (max_message_bytes, flushes_every_append) = {
            let config = state.config.read();
            (
                config.max_message_bytes as usize,
                config.flush == FlushPolicy::EveryAppend,
            )
        };
        let mut by_name = self.by_name.write();
        let next_index = by_name.len();
        let entry = by_name
            .entry(Arc::clone(&state.name))
            .or_insert_with(|| TopicEntry {
                state: Arc::clone(&state),
                index: next_index,
                max_message_bytes,
                flushes_every_append,
            });
        // A topic created again under the name may differ.
        entry.state = state;
        entry.max_message_bytes = max_message_bytes;
        entry.flushes_every_append = flushes_every_append;
        Ok(entry.view())
    }
}

impl TopicEntry {
    /// Takes no lock: a send's view is read on every record.
    fn view(&self) -> TopicView {
        TopicView {
            index: self.index,
            partitions: self.state.partition_count(),
            max_message_bytes: self.max_message_bytes,
            flushes_every_append: self.flushes_every_append,
        }
    }
}

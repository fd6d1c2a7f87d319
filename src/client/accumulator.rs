//! Per-partition batches waiting to be sent, and the shared result each batch's records wait on.
//! Guarded by the producer's accumulator lock.
//!
//! A partition sends a full batch as soon as it has fewer than `max_in_flight_per_partition`
//! batches in flight. A batch that is not full keeps filling while its partition has any batch
//! in flight, and goes once the partition is idle and the batch has lingered `linger_ms` (or on
//! a flush or close): the round trip of the batches in flight is the natural linger, so a busy
//! partition sends full batches and an idle one sends a lone record at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::producer::{Idempotence, ProduceError, ProducerRecord, RecordMetadata, Shared};
use crate::partition::AppendResult;
use crate::record::{BatchBuilder, BatchSpec, RecordBatch};

#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    queues: HashMap<(Arc<str>, u32), PartitionQueue>,
    /// Bytes of records accepted and not yet completed (bounded by `buffer_memory`).
    pub buffered_bytes: usize,
    pub closed: bool,
}

#[derive(Debug, Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    ready: VecDeque<ReadyBatch>,
    /// Results of the batches the sender took and has not completed, oldest first (the
    /// sender completes a partition's batches in order). At most `max_in_flight_per_partition`.
    in_flight: VecDeque<Arc<BatchResult>>,
    /// The sequence number the next record gets (idempotent producers).
    next_sequence: i32,
}

#[derive(Debug)]
struct OpenBatch {
    builder: BatchBuilder,
    result: Arc<BatchResult>,
    bytes: usize,
    opened: Instant,
}

/// A finished batch on its way to a partition.
#[derive(Debug)]
pub(crate) struct ReadyBatch {
    pub topic: Arc<str>,
    pub partition: u32,
    pub batch: RecordBatch,
    pub result: Arc<BatchResult>,
    pub bytes: usize,
}

/// A record's encoded size (an upper bound) and the most record bytes a batch of its topic may
/// hold: `max_message_bytes` less the batch header, so that records which each fit the topic are
/// never batched past what the log accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordBytes {
    pub record: usize,
    pub batch_limit: usize,
}

/// What the sender takes from one look at the accumulator.
pub(crate) struct Drained {
    /// Due batches, each partition's in order.
    pub batches: Vec<ReadyBatch>,
    /// When the earliest lingering batch becomes due.
    pub next_due: Option<Instant>,
    /// Closed, and nothing is queued or in flight: the sender may stop.
    pub finished: bool,
}

impl Accumulator {
    /// Adds a record to its partition's open batch. Returns the record's slot and whether the
    /// sender should be woken now: for a full batch, or a new batch (so the sender takes it, or
    /// learns its linger deadline). A record joining an open batch needs no wake-up: the sender
    /// was woken when the batch opened, and drains it (with every record added since) once the
    /// partition's batches in flight complete. One wake-up per batch, not per record, is what
    /// lets records batch up behind a busy sender with `linger_ms` 0.
    pub(crate) fn append(
        &mut self,
        shared: &Shared,
        topic: &Arc<str>,
        partition: u32,
        record: &ProducerRecord,
        sizes: RecordBytes,
        timestamp: i64,
    ) -> (RecordSlot, bool) {
        let record_bytes = sizes.record;
        let batch_size = shared.config.batch_size.min(sizes.batch_limit);
        let key = (Arc::clone(topic), partition);
        let queue = self.queues.entry(key).or_default();
        if queue
            .open
            .as_ref()
            .is_some_and(|open| open.bytes + record_bytes > batch_size)
        {
            queue.seal(topic, partition);
        }
        // A new batch must wake the sender even when it lingers: an idle sender waits without
        // a deadline and learns when this batch is due only by draining it once.
        let opened = queue.open.is_none();
        let open = queue.open.get_or_insert_with(|| {
            let idempotent = shared.config.idempotence == Idempotence::Enabled;
            let spec = BatchSpec {
                producer_id: shared.producer_id,
                producer_epoch: shared.producer_epoch,
                base_sequence: if idempotent { queue.next_sequence } else { -1 },
                ..BatchSpec::default()
            };
            OpenBatch {
                builder: BatchBuilder::with_capacity(
                    spec,
                    batch_size.min(record_bytes.max(1024) * 4),
                ),
                result: BatchResult::new(),
                bytes: 0,
                opened: Instant::now(),
            }
        });
        let index = open.builder.len() as u32;
        open.builder.append(
            timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        );
        open.bytes += record_bytes;
        let slot = RecordSlot {
            result: Arc::clone(&open.result),
            index,
            topic: Arc::clone(topic),
            partition,
            timestamp,
        };
        let full = open.bytes >= batch_size;
        if shared.config.idempotence == Idempotence::Enabled {
            queue.next_sequence = if queue.next_sequence == i32::MAX {
                0
            } else {
                queue.next_sequence + 1
            };
        }
        if full {
            queue.seal(topic, partition);
        }
        self.buffered_bytes += record_bytes;
        (slot, full || opened)
    }

    /// Closes every open batch so the sender takes it without waiting for the linger.
    pub(crate) fn seal_all(&mut self) {
        for ((topic, partition), queue) in self.queues.iter_mut() {
            queue.seal(topic, *partition);
        }
    }

    /// Results of every batch not yet completed.
    pub(crate) fn pending_results(&self) -> Vec<Arc<BatchResult>> {
        let mut results = Vec::new();
        for queue in self.queues.values() {
            results.extend(queue.open.iter().map(|open| Arc::clone(&open.result)));
            results.extend(queue.ready.iter().map(|ready| Arc::clone(&ready.result)));
            results.extend(queue.in_flight.iter().cloned());
        }
        results
    }

    /// Takes the due batches of each partition, oldest first, up to `max_in_flight` in flight
    /// per partition (see the module docs for when a batch that is not full is due).
    pub(crate) fn drain(
        &mut self,
        linger: Duration,
        now: Instant,
        max_in_flight: usize,
    ) -> Drained {
        let mut batches = Vec::new();
        let mut earliest: Option<Instant> = None;
        let mut idle = true;
        for ((topic, partition), queue) in self.queues.iter_mut() {
            idle &= queue.open.is_none() && queue.ready.is_empty() && queue.in_flight.is_empty();
            if queue.ready.is_empty() && queue.in_flight.is_empty() {
                if let Some(open) = &queue.open {
                    let due = open.opened + linger;
                    if self.closed || now >= due {
                        queue.seal(topic, *partition);
                    } else {
                        earliest = Some(earliest.map_or(due, |earliest| earliest.min(due)));
                    }
                }
            }
            while queue.in_flight.len() < max_in_flight {
                let Some(ready) = queue.ready.pop_front() else {
                    break;
                };
                queue.in_flight.push_back(Arc::clone(&ready.result));
                batches.push(ready);
            }
        }
        Drained {
            batches,
            next_due: earliest,
            finished: self.closed && idle,
        }
    }

    /// Marks a partition's oldest batch in flight done and releases its buffer memory.
    pub(crate) fn finish_in_flight(&mut self, completed: &ReadyBatch) {
        let key = (Arc::clone(&completed.topic), completed.partition);
        let finished = self
            .queues
            .get_mut(&key)
            .and_then(|queue| queue.in_flight.pop_front());
        assert!(
            finished.is_some_and(|result| Arc::ptr_eq(&result, &completed.result)),
            "the sender completes each partition's batches in the order it took them"
        );
        self.buffered_bytes -= completed.bytes;
    }
}

impl PartitionQueue {
    fn seal(&mut self, topic: &Arc<str>, partition: u32) {
        if let Some(open) = self.open.take() {
            let batch = open.builder.finish();
            self.ready.push_back(ReadyBatch {
                topic: Arc::clone(topic),
                partition,
                batch,
                result: open.result,
                bytes: open.bytes,
            });
        }
    }
}

/// The outcome of one batch, shared by its records' handles.
#[derive(Debug, Default)]
pub(crate) struct BatchResult {
    outcome: Mutex<Option<Result<AppendResult, ProduceError>>>,
    done: Condvar,
}

impl BatchResult {
    fn new() -> Arc<BatchResult> {
        Arc::new(BatchResult::default())
    }

    pub(crate) fn complete(&self, outcome: Result<AppendResult, ProduceError>) {
        *self.outcome.lock() = Some(outcome);
        self.done.notify_all();
    }

    pub(crate) fn wait_done(&self) {
        let mut outcome = self.outcome.lock();
        while outcome.is_none() {
            self.done.wait(&mut outcome);
        }
    }
}

/// One record's place in a batch: its handle's way to the result.
#[derive(Debug)]
pub(crate) struct RecordSlot {
    result: Arc<BatchResult>,
    index: u32,
    topic: Arc<str>,
    partition: u32,
    timestamp: i64,
}

impl RecordSlot {
    /// Waits for the batch (until `deadline`, if given); `None` when the deadline passed first.
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
    ) -> Option<Result<RecordMetadata, ProduceError>> {
        let mut outcome = self.result.outcome.lock();
        while outcome.is_none() {
            match deadline {
                Some(deadline) => {
                    if self
                        .result
                        .done
                        .wait_until(&mut outcome, deadline)
                        .timed_out()
                        && outcome.is_none()
                    {
                        return None;
                    }
                }
                None => self.result.done.wait(&mut outcome),
            }
        }
        let outcome = outcome.as_ref().expect("checked above").clone();
        Some(outcome.map(|appended| RecordMetadata {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: Some(appended.base_offset + u64::from(self.index)),
            timestamp: appended.log_append_time.unwrap_or(self.timestamp),
        }))
    }

    pub(crate) fn is_done(&self) -> bool {
        self.result.outcome.lock().is_some()
    }
}

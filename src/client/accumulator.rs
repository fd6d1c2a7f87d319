//! Per-partition batches waiting to be sent, and the shared result each batch's records wait on.
//! Guarded by the producer's accumulator lock.

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
    in_flight: Option<Arc<BatchResult>>,
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

/// What the sender should do next.
pub(crate) enum Drained {
    Batches(Vec<ReadyBatch>),
    /// Closed and nothing is left.
    Finished,
    /// Nothing is due; wait for work or until the earliest linger ends.
    WaitUntil(Option<Instant>),
}

impl Accumulator {
    /// Adds a record to its partition's open batch. Returns the record's slot and whether the
    /// sender should be woken now: for a full batch, or a new batch (so the sender takes it, or
    /// learns its linger deadline). A record joining an open batch needs no wake-up: the sender
    /// was woken when the batch opened, and drains it (with every record added since) once the
    /// partition's batch in flight completes. One wake-up per batch, not per record, is what
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

    /// Takes at most one due batch per partition with nothing in flight.
    pub(crate) fn drain(&mut self, linger: Duration, now: Instant) -> Drained {
        let mut batches = Vec::new();
        let mut earliest: Option<Instant> = None;
        let mut idle = true;
        for ((topic, partition), queue) in self.queues.iter_mut() {
            idle &= queue.open.is_none() && queue.ready.is_empty() && queue.in_flight.is_none();
            if queue.in_flight.is_some() {
                continue;
            }
            if queue.ready.is_empty() {
                if let Some(open) = &queue.open {
                    let due = open.opened + linger;
                    if self.closed || now >= due {
                        queue.seal(topic, *partition);
                    } else {
                        earliest = Some(earliest.map_or(due, |earliest| earliest.min(due)));
                    }
                }
            }
            if let Some(ready) = queue.ready.pop_front() {
                queue.in_flight = Some(Arc::clone(&ready.result));
                batches.push(ready);
            }
        }
        if !batches.is_empty() {
            Drained::Batches(batches)
        } else if self.closed && idle {
            Drained::Finished
        } else {
            Drained::WaitUntil(earliest)
        }
    }

    /// Marks a partition's batch done and releases its buffer memory.
    pub(crate) fn finish_in_flight(&mut self, topic: &Arc<str>, partition: u32, bytes: usize) {
        if let Some(queue) = self.queues.get_mut(&(Arc::clone(topic), partition)) {
            queue.in_flight = None;
        }
        self.buffered_bytes -= bytes;
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

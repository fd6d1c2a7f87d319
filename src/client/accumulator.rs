//! Per-partition batches waiting to be sent, and the shared result each batch's records wait on.
//! Guarded by the producer's accumulator lock.
//!
//! A partition sends a full batch as soon as it has fewer than `max_in_flight_per_partition`
//! batches in flight. A batch that is not full keeps filling while its partition has any batch
//! in flight, and goes once the partition is idle and the batch has lingered `linger_ms` (or on
//! a flush or close): the round trip of the batches in flight is the natural linger, so a busy
//! partition sends full batches and an idle one sends a lone record at once.
//!
//! ## Inline appends
//! With `linger_ms` 0, a record sent while the producer is idle (no batch open, queued or in
//! flight on any partition) to a partition whose leader is this producer's own broker is
//! appended by the sending thread itself, as a batch of one: handing it to the sender thread
//! would add a thread wake-up (5-20 us on a busy machine) to its latency for nothing, since the
//! sender would send it alone at once anyway. The whole producer must be idle, not only the
//! partition: a thread sending flat out over several partitions (the sticky partitioner moves
//! to an idle one every `batch_size` bytes) keeps batching while its last batch is in flight. While the
//! inline append runs, the partition counts as busy: records sent meanwhile batch up, and the
//! sender leaves the partition alone, so batches still reach the log in sequence order. If the
//! append is not final at once (`acks=All` with followers) the sender takes it over; if it
//! failed retriably the batch goes back to the front of the queue for the sender to retry.
//!
//! An inline append always leaves the producer idle, so a thread sending in a tight loop would
//! append every record alone: about 4 us each on the project's VM, against well under 1 us per
//! record in batches. So a record goes inline only while the sending threads are slow enough
//! to pay for it: the producer keeps what an inline append costs (the fastest of the last few)
//! and a moving average of how long it sat idle before each record that found it idle (the
//! caller's own time between sends), and appends inline while the second is at least the
//! first; now and then a record goes inline anyway, to measure the cost again. A thread sending
//! in a tight loop leaves no idle time and forms batches behind the sender thread, as it would
//! without inline appends; records paced a few microseconds apart or more (100 k records/s in
//! bursts, say) all go inline; after a pause the first record goes inline again.
//!
//! ## Epoch bumps
//! Each record of an idempotent producer gets its partition's next sequence number as it joins
//! a batch. When a batch fails for good its sequences are a gap the broker refuses to skip, so
//! the sender bumps the producer's epoch (see `sender.rs`): it sets `epoch_bump_pending`, after
//! which no inline append starts, and once nothing of the producer may still land under the
//! old epoch it calls [`Accumulator::restart_sequences`], which re-sequences every queued and
//! open batch from 0 under the new epoch.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::producer::{Idempotence, ProduceError, ProducerRecord, RecordMetadata, Shared};
use crate::broker::Broker;
use crate::partition::AppendResult;
use crate::record::{BatchBuilder, BatchSpec, RecordBatch};
use crate::replication::PendingAppend;

/// Weight of a new sample in the average idle time before a send, as a shift: 1/16, about
/// two bursts of records at 100 k records/s.
const AVERAGE_SHIFT: u32 = 4;
/// Inline appends whose duration the cost estimate remembers.
const COST_SAMPLES: usize = 8;
/// Of the records that find the producer idle and do not pay for an inline append, every this
/// many goes inline anyway, to measure the cost again (it may have been a slow one).
const COST_PROBE_EVERY: u32 = 64;

/// A moving average of durations in nanoseconds, empty until the first sample.
#[derive(Debug, Default, Clone, Copy)]
struct MovingAverage(Option<u64>);

impl MovingAverage {
    fn add(&mut self, sample: u64) {
        self.0 = Some(match self.0 {
            None => sample,
            Some(average) if sample >= average => average + ((sample - average) >> AVERAGE_SHIFT),
            Some(average) => average - ((average - sample) >> AVERAGE_SHIFT),
        });
    }
}

/// What an inline append costs: the fastest of the last few, in nanoseconds. A minimum, not an
/// average: one append slowed by a page fault or a preemption (the first one maps the segment:
/// a millisecond) would otherwise stop inline appends, and with them new samples, for good.
#[derive(Debug, Default, Clone, Copy)]
struct RecentMinimum {
    samples: [u64; COST_SAMPLES],
    count: usize,
}

impl RecentMinimum {
    fn add(&mut self, sample: u64) {
        self.samples[self.count % COST_SAMPLES] = sample;
        self.count += 1;
    }

    /// `None` until it has all its samples (the first appends map files and pages: slow).
    fn get(&self) -> Option<u64> {
        if self.count < COST_SAMPLES {
            return None;
        }
        self.samples.iter().copied().min()
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
pub(crate) struct Accumulator {
    /// The producer id and epoch new batches get.
    producer: ProducerIdentity,
    /// A batch of this idempotent producer failed or was refused as out of sequence: the
    /// sender is to bump the epoch. Set by the sender or by a failed inline append, cleared by
    /// [`Accumulator::restart_sequences`]; no inline append starts meanwhile.
    pub epoch_bump_pending: bool,
    /// Queues by the topic index the producer's topic table gave the topic.
    topics: Vec<Option<TopicQueues>>,
    /// Bytes of records accepted and not yet completed (bounded by `buffer_memory`).
    pub buffered_bytes: usize,
    pub closed: bool,
    /// When `buffered_bytes` last fell to zero (see the module docs on inline appends).
    idle_since: Option<Instant>,
    /// How long the producer was idle before each record that found it idle.
    idle_before_send: MovingAverage,
    /// How long inline appends take, from the record's arrival to its completion.
    inline_cost: RecentMinimum,
    /// Records that found the producer idle and went to the sender since the last inline one.
    idle_sends_not_inline: u32,
}

/// An idempotent producer's id and current epoch; (-1, -1) without idempotence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerIdentity {
    pub id: i64,
    pub epoch: i16,
}

#[derive(Debug)]
struct TopicQueues {
    name: Arc<str>,
    partitions: Vec<PartitionQueue>,
}

#[derive(Debug, Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    ready: VecDeque<ReadyBatch>,
    /// Results of the batches taken (by the sender, or by an inline append) and not completed,
    /// oldest first (a partition's batches complete in order). At most
    /// `max_in_flight_per_partition`.
    in_flight: VecDeque<Arc<BatchResult>>,
    /// The sequence number the next record gets (idempotent producers).
    next_sequence: i32,
    /// A sending thread is appending a batch of this partition inline: the sender leaves the
    /// partition alone until it is done.
    inline_busy: bool,
    /// An inline append that is not final yet, for the sender to wait on.
    handed_over: Option<HandedOver>,
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
    pub topic_index: usize,
    pub partition: u32,
    pub batch: RecordBatch,
    pub result: Arc<BatchResult>,
    pub bytes: usize,
}

/// A batch appended inline that waits for more than the append (`acks=All` with followers):
/// the sender takes it over as if it had appended it itself.
#[derive(Debug)]
pub(crate) struct HandedOver {
    pub ready: ReadyBatch,
    pub broker: Broker,
    pub pending: PendingAppend,
}

/// How an inline append ended.
pub(crate) enum InlineOutcome {
    /// Final: the batch's records complete with this.
    Done(Result<AppendResult, ProduceError>),
    /// Appended, waiting for its acknowledgement: the sender takes it over.
    Pending {
        broker: Broker,
        pending: PendingAppend,
    },
    /// Not appended, for a reason a retry may cure (the leader moved): the sender sends it.
    Retry,
    /// Refused as out of sequence, so not appended: an earlier batch failed. The sender sends
    /// it once the producer's epoch is bumped, re-sequenced.
    OutOfOrderSequence,
}

/// A record's encoded size (an upper bound) and the most record bytes a batch of its topic may
/// hold: `max_message_bytes` less the batch header, so that records which each fit the topic are
/// never batched past what the log accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordBytes {
    pub record: usize,
    pub batch_limit: usize,
}

/// Where a record goes: its topic (by the producer's topic index, and by name) and partition,
/// and whether this producer may append it inline (its broker leads the partition here and
/// the topic does not flush every append).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Destination<'a> {
    pub topic_index: usize,
    pub topic: &'a str,
    pub partition: u32,
    pub may_inline: bool,
}

/// What became of a record given to [`Accumulator::append`].
pub(crate) enum Placed {
    /// It joined a batch for the sender; `wake` says whether the sender must be woken.
    Queued { slot: RecordSlot, wake: bool },
    /// Its partition was idle: the caller appends `batch` (the record alone) itself, then
    /// reports with [`Accumulator::finish_inline`], passing `started` back.
    Inline {
        slot: RecordSlot,
        batch: ReadyBatch,
        started: Instant,
    },
}

/// What the sender takes from one look at the accumulator.
pub(crate) struct Drained {
    /// Inline appends to wait on, each ahead of its partition's `batches`.
    pub handed_over: Vec<HandedOver>,
    /// Due batches, each partition's in order.
    pub batches: Vec<ReadyBatch>,
    /// When the earliest lingering batch becomes due.
    pub next_due: Option<Instant>,
    /// Closed, and nothing is queued or in flight: the sender may stop.
    pub finished: bool,
    /// The producer's epoch is to be bumped (see [`Accumulator::epoch_bump_pending`]).
    pub epoch_bump_pending: bool,
}

impl Accumulator {
    pub(crate) fn new(producer: ProducerIdentity) -> Accumulator {
        Accumulator {
            producer,
            epoch_bump_pending: false,
            topics: Vec::new(),
            buffered_bytes: 0,
            closed: false,
            idle_since: None,
            idle_before_send: MovingAverage::default(),
            inline_cost: RecentMinimum::default(),
            idle_sends_not_inline: 0,
        }
    }

    /// The producer id and epoch new batches get.
    pub(crate) fn producer(&self) -> ProducerIdentity {
        self.producer
    }

    /// Adds a record to its partition: to the open batch, or (see the module docs) as a batch
    /// of its own for the caller to append inline. A queued record says whether the sender
    /// should be woken now: for a full batch, or a new batch (so the sender takes it, or learns
    /// its linger deadline). A record joining an open batch needs no wake-up: the sender was
    /// woken when the batch opened, and drains it (with every record added since) once the
    /// partition's batches in flight complete. One wake-up per batch, not per record, is what
    /// lets records batch up behind a busy sender with `linger_ms` 0.
    pub(crate) fn append(
        &mut self,
        shared: &Shared,
        to: Destination<'_>,
        record: &ProducerRecord,
        sizes: RecordBytes,
        timestamp: i64,
    ) -> Placed {
        let record_bytes = sizes.record;
        let batch_size = shared.config.batch_size.min(sizes.batch_limit);
        let idempotent = shared.config.idempotence == Idempotence::Enabled;
        let inline_start =
            // Nothing buffered means no partition has a batch open, queued, in flight or being
            // appended inline (each holds its records' bytes until it completes).
            (to.may_inline
                && shared.config.linger_ms == 0
                && self.buffered_bytes == 0
                && !self.closed
                && !self.epoch_bump_pending)
                .then(Instant::now);
        let inline = inline_start.is_some_and(|now| self.pays_for_inline(now));
        let TopicQueues { name, partitions } =
            topic_queues(&mut self.topics, to.topic_index, to.topic);
        if partitions.len() <= to.partition as usize {
            partitions.resize_with(to.partition as usize + 1, PartitionQueue::default);
        }
        let queue = &mut partitions[to.partition as usize];
        self.buffered_bytes += record_bytes;
        let spec = BatchSpec {
            producer_id: self.producer.id,
            producer_epoch: self.producer.epoch,
            base_sequence: if idempotent { queue.next_sequence } else { -1 },
            ..BatchSpec::default()
        };
        if idempotent {
            queue.next_sequence = sequence_after(queue.next_sequence, 1);
        }
        if let Some(started) = inline_start.filter(|_| inline) {
            let mut builder = BatchBuilder::with_capacity(spec, record_bytes);
            builder.append(
                timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                &record.headers,
            );
            let result = BatchResult::new(name.clone(), to.partition);
            queue.in_flight.push_back(Arc::clone(&result));
            queue.inline_busy = true;
            let slot = RecordSlot::new(Arc::clone(&result), 0, timestamp);
            let batch = ReadyBatch {
                topic: Arc::clone(name),
                topic_index: to.topic_index,
                partition: to.partition,
                batch: builder.finish(),
                result,
                bytes: record_bytes,
            };
            return Placed::Inline {
                slot,
                batch,
                started,
            };
        }
        if queue
            .open
            .as_ref()
            .is_some_and(|open| open.bytes + record_bytes > batch_size)
        {
            queue.seal(name, to.topic_index, to.partition);
        }
        // A new batch must wake the sender even when it lingers: an idle sender waits without
        // a deadline and learns when this batch is due only by draining it once.
        // The clock is read only for a new batch (or a record that could have gone inline): a
        // clock read per record is measurable.
        let opened = queue.open.is_none();
        let open = queue.open.get_or_insert_with(|| {
            let now = inline_start.unwrap_or_else(Instant::now);
            OpenBatch {
                // As Kafka's producer does: a whole batch_size buffer (or the record's size), so
                // that a batch never grows by copying.
                builder: BatchBuilder::with_capacity(spec, batch_size.max(record_bytes)),
                result: BatchResult::new(name.clone(), to.partition),
                bytes: 0,
                opened: now,
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
        let slot = RecordSlot::new(Arc::clone(&open.result), index, timestamp);
        let full = open.bytes >= batch_size;
        if full {
            queue.seal(name, to.topic_index, to.partition);
        }
        Placed::Queued {
            slot,
            wake: full || opened,
        }
    }

    /// Whether a record that found the producer idle at `now` goes inline: while the producer
    /// sits idle between records for at least as long as an inline append takes, on average.
    fn pays_for_inline(&mut self, now: Instant) -> bool {
        if let Some(idle_since) = self.idle_since {
            self.idle_before_send
                .add(nanos(now.saturating_duration_since(idle_since)));
        }
        let pays = match (self.idle_before_send.0, self.inline_cost.get()) {
            (Some(idle), Some(cost)) => idle >= cost,
            _ => true,
        };
        if pays || self.idle_sends_not_inline + 1 >= COST_PROBE_EVERY {
            self.idle_sends_not_inline = 0;
            true
        } else {
            self.idle_sends_not_inline += 1;
            false
        }
    }

    /// Records how the inline append of `batch`, begun at `started`, ended. Returns
    /// whether the sender must be woken: it has the batch to take over or to retry, records
    /// queued behind it, a close to finish, or an epoch to bump (which waits for this append).
    /// A failed batch of an idempotent producer, or one refused as out of sequence, asks for an
    /// epoch bump.
    pub(crate) fn finish_inline(
        &mut self,
        batch: ReadyBatch,
        started: Instant,
        outcome: InlineOutcome,
    ) -> bool {
        self.inline_cost.add(nanos(started.elapsed()));
        let idempotent = batch.batch.header().has_producer_id();
        self.epoch_bump_pending |= match &outcome {
            InlineOutcome::Done(outcome) => idempotent && outcome.is_err(),
            InlineOutcome::OutOfOrderSequence => true,
            InlineOutcome::Pending { .. } | InlineOutcome::Retry => false,
        };
        let queue = self.queue_mut(batch.topic_index, batch.partition);
        queue.inline_busy = false;
        let mut wake = queue.open.is_some() || !queue.ready.is_empty();
        match outcome {
            InlineOutcome::Done(outcome) => {
                batch.result.complete(outcome);
                self.finish_in_flight(&batch);
            }
            InlineOutcome::Pending { broker, pending } => {
                queue.handed_over = Some(HandedOver {
                    ready: batch,
                    broker,
                    pending,
                });
                wake = true;
            }
            InlineOutcome::Retry | InlineOutcome::OutOfOrderSequence => {
                let taken = queue.in_flight.pop_back();
                debug_assert!(taken.is_some_and(|taken| Arc::ptr_eq(&taken, &batch.result)));
                queue.ready.push_front(batch);
                wake = true;
            }
        }
        wake || self.closed || self.epoch_bump_pending
    }

    /// Whether no inline append is running or waiting for the sender to take it over: an
    /// epoch bump waits for that, as such an append may land under the old epoch.
    pub(crate) fn inline_appends_settled(&self) -> bool {
        self.queues()
            .all(|queue| !queue.inline_busy && queue.handed_over.is_none())
    }

    /// Makes `producer` (the bumped epoch, or a new producer id) the identity of new batches,
    /// and re-sequences every queued and open batch under it: each partition's from
    /// `first_sequences` (keyed by topic index and partition: the sequence after the batches
    /// the sender holds), else from 0, in order. Clears `epoch_bump_pending`.
    pub(crate) fn restart_sequences(
        &mut self,
        producer: ProducerIdentity,
        first_sequences: &HashMap<(usize, u32), i32>,
    ) {
        assert!(
            self.inline_appends_settled(),
            "an epoch bump waits for inline appends"
        );
        self.producer = producer;
        self.epoch_bump_pending = false;
        for (topic_index, topic) in self.topics.iter_mut().enumerate() {
            let Some(topic) = topic else { continue };
            for (partition, queue) in topic.partitions.iter_mut().enumerate() {
                let key = (topic_index, partition as u32);
                let first = first_sequences.get(&key).copied().unwrap_or(0);
                queue.restart_sequences(producer, first);
            }
        }
    }

    /// Closes every open batch so the sender takes it without waiting for the linger.
    pub(crate) fn seal_all(&mut self) {
        for (topic_index, topic) in self.topics.iter_mut().enumerate() {
            let Some(topic) = topic else { continue };
            for (partition, queue) in topic.partitions.iter_mut().enumerate() {
                queue.seal(&topic.name, topic_index, partition as u32);
            }
        }
    }

    /// Results of every batch not yet completed.
    pub(crate) fn pending_results(&self) -> Vec<Arc<BatchResult>> {
        let mut results = Vec::new();
        for queue in self.queues() {
            results.extend(queue.open.iter().map(|open| Arc::clone(&open.result)));
            results.extend(queue.ready.iter().map(|ready| Arc::clone(&ready.result)));
            results.extend(queue.in_flight.iter().cloned());
        }
        results
    }

    /// Takes the inline appends handed over and the due batches of each partition, oldest
    /// first, up to `max_in_flight` in flight per partition (see the module docs for when a
    /// batch that is not full is due). A partition being appended inline is left alone.
    pub(crate) fn drain(
        &mut self,
        linger: Duration,
        now: Instant,
        max_in_flight: usize,
    ) -> Drained {
        let mut drained = Drained {
            handed_over: Vec::new(),
            batches: Vec::new(),
            next_due: None,
            finished: false,
            epoch_bump_pending: self.epoch_bump_pending,
        };
        let mut idle = true;
        for (topic_index, topic) in self.topics.iter_mut().enumerate() {
            let Some(topic) = topic else { continue };
            for (partition, queue) in topic.partitions.iter_mut().enumerate() {
                idle &= queue.is_idle();
                if queue.inline_busy {
                    continue;
                }
                drained.handed_over.extend(queue.handed_over.take());
                if queue.ready.is_empty() && queue.in_flight.is_empty() {
                    if let Some(open) = &queue.open {
                        let due = open.opened + linger;
                        if self.closed || now >= due {
                            queue.seal(&topic.name, topic_index, partition as u32);
                        } else {
                            drained.next_due =
                                Some(drained.next_due.map_or(due, |next| next.min(due)));
                        }
                    }
                }
                while queue.in_flight.len() < max_in_flight {
                    let Some(ready) = queue.ready.pop_front() else {
                        break;
                    };
                    queue.in_flight.push_back(Arc::clone(&ready.result));
                    drained.batches.push(ready);
                }
            }
        }
        drained.finished = self.closed && idle;
        drained
    }

    /// Marks a partition's oldest batch in flight done and releases its buffer memory.
    pub(crate) fn finish_in_flight(&mut self, completed: &ReadyBatch) {
        let queue = self.queue_mut(completed.topic_index, completed.partition);
        let finished = queue.in_flight.pop_front();
        assert!(
            finished.is_some_and(|result| Arc::ptr_eq(&result, &completed.result)),
            "a partition's batches complete in the order they were taken"
        );
        self.buffered_bytes -= completed.bytes;
        if self.buffered_bytes == 0 {
            self.idle_since = Some(Instant::now());
        }
    }

    /// The queue of a partition that has a batch taken (so it exists).
    fn queue_mut(&mut self, topic_index: usize, partition: u32) -> &mut PartitionQueue {
        self.topics
            .get_mut(topic_index)
            .and_then(Option::as_mut)
            .and_then(|topic| topic.partitions.get_mut(partition as usize))
            .expect("a batch taken from the accumulator has a queue")
    }

    fn queues(&self) -> impl Iterator<Item = &PartitionQueue> {
        self.topics
            .iter()
            .flatten()
            .flat_map(|topic| topic.partitions.iter())
    }
}

impl PartitionQueue {
    /// Nothing open, queued, in flight or being appended inline.
    fn is_idle(&self) -> bool {
        self.open.is_none()
            && self.ready.is_empty()
            && self.in_flight.is_empty()
            && !self.inline_busy
            && self.handed_over.is_none()
    }

    /// Re-sequences the queued batches, then the open one, from `sequence` under `producer`.
    fn restart_sequences(&mut self, producer: ProducerIdentity, mut sequence: i32) {
        for ready in &mut self.ready {
            let records = ready.batch.header().records_count;
            ready.batch = ready
                .batch
                .with_producer_state(producer.id, producer.epoch, sequence);
            sequence = sequence_after(sequence, records);
        }
        if let Some(open) = &mut self.open {
            open.builder
                .set_producer_state(producer.id, producer.epoch, sequence);
            sequence = sequence_after(sequence, open.builder.len() as i32);
        }
        self.next_sequence = sequence;
    }

    fn seal(&mut self, topic: &Arc<str>, topic_index: usize, partition: u32) {
        if let Some(open) = self.open.take() {
            let batch = open.builder.finish();
            self.ready.push_back(ReadyBatch {
                topic: Arc::clone(topic),
                topic_index,
                partition,
                batch,
                result: open.result,
                bytes: open.bytes,
            });
        }
    }
}

/// The queues of the topic at `index`, made on its first record.
fn topic_queues<'a>(
    topics: &'a mut Vec<Option<TopicQueues>>,
    index: usize,
    name: &str,
) -> &'a mut TopicQueues {
    if topics.len() <= index {
        topics.resize_with(index + 1, || None);
    }
    topics[index].get_or_insert_with(|| TopicQueues {
        name: Arc::from(name),
        partitions: Vec::new(),
    })
}

/// The sequence number `records` records after `sequence`, with Kafka's wrap from `i32::MAX`
/// to 0.
pub(crate) fn sequence_after(sequence: i32, records: i32) -> i32 {
    let wrap = i64::from(i32::MAX) + 1;
    ((i64::from(sequence) + i64::from(records)) % wrap) as i32
}

/// The outcome of one batch, shared by its records' handles.
#[derive(Debug)]
pub(crate) struct BatchResult {
    topic: Arc<str>,
    partition: u32,
    outcome: Mutex<Option<Result<AppendResult, ProduceError>>>,
    done: Condvar,
}

impl BatchResult {
    fn new(topic: Arc<str>, partition: u32) -> Arc<BatchResult> {
        Arc::new(BatchResult {
            topic,
            partition,
            outcome: Mutex::new(None),
            done: Condvar::new(),
        })
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
    timestamp: i64,
}

impl RecordSlot {
    fn new(result: Arc<BatchResult>, index: u32, timestamp: i64) -> RecordSlot {
        RecordSlot {
            result,
            index,
            timestamp,
        }
    }

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
            topic: self.result.topic.to_string(),
            partition: self.result.partition,
            offset: Some(appended.base_offset + u64::from(self.index)),
            timestamp: appended.log_append_time.unwrap_or(self.timestamp),
        }))
    }

    pub(crate) fn is_done(&self) -> bool {
        self.result.outcome.lock().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: ProducerIdentity = ProducerIdentity { id: 7, epoch: 0 };
    const NEW: ProducerIdentity = ProducerIdentity { id: 7, epoch: 1 };

    fn builder(base_sequence: i32, records: usize) -> BatchBuilder {
        let mut builder = BatchBuilder::new(BatchSpec {
            producer_id: OLD.id,
            producer_epoch: OLD.epoch,
            base_sequence,
            ..BatchSpec::default()
        });
        for i in 0..records {
            builder.append(
                1_700_000_000_000,
                None,
                Some(format!("v{i}").as_bytes()),
                &[],
            );
        }
        builder
    }

    fn ready(base_sequence: i32, records: usize) -> ReadyBatch {
        let topic: Arc<str> = Arc::from("t");
        ReadyBatch {
            topic: Arc::clone(&topic),
            topic_index: 0,
            partition: 0,
            batch: builder(base_sequence, records).finish(),
            result: BatchResult::new(topic, 0),
            bytes: records,
        }
    }

    fn producer_state(batch: &RecordBatch) -> (i64, i16, i32) {
        let header = batch.header();
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
        )
    }

    #[test]
    fn sequences_wrap_from_i32_max_to_0() {
        assert_eq!(sequence_after(5, 0), 5);
        assert_eq!(sequence_after(5, 3), 8);
        assert_eq!(sequence_after(i32::MAX, 1), 0);
        assert_eq!(sequence_after(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn restarting_sequences_renumbers_queued_then_open_batches_in_order() {
        let mut queue = PartitionQueue {
            ready: VecDeque::from([ready(40, 2), ready(42, 3)]),
            open: Some(OpenBatch {
                builder: builder(45, 1),
                result: BatchResult::new(Arc::from("t"), 0),
                bytes: 1,
                opened: Instant::now(),
            }),
            next_sequence: 46,
            ..PartitionQueue::default()
        };
        // The sender holds batches of 4 records ahead of these: they start at 4.
        queue.restart_sequences(NEW, 4);
        let states: Vec<_> = queue
            .ready
            .iter()
            .map(|ready| producer_state(&ready.batch))
            .collect();
        assert_eq!(states, [(7, 1, 4), (7, 1, 6)]);
        let open = queue.open.take().expect("still open").builder.finish();
        assert_eq!(producer_state(&open), (7, 1, 9));
        assert_eq!(
            queue.next_sequence, 10,
            "the next record follows the open batch"
        );
        for ready in &queue.ready {
            RecordBatch::from_bytes(ready.batch.as_bytes().clone()).expect("a valid CRC");
        }
    }
}

//! The producer's sender thread: takes due batches from the accumulator and appends them on
//! their partitions' leaders, keeping up to `max_in_flight_per_partition` batches of a
//! partition appended while earlier ones replicate (Kafka's
//! `max.in.flight.requests.per.connection`). With `acks=All` each batch waits a replication
//! round trip; one batch at a time would leave the sender idle for most of it.
//!
//! Order and idempotence: a partition's batches are appended in sequence order and completed
//! in that order. When one fails with a retriable error (its leader moved, say), it and every
//! later batch of its partition go back to unsent, and are appended again in order once
//! nothing before them is pending and `retry_backoff_ms` has passed: a retry never overtakes
//! an earlier batch still pending on the old leader. An idempotent producer's retry carries the
//! same sequence, so a leader that already has a batch answers with its original offsets; it
//! remembers a producer's last [`PRODUCER_BATCHES_KEPT`] batches, which is why idempotence
//! allows at most that many in flight.
//!
//! ## Epoch bumps (Kafka's KIP-360)
//! When a batch of an idempotent producer fails for good (a non-retriable error, or retriable
//! ones until `delivery_timeout_ms`), its records complete with its error, and its sequence
//! numbers are a gap: the partition refuses every later batch as out of sequence. So the
//! sender bumps the producer's epoch, locally (same id, epoch + 1; a new id from the broker
//! should the epoch pass `i16::MAX`), and restarts every partition's sequences at 0, which a
//! partition accepts from a higher epoch. A batch refused as out of sequence asks for the
//! same and is not failed: it waits, and goes again re-sequenced.
//!
//! A batch may be re-sequenced only if it is not in the log: a copy under new sequence numbers
//! is not recognised as a retry, and would be appended a second time. So:
//! - A batch never appended, or one refused as out of sequence, is re-sequenced. A refusal
//!   means the partition lacks an earlier sequence, and so lacks this batch and every later
//!   one of the partition: each was first appended after this one, to the same leader, and a
//!   replica's log never holds a batch without the batches before it. (Nor does the refusal
//!   hide a batch that is in the log but forgotten: a partition remembers
//!   [`PRODUCER_BATCHES_KEPT`] batches per producer, and no more than that many of a
//!   partition are taken at once.)
//! - A batch that was appended (`may_be_in_log`) and whose fate is open, in flight or to be
//!   retried, keeps its sequence: it is retried under the old epoch until it completes, fails
//!   for good, or is refused as out of sequence. The bump waits for every such batch of every
//!   partition, and for any inline append; meanwhile no batch that is to be re-sequenced goes
//!   out, and no inline append starts.
//! - A batch that failed for good is never sent again, so whether it is in the log or not,
//!   it is there at most once.
//!
//! Order holds: the batches held for the bump are a partition's last unsent ones, and they are
//! re-sequenced in order, ahead of the batches still in the accumulator.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accumulator::{sequence_after, ProducerIdentity, ReadyBatch};
use super::producer::{Acks, ProduceError, Shared};
use super::router::{
    broker_gone, is_out_of_order_sequence, is_retriable, leadership_moved, Router,
};
use crate::broker::{Broker, BrokerError};
#[cfg(doc)]
use crate::partition::PRODUCER_BATCHES_KEPT;
use crate::partition::{AppendResult, Notifier};
use crate::replication::{AckLevel, PendingAppend, ReplicatedPartition};

/// How often the sender looks at appends in flight when nothing wakes it: a leadership change
/// moves no high watermark, and a deadline on a broker clock that is not the system's is only
/// seen by looking (as [`Broker::wait_append`] does).
const PENDING_POLL_MS: u64 = 10;
/// How long an idle sender waits before looking again; every event that gives it work (a new
/// or full batch, a flush, a close) wakes it sooner.
const IDLE_WAIT_MS: u64 = 1_000;

/// The sender thread's body: runs until the producer is closed and every batch has completed.
pub(crate) fn run_sender(shared: &Shared) {
    let mut sender = Sender {
        shared,
        router: Router::new(shared.broker.clone()),
        pipelines: HashMap::new(),
        epoch_bump: EpochBump::NotNeeded,
    };
    sender.run();
}

struct Sender<'a> {
    shared: &'a Shared,
    router: Router,
    /// The partitions with batches taken from the accumulator and not yet completed.
    pipelines: HashMap<(Arc<str>, u32), Pipeline>,
    /// Whether the producer's epoch is to be bumped (see the module docs); `Pending` exactly
    /// when the accumulator's `epoch_bump_pending` is set.
    epoch_bump: EpochBump,
}

/// Whether an idempotent producer must bump its epoch before the batches whose sequences
/// follow a gap may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EpochBump {
    NotNeeded,
    Pending,
}

/// One partition's batches in flight, oldest (lowest sequence) first. No appended batch
/// follows an unsent one.
#[derive(Default)]
struct Pipeline {
    batches: VecDeque<InFlight>,
    /// The leader replica whose high-watermark moves wake the sender (with `acks=All`).
    watched: Option<Arc<ReplicatedPartition>>,
    /// Set after a retriable failure: the unsent batches wait until then, and until nothing
    /// before them is pending.
    retry_at: Option<Instant>,
}

struct InFlight {
    ready: ReadyBatch,
    attempt: Attempt,
    /// `delivery_timeout_ms` after the sender took the batch: no retry starts later.
    deadline: Instant,
    /// A leader appended the batch under its current sequence numbers, and it may still be in
    /// the log: it must not be re-sequenced (see the module docs). Cleared when a refusal as
    /// out of sequence shows that it is not.
    may_be_in_log: bool,
}

enum Attempt {
    /// Not appended: new, or to be appended again after `last_error`.
    Unsent { last_error: Option<BrokerError> },
    /// Appended on `broker`'s replica, waiting for the acknowledgement `acks` asks for.
    Appended {
        broker: Broker,
        pending: PendingAppend,
    },
    /// Its outcome is known; it completes once the batches before it have.
    Done(Result<AppendResult, BrokerError>),
}

impl Sender<'_> {
    fn run(&mut self) {
        let shared = self.shared;
        let linger = Duration::from_millis(shared.config.linger_ms);
        let max_in_flight = shared.config.max_in_flight_per_partition;
        loop {
            // Reset before looking: a wake-up that comes while we look is kept for the wait.
            shared.wakeup.reset();
            let drained = shared
                .accumulator
                .lock()
                .drain(linger, Instant::now(), max_in_flight);
            if drained.epoch_bump_pending {
                // A failed inline append asked for it.
                self.epoch_bump = EpochBump::Pending;
            }
            if drained.finished {
                debug_assert!(self.pipelines.is_empty(), "finished with batches in flight");
                return;
            }
            let now = Instant::now();
            let deadline = now + Duration::from_millis(shared.config.delivery_timeout_ms);
            // Inline appends go ahead of their partition's batches taken in the same look: the
            // accumulator took no batch of a partition while it was being appended inline.
            for handed in drained.handed_over {
                let ready = handed.ready;
                let key = (Arc::clone(&ready.topic), ready.partition);
                let pipeline = self.pipelines.entry(key).or_default();
                if shared.config.acks == Acks::All {
                    if let Ok(local) = handed
                        .broker
                        .replicated_partition(&ready.topic, ready.partition)
                    {
                        pipeline.watch(local, &shared.wakeup);
                    }
                }
                pipeline.batches.push_back(InFlight {
                    ready,
                    attempt: Attempt::Appended {
                        broker: handed.broker,
                        pending: handed.pending,
                    },
                    deadline,
                    may_be_in_log: true,
                });
            }
            for ready in drained.batches {
                let key = (Arc::clone(&ready.topic), ready.partition);
                self.pipelines
                    .entry(key)
                    .or_default()
                    .batches
                    .push_back(InFlight {
                        ready,
                        attempt: Attempt::Unsent { last_error: None },
                        deadline,
                        may_be_in_log: false,
                    });
            }
            self.send_due(now);
            let completed = self.complete_done(now);
            let bumped = self.epoch_bump == EpochBump::Pending && self.bump_epoch_if_settled();
            if !completed && !bumped {
                self.wait(drained.next_due, now);
            }
        }
    }

    /// Appends every batch that may go now.
    fn send_due(&mut self, now: Instant) {
        let mut epoch_bump = self.epoch_bump;
        for pipeline in self.pipelines.values_mut() {
            if pipeline.send_due(self.shared, &mut self.router, now, epoch_bump)
                == EpochBump::Pending
            {
                epoch_bump = EpochBump::Pending;
            }
        }
        self.note_epoch_bump(epoch_bump);
    }

    /// Records that the epoch is to be bumped, here and in the accumulator (which then starts
    /// no inline append).
    fn note_epoch_bump(&mut self, epoch_bump: EpochBump) {
        if epoch_bump == EpochBump::Pending && self.epoch_bump == EpochBump::NotNeeded {
            self.epoch_bump = EpochBump::Pending;
            self.shared.accumulator.lock().epoch_bump_pending = true;
        }
    }

    /// Bumps the producer's epoch and re-sequences every batch not yet appended, if nothing of
    /// the producer may still land under the old epoch: no batch in flight or to be retried
    /// with its old sequences, no inline append. Returns whether it bumped.
    fn bump_epoch_if_settled(&mut self) -> bool {
        if self.pipelines.values().any(Pipeline::has_unsettled) {
            return false;
        }
        let current = self.shared.accumulator.lock().producer();
        let producer = match current.epoch.checked_add(1) {
            Some(epoch) => ProducerIdentity { epoch, ..current },
            // Kafka's producer too asks for a new id once the epoch is spent. Should the broker
            // fail to give one, the sender asks again the next time it looks.
            None => match self.shared.broker.init_producer_id() {
                Ok((id, epoch)) => ProducerIdentity { id, epoch },
                Err(_) => return false,
            },
        };
        let mut accumulator = self.shared.accumulator.lock();
        if !accumulator.inline_appends_settled() {
            // The inline append's end wakes the sender, which looks again.
            return false;
        }
        let mut first_sequences = HashMap::new();
        for pipeline in self.pipelines.values_mut() {
            pipeline.restart_sequences(producer, &mut first_sequences);
        }
        accumulator.restart_sequences(producer, &first_sequences);
        drop(accumulator);
        self.epoch_bump = EpochBump::NotNeeded;
        true
    }

    /// Completes the batches whose outcome is known, each partition's in order, and releases
    /// their buffer memory. Returns whether any completed.
    fn complete_done(&mut self, now: Instant) -> bool {
        let backoff = Duration::from_millis(self.shared.config.retry_backoff_ms);
        let mut completed = Vec::new();
        let mut epoch_bump = EpochBump::NotNeeded;
        self.pipelines.retain(|_, pipeline| {
            if pipeline.poll(&mut self.router, now, backoff, &mut completed) == EpochBump::Pending {
                epoch_bump = EpochBump::Pending;
            }
            if pipeline.batches.is_empty() {
                pipeline.unwatch(&self.shared.wakeup);
            }
            !pipeline.batches.is_empty()
        });
        self.note_epoch_bump(epoch_bump);
        if completed.is_empty() {
            return false;
        }
        let mut finished = Vec::with_capacity(completed.len());
        for (ready, outcome) in completed {
            ready.result.complete(outcome.map_err(ProduceError::from));
            finished.push(ready);
        }
        let mut accumulator = self.shared.accumulator.lock();
        for ready in &finished {
            accumulator.finish_in_flight(ready);
        }
        let room = self.shared.has_room_to_signal(accumulator.buffered_bytes);
        drop(accumulator);
        if room {
            self.shared.space.notify_all();
        }
        true
    }

    /// Sleeps until woken (a new or full batch, a flush, a close, a watched high watermark),
    /// the next lingering batch is due, a retry is due, or it is time to look at the appends
    /// in flight.
    fn wait(&self, next_due: Option<Instant>, now: Instant) {
        let mut until = now + Duration::from_millis(IDLE_WAIT_MS);
        for pipeline in self.pipelines.values() {
            if let Some(retry_at) = pipeline.retry_at {
                until = until.min(retry_at);
            }
            if pipeline.has_appended() {
                until = until.min(now + Duration::from_millis(PENDING_POLL_MS));
            }
        }
        if let Some(due) = next_due {
            until = until.min(due);
        }
        self.shared.wakeup.wait_until(until);
    }
}

impl Pipeline {
    /// Appends the unsent batches in order, while they may go: new batches at once if the
    /// batches pending before them are on the leader the router names, retries only when
    /// nothing before them is pending and the backoff has passed. Stops at the first retriable
    /// failure.
    ///
    /// An idempotent producer's batches also stop at one that fails for good or is refused as
    /// out of sequence, and return `Pending`: the epoch is to be bumped. While it is
    /// (`epoch_bump` is `Pending`), only batches that may be in the log go, under their old
    /// sequences; the others wait to be re-sequenced (see the module docs).
    ///
    /// A batch must never reach a leader before an earlier batch that may still land there:
    /// a leader with no state for this producer (one that took over before the earlier batch
    /// replicated to it) accepts any sequence, and the earlier batch would then be refused
    /// as out of order for good.
    fn send_due(
        &mut self,
        shared: &Shared,
        router: &mut Router,
        now: Instant,
        epoch_bump: EpochBump,
    ) -> EpochBump {
        let Some(first) = self.batches.iter().position(InFlight::is_unsent) else {
            return EpochBump::NotNeeded;
        };
        let pending_on =
            self.batches
                .iter()
                .take(first)
                .rev()
                .find_map(|batch| match &batch.attempt {
                    Attempt::Appended { broker, .. } => Some(broker.id()),
                    _ => None,
                });
        if let Some(pending_on) = pending_on {
            let ready = &self.batches[first].ready;
            if self.retry_at.is_some()
                || router.leader(&ready.topic, ready.partition).id() != pending_on
            {
                return EpochBump::NotNeeded;
            }
        }
        if self.retry_at.is_some_and(|retry_at| now < retry_at) {
            return EpochBump::NotNeeded;
        }
        self.retry_at = None;
        for index in first..self.batches.len() {
            let batch = &mut self.batches[index];
            let idempotent = batch.ready.batch.header().has_producer_id();
            let Attempt::Unsent { last_error } = &mut batch.attempt else {
                continue;
            };
            if epoch_bump == EpochBump::Pending && !batch.may_be_in_log {
                // Waits to be re-sequenced; so does every later batch (none may be in the log).
                return EpochBump::Pending;
            }
            // A batch that already failed retriably is not tried again past its deadline.
            if let Some(error) = last_error.take_if(|_| now >= batch.deadline) {
                batch.attempt = Attempt::Done(Err(error));
                if idempotent {
                    return EpochBump::Pending;
                }
                continue;
            }
            match append_once(shared, router, &batch.ready) {
                Ok((broker, pending)) => {
                    if shared.config.acks == Acks::All {
                        let (topic, partition) = (&batch.ready.topic, batch.ready.partition);
                        if let Ok(local) = broker.replicated_partition(topic, partition) {
                            self.watch(local, &shared.wakeup);
                        }
                    }
                    let batch = &mut self.batches[index];
                    batch.attempt = Attempt::Appended { broker, pending };
                    batch.may_be_in_log = true;
                }
                Err(error) if is_retriable(&error) => {
                    batch.attempt = Attempt::Unsent {
                        last_error: Some(error),
                    };
                    let backoff = Duration::from_millis(shared.config.retry_backoff_ms);
                    self.retry_at = Some(now + backoff);
                    return EpochBump::NotNeeded;
                }
                Err(error) if idempotent && is_out_of_order_sequence(&error) => {
                    batch.attempt = Attempt::Unsent {
                        last_error: Some(error),
                    };
                    // Neither this batch nor any later one is in the log (see the module
                    // docs); all later ones are unsent, as no appended batch follows an
                    // unsent one.
                    for later in self.batches.range_mut(index..) {
                        later.may_be_in_log = false;
                    }
                    return EpochBump::Pending;
                }
                Err(error) => {
                    batch.attempt = Attempt::Done(Err(error));
                    if idempotent {
                        return EpochBump::Pending;
                    }
                }
            }
        }
        EpochBump::NotNeeded
    }

    /// Moves the batches at the front whose outcome is known into `completed`, in order. A
    /// retriable failure sends the failed batch and every later one back to unsent. Returns
    /// `Pending` when a batch of an idempotent producer failed for good.
    fn poll(
        &mut self,
        router: &mut Router,
        now: Instant,
        backoff: Duration,
        completed: &mut Vec<(ReadyBatch, Result<AppendResult, BrokerError>)>,
    ) -> EpochBump {
        let mut epoch_bump = EpochBump::NotNeeded;
        while let Some(front) = self.batches.front_mut() {
            if let Attempt::Appended { broker, pending } = &front.attempt {
                let ready = &front.ready;
                // A crashed broker answers nothing, as a dead process would not: its pending
                // appends fail as over a dropped connection (they may yet survive on the next
                // leader, which answers their retries as duplicates).
                let polled = match broker.is_crashed() {
                    true => Some(Err(broker_gone())),
                    false => broker.poll_append(&ready.topic, ready.partition, pending),
                };
                let outcome = match polled {
                    None => return epoch_bump,
                    Some(outcome) => outcome.map(|()| pending.result),
                };
                let retry = outcome.as_ref().is_err_and(|error| {
                    if leadership_moved(error) {
                        router.invalidate(&ready.topic, ready.partition);
                    }
                    is_retriable(error) && now < front.deadline
                });
                if retry {
                    self.resend_from_front(outcome.err(), now + backoff);
                    return epoch_bump;
                }
                if outcome.is_err() && ready.batch.header().has_producer_id() {
                    epoch_bump = EpochBump::Pending;
                }
                front.attempt = Attempt::Done(outcome);
            }
            let Attempt::Done(_) = front.attempt else {
                return epoch_bump;
            };
            if let Some(InFlight {
                ready,
                attempt: Attempt::Done(outcome),
                ..
            }) = self.batches.pop_front()
            {
                completed.push((ready, outcome));
            }
        }
        epoch_bump
    }

    /// After the front batch failed retriably with `error`: it and every batch appended behind
    /// it are to be appended again, in order, from `retry_at`.
    fn resend_from_front(&mut self, error: Option<BrokerError>, retry_at: Instant) {
        let mut error = error;
        for batch in self.batches.iter_mut().filter(|batch| batch.is_appended()) {
            batch.attempt = Attempt::Unsent {
                last_error: error.take(),
            };
        }
        self.retry_at = Some(retry_at);
    }

    fn has_appended(&self) -> bool {
        self.batches.iter().any(InFlight::is_appended)
    }

    /// Whether a batch may still land under its current sequences: one in flight, or one that
    /// was appended and is to be retried.
    fn has_unsettled(&self) -> bool {
        self.batches
            .iter()
            .any(|batch| batch.is_appended() || (batch.is_unsent() && batch.may_be_in_log))
    }

    /// Re-sequences the unsent batches (none of which may be in the log) from 0 under
    /// `producer`, in order, and records in `first_sequences` the sequence the partition's
    /// next batch gets, by topic index and partition.
    fn restart_sequences(
        &mut self,
        producer: ProducerIdentity,
        first_sequences: &mut HashMap<(usize, u32), i32>,
    ) {
        let mut sequence = 0;
        for batch in self.batches.iter_mut().filter(|batch| batch.is_unsent()) {
            assert!(
                !batch.may_be_in_log,
                "re-sequencing a batch that may be in the log"
            );
            let ready = &mut batch.ready;
            let records = ready.batch.header().records_count;
            ready.batch = ready
                .batch
                .with_producer_state(producer.id, producer.epoch, sequence);
            sequence = sequence_after(sequence, records);
        }
        if let Some(batch) = self.batches.front() {
            first_sequences.insert((batch.ready.topic_index, batch.ready.partition), sequence);
        }
    }

    /// Makes high-watermark moves of `local` (the leader replica the partition's batches were
    /// appended to) wake the sender, instead of the replica it watched before.
    fn watch(&mut self, local: Arc<ReplicatedPartition>, wakeup: &Arc<Notifier>) {
        if self
            .watched
            .as_ref()
            .is_some_and(|watched| Arc::ptr_eq(watched, &local))
        {
            return;
        }
        self.unwatch(wakeup);
        local.replica().register_waiter(wakeup);
        self.watched = Some(local);
    }

    fn unwatch(&mut self, wakeup: &Arc<Notifier>) {
        if let Some(watched) = self.watched.take() {
            watched.replica().unregister_waiter(wakeup);
        }
    }
}

impl InFlight {
    fn is_unsent(&self) -> bool {
        matches!(self.attempt, Attempt::Unsent { .. })
    }

    fn is_appended(&self) -> bool {
        matches!(self.attempt, Attempt::Appended { .. })
    }
}

pub(crate) fn ack_level(acks: Acks) -> AckLevel {
    match acks {
        Acks::All => AckLevel::All,
        Acks::None | Acks::Leader => AckLevel::Leader,
    }
}

/// Appends `ready` on its partition's leader; returns that broker and the pending append.
fn append_once(
    shared: &Shared,
    router: &mut Router,
    ready: &ReadyBatch,
) -> Result<(Broker, PendingAppend), BrokerError> {
    let broker = router.leader(&ready.topic, ready.partition);
    let appended = broker.append(
        &ready.topic,
        ready.partition,
        &ready.batch,
        ack_level(shared.config.acks),
    );
    if appended.as_ref().is_err_and(leadership_moved) {
        router.invalidate(&ready.topic, ready.partition);
    }
    appended.map(|pending| (broker, pending))
}

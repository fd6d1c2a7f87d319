//! A deterministic simulation of a logbus cluster: brokers on `Drive::Manual`, one manual
//! clock, one in-memory coordinator and one in-process network, all stepped by a seeded
//! scheduler, with faults (crash with loss of unflushed bytes, restart, pause, network
//! partitions both ways and one way, slow followers, quick double failovers) and simulated
//! idempotent producers (acks=All, up to `max_in_flight` batches per partition in flight, with
//! the real producer's rules for retrying them in order) and consumers. After the faults heal, `check` compares the
//! final logs with everything the producers had acknowledged and the consumers had read.
//! A seed replays the same run: every choice comes from the seed, time from the manual clock.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use logbus::broker::{Broker, BrokerConfig, BrokerError, Drive, TopicConfig};
use logbus::coordinator::{Coordinator, ManualClock, MemoryCoordinator, MemoryCoordinatorConfig};
use logbus::log::FlushPolicy;
use logbus::record::{BatchBuilder, BatchSpec, RecordBatch};
use logbus::replication::{
    AckLevel, InProcessNetwork, PendingAppend, PlantedBugs, ReplicationConfig,
};

pub const TOPIC: &str = "events";
pub const TICK_MS: i64 = 10;
pub const SESSION_TIMEOUT_MS: u64 = 400;

/// A small, fast, seedable generator (xorshift64*), so runs replay exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len() as u64) as usize])
    }
}

/// How the cluster is built.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub brokers: i32,
    pub partitions: u32,
    pub replication_factor: u16,
    pub min_insync_replicas: u16,
    pub unclean_leader_election: bool,
    pub flush: FlushPolicy,
    pub producers: usize,
    /// Batches a producer keeps appended per partition before the first is acknowledged
    /// (the producer's `max_in_flight_per_partition`).
    pub max_in_flight: usize,
    /// A planted producer bug, off by default: new batches go to whoever leads now, even
    /// while earlier ones are pending on another broker (a leader with no state for the
    /// producer accepts any sequence, so they can land before the earlier ones).
    pub send_past_pending: bool,
    pub consumers: usize,
    pub bugs: PlantedBugs,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            brokers: 3,
            partitions: 2,
            replication_factor: 3,
            min_insync_replicas: 2,
            unclean_leader_election: false,
            flush: FlushPolicy::OsDecides,
            producers: 2,
            max_in_flight: logbus::partition::PRODUCER_BATCHES_KEPT,
            send_past_pending: false,
            consumers: 2,
            bugs: PlantedBugs::default(),
        }
    }
}

#[derive(Debug)]
enum NodeState {
    Up(Broker),
    /// Stopped stepping and cut off from everyone; its session was expired.
    Paused(Broker, i64),
    Crashed,
}

struct Node {
    id: i32,
    dir: tempfile::TempDir,
    state: NodeState,
    /// Ticks left during which the broker's fetches are skipped (a slow follower).
    slow_ticks: u32,
    /// Lost unflushed bytes in a crash and has not yet rejoined every ISR it belongs to.
    recovering: bool,
}

/// An acknowledged record: where the producer was told it landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub partition: u32,
    pub offset: u64,
    pub value: Vec<u8>,
    pub producer: usize,
}

/// A batch a producer took for a partition and has not had acknowledged.
#[derive(Debug)]
struct SimBatch {
    values: Vec<Vec<u8>>,
    sequence: i32,
    attempt: Attempt,
}

#[derive(Debug, Clone, Copy)]
enum Attempt {
    /// New, or to be appended again after a failure.
    Unsent,
    Appended {
        broker: i32,
        pending: PendingAppend,
    },
}

/// One partition's batches in flight, oldest first; no appended batch follows an unsent one.
#[derive(Debug, Default)]
struct Pipeline {
    batches: VecDeque<SimBatch>,
    /// Set by a failure: nothing is appended before this time, nor while a batch before the
    /// first unsent one is still pending (a retry never overtakes an earlier batch).
    retry_at: Option<i64>,
}

/// Whether a producer step may start new batches (not while the run settles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Producing {
    More,
    FinishOnly,
}

struct SimProducer {
    producer_id: i64,
    /// Per partition: the next sequence, and the batches in flight.
    next_sequence: HashMap<u32, i32>,
    pipelines: HashMap<u32, Pipeline>,
    counter: u64,
}

/// Each replica's records, by broker.
type ReplicaLogs = Vec<(i32, Vec<(u64, Vec<u8>)>)>;

struct SimConsumer {
    /// Per partition: next offset to read.
    positions: HashMap<u32, u64>,
}

/// What a run found. Every count must be 0 for a correct system.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub acknowledged: usize,
    pub consumed: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub reordered: usize,
    pub divergent: usize,
    pub bad_reads: usize,
    pub leaders_per_epoch_violations: usize,
    pub unclean_elections: usize,
    pub not_settled: bool,
    /// The most batches one producer had appended and unacknowledged on one partition.
    pub most_in_flight: usize,
    pub notes: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.divergent == 0
            && self.bad_reads == 0
            && self.leaders_per_epoch_violations == 0
            && !self.not_settled
    }
}

pub struct Sim {
    pub seed: u64,
    pub rng: Rng,
    pub config: SimConfig,
    pub clock: Arc<ManualClock>,
    pub coordinator: Arc<MemoryCoordinator>,
    pub network: Arc<InProcessNetwork>,
    nodes: Vec<Node>,
    producers: Vec<SimProducer>,
    consumers: Vec<SimConsumer>,
    pub acked: Vec<Acked>,
    /// The most batches one producer had appended and unacknowledged on one partition.
    most_in_flight: usize,
    /// (partition, offset) -> value, as consumers read them.
    reads: Vec<(u32, u64, Vec<u8>)>,
    /// (partition, epoch) -> brokers seen leading it.
    leaders_seen: BTreeMap<(u32, i32), BTreeSet<i32>>,
    pub log: Vec<String>,
}

impl Sim {
    pub fn new(seed: u64, config: SimConfig) -> Sim {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let coordinator = Arc::new(MemoryCoordinator::with_clock(
            Arc::clone(&clock) as _,
            MemoryCoordinatorConfig {
                tick_ms: 50,
                ..MemoryCoordinatorConfig::default()
            },
        ));
        let mut sim = Sim {
            seed,
            rng: Rng::new(seed),
            config,
            clock,
            coordinator,
            network: {
                let network = InProcessNetwork::new();
                network.seed_drops(seed);
                network
            },
            nodes: Vec::new(),
            producers: Vec::new(),
            consumers: Vec::new(),
            acked: Vec::new(),
            most_in_flight: 0,
            reads: Vec::new(),
            leaders_seen: BTreeMap::new(),
            log: Vec::new(),
        };
        for id in 0..config.brokers {
            let dir = sim_dir();
            let broker = sim.open_broker(id, dir.path());
            sim.nodes.push(Node {
                id,
                dir,
                state: NodeState::Up(broker),
                slow_ticks: 0,
                recovering: false,
            });
        }
        for _ in 0..3 {
            sim.step_brokers();
        }
        let topic = TopicConfig {
            partitions: config.partitions,
            replication_factor: config.replication_factor,
            min_insync_replicas: config.min_insync_replicas,
            unclean_leader_election: config.unclean_leader_election,
            flush: config.flush,
            ..TopicConfig::default()
        };
        sim.broker(0)
            .expect("broker 0 is up")
            .create_topic(TOPIC, topic)
            .expect("create topic");
        for _ in 0..5 {
            sim.step_brokers();
        }
        for _ in 0..config.producers {
            let (producer_id, _) = sim
                .broker(0)
                .expect("broker 0 is up")
                .init_producer_id()
                .expect("producer id");
            sim.producers.push(SimProducer {
                producer_id,
                next_sequence: HashMap::new(),
                pipelines: HashMap::new(),
                counter: 0,
            });
        }
        for _ in 0..config.consumers {
            sim.consumers.push(SimConsumer {
                positions: HashMap::new(),
            });
        }
        sim
    }

    fn broker_config(&self, id: i32) -> BrokerConfig {
        BrokerConfig {
            broker_id: id,
            clock: Arc::clone(&self.clock) as _,
            maintenance_interval_ms: None,
            coordinator: Some(Arc::clone(&self.coordinator) as Arc<dyn Coordinator>),
            network: Some(Arc::clone(&self.network)),
            transport: None,
            replication: ReplicationConfig {
                replica_lag_time_max_ms: 200,
                replica_fetch_wait_max_ms: 0,
                request_timeout_ms: 300,
                session_timeout_ms: SESSION_TIMEOUT_MS,
                high_watermark_checkpoint_interval_ms: 50,
                planted_bugs: self.config.bugs,
                ..ReplicationConfig::default()
            },
            drive: Drive::Manual,
            advertised_listener: None,
        }
    }

    fn open_broker(&self, id: i32, dir: &std::path::Path) -> Broker {
        Broker::open_with(dir, self.broker_config(id)).expect("open broker")
    }

    pub fn broker(&self, id: i32) -> Option<Broker> {
        match &self.nodes.get(id as usize)?.state {
            NodeState::Up(broker) => Some(broker.clone()),
            _ => None,
        }
    }

    fn up_ids(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|node| matches!(node.state, NodeState::Up(_)))
            .map(|node| node.id)
            .collect()
    }

    /// One tick: time moves, the coordinator expires sessions, brokers step in a seeded order
    /// (slow ones skip their fetches), clients act, and leadership is recorded.
    pub fn tick(&mut self) {
        self.clock.advance_ms(TICK_MS);
        self.coordinator.tick();
        self.step_brokers();
        self.step_producers();
        self.step_consumers();
        self.record_leaders();
    }

    fn step_brokers(&mut self) {
        let mut order = self.up_ids();
        // A seeded shuffle, so interleavings vary by seed and replay by seed.
        for i in (1..order.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        for id in order {
            let node = &mut self.nodes[id as usize];
            let NodeState::Up(broker) = &node.state else {
                continue;
            };
            let manager = broker.replication();
            let _ = manager.step_control();
            if node.slow_ticks > 0 {
                node.slow_ticks -= 1;
                continue;
            }
            for leader in manager.followed_leaders() {
                let _ = manager.fetch_round(leader, 0);
            }
        }
    }

    fn leader_broker(&self, partition: u32) -> Option<(i32, Broker)> {
        // Clients find the leader as a real client does: by asking a live broker, which reads
        // the coordinator.
        let asked = self.up_ids().first().copied()?;
        let leader = self.broker(asked)?.leader_of(TOPIC, partition)?;
        Some((leader, self.broker(leader)?))
    }

    fn step_producers(&mut self) {
        let now = self.clock.now_ms_i64();
        for index in 0..self.producers.len() {
            for partition in 0..self.config.partitions {
                self.step_producer(index, partition, now, Producing::More);
            }
        }
    }

    /// A producer's step on one partition, as the real producer's sender does it: maybe start
    /// a batch (up to `max_in_flight`), append what may go, then take acknowledgements in
    /// order; a failure sends the failed batch and every later one back to unsent.
    fn step_producer(&mut self, index: usize, partition: u32, now: i64, producing: Producing) {
        let in_flight = self.producers[index]
            .pipelines
            .get(&partition)
            .map_or(0, |pipeline| pipeline.batches.len());
        if producing == Producing::More
            && in_flight < self.config.max_in_flight
            && self.rng.chance(60)
        {
            self.start_batch(index, partition);
        }
        self.send_due(index, partition, now);
        self.take_acknowledged(index, partition, now);
        let producer = &mut self.producers[index];
        if producer
            .pipelines
            .get(&partition)
            .is_some_and(|pipeline| pipeline.batches.is_empty())
        {
            producer.pipelines.remove(&partition);
        }
    }

    fn start_batch(&mut self, index: usize, partition: u32) {
        let count = 1 + self.rng.below(3) as usize;
        let producer = &mut self.producers[index];
        let sequence = *producer.next_sequence.entry(partition).or_insert(0);
        let values: Vec<Vec<u8>> = (0..count)
            .map(|_| {
                producer.counter += 1;
                format!("p{index}-{partition}-{}", producer.counter).into_bytes()
            })
            .collect();
        producer
            .next_sequence
            .insert(partition, sequence + count as i32);
        producer
            .pipelines
            .entry(partition)
            .or_default()
            .batches
            .push_back(SimBatch {
                values,
                sequence,
                attempt: Attempt::Unsent,
            });
    }

    /// Appends the unsent batches in order (the same sequences as before on a retry) on whoever
    /// leads now; stops at the first failure. New batches go behind pending ones only on the
    /// broker those are pending on: a leader that has no state for the producer accepts any
    /// sequence, so a batch must not reach a new leader before the earlier ones may have.
    fn send_due(&mut self, index: usize, partition: u32, now: i64) {
        let Some((first, pending_on)) = self.first_due(index, partition, now) else {
            return;
        };
        let leader = self.leader_broker(partition);
        if pending_on.is_some()
            && leader.as_ref().map(|(id, _)| *id) != pending_on
            && !self.config.send_past_pending
        {
            return;
        }
        let producer = &mut self.producers[index];
        let producer_id = producer.producer_id;
        let pipeline = producer
            .pipelines
            .get_mut(&partition)
            .expect("first_due found it");
        let Some((leader, broker)) = leader else {
            pipeline.retry_at = Some(now + 3 * TICK_MS);
            return;
        };
        pipeline.retry_at = None;
        for batch in pipeline.batches.iter_mut().skip(first) {
            let built = build_batch(producer_id, batch.sequence, &batch.values, now);
            match broker.append(TOPIC, partition, &built, AckLevel::All) {
                Ok(pending) => {
                    batch.attempt = Attempt::Appended {
                        broker: leader,
                        pending,
                    }
                }
                Err(_) => {
                    pipeline.retry_at = Some(now + 3 * TICK_MS);
                    break;
                }
            }
        }
        let appended = pipeline
            .batches
            .iter()
            .filter(|batch| matches!(batch.attempt, Attempt::Appended { .. }))
            .count();
        self.most_in_flight = self.most_in_flight.max(appended);
    }

    /// The first unsent batch of the partition if it may be appended now, and the broker the
    /// batches before it are pending on, if any. A new batch may go at once; after a failure,
    /// only once the backoff passed and nothing before it is pending.
    fn first_due(&self, index: usize, partition: u32, now: i64) -> Option<(usize, Option<i32>)> {
        let pipeline = self.producers[index].pipelines.get(&partition)?;
        let first = pipeline
            .batches
            .iter()
            .position(|batch| matches!(batch.attempt, Attempt::Unsent))?;
        let pending_on =
            pipeline
                .batches
                .iter()
                .take(first)
                .rev()
                .find_map(|batch| match batch.attempt {
                    Attempt::Appended { broker, .. } => Some(broker),
                    Attempt::Unsent => None,
                });
        match pipeline.retry_at {
            Some(_) if pending_on.is_some() => None,
            Some(retry_at) if now < retry_at => None,
            _ => Some((first, pending_on)),
        }
    }

    /// Records the acknowledged batches at the front of the pipeline, in order.
    fn take_acknowledged(&mut self, index: usize, partition: u32, now: i64) {
        loop {
            let Some(pipeline) = self.producers[index].pipelines.get(&partition) else {
                return;
            };
            let Some(front) = pipeline.batches.front() else {
                return;
            };
            let Attempt::Appended {
                broker: id,
                pending,
            } = front.attempt
            else {
                return;
            };
            let outcome = match self.broker(id) {
                Some(broker) => broker.poll_append(TOPIC, partition, &pending),
                // Crashed or paused under us: the client's request times out.
                None => Some(Err(BrokerError::Closed)),
            };
            let pipeline = self.producers[index]
                .pipelines
                .get_mut(&partition)
                .expect("looked up above");
            match outcome {
                None => return,
                Some(Ok(())) => {
                    let batch = pipeline.batches.pop_front().expect("looked up above");
                    for (i, value) in batch.values.into_iter().enumerate() {
                        self.acked.push(Acked {
                            partition,
                            offset: pending.result.base_offset + i as u64,
                            value,
                            producer: index,
                        });
                    }
                }
                Some(Err(_)) => {
                    // Retry it and every batch behind it, in order, with the same sequences.
                    for batch in pipeline.batches.iter_mut() {
                        batch.attempt = Attempt::Unsent;
                    }
                    pipeline.retry_at = Some(now + 3 * TICK_MS);
                    return;
                }
            }
        }
    }

    fn step_consumers(&mut self) {
        for index in 0..self.consumers.len() {
            for partition in 0..self.config.partitions {
                if !self.rng.chance(50) {
                    continue;
                }
                let Some((_, broker)) = self.leader_broker(partition) else {
                    continue;
                };
                let Ok(replica) = broker.replica(TOPIC, partition) else {
                    continue;
                };
                let position = *self.consumers[index]
                    .positions
                    .get(&partition)
                    .unwrap_or(&0);
                let Ok(read) = replica.read_committed(position, 64 << 10) else {
                    continue;
                };
                let mut next = position;
                for batch in read.batches() {
                    let Ok(batch) = batch else { break };
                    let Ok(records) = batch.records() else { break };
                    for record in records {
                        let Ok(record) = record else { break };
                        let offset = record.offset as u64;
                        if offset >= next {
                            let value = record.value.map(|v| v.to_vec()).unwrap_or_default();
                            self.reads.push((partition, offset, value));
                            next = offset + 1;
                        }
                    }
                }
                self.consumers[index].positions.insert(partition, next);
            }
        }
    }

    fn record_leaders(&mut self) {
        for id in self.up_ids() {
            let Some(broker) = self.broker(id) else {
                continue;
            };
            for partition in 0..self.config.partitions {
                if let Ok(local) = broker.replicated_partition(TOPIC, partition) {
                    if local.is_leader() {
                        let (_, epoch) = local.leader();
                        self.leaders_seen
                            .entry((partition, epoch))
                            .or_default()
                            .insert(id);
                    }
                }
            }
        }
    }

    // ---- faults ----

    /// Crashes broker `id`: its logs stop, its session expires, and each active segment is
    /// cut to its durable bytes plus a seeded share of the rest (possibly mid-batch).
    pub fn crash(&mut self, id: i32) {
        if !matches!(self.nodes[id as usize].state, NodeState::Up(_)) {
            return;
        }
        let NodeState::Up(broker) =
            std::mem::replace(&mut self.nodes[id as usize].state, NodeState::Crashed)
        else {
            return;
        };
        self.log
            .push(format!("t={} crash {id}", self.clock.now_ms_i64()));
        let images = broker.simulate_crash();
        let session = broker.replication().session().id();
        let _ = self.coordinator.expire_session(session);
        drop(broker);
        let mut lost_any = false;
        for image in images {
            let unflushed = image.written_bytes.saturating_sub(image.durable_bytes);
            let keep = image.durable_bytes + self.rng.below(unflushed + 1);
            lost_any |= keep < image.written_bytes;
            if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&image.path) {
                let _ = file.set_len(keep);
            }
        }
        self.nodes[id as usize].recovering = lost_any;
    }

    pub fn restart(&mut self, id: i32) {
        if !matches!(self.nodes[id as usize].state, NodeState::Crashed) {
            return;
        }
        self.log
            .push(format!("t={} restart {id}", self.clock.now_ms_i64()));
        let broker = Broker::open_with(self.nodes[id as usize].dir.path(), self.broker_config(id));
        match broker {
            Ok(broker) => self.nodes[id as usize].state = NodeState::Up(broker),
            Err(error) => self.log.push(format!("restart {id} failed: {error}")),
        }
    }

    /// Pauses broker `id` (as SIGSTOP would): it stops stepping, nobody reaches it, and its
    /// session expires after the timeout.
    pub fn pause(&mut self, id: i32) {
        if !matches!(self.nodes[id as usize].state, NodeState::Up(_)) {
            return;
        }
        let NodeState::Up(broker) =
            std::mem::replace(&mut self.nodes[id as usize].state, NodeState::Crashed)
        else {
            return;
        };
        self.log
            .push(format!("t={} pause {id}", self.clock.now_ms_i64()));
        broker.replication().session().stop_heartbeat();
        for other in 0..self.config.brokers {
            if other != id {
                self.network.partition(id, other);
            }
        }
        self.nodes[id as usize].state = NodeState::Paused(broker, self.clock.now_ms_i64());
    }

    pub fn resume(&mut self, id: i32) {
        if !matches!(self.nodes[id as usize].state, NodeState::Paused(..)) {
            return;
        }
        let NodeState::Paused(broker, _) =
            std::mem::replace(&mut self.nodes[id as usize].state, NodeState::Crashed)
        else {
            return;
        };
        self.log
            .push(format!("t={} resume {id}", self.clock.now_ms_i64()));
        for other in 0..self.config.brokers {
            if other != id {
                self.network.heal_link(id, other);
                self.network.heal_link(other, id);
            }
        }
        self.nodes[id as usize].state = NodeState::Up(broker);
    }

    pub fn partition_both_ways(&mut self, a: i32, b: i32) {
        self.log
            .push(format!("t={} partition {a}<->{b}", self.clock.now_ms_i64()));
        self.network.partition(a, b);
    }

    pub fn partition_one_way(&mut self, from: i32, to: i32) {
        self.log
            .push(format!("t={} cut {from}->{to}", self.clock.now_ms_i64()));
        self.network.cut(from, to);
    }

    pub fn slow(&mut self, id: i32, ticks: u32) {
        self.log.push(format!(
            "t={} slow {id} for {ticks}",
            self.clock.now_ms_i64()
        ));
        self.nodes[id as usize].slow_ticks = ticks;
    }

    /// The current leader of `partition`, as the coordinator says.
    pub fn leader(&self, partition: u32) -> Option<i32> {
        self.leader_broker(partition).map(|(id, _)| id)
    }

    fn down_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|node| !matches!(node.state, NodeState::Up(_)) || node.recovering)
            .count()
    }

    /// Whether crashing `id` (losing its unflushed bytes) keeps a broker that never lost data
    /// in every ISR. Kafka promises nothing when every in-sync replica loses unflushed data at
    /// once (KIP-966), and with `FlushPolicy::OsDecides` neither does logbus; the schedule
    /// keeps to the promise, and `EveryAppend` seeds crash freely.
    fn crash_allowed(&mut self, id: i32) -> bool {
        if self.config.flush == FlushPolicy::EveryAppend {
            return true;
        }
        self.refresh_recovering();
        let Some(session_broker) = self.up_ids().into_iter().find(|&b| b != id) else {
            return false;
        };
        let Some(broker) = self.broker(session_broker) else {
            return false;
        };
        let session = broker.replication().session();
        (0..self.config.partitions).all(|partition| {
            let Ok(Some(state)) =
                logbus::replication::read_state(session.as_ref(), TOPIC, partition)
            else {
                return false;
            };
            state.isr.iter().any(|&member| {
                member != id
                    && self.is_current_member(&state, member)
                    && self.nodes.get(member as usize).is_some_and(|node| {
                        !node.recovering && !matches!(node.state, NodeState::Crashed)
                    })
            })
        })
    }

    /// Whether `member` is in `state`'s ISR under the registration it has now (a broker that
    /// restarted is a new registration, whatever the state still says).
    fn is_current_member(&self, state: &logbus::replication::PartitionState, member: i32) -> bool {
        let current = match self.nodes.get(member as usize).map(|node| &node.state) {
            Some(NodeState::Up(broker)) | Some(NodeState::Paused(broker, _)) => {
                broker.replication().broker_epoch()
            }
            _ => return false,
        };
        state
            .member_epoch(member)
            .is_some_and(|recorded| recorded == current)
    }

    /// A recovering broker is whole again once it is in the ISR of every partition it holds.
    fn refresh_recovering(&mut self) {
        let Some(asker) = self.up_ids().first().copied() else {
            return;
        };
        let Some(broker) = self.broker(asker) else {
            return;
        };
        let session = broker.replication().session();
        for node in &mut self.nodes {
            if !node.recovering || !matches!(node.state, NodeState::Up(_)) {
                continue;
            }
            let in_all = (0..self.config.partitions).all(|partition| {
                logbus::replication::read_state(session.as_ref(), TOPIC, partition)
                    .ok()
                    .flatten()
                    .is_some_and(|state| {
                        let current = match &node.state {
                            NodeState::Up(broker) => broker.replication().broker_epoch(),
                            _ => return false,
                        };
                        state.member_epoch(node.id) == Some(current)
                    })
            });
            if in_all {
                node.recovering = false;
            }
        }
    }

    /// One seeded fault, or a healing action, chosen from the cluster's state.
    pub fn random_fault(&mut self) {
        self.refresh_recovering();
        let ids: Vec<i32> = (0..self.config.brokers).collect();
        let up = self.up_ids();
        let crashed: Vec<i32> = self
            .nodes
            .iter()
            .filter(|node| matches!(node.state, NodeState::Crashed))
            .map(|node| node.id)
            .collect();
        let paused: Vec<i32> = self
            .nodes
            .iter()
            .filter(|node| matches!(node.state, NodeState::Paused(..)))
            .map(|node| node.id)
            .collect();
        let max_down = (self.config.brokers as usize).saturating_sub(1);
        match self.rng.below(10) {
            0 | 1 if self.down_count() < max_down => {
                if let Some(id) = self.rng.pick(&up) {
                    if self.crash_allowed(id) {
                        self.crash(id);
                    }
                }
            }
            2 => {
                // Two failovers in quick succession: crash the leader, then the next one.
                if self.down_count() + 2 <= max_down + 1 {
                    if let Some(leader) = self.leader(0) {
                        if self.crash_allowed(leader) {
                            self.crash(leader);
                            // The second failover comes as soon as the first is done.
                            for _ in 0..(SESSION_TIMEOUT_MS as i64 / TICK_MS + 5) {
                                self.tick();
                                if self.leader(0).is_some_and(|next| next != leader) {
                                    break;
                                }
                            }
                            if let Some(next) = self.leader(0).filter(|&next| next != leader) {
                                if self.down_count() < max_down && self.crash_allowed(next) {
                                    self.crash(next);
                                }
                            }
                        }
                    }
                }
            }
            3 if self.down_count() < max_down => {
                if let Some(id) = self.rng.pick(&up) {
                    self.pause(id);
                }
            }
            4 => {
                let a = self.rng.pick(&ids).unwrap_or(0);
                let b = self.rng.pick(&ids).unwrap_or(0);
                if a != b {
                    match self.rng.below(3) {
                        0 => self.partition_both_ways(a, b),
                        1 => self.partition_one_way(a, b),
                        _ => {
                            let percent = 10 + self.rng.below(60) as u8;
                            self.log.push(format!(
                                "t={} lossy {a}->{b} {percent}%",
                                self.clock.now_ms_i64()
                            ));
                            self.network.set_drop_percent(a, b, percent);
                        }
                    }
                }
            }
            5 => {
                if let Some(id) = self.rng.pick(&up) {
                    let ticks = 5 + self.rng.below(40) as u32;
                    self.slow(id, ticks);
                }
            }
            6 | 7 => {
                if let Some(id) = self.rng.pick(&crashed) {
                    self.restart(id);
                } else if let Some(id) = self.rng.pick(&paused) {
                    self.resume(id);
                }
            }
            _ => {
                self.log
                    .push(format!("t={} heal network", self.clock.now_ms_i64()));
                self.heal_network();
            }
        }
    }

    fn heal_network(&mut self) {
        self.network.heal();
        let paused: Vec<i32> = self
            .nodes
            .iter()
            .filter(|node| matches!(node.state, NodeState::Paused(..)))
            .map(|node| node.id)
            .collect();
        for id in paused {
            for other in 0..self.config.brokers {
                if other != id {
                    self.network.partition(id, other);
                }
            }
        }
    }

    /// Ends every fault: restarts, resumes, heals; then runs until replicas agree (or gives up).
    pub fn heal_and_settle(&mut self, max_ticks: u32) -> bool {
        for id in 0..self.config.brokers {
            self.restart(id);
            self.resume(id);
            self.nodes[id as usize].slow_ticks = 0;
        }
        self.network.heal();
        // Producers finish what they have in flight, and start nothing new.
        for _ in 0..max_ticks {
            self.clock.advance_ms(TICK_MS);
            self.coordinator.tick();
            self.step_brokers();
            self.finish_producers();
            self.record_leaders();
            if self.settled() {
                return true;
            }
        }
        false
    }

    fn finish_producers(&mut self) {
        let now = self.clock.now_ms_i64();
        for index in 0..self.producers.len() {
            for partition in 0..self.config.partitions {
                self.step_producer(index, partition, now, Producing::FinishOnly);
            }
        }
    }

    /// Every partition has a leader, its ISR is every replica, no producer has a batch in
    /// flight, and every replica's log end equals the leader's high watermark.
    fn settled(&self) -> bool {
        if self
            .producers
            .iter()
            .any(|producer| !producer.pipelines.is_empty())
        {
            return false;
        }
        (0..self.config.partitions).all(|partition| {
            let Some((_, leader)) = self.leader_broker(partition) else {
                return false;
            };
            let Ok(local) = leader.replicated_partition(TOPIC, partition) else {
                return false;
            };
            if local.isr().len() != usize::from(self.config.replication_factor) {
                return false;
            }
            let high_watermark = local.replica().high_watermark();
            self.up_ids().iter().all(|&id| {
                self.broker(id)
                    .and_then(|broker| broker.replica(TOPIC, partition).ok())
                    .is_none_or(|replica| {
                        replica.log().log_end_offset() == high_watermark
                            && replica.high_watermark() == high_watermark
                    })
            })
        })
    }

    /// Checks the run: acknowledged records present once at their offsets in produce order,
    /// replicas identical, consumers' reads matching the final log, one leader per epoch.
    pub fn check(&self, settled: bool) -> Report {
        let mut report = Report {
            acknowledged: self.acked.len(),
            consumed: self.reads.len(),
            not_settled: !settled,
            most_in_flight: self.most_in_flight,
            ..Report::default()
        };
        for (partition, epoch) in self
            .leaders_seen
            .iter()
            .filter(|(_, who)| who.len() > 1)
            .map(|(key, _)| *key)
        {
            report.leaders_per_epoch_violations += 1;
            report.notes.push(format!(
                "partition {partition} epoch {epoch} led by {:?}",
                self.leaders_seen[&(partition, epoch)]
            ));
        }
        for partition in 0..self.config.partitions {
            let logs: ReplicaLogs = self
                .up_ids()
                .into_iter()
                .filter_map(|id| {
                    let replica = self.broker(id)?.replica(TOPIC, partition).ok()?;
                    Some((id, read_all(&replica)))
                })
                .collect();
            let Some(reference) = self
                .leader(partition)
                .and_then(|leader| logs.iter().find(|(id, _)| *id == leader))
                .or_else(|| logs.first())
                .map(|(_, log)| log.clone())
            else {
                report
                    .notes
                    .push(format!("partition {partition}: no replica to check"));
                report.not_settled = true;
                continue;
            };
            for (id, log) in &logs {
                if *log != reference {
                    report.divergent += 1;
                    report.notes.push(format!(
                        "partition {partition}: broker {id} has {} records, leader {}",
                        log.len(),
                        reference.len()
                    ));
                }
            }
            let by_offset: BTreeMap<u64, &Vec<u8>> =
                reference.iter().map(|(o, v)| (*o, v)).collect();
            let mut offsets_of: HashMap<&Vec<u8>, usize> = HashMap::new();
            for (_, value) in &reference {
                *offsets_of.entry(value).or_default() += 1;
            }
            report.duplicated += offsets_of.values().filter(|&&n| n > 1).count();
            for acked in self.acked.iter().filter(|a| a.partition == partition) {
                if by_offset.get(&acked.offset) != Some(&&acked.value) {
                    report.lost += 1;
                    if report.notes.len() < 20 {
                        report.notes.push(format!(
                            "partition {partition}: acked {:?} at {} missing",
                            String::from_utf8_lossy(&acked.value),
                            acked.offset
                        ));
                    }
                }
            }
            // Produce order: a producer's values on a partition carry increasing counters.
            let mut last_counter: HashMap<String, u64> = HashMap::new();
            for (_, value) in &reference {
                let text = String::from_utf8_lossy(value);
                let mut parts = text.rsplitn(2, '-');
                let counter: u64 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
                let who = parts.next().unwrap_or("").to_owned();
                if let Some(&previous) = last_counter.get(&who) {
                    if counter <= previous {
                        report.reordered += 1;
                    }
                }
                last_counter.insert(who, counter);
            }
            for (read_partition, offset, value) in &self.reads {
                if *read_partition == partition && by_offset.get(offset) != Some(&value) {
                    report.bad_reads += 1;
                    if report.notes.len() < 20 {
                        report.notes.push(format!(
                            "partition {partition}: read {:?} at {offset}, final log has {:?}",
                            String::from_utf8_lossy(value),
                            by_offset.get(offset).map(|v| String::from_utf8_lossy(v))
                        ));
                    }
                }
            }
        }
        for id in self.up_ids() {
            if let Some(broker) = self.broker(id) {
                report.unclean_elections += broker
                    .replication()
                    .elections()
                    .iter()
                    .filter(|election| election.kind == logbus::replication::ElectionKind::Unclean)
                    .count();
            }
        }
        report
    }
}

trait NowMs {
    fn now_ms_i64(&self) -> i64;
}

impl NowMs for ManualClock {
    fn now_ms_i64(&self) -> i64 {
        logbus::clock::Clock::now_ms(self)
    }
}

pub fn build_batch(
    producer_id: i64,
    sequence: i32,
    values: &[Vec<u8>],
    now_ms: i64,
) -> RecordBatch {
    let mut builder = BatchBuilder::new(BatchSpec {
        producer_id,
        producer_epoch: 0,
        base_sequence: sequence,
        ..BatchSpec::default()
    });
    for value in values {
        builder.append(now_ms, None, Some(value), &[]);
    }
    builder.finish()
}

/// Every record in a replica's log, with its offset.
pub fn read_all(replica: &logbus::partition::Replica) -> Vec<(u64, Vec<u8>)> {
    let log = replica.log();
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    while from < log.log_end_offset() {
        let Ok(read) = log.read(from, 1 << 20) else {
            break;
        };
        let mut advanced = false;
        for batch in read.batches() {
            let Ok(batch) = batch else { return out };
            from = batch.header().next_offset() as u64;
            advanced = true;
            let Ok(records) = batch.records() else {
                return out;
            };
            for record in records.flatten() {
                out.push((
                    record.offset as u64,
                    record.value.map(|v| v.to_vec()).unwrap_or_default(),
                ));
            }
        }
        if !advanced {
            break;
        }
    }
    out
}

/// A directory for a simulated broker: in memory (`/dev/shm`) when the machine has it, since
/// the simulation's crashes are cut by hand and need no real disk, and fsyncs there are free.
fn sim_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

/// Runs one seeded schedule: `ticks` ticks with a fault every so often, then heal and check.
pub fn run_seed(seed: u64, config: SimConfig, ticks: u32) -> (Report, Vec<String>) {
    let mut sim = Sim::new(seed, config);
    for _ in 0..ticks {
        sim.tick();
        if sim.rng.chance(4) {
            sim.random_fault();
        }
    }
    let settle_start = sim.clock.now_ms_i64();
    let settled = sim.heal_and_settle(3_000);
    sim.log.push(format!(
        "settled={settled} after {} ms",
        sim.clock.now_ms_i64() - settle_start
    ));
    let report = sim.check(settled);
    (report, sim.log)
}

impl Sim {
    pub fn debug_state(&self) -> String {
        let mut out = String::new();
        for id in 0..self.config.brokers {
            let state = match &self.nodes[id as usize].state {
                NodeState::Up(_) => "up",
                NodeState::Paused(..) => "paused",
                NodeState::Crashed => "crashed",
            };
            out.push_str(&format!("broker {id} {state}\n"));
            if let Some(broker) = self.broker(id) {
                for partition in 0..self.config.partitions {
                    match broker.replicated_partition(TOPIC, partition) {
                        Ok(local) => out.push_str(&format!(
                            "  p{partition} leader={:?} isr={:?} leo={} hw={} epochs={:?}\n",
                            local.leader(),
                            local.isr(),
                            local.replica().log().log_end_offset(),
                            local.replica().high_watermark(),
                            local.replica().log().leader_epochs()
                        )),
                        Err(error) => out.push_str(&format!("  p{partition} {error}\n")),
                    }
                    let session = broker.replication().session();
                    out.push_str(&format!(
                        "  state {:?}\n",
                        logbus::replication::read_state(session.as_ref(), TOPIC, partition)
                    ));
                }
            }
        }
        out
    }
}

/// Fine-grained control for scripted scenarios.
impl Sim {
    /// Steps every live broker `ticks` times (time moves; no client acts).
    pub fn run_brokers(&mut self, ticks: u32) {
        for _ in 0..ticks {
            self.clock.advance_ms(TICK_MS);
            self.coordinator.tick();
            self.step_brokers();
            self.record_leaders();
        }
    }

    /// One control step of broker `id` alone.
    pub fn step_control(&mut self, id: i32) {
        if let Some(broker) = self.broker(id) {
            let _ = broker.replication().step_control();
        }
        self.record_leaders();
    }

    /// One fetch round of broker `id` from each leader it follows.
    pub fn fetch(&mut self, id: i32) {
        if let Some(broker) = self.broker(id) {
            let manager = broker.replication();
            for leader in manager.followed_leaders() {
                let _ = manager.fetch_round(leader, 0);
            }
        }
    }

    /// The replicas of `partition`, preferred first.
    pub fn assignment(&self, partition: u32) -> Vec<i32> {
        let asker = self.up_ids()[0];
        self.broker(asker)
            .and_then(|broker| broker.replication().assignment(TOPIC))
            .and_then(|assignment| assignment.partitions.get(partition as usize).cloned())
            .unwrap_or_default()
    }

    /// Appends `value` (acks=All, no producer id) on the current leader of `partition`.
    ///
    /// # Errors
    /// `Closed` when no leader is reachable; the leader's refusal.
    pub fn append(
        &mut self,
        partition: u32,
        value: &str,
    ) -> Result<(i32, PendingAppend), BrokerError> {
        let (leader, broker) = self.leader_broker(partition).ok_or(BrokerError::Closed)?;
        let batch = build_batch(
            -1,
            -1,
            &[value.as_bytes().to_vec()],
            self.clock.now_ms_i64(),
        );
        let pending = broker.append(TOPIC, partition, &batch, AckLevel::All)?;
        Ok((leader, pending))
    }

    /// Polls an append; on success records it as acknowledged. Returns the outcome.
    pub fn poll(
        &mut self,
        broker: i32,
        partition: u32,
        pending: &PendingAppend,
        value: &str,
    ) -> Option<Result<(), BrokerError>> {
        let outcome = self.broker(broker)?.poll_append(TOPIC, partition, pending);
        if let Some(Ok(())) = &outcome {
            self.acked.push(Acked {
                partition,
                offset: pending.result.base_offset,
                value: value.as_bytes().to_vec(),
                producer: usize::MAX,
            });
        }
        outcome
    }

    /// The log end and high watermark of broker `id`'s replica of `partition`.
    pub fn offsets(&self, id: i32, partition: u32) -> Option<(u64, u64)> {
        let replica = self.broker(id)?.replica(TOPIC, partition).ok()?;
        Some((replica.log().log_end_offset(), replica.high_watermark()))
    }
}

//! The `Broker`: one node's data directory, its topics and partitions, and its part in the
//! cluster (registration, replication, and the controller when it holds `/controller`).

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::cluster::{start_threads, BackgroundThreads};
use super::metadata::{remove_deleted_dirs, Metadata, PRODUCER_ID_BLOCK};
use super::registry::{
    claim_producer_id_block, create_topic_entries, delete_topic_entries, read_topic_config,
    restore_topic_entries, update_topic_entries, BROKER_SESSION_TIMEOUT_MS,
};
use super::store::LocalStore;
use super::topic::{Topic, TopicDescription, TopicState};
use super::{BrokerError, TopicConfig};
use crate::clock::{Clock, SystemClock};
use crate::coordinator::{CoordError, Coordinator, MemoryCoordinator};
use crate::log::{validate_topic_name, DirLock, PartitionName};
use crate::partition::Replica;
use crate::replication::{
    assign_replicas, AckLevel, Assignment, InProcessNetwork, PendingAppend, ReplicaManager,
    ReplicaService, ReplicatedPartition, ReplicationConfig, ReplicationError, Transport,
};

/// Who runs a broker's background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Drive {
    /// The broker's own threads: maintenance, replication control, follower fetchers.
    #[default]
    Threads,
    /// Nobody: the caller calls [`Broker::step`] and [`Broker::run_maintenance`]. A
    /// deterministic simulation drives brokers this way, with a manual clock.
    Manual,
}

/// Configuration of a broker.
///
/// ## Defaults
/// - `broker_id`: 0
/// - `clock`: the system clock
/// - `maintenance_interval_ms`: `Some(30_000)`: how often a background thread applies retention
///   and timed flushes; `None` runs no thread (call [`Broker::run_maintenance`] yourself).
/// - `coordinator`: `None`: a fresh in-memory [`MemoryCoordinator`] of the broker's own.
/// - `network`: `None`: an in-process network of the broker's own. Brokers of one cluster in
///   one process share one.
/// - `transport`: `None`: the broker reaches its peers through `network`. `Some` takes
///   precedence for replication traffic (for example `kafka::KafkaTransport`, to brokers in
///   other processes); the broker still attaches to `network`, which then holds only itself.
/// - `replication`: [`ReplicationConfig::default`], with `session_timeout_ms` 18 000.
/// - `drive`: [`Drive::Threads`].
#[derive(Clone)]
pub struct BrokerConfig {
    pub broker_id: i32,
    pub clock: Arc<dyn Clock>,
    pub maintenance_interval_ms: Option<u64>,
    pub coordinator: Option<Arc<dyn Coordinator>>,
    pub network: Option<Arc<InProcessNetwork>>,
    pub transport: Option<Arc<dyn Transport>>,
    pub replication: ReplicationConfig,
    pub drive: Drive,
    /// Where this broker serves Kafka's protocol (`kafka::KafkaServer`), registered with the
    /// broker so other brokers' Metadata answers name it.
    pub advertised_listener: Option<crate::replication::Endpoint>,
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("broker_id", &self.broker_id)
            .field("clock", &self.clock)
            .field("maintenance_interval_ms", &self.maintenance_interval_ms)
            .field("coordinator", &self.coordinator.as_ref().map(|_| "custom"))
            .field("transport", &self.transport.as_ref().map(|_| "custom"))
            .field("replication", &self.replication)
            .field("drive", &self.drive)
            .finish()
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            broker_id: 0,
            clock: Arc::new(SystemClock::new()),
            maintenance_interval_ms: Some(30_000),
            coordinator: None,
            network: None,
            transport: None,
            replication: ReplicationConfig {
                session_timeout_ms: BROKER_SESSION_TIMEOUT_MS,
                ..ReplicationConfig::default()
            },
            drive: Drive::Threads,
            advertised_listener: None,
        }
    }
}

/// One node: a data directory of partitions, with topic administration. Cheap to clone; the
/// broker closes (cleanly, flushing every log) when the last clone and the last producer or
/// consumer using it are dropped.
#[derive(Debug, Clone)]
pub struct Broker {
    pub(crate) inner: Arc<BrokerInner>,
}

pub(crate) struct BrokerInner {
    pub(crate) id: i32,
    pub(crate) coordinator: Arc<dyn Coordinator>,
    pub(crate) network: Arc<InProcessNetwork>,
    pub(crate) replication: Arc<ReplicaManager>,
    /// The data directory's topics and replicas (shared with the replica manager).
    pub(crate) store: Arc<LocalStore>,
    /// Admin operations hold it, so they apply one at a time.
    admin: Mutex<()>,
    producer_ids: Mutex<ProducerIdBlock>,
    pub(crate) threads: BackgroundThreads,
    crashed: std::sync::atomic::AtomicBool,
    /// The group coordinator, made on first use (see `groups.rs`).
    pub(super) groups: Mutex<Option<Arc<crate::group::BlockingCoordinator>>>,
    _lock: DirLock,
}

impl std::fmt::Debug for BrokerInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("id", &self.id)
            .field("dir", &self.store.dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

impl Broker {
    /// Opens (creating if needed) a broker on `dir` with the default configuration.
    ///
    /// # Errors
    /// `Locked` when another broker holds `dir`; `Io`; errors opening a partition's log.
    pub fn open(dir: impl AsRef<Path>) -> Result<Broker, BrokerError> {
        Self::open_with(dir, BrokerConfig::default())
    }

    /// Opens a broker on `dir` with `config`: restores the topics stored there, registers in
    /// the coordinator, and takes the roles the coordinator gives its replicas.
    ///
    /// # Errors
    /// As [`Broker::open`]; `BrokerIdInUse` when a live broker holds the id.
    pub fn open_with(dir: impl AsRef<Path>, config: BrokerConfig) -> Result<Broker, BrokerError> {
        let dir = dir.as_ref().to_owned();
        fs::create_dir_all(&dir).map_err(BrokerError::io(&dir))?;
        let lock = DirLock::acquire(&dir).map_err(|error| match error.kind() {
            std::io::ErrorKind::WouldBlock => BrokerError::Locked { path: dir.clone() },
            _ => BrokerError::io(&dir)(error),
        })?;
        remove_deleted_dirs(&dir)?;
        let metadata = Metadata::open(&dir)?;
        let mut topics = HashMap::new();
        for (name, topic_config) in metadata.load_topics()? {
            let state = TopicState::new(&name, topic_config);
            for partition in local_partitions(&dir, &name, state.partition_count()) {
                state.open_partition(&dir, partition, &config.clock)?;
            }
            topics.insert(name, Arc::new(state));
        }
        let coordinator: Arc<dyn Coordinator> = config
            .coordinator
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryCoordinator::new()));
        let network = config.network.clone().unwrap_or_default();
        let store = Arc::new(LocalStore {
            dir: dir.clone(),
            clock: Arc::clone(&config.clock),
            metadata,
            topics: RwLock::new(topics),
        });
        let host: Arc<dyn crate::replication::ReplicaHost> = Arc::clone(&store) as _;
        let transport: Arc<dyn Transport> = match &config.transport {
            Some(transport) => Arc::clone(transport),
            None => Arc::clone(&network) as _,
        };
        let intact = store.topics.read().values().all(|topic| {
            topic.replicas().iter().all(|replica| {
                replica.log().opened_after_clean_shutdown()
                    || replica.log().config().flush == crate::log::FlushPolicy::EveryAppend
            })
        });
        let replication = ReplicaManager::start(
            config.broker_id,
            crate::replication::Registrant {
                intact,
                endpoint: config.advertised_listener.clone(),
            },
            config.replication,
            Arc::clone(&coordinator),
            transport,
            Arc::clone(&config.clock),
            host,
        )
        .map_err(|error| match error {
            ReplicationError::Coordination(CoordError::NodeExists { .. }) => {
                BrokerError::BrokerIdInUse {
                    broker_id: config.broker_id,
                }
            }
            other => BrokerError::Replication(other),
        })?;
        let replication = Arc::new(replication);
        replication.transport().bind(Arc::downgrade(&replication));
        let session = replication.session();
        let known: Vec<(String, Arc<TopicState>)> = store
            .topics
            .read()
            .iter()
            .map(|(name, state)| (name.clone(), Arc::clone(state)))
            .collect();
        for (name, state) in &known {
            let epochs = single_replica_epochs(state);
            if let Some(epochs) = epochs {
                let topic_config = state.config.read().clone();
                restore_topic_entries(
                    session.as_ref(),
                    config.broker_id,
                    replication.broker_epoch(),
                    name,
                    &topic_config,
                    &epochs,
                )?;
            }
        }
        let local_floor = store.metadata.reserve_producer_ids()?;
        let first_id = claim_producer_id_block(session.as_ref(), local_floor, PRODUCER_ID_BLOCK)?;
        let inner = Arc::new(BrokerInner {
            id: config.broker_id,
            coordinator,
            network: Arc::clone(&network),
            replication: Arc::clone(&replication),
            store,
            admin: Mutex::new(()),
            producer_ids: Mutex::new(ProducerIdBlock {
                next: first_id,
                end: first_id + PRODUCER_ID_BLOCK,
            }),
            threads: BackgroundThreads::default(),
            crashed: std::sync::atomic::AtomicBool::new(false),
            groups: Mutex::new(None),
            _lock: lock,
        });
        let service: std::sync::Weak<dyn ReplicaService> = Arc::downgrade(&replication) as _;
        let endpoint: std::sync::Weak<dyn std::any::Any + Send + Sync> =
            Arc::downgrade(&inner) as _;
        network.attach(config.broker_id, service, endpoint);
        let broker = Broker { inner };
        // The first step takes the roles the coordinator gives (and, alone, the controller's).
        let _ = broker.step();
        let _ = broker.step();
        if config.drive == Drive::Threads {
            start_threads(&broker.inner, config.maintenance_interval_ms);
        }
        Ok(broker)
    }

    pub fn id(&self) -> i32 {
        self.inner.id
    }

    pub fn dir(&self) -> &Path {
        &self.inner.store.dir
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.store.clock
    }

    /// The coordinator the broker registered with.
    pub fn coordinator(&self) -> &Arc<dyn Coordinator> {
        &self.inner.coordinator
    }

    /// The network this broker reaches its peers through.
    pub fn network(&self) -> &Arc<InProcessNetwork> {
        &self.inner.network
    }

    /// The broker's replication (roles, controller, fetchers).
    pub fn replication(&self) -> &Arc<ReplicaManager> {
        &self.inner.replication
    }

    /// Another broker of this process's cluster, by id, if it is open.
    pub fn peer(&self, broker_id: i32) -> Option<Broker> {
        if broker_id == self.inner.id {
            return Some(self.clone());
        }
        let endpoint = self.inner.network.endpoint(broker_id)?;
        let inner = endpoint.downcast::<BrokerInner>().ok()?;
        if inner.crashed.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        Some(Broker { inner })
    }

    /// Whether [`Broker::simulate_crash`] stopped this broker.
    pub fn is_crashed(&self) -> bool {
        self.inner
            .crashed
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// This broker if it runs, else another open broker of its process's cluster (clients
    /// bootstrapped from a broker that went away find the cluster through it).
    pub fn live_broker(&self) -> Option<Broker> {
        if !self.is_crashed() {
            return Some(self.clone());
        }
        self.inner
            .network
            .broker_ids()
            .into_iter()
            .filter_map(|id| self.peer(id))
            .find(|broker| !broker.is_crashed())
    }

    /// One step of replication work: coordinator events, roles, ISR changes, the controller's
    /// pass, and one non-blocking fetch from each leader this broker follows. Brokers on
    /// [`Drive::Threads`] do this on their own; on [`Drive::Manual`] the caller does.
    ///
    /// # Errors
    /// The first error met; the rest of the step still runs.
    pub fn step(&self) -> Result<(), BrokerError> {
        let manager = &self.inner.replication;
        let mut first_error = manager.step_control().err();
        for leader in manager.followed_leaders() {
            if let Err(error) = manager.fetch_round(leader, 0) {
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(BrokerError::Replication(error)),
            None => Ok(()),
        }
    }

    /// Creates a topic: assigns its replicas over the live brokers and records it in the
    /// coordinator; the controller then elects each partition's leader.
    ///
    /// # Errors
    /// `InvalidTopicName` (as a `Log` error), `TopicExists`, `InvalidPartitions`,
    /// `InvalidReplicationFactor`, `InvalidConfig`, `Io`, `Coordination`.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<Topic, BrokerError> {
        validate_topic_name(name)?;
        let session = self.inner.replication.session();
        let live = crate::replication::live_broker_ids(session.as_ref())?;
        config.validate(live.len().min(u16::MAX as usize) as u16)?;
        self.create_validated_topic(name, config)
    }

    /// Creates a topic whose name and configuration the caller has checked (internal topics
    /// use settings `TopicConfig::validate` refuses to users).
    pub(super) fn create_validated_topic(
        &self,
        name: &str,
        config: TopicConfig,
    ) -> Result<Topic, BrokerError> {
        let session = self.inner.replication.session();
        let live = crate::replication::live_broker_ids(session.as_ref())?;
        let _admin = self.inner.admin.lock();
        let partitions = assign_replicas(name, config.partitions, config.replication_factor, &live)
            .ok_or(BrokerError::InvalidReplicationFactor {
                requested: config.replication_factor,
                live_brokers: live.len() as u16,
            })?;
        create_topic_entries(session.as_ref(), name, &config, &Assignment { partitions })?;
        let state = self.inner.store.ensure_topic(name, config)?;
        self.inner.replication.mark_topic(name);
        let _ = self.step();
        Ok(Topic::new(self.clone(), state))
    }

    /// Deletes a topic everywhere: its entries leave the coordinator and every broker removes
    /// its replicas' files; handles still held fail with `Deleted` errors.
    ///
    /// # Errors
    /// `UnknownTopic`, `Io`, `Coordination`.
    pub fn delete_topic(&self, name: &str) -> Result<(), BrokerError> {
        let _admin = self.inner.admin.lock();
        let session = self.inner.replication.session();
        let known_here = self.inner.store.topics.read().contains_key(name);
        let known_there = read_topic_config(session.as_ref(), name)?.is_some();
        if !known_here && !known_there {
            return Err(BrokerError::UnknownTopic {
                topic: name.to_owned(),
            });
        }
        delete_topic_entries(session.as_ref(), name)?;
        self.inner.store.remove_local_topic(name)
    }

    /// Grows a topic to `partitions` partitions (Kafka's CreatePartitions); the new partitions'
    /// replicas are assigned over the live brokers.
    ///
    /// # Errors
    /// `UnknownTopic`, `PartitionsCannotShrink`, `InvalidPartitions`, `Io`, `Coordination`.
    pub fn create_partitions(&self, name: &str, partitions: u32) -> Result<(), BrokerError> {
        let _admin = self.inner.admin.lock();
        let state = self.topic_state(name)?;
        let session = self.inner.replication.session();
        let current =
            crate::replication::read_assignment(session.as_ref(), name)?.ok_or_else(|| {
                BrokerError::UnknownTopic {
                    topic: name.to_owned(),
                }
            })?;
        let config = state.grow(partitions)?;
        let live = crate::replication::live_broker_ids(session.as_ref())?;
        let fresh = assign_replicas(name, partitions, config.replication_factor, &live).ok_or(
            BrokerError::InvalidReplicationFactor {
                requested: config.replication_factor,
                live_brokers: live.len() as u16,
            },
        )?;
        let mut assignment = current;
        let have = assignment.partitions.len();
        assignment.partitions.extend(fresh.into_iter().skip(have));
        self.inner.store.metadata.store_topic(name, &config)?;
        update_topic_entries(session.as_ref(), name, &config, &assignment)?;
        self.inner.replication.mark_topic(name);
        let _ = self.step();
        Ok(())
    }

    /// Names of all topics this broker knows, sorted.
    pub fn list_topics(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.store.topics.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// A handle on an existing topic.
    ///
    /// # Errors
    /// `UnknownTopic`.
    pub fn topic(&self, name: &str) -> Result<Topic, BrokerError> {
        Ok(Topic::new(self.clone(), self.topic_state(name)?))
    }

    /// The topic's configuration and, per partition held here, its offsets and size.
    ///
    /// # Errors
    /// `UnknownTopic`.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription, BrokerError> {
        self.topic(name).map(|topic| topic.describe())
    }

    pub(crate) fn topic_state(&self, name: &str) -> Result<Arc<TopicState>, BrokerError> {
        self.inner
            .store
            .topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::UnknownTopic {
                topic: name.to_owned(),
            })
    }

    /// The replica of `topic`-`partition` on this broker.
    ///
    /// # Errors
    /// `UnknownTopic`, `UnknownPartition` (also when this broker holds no replica of it).
    pub fn replica(&self, topic: &str, partition: u32) -> Result<Arc<Replica>, BrokerError> {
        self.topic_state(topic)?.replica(partition)
    }

    /// The replica a consumer of `topic`-`partition` reads: the leader's, when the leader is
    /// open in this process, else this broker's own (a follower's data below its high
    /// watermark is committed too, only possibly older).
    ///
    /// # Errors
    /// `UnknownTopic`, `UnknownPartition` when neither is available.
    pub fn replica_for_reading(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Arc<Replica>, BrokerError> {
        if let Some(leader) = self
            .leader_of(topic, partition)
            .and_then(|id| self.peer(id))
        {
            if let Ok(replica) = leader.replica(topic, partition) {
                if !replica.log().is_closed() {
                    return Ok(replica);
                }
            }
        }
        self.replica(topic, partition)
    }

    /// This broker's replicated partition, with its role.
    ///
    /// # Errors
    /// `UnknownPartition` when this broker holds no replica of it.
    pub fn replicated_partition(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Arc<ReplicatedPartition>, BrokerError> {
        self.inner
            .replication
            .partition(topic, partition)
            .ok_or_else(|| BrokerError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            })
    }

    /// Appends a producer's batch to `topic`-`partition`, which this broker must lead. The
    /// returned pending append completes per `acks` (see [`Broker::poll_append`] and
    /// [`Broker::wait_append`]).
    ///
    /// # Errors
    /// `UnknownTopic`, `UnknownPartition`; `Replication(NotLeader | NotEnoughReplicas | ...)`.
    pub fn append(
        &self,
        topic: &str,
        partition: u32,
        batch: &crate::record::RecordBatch,
        acks: AckLevel,
    ) -> Result<PendingAppend, BrokerError> {
        let local = self.leader_partition(topic, partition)?;
        Ok(local.append(
            batch,
            acks,
            self.inner.store.clock.now_ms(),
            self.inner.replication.config().request_timeout_ms,
        )?)
    }

    fn leader_partition(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Arc<ReplicatedPartition>, BrokerError> {
        match self.inner.replication.partition(topic, partition) {
            Some(local) => Ok(local),
            None => {
                // Not held here: say which topic or partition is unknown, or who leads.
                let state = self.topic_state(topic)?;
                if partition >= state.partition_count() {
                    return Err(BrokerError::UnknownPartition {
                        topic: topic.to_owned(),
                        partition,
                    });
                }
                Err(BrokerError::Replication(ReplicationError::NotLeader {
                    topic: topic.to_owned(),
                    partition,
                    leader: self.leader_of(topic, partition),
                    leader_epoch: -1,
                }))
            }
        }
    }

    /// The leader of `topic`-`partition` as the coordinator records it.
    pub fn leader_of(&self, topic: &str, partition: u32) -> Option<i32> {
        if self.is_crashed() {
            return None;
        }
        let session = self.inner.replication.session();
        crate::replication::read_state(session.as_ref(), topic, partition)
            .ok()
            .flatten()
            .map(|state| state.leader)
            .filter(|&leader| leader >= 0)
    }

    /// Whether `pending` is acknowledged yet (`None` while waiting).
    ///
    /// # Errors
    /// Inside the `Some`: why the append will never be acknowledged.
    pub fn poll_append(
        &self,
        topic: &str,
        partition: u32,
        pending: &PendingAppend,
    ) -> Option<Result<(), BrokerError>> {
        let local = match self.replicated_partition(topic, partition) {
            Ok(local) => local,
            Err(error) => return Some(Err(error)),
        };
        local
            .poll_append(pending, self.inner.store.clock.now_ms())
            .map(|result| result.map_err(BrokerError::Replication))
    }

    /// Blocks until `pending` is acknowledged or fails (its deadline counts on the broker's
    /// clock; the wait itself wakes whenever the high watermark or the role moves).
    ///
    /// # Errors
    /// Why the append will never be acknowledged.
    pub fn wait_append(
        &self,
        topic: &str,
        partition: u32,
        pending: &PendingAppend,
    ) -> Result<(), BrokerError> {
        let local = self.replicated_partition(topic, partition)?;
        if let Some(result) = local.poll_append(pending, self.inner.store.clock.now_ms()) {
            return result.map_err(BrokerError::Replication);
        }
        let notifier = crate::partition::Notifier::new();
        local.replica().register_waiter(&notifier);
        let result = loop {
            notifier.reset();
            if let Some(result) = local.poll_append(pending, self.inner.store.clock.now_ms()) {
                break result;
            }
            // Bounded waits, so that a deadline on a clock that is not the system's, or a role
            // change that moves no high watermark, is still seen.
            notifier.wait_until(std::time::Instant::now() + std::time::Duration::from_millis(10));
        };
        local.replica().unregister_waiter(&notifier);
        result.map_err(BrokerError::Replication)
    }

    /// A new idempotent producer identity: (producer id, epoch). Ids are claimed from the
    /// coordinator a block at a time, so brokers sharing it never hand out one id twice.
    ///
    /// # Errors
    /// `Io` or `Coordination` when the next block of ids cannot be reserved.
    pub fn init_producer_id(&self) -> Result<(i64, i16), BrokerError> {
        let mut block = self.inner.producer_ids.lock();
        if block.next == block.end {
            let floor = self.inner.store.metadata.reserve_producer_ids()?;
            let session = self.inner.replication.session();
            block.next = claim_producer_id_block(session.as_ref(), floor, PRODUCER_ID_BLOCK)?;
            block.end = block.next + PRODUCER_ID_BLOCK;
        }
        let id = block.next;
        block.next += 1;
        Ok((id, 0))
    }

    /// Applies retention, timed flushes and compaction (a cleaning pass where one is due) to
    /// every partition now; the maintenance thread calls this every `maintenance_interval_ms`.
    /// Returns the number of segments deleted by retention.
    ///
    /// # Errors
    /// The first error a partition reports; the others are still attempted.
    pub fn run_maintenance(&self) -> Result<usize, BrokerError> {
        self.inner.run_maintenance()
    }

    /// Every topic this broker knows, as descriptions.
    pub fn describe_all(&self) -> Vec<TopicDescription> {
        self.list_topics()
            .iter()
            .filter_map(|name| self.describe_topic(name).ok())
            .collect()
    }

    /// Moves leadership off this broker (Kafka's controlled shutdown) so that it can stop
    /// without making its partitions unavailable for a session timeout. Returns how many
    /// partitions it still leads (0 when all moved, or there was nowhere to move them).
    ///
    /// # Errors
    /// `Replication` when the controller cannot be reached.
    pub fn controlled_shutdown(&self) -> Result<u32, BrokerError> {
        let remaining = self.inner.replication.controlled_shutdown()?;
        let _ = self.step();
        Ok(remaining.unwrap_or(0))
    }

    /// Stops the broker as a crash would, for fault-injection tests: its replicas stop
    /// writing, nothing more is flushed, no clean-shutdown marker or checkpoint is written,
    /// and its coordinator session is left to expire. Returns what each log had on disk; once
    /// every handle is dropped, cutting the files to a length between `durable_bytes` and
    /// `written_bytes` gives an image a real crash could leave.
    #[doc(hidden)]
    pub fn simulate_crash(&self) -> Vec<crate::log::CrashImage> {
        self.inner
            .crashed
            .store(true, std::sync::atomic::Ordering::Release);
        self.inner.replication.stop();
        // A dead process stops heartbeating: its session expires after its timeout.
        self.inner.replication.session().stop_heartbeat();
        // Nor does it answer group requests: clients look for the next coordinator.
        if let Some(groups) = self.inner.groups.lock().as_ref() {
            groups.resign_all();
        }
        let topics: Vec<Arc<TopicState>> =
            self.inner.store.topics.read().values().cloned().collect();
        topics
            .iter()
            .flat_map(|topic| topic.replicas())
            .map(|replica| replica.simulate_crash())
            .collect()
    }
}

/// The epochs to publish for a topic held here alone when the coordinator does not know it;
/// `None` for a replicated topic (its truth lives in a shared coordinator).
fn single_replica_epochs(state: &TopicState) -> Option<Vec<i32>> {
    let config = state.config.read();
    if config.replication_factor != 1 {
        return None;
    }
    (0..config.partitions)
        .map(|partition| {
            state
                .replica(partition)
                .ok()
                .map(|replica| replica.leader_epoch())
        })
        .collect()
}

/// The partitions of `topic` whose directories exist under `dir`.
fn local_partitions(dir: &Path, topic: &str, partitions: u32) -> Vec<u32> {
    (0..partitions)
        .filter(|&partition| {
            dir.join(
                PartitionName {
                    topic: topic.to_owned(),
                    partition,
                }
                .dir_name(),
            )
            .is_dir()
        })
        .collect()
}

impl BrokerInner {
    pub(crate) fn run_maintenance(&self) -> Result<usize, BrokerError> {
        self.store.run_maintenance()
    }
}

impl Drop for BrokerInner {
    fn drop(&mut self) {
        self.replication.stop();
        self.threads.stop_and_join();
        if self.crashed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        self.replication.checkpoint_high_watermarks();
        self.store.close_all();
        let _ = self.replication.session().close();
    }
}

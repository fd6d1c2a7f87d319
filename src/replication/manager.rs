//! The replica manager: one per broker. It keeps the broker's registration and its view of
//! partition states current (from coordinator watches and controller notices), turns that view
//! into leader and follower roles, writes its leaders' ISR changes, runs the controller when
//! this broker holds `/controller`, fetches for its followers, and serves its peers' fetches.
//!
//! It runs in steps: [`ReplicaManager::step_control`] (events, roles, ISR, controller) and
//! [`ReplicaManager::fetch_round`] (one fetch from one leader). A broker's background threads
//! call them in loops; a deterministic simulation calls them itself, in an order it chooses,
//! with a manual clock, so a seed replays the same run.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;

use super::controller::{
    self, ensure_controller, read_assignment, read_state, write_state, ControllerConfig,
    ControllerState, Election, TopicPolicy,
};
use super::error::ReplicationError;
use super::partition::{PartitionSettings, PlantedBugs, ReplicatedPartition};
use super::state::{
    Assignment, PartitionState, BROKER_IDS_PATH, CONTROLLER_PATH, NO_LEADER, TOPICS_PATH,
};
use super::transport::{
    EpochAnswer, EpochQuery, EpochRequest, EpochResponse, FetchPartition, FetchRequest,
    FetchResponse, FetchedPartition, LeaderAndIsrNotice, ReplicaError, ReplicaService, Transport,
};
use crate::clock::Clock;
use crate::coordinator::{
    AddWatchMode, CoordError, Coordinator, CreateMode, Event, EventType, Session, SessionConfig,
};
use crate::partition::{Notifier, Replica};

/// Replication settings of a broker, named as Kafka's.
///
/// ## Defaults
/// - `replica_lag_time_max_ms`: 30 000
/// - `replica_fetch_wait_max_ms`: 500
/// - `replica_fetch_max_bytes`: 1 MiB
/// - `request_timeout_ms`: 30 000 (how long an `acks=All` append may wait for replication)
/// - `session_timeout_ms`: 18 000
/// - `auto_leader_rebalance`: true
/// - `high_watermark_checkpoint_interval_ms`: 5 000
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationConfig {
    pub replica_lag_time_max_ms: u64,
    pub replica_fetch_wait_max_ms: u64,
    pub replica_fetch_max_bytes: usize,
    pub request_timeout_ms: u64,
    pub session_timeout_ms: u64,
    pub auto_leader_rebalance: bool,
    pub high_watermark_checkpoint_interval_ms: u64,
    /// Known bugs to plant, for tests that must catch them. Never set in production.
    pub planted_bugs: PlantedBugs,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_max_bytes: 1 << 20,
            request_timeout_ms: 30_000,
            session_timeout_ms: 18_000,
            auto_leader_rebalance: true,
            high_watermark_checkpoint_interval_ms: 5_000,
            planted_bugs: PlantedBugs::default(),
        }
    }
}

/// What the replica manager needs from the broker that owns it.
pub trait ReplicaHost: Send + Sync {
    /// Opens (creating if needed) this broker's replica of `topic`-`partition`, with the
    /// topic's replication settings.
    ///
    /// # Errors
    /// Whatever opening the topic's configuration or the log reports.
    fn open_replica(
        &self,
        session: &dyn Session,
        topic: &str,
        partition: u32,
    ) -> Result<(Arc<Replica>, PartitionSettings), ReplicationError>;

    /// Whether `topic` allows unclean leader election.
    fn unclean_leader_election(&self, topic: &str) -> bool;

    /// `topic` left the coordinator: remove its replicas here.
    fn topic_deleted(&self, topic: &str);
}

/// Told when this broker starts or stops leading a partition of one topic (Kafka's
/// `onLeadershipChange` callback, which moves group coordination with the leaders of
/// `__consumer_offsets`). Calls come from the control step, in the order the roles changed;
/// a listener may read local logs but must not wait for replication (no `step`, no acks).
pub trait LeadershipListener: Send + Sync {
    /// This broker leads `partition` from `leader_epoch` on; called again for each new epoch.
    fn became_leader(&self, partition: u32, leader_epoch: i32);

    /// This broker no longer leads `partition`: it follows another leader, the partition has
    /// none, or its replica here is gone.
    fn resigned(&self, partition: u32);
}

/// A hosted partition: topic and number. The map of hosted partitions is looked up on every
/// append; it borrows its keys as [`KeyParts`], so a lookup by `(&str, u32)` allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionKey(Arc<str>, u32);

/// A partition key's topic and number, whoever owns them.
trait KeyParts {
    fn parts(&self) -> (&str, u32);
}

impl KeyParts for PartitionKey {
    fn parts(&self) -> (&str, u32) {
        (&self.0, self.1)
    }
}

impl KeyParts for (&str, u32) {
    fn parts(&self) -> (&str, u32) {
        *self
    }
}

// `Borrow` requires the borrowed form to hash and compare as the owned one: both go through
// `parts`.
impl Hash for PartitionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl Hash for dyn KeyParts + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn KeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyParts + '_ {}

impl<'a> Borrow<dyn KeyParts + 'a> for PartitionKey {
    fn borrow(&self) -> &(dyn KeyParts + 'a) {
        self
    }
}

/// Work noted by events and done by the next control step.
#[derive(Debug, Default)]
struct Work {
    topics: BTreeSet<String>,
    partitions: BTreeSet<(String, u32)>,
    /// Reread everything (after a new session, or at start).
    everything: bool,
    /// Run a controller pass.
    controller: bool,
}

/// What a broker registers about itself in `/brokers/ids/<id>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registrant {
    /// Whether the broker holds everything it acknowledged before (every log was closed
    /// cleanly, or flushes each append); see [`registration_data`](super::registration_data).
    pub intact: bool,
    /// Where it serves Kafka's protocol, if it does.
    pub endpoint: Option<super::controller::Endpoint>,
}

/// One broker's replication.
pub struct ReplicaManager {
    broker_id: i32,
    config: ReplicationConfig,
    coordinator: Arc<dyn Coordinator>,
    session: RwLock<Arc<dyn Session>>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    host: Arc<dyn ReplicaHost>,
    partitions: RwLock<FxHashMap<PartitionKey, Arc<ReplicatedPartition>>>,
    /// Who is told of leadership changes, per topic.
    listeners: RwLock<HashMap<String, Arc<dyn LeadershipListener>>>,
    assignments: Mutex<HashMap<String, Assignment>>,
    work: Mutex<Work>,
    controller: Mutex<ControllerState>,
    last_checkpoint_ms: Mutex<i64>,
    /// Wakes fetchers and the control thread when roles change or work arrives.
    pub(crate) wakeup: Arc<Notifier>,
    stopped: AtomicBool,
    /// The session expired or closed: the next control step opens a new one.
    session_ended: AtomicBool,
    step_lock: Mutex<()>,
    /// This broker's registration epoch: the creation zxid of its `/brokers/ids/<id>`.
    broker_epoch: AtomicI64,
    /// Where this broker serves Kafka's protocol, registered with it.
    endpoint: Option<super::controller::Endpoint>,
}

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaManager")
            .field("broker_id", &self.broker_id)
            .field("partitions", &self.partitions.read().len())
            .finish_non_exhaustive()
    }
}

impl ReplicaManager {
    /// Registers broker `broker_id` (ephemeral `/brokers/ids/<id>`) on a new session and
    /// watches the metadata it needs.
    ///
    /// # Errors
    /// `Coordination(NodeExists)` wrapped as the caller sees fit when the id is in use; other
    /// coordinator errors.
    ///
    pub fn start(
        broker_id: i32,
        registrant: Registrant,
        config: ReplicationConfig,
        coordinator: Arc<dyn Coordinator>,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        host: Arc<dyn ReplicaHost>,
    ) -> Result<ReplicaManager, ReplicationError> {
        let Registrant { intact, endpoint } = registrant;
        let (session, broker_epoch) = open_registered_session(
            coordinator.as_ref(),
            broker_id,
            intact,
            endpoint.as_ref(),
            &config,
        )?;
        Ok(ReplicaManager {
            endpoint,
            broker_epoch: AtomicI64::new(broker_epoch),
            broker_id,
            config,
            coordinator,
            session: RwLock::new(session),
            transport,
            clock,
            host,
            partitions: RwLock::new(FxHashMap::default()),
            listeners: RwLock::new(HashMap::new()),
            assignments: Mutex::new(HashMap::new()),
            work: Mutex::new(Work {
                everything: true,
                controller: true,
                ..Work::default()
            }),
            controller: Mutex::new(ControllerState::default()),
            last_checkpoint_ms: Mutex::new(i64::MIN),
            wakeup: Notifier::new(),
            stopped: AtomicBool::new(false),
            session_ended: AtomicBool::new(false),
            step_lock: Mutex::new(()),
        })
    }

    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// This broker's registration epoch (the creation zxid of its `/brokers/ids/<id>`); it
    /// changes whenever the broker registers again (a restart, an expired session).
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    pub fn config(&self) -> &ReplicationConfig {
        &self.config
    }

    pub fn session(&self) -> Arc<dyn Session> {
        Arc::clone(&self.session.read())
    }

    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// This broker's replica of a partition under replication, if it hosts one.
    pub fn partition(&self, topic: &str, partition: u32) -> Option<Arc<ReplicatedPartition>> {
        self.partitions
            .read()
            .get(&(topic, partition) as &dyn KeyParts)
            .cloned()
    }

    /// Every partition this broker hosts.
    pub fn partitions(&self) -> Vec<Arc<ReplicatedPartition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Whether this broker holds `/controller` (as of its last control step).
    pub fn is_controller(&self) -> bool {
        self.controller.lock().epoch.is_some()
    }

    /// The elections this broker made while controller.
    pub fn elections(&self) -> Vec<Election> {
        self.controller.lock().elections.clone()
    }

    /// The cached assignment of `topic` (replicas per partition), if known.
    pub fn assignment(&self, topic: &str) -> Option<Assignment> {
        self.assignments.lock().get(topic).cloned()
    }

    /// Tells `listener` of every later change of this broker's leadership of `topic`'s
    /// partitions (replacing any listener of that topic). Roles already held are not replayed:
    /// read them with [`ReplicaManager::partition`] after registering.
    pub fn set_leadership_listener(&self, topic: &str, listener: Arc<dyn LeadershipListener>) {
        self.listeners.write().insert(topic.to_owned(), listener);
    }

    fn tell_listener(&self, topic: &str, partition: u32, local: &ReplicatedPartition) {
        let Some(listener) = self.listeners.read().get(topic).cloned() else {
            return;
        };
        let (leader, epoch) = local.leader();
        if leader == self.broker_id {
            listener.became_leader(partition, epoch);
        } else {
            listener.resigned(partition);
        }
    }

    /// Notes that `topic` changed, so the next control step rereads it.
    pub fn mark_topic(&self, topic: &str) {
        let mut work = self.work.lock();
        work.topics.insert(topic.to_owned());
        work.controller = true;
        drop(work);
        self.wakeup.notify();
    }

    /// Stops the background loops (the broker is closing).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wakeup.notify();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// One control step: drains coordinator events, renews an expired session, rereads what
    /// changed and applies it to local roles, writes leaders' ISR changes, runs the controller.
    ///
    /// # Errors
    /// The first coordinator or storage error; what was not done is retried next step.
    pub fn step_control(&self) -> Result<(), ReplicationError> {
        // One step at a time: a caller's step (after creating a topic, say) then returns only
        // once the work it noted is done, whichever thread did it.
        let _step = self.step_lock.lock();
        // Every stage runs even when an earlier one failed (a partition whose state cannot be
        // read must not stop the controller); the first error is reported.
        let mut first_error = None;
        let mut note = |result: Result<(), ReplicationError>| {
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        };
        note(self.drain_events());
        note(self.apply_work(&self.take_role_work()));
        note(self.write_isr_changes());
        note(self.run_controller());
        // What the controller just wrote (or an ISR write that lost a race) applies now rather
        // than a step later.
        note(self.apply_work(&self.take_role_work()));
        self.maybe_checkpoint_high_watermarks();
        first_error.map_or(Ok(()), Err)
    }

    /// Takes the noted topics and partitions (the controller flag stays for `run_controller`).
    fn take_role_work(&self) -> Work {
        let mut pending = self.work.lock();
        Work {
            topics: std::mem::take(&mut pending.topics),
            partitions: std::mem::take(&mut pending.partitions),
            everything: std::mem::take(&mut pending.everything),
            controller: false,
        }
    }

    fn drain_events(&self) -> Result<(), ReplicationError> {
        let session = self.session();
        while let Ok(event) = session.events().try_recv() {
            self.note_event(event);
        }
        if self.session_ended.swap(false, Ordering::AcqRel) && !self.is_stopped() {
            let renewed = open_registered_session(
                self.coordinator.as_ref(),
                self.broker_id,
                true,
                self.endpoint.as_ref(),
                &self.config,
            );
            let (renewed, broker_epoch) = match renewed {
                Ok(renewed) => renewed,
                Err(error) => {
                    self.session_ended.store(true, Ordering::Release);
                    return Err(error);
                }
            };
            *self.session.write() = renewed;
            self.broker_epoch.store(broker_epoch, Ordering::Release);
            self.controller.lock().epoch = None;
            let mut work = self.work.lock();
            work.everything = true;
            work.controller = true;
        }
        Ok(())
    }

    /// Notes a coordinator event for the next control step.
    pub fn note_event(&self, event: Event) {
        match event {
            Event::Watch(watched) => self.note_path(&watched.path, watched.kind),
            Event::Session(_) => self.session_ended.store(true, Ordering::Release),
        }
    }

    fn note_path(&self, path: &str, kind: EventType) {
        // Lock order: `controller` before `work`, never the other way.
        let is_controller = self.controller.lock().epoch.is_some();
        let mut work = self.work.lock();
        if path == CONTROLLER_PATH || path.starts_with(BROKER_IDS_PATH) {
            work.controller = true;
            return;
        }
        let Some(rest) = path.strip_prefix(TOPICS_PATH) else {
            return;
        };
        let parts: Vec<&str> = rest.split('/').filter(|part| !part.is_empty()).collect();
        match parts.as_slice() {
            [] => work.everything = true,
            [topic] => {
                work.topics.insert((*topic).to_owned());
                work.controller = true;
            }
            [topic, "partitions", partition, "state"] => {
                if let Ok(partition) = partition.parse() {
                    work.partitions.insert(((*topic).to_owned(), partition));
                }
                // An ISR that grew may make a preferred replica electable again.
                if self.config.auto_leader_rebalance && is_controller {
                    work.controller = true;
                }
                if kind == EventType::NodeDeleted {
                    work.topics.insert((*topic).to_owned());
                }
            }
            _ => {}
        }
    }

    /// Rereads what `work` names and applies it; what fails is noted again for the next step.
    fn apply_work(&self, work: &Work) -> Result<(), ReplicationError> {
        let session = self.session();
        let mut first_error = None;
        let mut topics = work.topics.clone();
        if work.everything {
            match session.get_children(TOPICS_PATH, crate::coordinator::Watch::None) {
                Ok((children, _)) => topics.extend(children),
                Err(CoordError::NoNode { .. }) => {}
                Err(error) => {
                    self.work.lock().everything = true;
                    first_error.get_or_insert(error.into());
                }
            }
        }
        let mut partitions = work.partitions.clone();
        for topic in &topics {
            match read_assignment(session.as_ref(), topic) {
                Ok(assignment) => partitions.extend(self.apply_assignment(topic, assignment)),
                Err(error) => {
                    self.work.lock().topics.insert(topic.clone());
                    first_error.get_or_insert(error);
                }
            }
        }
        // One partition's unreadable state (or failing replica) must not hold up the others.
        for (topic, partition) in partitions {
            if let Err(error) = self.reconcile_partition(session.as_ref(), &topic, partition) {
                self.work.lock().partitions.insert((topic, partition));
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Caches a topic's assignment (or forgets a deleted topic, with its replicas here) and
    /// returns its partitions to reconcile.
    fn apply_assignment(&self, topic: &str, assignment: Option<Assignment>) -> Vec<(String, u32)> {
        match assignment {
            Some(assignment) => {
                let count = assignment.partitions.len() as u32;
                self.assignments.lock().insert(topic.to_owned(), assignment);
                (0..count)
                    .map(|partition| (topic.to_owned(), partition))
                    .collect()
            }
            None => {
                let hosted = self.partitions.read().keys().any(|key| &*key.0 == topic);
                self.assignments.lock().remove(topic);
                if hosted {
                    self.remove_topic(topic);
                    self.host.topic_deleted(topic);
                }
                Vec::new()
            }
        }
    }

    /// Rereads one partition's state and applies it to this broker's replica (opening the
    /// replica first if this broker is assigned one).
    fn reconcile_partition(
        &self,
        session: &dyn Session,
        topic: &str,
        partition: u32,
    ) -> Result<(), ReplicationError> {
        let Some(replicas) = self
            .assignments
            .lock()
            .get(topic)
            .and_then(|assignment| assignment.partitions.get(partition as usize).cloned())
        else {
            return Ok(());
        };
        if !replicas.contains(&self.broker_id) {
            return Ok(());
        }
        let Some(state) = read_state(session, topic, partition)? else {
            return Ok(());
        };
        let local = self.open_partition(topic, partition, &replicas)?;
        if local.apply_state(&state, &replicas, self.broker_epoch(), self.clock.now_ms()) {
            self.tell_listener(topic, partition, &local);
            self.wakeup.notify();
        }
        Ok(())
    }

    fn open_partition(
        &self,
        topic: &str,
        partition: u32,
        replicas: &[i32],
    ) -> Result<Arc<ReplicatedPartition>, ReplicationError> {
        if let Some(existing) = self
            .partitions
            .read()
            .get(&(topic, partition) as &dyn KeyParts)
        {
            return Ok(Arc::clone(existing));
        }
        let session = self.session();
        let (replica, settings) = self.host.open_replica(session.as_ref(), topic, partition)?;
        if replicas.len() > 1 {
            // Until replication says otherwise, only what was known committed is committed.
            let checkpointed = replica.checkpointed_high_watermark().ok().flatten();
            replica.restrict_high_watermark(checkpointed.unwrap_or(0));
        }
        let local = Arc::new(ReplicatedPartition::new(
            replica,
            self.broker_id,
            settings,
            self.config.planted_bugs,
        ));
        Ok(Arc::clone(
            self.partitions
                .write()
                .entry(PartitionKey(Arc::from(topic), partition))
                .or_insert(local),
        ))
    }

    /// Refreshes the replication settings of a topic's local partitions (after a config change).
    pub fn update_settings(&self, topic: &str, settings: PartitionSettings) {
        for (key, partition) in self.partitions.read().iter() {
            if &*key.0 == topic {
                partition.set_settings(settings);
            }
        }
    }

    /// Forgets a deleted topic's partitions.
    pub fn remove_topic(&self, topic: &str) {
        let mut removed = Vec::new();
        self.partitions.write().retain(|key, local| {
            let keep = &*key.0 != topic;
            if !keep && local.is_leader() {
                removed.push(key.1);
            }
            keep
        });
        self.assignments.lock().remove(topic);
        if let Some(listener) = self.listeners.read().get(topic).cloned() {
            for partition in removed {
                listener.resigned(partition);
            }
        }
    }

    fn write_isr_changes(&self) -> Result<(), ReplicationError> {
        let now_ms = self.clock.now_ms();
        let session = self.session();
        let partitions: Vec<(PartitionKey, Arc<ReplicatedPartition>)> = self
            .partitions
            .read()
            .iter()
            .map(|(key, partition)| (key.clone(), Arc::clone(partition)))
            .collect();
        for (PartitionKey(topic, number), partition) in partitions {
            let Some(proposal) = partition.isr_change(now_ms, self.config.replica_lag_time_max_ms)
            else {
                continue;
            };
            match write_state(session.as_ref(), &topic, number, &proposal) {
                Ok(Some(written)) => partition.isr_change_done(Some(&written)),
                Ok(None) => {
                    partition.isr_change_done(None);
                    self.work
                        .lock()
                        .partitions
                        .insert((topic.to_string(), number));
                }
                Err(error) => {
                    partition.isr_change_done(None);
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    fn run_controller(&self) -> Result<(), ReplicationError> {
        let wanted = std::mem::take(&mut self.work.lock().controller);
        let mut state = self.controller.lock();
        if !wanted && state.epoch.is_none() {
            return Ok(());
        }
        let session = self.session();
        let result = (|| {
            let Some(epoch) = ensure_controller(
                session.as_ref(),
                self.broker_id,
                self.clock.now_ms(),
                &mut state,
            )?
            else {
                return Ok(Vec::new());
            };
            if !wanted {
                return Ok(Vec::new());
            }
            let policy = HostPolicy(Arc::clone(&self.host));
            controller::reconcile(
                session.as_ref(),
                epoch,
                ControllerConfig {
                    auto_leader_rebalance: self.config.auto_leader_rebalance,
                },
                &policy,
                &mut state,
            )
        })();
        let written = match result {
            Ok(written) => written,
            Err(error) => {
                drop(state);
                self.work.lock().controller = true;
                return Err(error);
            }
        };
        let controller_epoch = state.epoch.unwrap_or(0);
        drop(state);
        self.notify_replicas(controller_epoch, written);
        Ok(())
    }

    /// Sends leader-and-ISR notices for written states (best effort: brokers watch too).
    fn notify_replicas(&self, controller_epoch: i32, written: Vec<(String, u32, Vec<i32>)>) {
        let mut by_broker: HashMap<i32, Vec<(Arc<str>, u32)>> = HashMap::new();
        for (topic, partition, replicas) in written {
            let topic: Arc<str> = Arc::from(topic.as_str());
            for replica in replicas {
                by_broker
                    .entry(replica)
                    .or_default()
                    .push((Arc::clone(&topic), partition));
            }
        }
        for (broker, partitions) in by_broker {
            let notice = LeaderAndIsrNotice {
                controller_id: self.broker_id,
                controller_epoch,
                partitions,
            };
            if broker == self.broker_id {
                self.handle_leader_and_isr(notice);
            } else {
                let _ = self
                    .transport
                    .leader_and_isr(self.broker_id, broker, notice);
            }
        }
    }

    fn maybe_checkpoint_high_watermarks(&self) {
        let now_ms = self.clock.now_ms();
        {
            let mut last = self.last_checkpoint_ms.lock();
            if now_ms.saturating_sub(*last)
                < self.config.high_watermark_checkpoint_interval_ms as i64
            {
                return;
            }
            *last = now_ms;
        }
        self.checkpoint_high_watermarks();
    }

    /// Writes every local replica's high watermark checkpoint (best effort; on close too).
    pub fn checkpoint_high_watermarks(&self) {
        for partition in self.partitions() {
            let _ = partition.replica().checkpoint_high_watermark();
        }
    }

    /// Whether the control thread must look again soon (see `broker::cluster`): work is
    /// queued, the session must be renewed, or a local partition has timers to run.
    pub(crate) fn needs_ticks(&self) -> bool {
        {
            let work = self.work.lock();
            if work.everything
                || work.controller
                || !work.topics.is_empty()
                || !work.partitions.is_empty()
            {
                return true;
            }
        }
        self.session_ended.load(Ordering::Acquire)
            || self
                .partitions
                .read()
                .values()
                .any(|partition| partition.needs_ticks())
    }

    /// The leaders this broker's followers fetch from.
    pub fn followed_leaders(&self) -> BTreeSet<i32> {
        self.partitions
            .read()
            .values()
            .filter_map(|partition| partition.fetch_target())
            .map(|target| target.leader)
            .filter(|&leader| leader != NO_LEADER)
            .collect()
    }

    /// One fetch from `leader` for every partition this broker follows there: first the
    /// epoch queries of followers that must find their divergence point, then a fetch for the
    /// others. Returns how many partitions followed `leader` (0 lets a fetcher thread stop).
    ///
    /// # Errors
    /// `Transport` when the leader cannot be reached; storage errors of a local replica.
    pub fn fetch_round(&self, leader: i32, max_wait_ms: u64) -> Result<usize, ReplicationError> {
        let followers: Vec<(
            PartitionKey,
            Arc<ReplicatedPartition>,
            super::partition::FetchTarget,
        )> = self
            .partitions
            .read()
            .iter()
            .filter_map(|(key, partition)| {
                let target = partition.fetch_target()?;
                (target.leader == leader).then(|| (key.clone(), Arc::clone(partition), target))
            })
            .collect();
        if followers.is_empty() {
            return Ok(0);
        }
        let (truncating, fetching): (Vec<_>, Vec<_>) = followers
            .iter()
            .partition(|(_, _, target)| target.needs_truncation);
        if !truncating.is_empty() {
            self.truncate_round(leader, &truncating)?;
        }
        if !fetching.is_empty() {
            let wait_ms = if truncating.is_empty() {
                max_wait_ms
            } else {
                0
            };
            self.fetch_data(leader, &fetching, wait_ms)?;
        }
        Ok(followers.len())
    }

    fn truncate_round(
        &self,
        leader: i32,
        truncating: &[&(
            PartitionKey,
            Arc<ReplicatedPartition>,
            super::partition::FetchTarget,
        )],
    ) -> Result<(), ReplicationError> {
        let mut queries = Vec::new();
        for (PartitionKey(topic, partition), local, target) in truncating {
            match target.latest_local_epoch {
                // An empty log (or one without epochs) has nothing to cut.
                None => local.truncate_for_leader(target.epoch, None).map(|_| ())?,
                Some(epoch) => queries.push(EpochQuery {
                    topic: Arc::clone(topic),
                    partition: *partition,
                    current_leader_epoch: target.epoch,
                    leader_epoch: epoch,
                }),
            }
        }
        if queries.is_empty() {
            return Ok(());
        }
        let response = self.transport.end_offsets(
            self.broker_id,
            leader,
            EpochRequest {
                replica_id: self.broker_id,
                partitions: queries,
            },
        )?;
        for answer in response.partitions {
            let Some((_, local, target)) =
                truncating
                    .iter()
                    .find(|(PartitionKey(topic, partition), _, _)| {
                        *topic == answer.topic && *partition == answer.partition
                    })
            else {
                continue;
            };
            match answer.result {
                Ok(end) => local.truncate_for_leader(target.epoch, end)?,
                Err(_) => self.mark_partition(&answer.topic, answer.partition),
            }
        }
        Ok(())
    }

    fn fetch_data(
        &self,
        leader: i32,
        fetching: &[&(
            PartitionKey,
            Arc<ReplicatedPartition>,
            super::partition::FetchTarget,
        )],
        max_wait_ms: u64,
    ) -> Result<(), ReplicationError> {
        let request = FetchRequest {
            replica_id: self.broker_id,
            replica_broker_epoch: self.broker_epoch(),
            max_wait_ms,
            max_partition_bytes: self.config.replica_fetch_max_bytes,
            partitions: fetching
                .iter()
                .map(
                    |(PartitionKey(topic, partition), _, target)| FetchPartition {
                        topic: Arc::clone(topic),
                        partition: *partition,
                        fetch_offset: target.fetch_offset,
                        current_leader_epoch: target.epoch,
                    },
                )
                .collect(),
        };
        let response = self.transport.fetch(self.broker_id, leader, request)?;
        for fetched in response.partitions {
            let Some((_, local, target)) =
                fetching
                    .iter()
                    .find(|(PartitionKey(topic, partition), _, _)| {
                        *topic == fetched.topic && *partition == fetched.partition
                    })
            else {
                continue;
            };
            match fetched.result {
                Ok(data) => local.append_fetched(target.epoch, &data)?,
                Err(ReplicaError::OffsetOutOfRange) => {
                    // Our log end is past the leader's: find the divergence again.
                    local.require_truncation(target.epoch);
                }
                Err(_) => self.mark_partition(&fetched.topic, fetched.partition),
            }
        }
        Ok(())
    }

    fn mark_partition(&self, topic: &str, partition: u32) {
        self.work
            .lock()
            .partitions
            .insert((topic.to_owned(), partition));
        self.wakeup.notify();
    }

    /// Asks the controller to move leadership off this broker before it stops (Kafka's
    /// controlled shutdown). Returns how many partitions it still leads.
    ///
    /// # Errors
    /// `Transport` when the controller is unreachable; coordinator errors finding it.
    pub fn controlled_shutdown(&self) -> Result<Option<u32>, ReplicationError> {
        let session = self.session();
        let controller = match session.get_data(CONTROLLER_PATH, crate::coordinator::Watch::None) {
            Ok((data, _)) => super::state::decode_controller(&data).ok(),
            Err(CoordError::NoNode { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        let Some(controller) = controller else {
            return Ok(None);
        };
        if controller == self.broker_id {
            return Ok(self.handle_controlled_shutdown(self.broker_id));
        }
        Ok(self
            .transport
            .controlled_shutdown(self.broker_id, controller, self.broker_id)?)
    }

    fn serve_fetch_partitions(&self, request: &FetchRequest) -> (FetchResponse, bool) {
        let now_ms = self.clock.now_ms();
        let mut any_data = false;
        let partitions = request
            .partitions
            .iter()
            .map(|wanted| {
                let result = match self.partition(&wanted.topic, wanted.partition) {
                    None => Err(ReplicaError::UnknownTopicOrPartition),
                    Some(local) => local.serve_fetch(
                        request.replica_id,
                        request.replica_broker_epoch,
                        wanted.fetch_offset,
                        wanted.current_leader_epoch,
                        request.max_partition_bytes,
                        now_ms,
                    ),
                };
                any_data |= match &result {
                    Ok(data) => !data.records.is_empty(),
                    Err(_) => true,
                };
                FetchedPartition {
                    topic: Arc::clone(&wanted.topic),
                    partition: wanted.partition,
                    result,
                }
            })
            .collect();
        (FetchResponse { partitions }, any_data)
    }
}

impl ReplicaService for ReplicaManager {
    fn handle_fetch(&self, request: FetchRequest) -> FetchResponse {
        if request.max_wait_ms == 0 {
            return self.serve_fetch_partitions(&request).0;
        }
        // Long poll: listen for appends first, so that one landing between the check and the
        // wait still wakes it; then answer at once if there is data, else wait and answer again.
        let notifier = Notifier::new();
        let locals: Vec<Arc<ReplicatedPartition>> = request
            .partitions
            .iter()
            .filter_map(|wanted| self.partition(&wanted.topic, wanted.partition))
            .collect();
        for local in &locals {
            local.replica().register_append_waiter(&notifier);
        }
        let (mut response, any_data) = self.serve_fetch_partitions(&request);
        if !any_data {
            notifier.wait_until(Instant::now() + Duration::from_millis(request.max_wait_ms));
            response = self.serve_fetch_partitions(&request).0;
        }
        for local in &locals {
            local.replica().unregister_append_waiter(&notifier);
        }
        response
    }

    fn handle_end_offsets(&self, request: EpochRequest) -> EpochResponse {
        EpochResponse {
            partitions: request
                .partitions
                .into_iter()
                .map(|query| {
                    let result = match self.partition(&query.topic, query.partition) {
                        None => Err(ReplicaError::UnknownTopicOrPartition),
                        Some(local) => {
                            local.serve_end_offset(query.current_leader_epoch, query.leader_epoch)
                        }
                    };
                    EpochAnswer {
                        topic: query.topic,
                        partition: query.partition,
                        result,
                    }
                })
                .collect(),
        }
    }

    fn handle_leader_and_isr(&self, notice: LeaderAndIsrNotice) {
        let mut work = self.work.lock();
        for (topic, partition) in notice.partitions {
            if !self.assignments.lock().contains_key(&*topic) {
                work.topics.insert(topic.to_string());
            }
            work.partitions.insert((topic.to_string(), partition));
        }
        drop(work);
        self.wakeup.notify();
    }

    fn handle_controlled_shutdown(&self, broker_id: i32) -> Option<u32> {
        let session = self.session();
        let registered = controller::live_brokers(session.as_ref()).ok()?;
        let mut state = self.controller.lock();
        let epoch = state.epoch?;
        if let Some(&czxid) = registered.get(&broker_id) {
            state.shutting_down.insert(broker_id, czxid.epoch);
        }
        let policy = HostPolicy(Arc::clone(&self.host));
        let written = controller::reconcile(
            session.as_ref(),
            epoch,
            ControllerConfig {
                auto_leader_rebalance: self.config.auto_leader_rebalance,
            },
            &policy,
            &mut state,
        )
        .ok()?;
        drop(state);
        self.notify_replicas(epoch, written);
        Some(count_led_by(session.as_ref(), broker_id).unwrap_or(u32::MAX))
    }
}

/// How many partitions `broker_id` leads, per the coordinator.
fn count_led_by(session: &dyn Session, broker_id: i32) -> Result<u32, ReplicationError> {
    let topics = match session.get_children(TOPICS_PATH, crate::coordinator::Watch::None) {
        Ok((topics, _)) => topics,
        Err(CoordError::NoNode { .. }) => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let mut led = 0;
    for topic in topics {
        let Some(assignment) = read_assignment(session, &topic)? else {
            continue;
        };
        for partition in 0..assignment.partitions.len() as u32 {
            if read_state(session, &topic, partition)?
                .is_some_and(|state: PartitionState| state.leader == broker_id)
            {
                led += 1;
            }
        }
    }
    Ok(led)
}

struct HostPolicy(Arc<dyn ReplicaHost>);

impl TopicPolicy for HostPolicy {
    fn unclean_leader_election(&self, topic: &str) -> bool {
        self.0.unclean_leader_election(topic)
    }
}

/// Opens a session, registers the broker in it and sets the watches replication relies on.
/// Returns the session and the registration's epoch.
fn open_registered_session(
    coordinator: &dyn Coordinator,
    broker_id: i32,
    intact: bool,
    endpoint: Option<&super::controller::Endpoint>,
    config: &ReplicationConfig,
) -> Result<(Arc<dyn Session>, i64), ReplicationError> {
    let session =
        coordinator.session(SessionConfig::default().with_timeout_ms(config.session_timeout_ms))?;
    for path in ["/brokers", BROKER_IDS_PATH, TOPICS_PATH] {
        match session.create(path, b"", CreateMode::Persistent) {
            Ok(_) | Err(CoordError::NodeExists { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    session.create(
        &format!("{BROKER_IDS_PATH}/{broker_id}"),
        &super::controller::registration_data(broker_id, intact, endpoint),
        CreateMode::Ephemeral,
    )?;
    let registration = session
        .exists(
            &format!("{BROKER_IDS_PATH}/{broker_id}"),
            crate::coordinator::Watch::None,
        )?
        .map_or(super::state::UNKNOWN_BROKER_EPOCH, |stat| stat.czxid.0);
    session.add_watch("/brokers", AddWatchMode::PersistentRecursive)?;
    session.add_watch(CONTROLLER_PATH, AddWatchMode::Persistent)?;
    Ok((session, registration))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition is found by `(&str, u32)` exactly when its owned key is in the map: the
    /// borrowed form hashes and compares as the owned one, which `Borrow` requires.
    #[test]
    fn partition_keys_are_found_by_borrowed_parts() {
        let mut map: FxHashMap<PartitionKey, u32> = FxHashMap::default();
        for (topic, partition) in [("orders", 0), ("orders", 1), ("order", 10), ("s", 1)] {
            map.insert(PartitionKey(Arc::from(topic), partition), partition * 7);
        }
        let find = |topic: &str, partition: u32| map.get(&(topic, partition) as &dyn KeyParts);
        assert_eq!(find("orders", 1), Some(&7));
        assert_eq!(find("order", 10), Some(&70));
        assert_eq!(find("orders", 10), None);
        assert_eq!(find("order", 1), None);
        assert_eq!(find("s", 1), Some(&7));
    }
}

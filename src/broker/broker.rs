//! The `Broker`: one node's data directory, its topics and partitions.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::metadata::{remove_deleted_dirs, Metadata, DELETE_SUFFIX, PRODUCER_ID_BLOCK};
use super::registry::{
    publish_topic, register_broker, unpublish_topic, BrokerSession, BROKER_SESSION_TIMEOUT_MS,
};
use super::topic::{Topic, TopicDescription, TopicState};
use super::{BrokerError, TopicConfig};
use crate::clock::{Clock, SystemClock};
use crate::coordinator::{Coordinator, MemoryCoordinator, SessionConfig};
use crate::log::{validate_topic_name, DirLock};
use crate::partition::Replica;

/// Configuration of a broker.
///
/// ## Defaults
/// - `broker_id`: 0
/// - `clock`: the system clock
/// - `maintenance_interval_ms`: `Some(30_000)`: how often a background thread applies retention
///   and timed flushes; `None` runs no thread (call [`Broker::run_maintenance`] yourself).
/// - `coordinator`: `None`: a fresh in-memory [`MemoryCoordinator`] of the broker's own.
#[derive(Clone)]
pub struct BrokerConfig {
    pub broker_id: i32,
    pub clock: Arc<dyn Clock>,
    pub maintenance_interval_ms: Option<u64>,
    pub coordinator: Option<Arc<dyn Coordinator>>,
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("broker_id", &self.broker_id)
            .field("clock", &self.clock)
            .field("maintenance_interval_ms", &self.maintenance_interval_ms)
            .field("coordinator", &self.coordinator.as_ref().map(|_| "custom"))
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
    coordinator: Arc<dyn Coordinator>,
    /// This broker's coordinator session; its ephemeral `/brokers/ids/<id>` lives with it.
    session: BrokerSession,
    pub(crate) dir: PathBuf,
    pub(crate) clock: Arc<dyn Clock>,
    metadata: Metadata,
    /// Topics by name. Admin operations also hold `admin`, so they apply one at a time.
    topics: RwLock<HashMap<String, Arc<TopicState>>>,
    admin: Mutex<()>,
    producer_ids: Mutex<ProducerIdBlock>,
    maintenance: Arc<Maintenance>,
    /// The group coordinator, made on first use (see `groups.rs`).
    pub(super) groups: Mutex<Option<Arc<crate::group::BlockingCoordinator>>>,
    _lock: DirLock,
}

impl std::fmt::Debug for BrokerInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

/// Stops the maintenance thread when the broker goes.
#[derive(Debug, Default)]
struct Maintenance {
    stopped: Mutex<bool>,
    condvar: Condvar,
}

impl Broker {
    /// Opens (creating if needed) a broker on `dir` with the default configuration.
    ///
    /// # Errors
    /// `Locked` when another broker holds `dir`; `Io`; errors opening a partition's log.
    pub fn open(dir: impl AsRef<Path>) -> Result<Broker, BrokerError> {
        Self::open_with(dir, BrokerConfig::default())
    }

    /// Opens a broker on `dir` with `config`, restoring every topic stored there.
    ///
    /// # Errors
    /// As [`Broker::open`].
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
            let state = TopicState::open(&dir, &name, topic_config, &config.clock)?;
            topics.insert(name, Arc::new(state));
        }
        let first_id = metadata.reserve_producer_ids()?;
        let coordinator: Arc<dyn Coordinator> = config
            .coordinator
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryCoordinator::new()));
        let session_config = SessionConfig::default().with_timeout_ms(BROKER_SESSION_TIMEOUT_MS);
        let session = coordinator
            .session(session_config)
            .map_err(BrokerError::Coordination)?;
        register_broker(session.as_ref(), config.broker_id)?;
        for (name, state) in &topics {
            publish_topic(
                session.as_ref(),
                config.broker_id,
                name,
                &state.config.read(),
                &state.leader_epochs(),
            )?;
        }
        let inner = Arc::new(BrokerInner {
            id: config.broker_id,
            coordinator,
            session,
            dir,
            clock: config.clock,
            metadata,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            producer_ids: Mutex::new(ProducerIdBlock {
                next: first_id,
                end: first_id + PRODUCER_ID_BLOCK,
            }),
            maintenance: Arc::new(Maintenance::default()),
            groups: Mutex::new(None),
            _lock: lock,
        });
        if let Some(interval_ms) = config.maintenance_interval_ms {
            spawn_maintenance(
                Arc::downgrade(&inner),
                Arc::clone(&inner.maintenance),
                interval_ms,
            );
        }
        Ok(Broker { inner })
    }

    pub fn id(&self) -> i32 {
        self.inner.id
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The coordinator the broker registered with.
    pub fn coordinator(&self) -> &Arc<dyn Coordinator> {
        &self.inner.coordinator
    }

    /// Creates a topic and its partitions.
    ///
    /// # Errors
    /// `InvalidTopicName` (as a `Log` error), `TopicExists`, `InvalidPartitions`,
    /// `InvalidReplicationFactor`, `InvalidConfig`, `Io`.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<Topic, BrokerError> {
        validate_topic_name(name)?;
        config.validate(1)?;
        self.create_validated_topic(name, config)
    }

    /// Creates a topic whose name and configuration the caller has checked (internal topics
    /// use settings `TopicConfig::validate` refuses to users).
    pub(super) fn create_validated_topic(
        &self,
        name: &str,
        config: TopicConfig,
    ) -> Result<Topic, BrokerError> {
        let _admin = self.inner.admin.lock();
        if self.inner.topics.read().contains_key(name) {
            return Err(BrokerError::TopicExists {
                topic: name.to_owned(),
            });
        }
        let state = Arc::new(TopicState::open(
            &self.inner.dir,
            name,
            config.clone(),
            &self.inner.clock,
        )?);
        self.inner.metadata.store_topic(name, &config)?;
        publish_topic(
            self.inner.session.as_ref(),
            self.inner.id,
            name,
            &config,
            &state.leader_epochs(),
        )?;
        self.inner
            .topics
            .write()
            .insert(name.to_owned(), Arc::clone(&state));
        Ok(Topic::new(self.clone(), state))
    }

    /// Deletes a topic: its partitions' files are removed, and handles still held fail with
    /// `Deleted` errors.
    ///
    /// # Errors
    /// `UnknownTopic`, `Io`.
    pub fn delete_topic(&self, name: &str) -> Result<(), BrokerError> {
        let _admin = self.inner.admin.lock();
        let state = self.inner.topics.read().get(name).cloned().ok_or_else(|| {
            BrokerError::UnknownTopic {
                topic: name.to_owned(),
            }
        })?;
        self.inner.metadata.remove_topic(name)?;
        self.inner.topics.write().remove(name);
        unpublish_topic(self.inner.session.as_ref(), name)?;
        let nonce = self.inner.clock.now_ms();
        for replica in state.mark_deleted() {
            let dir = replica.log().dir().to_owned();
            let doomed = dir.with_file_name(format!(
                "{}.{nonce}{DELETE_SUFFIX}",
                replica
                    .log()
                    .dir()
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            ));
            fs::rename(&dir, &doomed).map_err(BrokerError::io(&dir))?;
            fs::remove_dir_all(&doomed).map_err(BrokerError::io(&doomed))?;
        }
        Ok(())
    }

    /// Grows a topic to `partitions` partitions (Kafka's CreatePartitions).
    ///
    /// # Errors
    /// `UnknownTopic`, `PartitionsCannotShrink`, `InvalidPartitions`, `Io`.
    pub fn create_partitions(&self, name: &str, partitions: u32) -> Result<(), BrokerError> {
        let _admin = self.inner.admin.lock();
        let state = self.topic_state(name)?;
        let config = state.grow(&self.inner.dir, partitions, &self.inner.clock)?;
        self.inner.metadata.store_topic(name, &config)?;
        publish_topic(
            self.inner.session.as_ref(),
            self.inner.id,
            name,
            &config,
            &state.leader_epochs(),
        )
    }

    /// Names of all topics, sorted.
    pub fn list_topics(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.topics.read().keys().cloned().collect();
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

    /// The topic's configuration and, per partition, its offsets and size.
    ///
    /// # Errors
    /// `UnknownTopic`.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription, BrokerError> {
        self.topic(name).map(|topic| topic.describe())
    }

    pub(crate) fn topic_state(&self, name: &str) -> Result<Arc<TopicState>, BrokerError> {
        self.inner
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
    /// `UnknownTopic`, `UnknownPartition`.
    pub fn replica(&self, topic: &str, partition: u32) -> Result<Arc<Replica>, BrokerError> {
        self.topic_state(topic)?.replica(partition)
    }

    /// A new idempotent producer identity: (producer id, epoch).
    ///
    /// # Errors
    /// `Io` when the next block of ids cannot be reserved on disk.
    pub fn init_producer_id(&self) -> Result<(i64, i16), BrokerError> {
        let mut block = self.inner.producer_ids.lock();
        if block.next == block.end {
            block.next = self.inner.metadata.reserve_producer_ids()?;
            block.end = block.next + PRODUCER_ID_BLOCK;
        }
        let id = block.next;
        block.next += 1;
        Ok((id, 0))
    }

    /// Applies retention and timed flushes to every partition now; the maintenance thread calls
    /// this every `maintenance_interval_ms`. Returns the number of segments deleted.
    ///
    /// # Errors
    /// The first error a partition reports; the others are still attempted.
    pub fn run_maintenance(&self) -> Result<usize, BrokerError> {
        self.inner.run_maintenance()
    }

    /// Every partition of every topic, as descriptions.
    pub fn describe_all(&self) -> Vec<TopicDescription> {
        self.list_topics()
            .iter()
            .filter_map(|name| self.describe_topic(name).ok())
            .collect()
    }
}

impl BrokerInner {
    fn run_maintenance(&self) -> Result<usize, BrokerError> {
        let topics: Vec<Arc<TopicState>> = self.topics.read().values().cloned().collect();
        let mut deleted = 0;
        let mut first_error = None;
        for replica in topics.iter().flat_map(|topic| topic.replicas().to_vec()) {
            let log = replica.log();
            match log
                .apply_retention()
                .and_then(|count| log.flush_if_due().map(|()| count))
            {
                Ok(count) => deleted += count,
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(deleted),
        }
    }
}

impl Drop for BrokerInner {
    fn drop(&mut self) {
        *self.maintenance.stopped.lock() = true;
        self.maintenance.condvar.notify_all();
    }
}

fn spawn_maintenance(
    broker: std::sync::Weak<BrokerInner>,
    maintenance: Arc<Maintenance>,
    interval_ms: u64,
) {
    let spawned = std::thread::Builder::new()
        .name("logbus-maintenance".into())
        .spawn(move || loop {
            let deadline = Instant::now() + Duration::from_millis(interval_ms);
            let mut stopped = maintenance.stopped.lock();
            while !*stopped
                && !maintenance
                    .condvar
                    .wait_until(&mut stopped, deadline)
                    .timed_out()
            {}
            if *stopped {
                return;
            }
            drop(stopped);
            let Some(broker) = broker.upgrade() else {
                return;
            };
            // Errors surface again on the next append or read of the failing partition.
            let _ = broker.run_maintenance();
        });
    // Without the thread, retention waits for explicit `run_maintenance` calls; nothing is lost.
    drop(spawned);
}

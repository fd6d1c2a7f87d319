//! `MemoryCoordinator`: the in-process reference implementation of [`Coordinator`].

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{self, Receiver, Sender};
use parking_lot::Mutex;

use super::error::CoordError;
use super::session::{Coordinator, Session};
use super::state::{Heartbeat, SessionEntry, State, TxnObserver};
use super::tree::DataTree;
use super::types::{
    AddWatchMode, CreateMode, Event, ExpiryReason, Op, OpResult, SessionConfig, SessionEvent,
    SessionId, Stat, Version, Watch, WatcherKind, Zxid,
};
use crate::clock::{Clock, SystemClock};

/// How a [`MemoryCoordinator`] behaves.
///
/// ## Defaults
/// - `tick_ms`: 2 000 (ZooKeeper's `tickTime`). Session timeouts are clamped to 2 to 20 ticks,
///   as ZooKeeper negotiates them, and with a system clock expiry is checked every tick.
/// - `max_data_bytes`: 1 048 576 (1 MiB, ZooKeeper's `jute.maxbuffer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCoordinatorConfig {
    /// The basic time unit.
    pub tick_ms: u64,
    /// Largest data a node may hold.
    pub max_data_bytes: usize,
}

impl Default for MemoryCoordinatorConfig {
    fn default() -> Self {
        MemoryCoordinatorConfig {
            tick_ms: 2_000,
            max_data_bytes: 1 << 20,
        }
    }
}

/// What sessions and the coordinator share.
pub(super) struct Shared {
    /// The tree, sessions and watches: one lock, so every operation is atomic and all of them
    /// are in one total order.
    pub(super) state: Mutex<State>,
    /// Source of time for expiry and node times.
    clock: Arc<dyn Clock>,
    /// Fixed at construction.
    config: MemoryCoordinatorConfig,
}

impl Shared {
    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// The in-process coordinator: ZooKeeper's data model and guarantees in memory.
///
/// Every operation holds one lock, so writes and reads are linearizable: a read sees every write
/// that returned before it started. That is stronger than ZooKeeper, whose reads are served by
/// one server and may be stale (even after `sync`).
///
/// Time comes from a [`Clock`]. With [`MemoryCoordinator::new`] (system clock) a background
/// thread checks session expiry every tick; with [`MemoryCoordinator::with_clock`] nothing runs
/// in the background: expiry is checked on every operation and by [`MemoryCoordinator::tick`],
/// which tests call after advancing a `ManualClock`.
///
/// Sessions keep the shared state alive after the coordinator is dropped; the background thread
/// stops with the coordinator, after which expiry is checked only on operations.
///
/// Durability is optional: [`MemoryCoordinator::open`] keeps a directory with a log of every
/// committed [`Txn`](super::Txn) (on the crate's own log engine, each txn durable before it is
/// applied) and snapshots of the tree, so persistent nodes and sequence counters survive a
/// restart; sessions and ephemeral nodes do not, as in ZooKeeper.
pub struct MemoryCoordinator {
    /// The txn log and snapshot thread of a coordinator opened on a directory. Declared first so
    /// it is dropped first: its thread may take a last snapshot while `shared` still lives.
    pub(super) storage: Option<super::durable::Storage>,
    pub(super) shared: Arc<Shared>,
    /// The expiry thread, when time is the system's.
    _ticker: Option<Ticker>,
}

impl std::fmt::Debug for MemoryCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCoordinator")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryCoordinator {
    fn default() -> Self {
        MemoryCoordinator::new()
    }
}

impl MemoryCoordinator {
    /// A coordinator on the system clock with the default config, checking expiry on a
    /// background thread that stops when the coordinator is dropped.
    pub fn new() -> MemoryCoordinator {
        MemoryCoordinator::with_config(MemoryCoordinatorConfig::default())
    }

    /// Like [`MemoryCoordinator::new`] with `config`.
    pub fn with_config(config: MemoryCoordinatorConfig) -> MemoryCoordinator {
        let shared = Shared::new(Arc::new(SystemClock::new()), config);
        let ticker = Ticker::spawn(
            Arc::downgrade(&shared),
            Duration::from_millis(config.tick_ms.max(1)),
        );
        MemoryCoordinator {
            shared,
            _ticker: Some(ticker),
            storage: None,
        }
    }

    /// A coordinator on `clock` with no background thread: expiry is checked on each operation
    /// and on [`MemoryCoordinator::tick`].
    pub fn with_clock(clock: Arc<dyn Clock>, config: MemoryCoordinatorConfig) -> MemoryCoordinator {
        MemoryCoordinator {
            shared: Shared::new(clock, config),
            _ticker: None,
            storage: None,
        }
    }

    /// A coordinator holding `tree` (rebuilt from a snapshot and a log of txns), on `clock`
    /// with no background thread (as [`MemoryCoordinator::with_clock`]).
    ///
    /// Sessions do not survive a restart, so the ephemeral nodes of every former session are
    /// deleted first, one `CloseSession` txn per owner (with watches to fire yet, none fire);
    /// new session ids start above every former owner's.
    pub fn from_tree(
        tree: DataTree,
        clock: Arc<dyn Clock>,
        config: MemoryCoordinatorConfig,
    ) -> MemoryCoordinator {
        let coordinator = MemoryCoordinator::with_clock(clock, config);
        let now_ms = coordinator.shared.now_ms();
        coordinator.shared.state.lock().restore(tree, now_ms);
        coordinator
    }

    /// Starts the background expiry thread (for a coordinator on the system clock).
    pub(super) fn start_ticker(&mut self) {
        let period = Duration::from_millis(self.shared.config.tick_ms.max(1));
        self._ticker = Some(Ticker::spawn(Arc::downgrade(&self.shared), period));
    }

    /// Makes `observer` see every txn committed from now on, before it is applied (in zxid
    /// order, under the coordinator's lock). Replaces any earlier observer.
    pub fn observe_txns(&self, observer: Arc<dyn TxnObserver>) {
        self.shared.state.lock().observer = Some(observer);
    }

    /// Expires every session whose heartbeat stopped at least its timeout ago, now.
    pub fn tick(&self) {
        self.shared.state.lock().expire_due(self.shared.now_ms());
    }

    /// The zxid of the last committed change.
    pub fn last_zxid(&self) -> Zxid {
        self.shared.state.lock().tree.last_zxid()
    }

    /// A copy of the whole tree (for snapshots and tests).
    pub fn tree(&self) -> DataTree {
        self.shared.state.lock().tree.clone()
    }

    /// The number of live sessions.
    pub fn live_sessions(&self) -> usize {
        self.shared.state.lock().sessions.len()
    }

    /// Opens a session with the concrete handle type.
    ///
    /// # Errors
    /// `BadArguments` if the timeout or the queue capacity is zero.
    pub fn open_session(&self, config: SessionConfig) -> Result<MemorySession, CoordError> {
        if config.timeout_ms == 0 {
            return Err(CoordError::BadArguments {
                reason: "session timeout must be positive",
            });
        }
        if config.event_queue_capacity == 0 {
            return Err(CoordError::BadArguments {
                reason: "event queue capacity must be positive",
            });
        }
        let tick_ms = self.shared.config.tick_ms.max(1);
        let timeout_ms = config.timeout_ms.clamp(2 * tick_ms, 20 * tick_ms);
        // Unbounded underneath, so memory grows with the events actually queued rather than the
        // capacity; `State::deliver` enforces the bound.
        let (sender, receiver) = channel::unbounded();
        let entry = SessionEntry {
            timeout_ms: i64::try_from(timeout_ms).unwrap_or(i64::MAX),
            last_heard_ms: self.shared.now_ms(),
            heartbeat: Heartbeat::Running,
            events: sender,
            capacity: config.event_queue_capacity,
        };
        let id = self.shared.state.lock().open_session(entry);
        Ok(MemorySession {
            shared: Arc::clone(&self.shared),
            id,
            timeout_ms,
            events: receiver,
        })
    }
}

impl Shared {
    fn new(clock: Arc<dyn Clock>, config: MemoryCoordinatorConfig) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State::new(config.max_data_bytes)),
            clock,
            config,
        })
    }
}

impl Coordinator for MemoryCoordinator {
    fn session(&self, config: SessionConfig) -> Result<Arc<dyn Session>, CoordError> {
        Ok(Arc::new(self.open_session(config)?))
    }

    fn expire_session(&self, session: SessionId) -> Result<(), CoordError> {
        let event = SessionEvent::Expired {
            reason: ExpiryReason::Forced,
        };
        let now_ms = self.shared.now_ms();
        if self.shared.state.lock().end_session(session, event, now_ms) {
            Ok(())
        } else {
            Err(CoordError::SessionExpired { session })
        }
    }
}

/// The background thread that checks session expiry on the system clock.
struct Ticker {
    /// Dropping it wakes and stops the thread.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn spawn(shared: Weak<Shared>, period: Duration) -> Ticker {
        let (stop, stopped) = channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("logbus-coordinator-ticker".into())
            .spawn(move || Ticker::run(&shared, &stopped, period))
            .ok();
        Ticker {
            stop: Some(stop),
            thread,
        }
    }

    fn run(shared: &Weak<Shared>, stopped: &Receiver<()>, period: Duration) {
        // The timeout is the tick; a message or a disconnection means stop.
        while stopped.recv_timeout(period) == Err(channel::RecvTimeoutError::Timeout) {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let now_ms = shared.now_ms();
            shared.state.lock().expire_due(now_ms);
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic on the ticker thread has already been reported; nothing to add here.
            let _ = thread.join();
        }
    }
}

/// A session of a [`MemoryCoordinator`]. Dropping it closes the session.
pub struct MemorySession {
    shared: Arc<Shared>,
    id: SessionId,
    timeout_ms: u64,
    events: Receiver<Event>,
}

impl std::fmt::Debug for MemorySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySession")
            .field("id", &self.id)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl MemorySession {
    /// Runs `operation` on the locked state with the current time.
    fn with_state<R>(&self, operation: impl FnOnce(&mut State, SessionId, i64) -> R) -> R {
        let now_ms = self.shared.now_ms();
        operation(&mut self.shared.state.lock(), self.id, now_ms)
    }
}

impl Session for MemorySession {
    fn id(&self) -> SessionId {
        self.id
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String, CoordError> {
        self.with_state(|state, id, now_ms| state.create(id, now_ms, path, data, mode))
    }

    fn get_data(&self, path: &str, watch: Watch) -> Result<(Vec<u8>, Stat), CoordError> {
        self.with_state(|state, id, now_ms| state.get_data(id, now_ms, path, watch))
    }

    fn set_data(&self, path: &str, data: &[u8], version: Version) -> Result<Stat, CoordError> {
        self.with_state(|state, id, now_ms| state.set_data(id, now_ms, path, data, version))
    }

    fn delete(&self, path: &str, version: Version) -> Result<(), CoordError> {
        self.with_state(|state, id, now_ms| state.delete(id, now_ms, path, version))
    }

    fn exists(&self, path: &str, watch: Watch) -> Result<Option<Stat>, CoordError> {
        self.with_state(|state, id, now_ms| state.exists(id, now_ms, path, watch))
    }

    fn get_children(&self, path: &str, watch: Watch) -> Result<(Vec<String>, Stat), CoordError> {
        self.with_state(|state, id, now_ms| state.get_children(id, now_ms, path, watch))
    }

    fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>, CoordError> {
        self.with_state(|state, id, now_ms| state.multi(id, now_ms, ops))
    }

    fn sync(&self, path: &str) -> Result<(), CoordError> {
        self.with_state(|state, id, now_ms| state.sync(id, now_ms, path))
    }

    fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<(), CoordError> {
        self.with_state(|state, id, now_ms| state.add_watch(id, now_ms, path, mode))
    }

    fn remove_watches(&self, path: &str, kind: WatcherKind) -> Result<(), CoordError> {
        self.with_state(|state, id, now_ms| state.remove_watches(id, now_ms, path, kind))
    }

    fn stop_heartbeat(&self) {
        self.with_state(|state, id, now_ms| state.stop_heartbeat(id, now_ms));
    }

    fn close(&self) -> Result<(), CoordError> {
        self.with_state(|state, id, now_ms| state.end_session(id, SessionEvent::Closed, now_ms));
        Ok(())
    }
}

impl Drop for MemorySession {
    fn drop(&mut self) {
        let now_ms = self.shared.now_ms();
        self.shared
            .state
            .lock()
            .end_session(self.id, SessionEvent::Closed, now_ms);
    }
}

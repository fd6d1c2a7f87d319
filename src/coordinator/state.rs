//! The in-memory coordinator's state behind its one lock, and every operation on it.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam::channel::Sender;

use super::error::CoordError;
use super::path;
use super::tree::{Change, DataTree, Prep, PrepScope};
use super::txn::{Txn, TxnOp};
use super::types::{
    AddWatchMode, CreateMode, Event, ExpiryReason, Op, OpResult, SessionEvent, SessionId, Stat,
    Version, Watch, WatchedEvent, WatcherKind, Zxid,
};
use super::watches::{Delivery, WatchTable};

/// Whether a live handle is pinging for its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The handle pings: the session does not time out.
    Running,
    /// Pings stopped: the session expires `timeout_ms` after it was last heard from.
    Stopped,
}

/// A live session.
#[derive(Debug)]
pub struct SessionEntry {
    /// Negotiated timeout.
    pub timeout_ms: i64,
    /// Last time an operation or a ping touched it.
    pub last_heard_ms: i64,
    /// Whether its handle pings.
    pub heartbeat: Heartbeat,
    /// Its event queue. Watch events are queued only while fewer than `capacity` wait; the
    /// final session event is always queued, so a consumer learns why its session ended.
    pub events: Sender<Event>,
    /// How many watch events may wait in the queue.
    pub capacity: usize,
}

/// Sees every committed transaction, in zxid order, before it is applied: the seam where
/// durability (appending `encode_txn` bytes to a log) and replication plug in.
pub trait TxnObserver: Send + Sync {
    /// Called under the coordinator's lock, so it must not call back into the coordinator.
    ///
    /// # Errors
    /// An error (typically `StorageFailed`) stops the txn: it is not applied, the operation
    /// fails with the error, and so does every later operation.
    fn committed(&self, txn: &Txn) -> Result<(), CoordError>;
}

/// Everything the coordinator knows, guarded by `Shared::state`.
pub struct State {
    /// The znodes.
    pub tree: DataTree,
    /// Live sessions.
    pub sessions: HashMap<SessionId, SessionEntry>,
    /// Watches of live sessions.
    pub watches: WatchTable,
    /// The id of the next session.
    pub next_session_id: i64,
    /// No session can be due to expire before this time.
    pub next_expiry_check_ms: i64,
    /// Largest accepted data.
    pub max_data_bytes: usize,
    /// Sees each txn before it is applied.
    pub observer: Option<Arc<dyn TxnObserver>>,
    /// Set when the observer refused a txn; every later operation fails with it.
    pub failed: Option<CoordError>,
}

impl State {
    /// An empty tree without sessions.
    pub fn new(max_data_bytes: usize) -> State {
        State {
            tree: DataTree::new(),
            sessions: HashMap::new(),
            watches: WatchTable::default(),
            next_session_id: 1,
            next_expiry_check_ms: i64::MAX,
            max_data_bytes,
            observer: None,
            failed: None,
        }
    }

    /// Replaces the tree with a recovered one and ends its former sessions.
    pub fn restore(&mut self, tree: DataTree, now_ms: i64) {
        let mut owners: Vec<SessionId> = tree.ephemeral_owners().collect();
        owners.sort_unstable();
        self.tree = tree;
        for session in owners {
            self.next_session_id = self.next_session_id.max(session.0.saturating_add(1));
            // A refused txn poisons the state (`failed`), which every later operation reports.
            let _ = self.commit(vec![TxnOp::CloseSession { session }], now_ms);
        }
    }

    /// Registers a session and returns its id.
    pub fn open_session(&mut self, entry: SessionEntry) -> SessionId {
        let id = SessionId(self.next_session_id);
        self.next_session_id += 1;
        self.sessions.insert(id, entry);
        id
    }

    /// Expires due sessions, checks that `session` is live and records that it was heard from.
    fn begin(&mut self, session: SessionId, now_ms: i64) -> Result<(), CoordError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if now_ms >= self.next_expiry_check_ms {
            self.expire_due(now_ms);
        }
        let entry = self
            .sessions
            .get_mut(&session)
            .ok_or(CoordError::SessionExpired { session })?;
        entry.last_heard_ms = now_ms;
        Ok(())
    }

    /// Expires every session whose heartbeat stopped more than its timeout ago; pings the rest.
    pub fn expire_due(&mut self, now_ms: i64) {
        let mut due = Vec::new();
        let mut next_check_ms = i64::MAX;
        for (id, entry) in &mut self.sessions {
            if entry.heartbeat == Heartbeat::Running {
                entry.last_heard_ms = now_ms;
                continue;
            }
            let deadline_ms = entry.last_heard_ms.saturating_add(entry.timeout_ms);
            if deadline_ms <= now_ms {
                due.push(*id);
            } else {
                next_check_ms = next_check_ms.min(deadline_ms);
            }
        }
        self.next_expiry_check_ms = next_check_ms;
        due.sort_unstable();
        for id in due {
            self.end_session(
                id,
                SessionEvent::Expired {
                    reason: ExpiryReason::Timeout,
                },
                now_ms,
            );
        }
    }

    /// Stops the heartbeat of a live session.
    pub fn stop_heartbeat(&mut self, session: SessionId, now_ms: i64) {
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry.heartbeat = Heartbeat::Stopped;
            entry.last_heard_ms = now_ms;
            let deadline_ms = now_ms.saturating_add(entry.timeout_ms);
            self.next_expiry_check_ms = self.next_expiry_check_ms.min(deadline_ms);
        }
    }

    /// Ends a live session: deletes its ephemerals in one txn, drops its watches, sends its last
    /// event. Sessions whose queues overflow on the way end too. Returns whether it was live.
    pub fn end_session(&mut self, session: SessionId, event: SessionEvent, now_ms: i64) -> bool {
        let was_live = self.sessions.contains_key(&session);
        let mut ending = vec![(session, event)];
        while let Some((id, event)) = ending.pop() {
            let Some(entry) = self.sessions.remove(&id) else {
                continue;
            };
            self.watches.remove_session(id);
            let mut overflowed = Vec::new();
            if self.tree.owns_ephemerals(id) {
                // A refused txn leaves the ephemerals in place, as on disk, and poisons the
                // state (`failed`): every later operation reports the failure.
                let _ = self.commit_one(
                    vec![TxnOp::CloseSession { session: id }],
                    now_ms,
                    &mut overflowed,
                );
            }
            // Always fits (the channel itself is unbounded); a gone receiver is fine.
            let _ = entry.events.try_send(Event::Session(event));
            ending.extend(overflowed.into_iter().map(|id| (id, overflow())));
        }
        was_live
    }

    /// Applies a prepared txn, delivers its events, then ends the sessions whose queues
    /// overflowed.
    fn commit(&mut self, ops: Vec<TxnOp>, now_ms: i64) -> Result<(Zxid, Vec<Change>), CoordError> {
        let mut overflowed = Vec::new();
        let committed = self.commit_one(ops, now_ms, &mut overflowed);
        for session in overflowed {
            self.end_session(session, overflow(), now_ms);
        }
        committed
    }

    fn commit_one(
        &mut self,
        ops: Vec<TxnOp>,
        now_ms: i64,
        overflowed: &mut Vec<SessionId>,
    ) -> Result<(Zxid, Vec<Change>), CoordError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let zxid = Zxid(self.tree.last_zxid().0 + 1);
        let txn = Txn {
            zxid,
            time_ms: now_ms,
            ops,
        };
        if let Some(observer) = &self.observer {
            if let Err(error) = observer.committed(&txn) {
                self.failed = Some(error.clone());
                return Err(error);
            }
        }
        let changes = self.tree.apply(&txn);
        if !self.watches.is_empty() {
            self.deliver(&changes, zxid, overflowed);
        }
        Ok((zxid, changes))
    }

    fn deliver(&mut self, changes: &[Change], zxid: Zxid, overflowed: &mut Vec<SessionId>) {
        let mut deliveries = Vec::new();
        for change in changes {
            deliveries.clear();
            let event_path = self.watches.fire(change, &mut deliveries);
            for Delivery { session, kind } in deliveries.drain(..) {
                let Some(entry) = self.sessions.get(&session) else {
                    continue;
                };
                if entry.events.len() >= entry.capacity {
                    if !overflowed.contains(&session) {
                        overflowed.push(session);
                    }
                    continue;
                }
                let event = WatchedEvent {
                    kind,
                    path: event_path.to_owned(),
                    zxid: Some(zxid),
                };
                let _ = entry.events.try_send(Event::Watch(event));
            }
        }
    }

    fn prep(&self, session: SessionId, scope: PrepScope) -> Prep<'_> {
        Prep::new(&self.tree, session, self.max_data_bytes, scope)
    }

    /// `Session::create`.
    pub fn create(
        &mut self,
        session: SessionId,
        now_ms: i64,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, CoordError> {
        self.begin(session, now_ms)?;
        let mut prep = self.prep(session, PrepScope::Single);
        let created = prep.create(path, data, mode)?;
        let ops = prep.into_ops();
        self.commit(ops, now_ms)?;
        Ok(created)
    }

    /// `Session::set_data`.
    pub fn set_data(
        &mut self,
        session: SessionId,
        now_ms: i64,
        path: &str,
        data: &[u8],
        version: Version,
    ) -> Result<Stat, CoordError> {
        self.begin(session, now_ms)?;
        let mut prep = self.prep(session, PrepScope::Single);
        prep.set_data(path, data, version)?;
        let ops = prep.into_ops();
        let (_, changes) = self.commit(ops, now_ms)?;
        let stat = set_stats(&changes)
            .next()
            .expect("a set-data txn changes data");
        Ok(stat)
    }

    /// `Session::delete`.
    pub fn delete(
        &mut self,
        session: SessionId,
        now_ms: i64,
        path: &str,
        version: Version,
    ) -> Result<(), CoordError> {
        self.begin(session, now_ms)?;
        let mut prep = self.prep(session, PrepScope::Single);
        prep.delete(path, version)?;
        let ops = prep.into_ops();
        self.commit(ops, now_ms)?;
        Ok(())
    }

    /// `Session::multi`.
    pub fn multi(
        &mut self,
        session: SessionId,
        now_ms: i64,
        ops: &[Op],
    ) -> Result<Vec<OpResult>, CoordError> {
        self.begin(session, now_ms)?;
        let mut prep = self.prep(session, PrepScope::Multi);
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let result = prepare_op(&mut prep, op).map_err(|error| CoordError::MultiFailed {
                index,
                error: Box::new(error),
            })?;
            results.push(result);
        }
        let txn_ops = prep.into_ops();
        if txn_ops.is_empty() {
            return Ok(results);
        }
        let (_, changes) = self.commit(txn_ops, now_ms)?;
        let mut stats = set_stats(&changes);
        for result in &mut results {
            if let OpResult::SetData { stat } = result {
                *stat = stats.next().expect("one data change per set-data op");
            }
        }
        Ok(results)
    }

    /// `Session::get_data`.
    pub fn get_data(
        &mut self,
        session: SessionId,
        now_ms: i64,
        path: &str,
        watch: Watch,
    ) -> Result<(Vec<u8>, Stat), CoordError> {
        self.begin(session, now_ms)?;
        path::validate(path)?;
        let node = self.tree.get(path).ok_or_else(|| CoordError::NoNode {
            path: path.to_owned(),
        })?;
        let read = (node.data.clone(), node.stat);
        if watch == Watch::Set {
            self.watches.add_data(path, session);
        }
        Ok(read)
    }

    /// `Session::exists`.
    pub fn exists(
        &mut self,
        session: SessionId,
        now_ms: i64,
        path: &str,
        watch: Watch,
    ) -> Result<Option<Stat>, CoordError> {
        self.begin(session, now_ms)?;
        path::validate(path)?;
        if watch == Watch::Set {
            self.watches.add_data(path, session);
        }
        Ok(self.tree.get(path).map(|node| node.stat))
    }

    /// `Session::get_children`.
    pub fn get_children(
        &mut self,
        session: SessionId,
        now_ms: i64,
        path: &str,
        watch: Watch,
    ) -> Result<(Vec<String>, Stat), CoordError> {
        self.begin(session, now_ms)?;
        path::validate(path)?;
        let node = self.tree.get(path).ok_or_else(|| CoordError::NoNode {
            path: path.to_owned(),
        })?;
        let read = (node.children.iter().cloned().collect(), node.stat);
        if watch == Watch::Set {
            self.watches.add_children(path, session);
        }
        Ok(read)
    }

    /// `Session::sync`: every committed write is already visible, so it only checks.
    pub fn sync(&mut self, session: SessionId, now_ms: i64, path: &str) -> Result<(), CoordError> {
        self.begin(session, now_ms)?;
        path::validate(path)
    }

    /// `Session::add_watch`.
    pub fn add_watch(
        &mut self,
        session: SessionId,
        now_ms: i64,
        path: &str,
        mode: AddWatchMode,
    ) -> Result<(), CoordError> {
        self.begin(session, now_ms)?;
        path::validate(path)?;
        self.watches.add_persistent(path, session, mode);
        Ok(())
    }

    /// `Session::remove_watches`.
    pub fn remove_watches(
        &mut self,
        session: SessionId,
        now_ms: i64,
        path: &str,
        kind: WatcherKind,
    ) -> Result<(), CoordError> {
        self.begin(session, now_ms)?;
        path::validate(path)?;
        if self.watches.remove(path, session, kind) {
            Ok(())
        } else {
            Err(CoordError::NoWatcher {
                path: path.to_owned(),
            })
        }
    }
}

fn overflow() -> SessionEvent {
    SessionEvent::Expired {
        reason: ExpiryReason::QueueOverflow,
    }
}

fn prepare_op(prep: &mut Prep<'_>, op: &Op) -> Result<OpResult, CoordError> {
    match op {
        Op::Create { path, data, mode } => prep
            .create(path, data, *mode)
            .map(|path| OpResult::Create { path }),
        Op::Delete { path, version } => prep.delete(path, *version).map(|()| OpResult::Delete),
        Op::SetData {
            path,
            data,
            version,
        } => prep
            .set_data(path, data, *version)
            .map(|_| OpResult::SetData {
                stat: Stat::default(),
            }),
        Op::Check { path, version } => prep.check(path, *version).map(|()| OpResult::Check),
    }
}

fn set_stats(changes: &[Change]) -> impl Iterator<Item = Stat> + '_ {
    changes.iter().filter_map(|change| match change {
        Change::DataChanged(_, stat) => Some(*stat),
        _ => None,
    })
}

//! [`ZooKeeperSession`]: one ZooKeeper session, its watches and its event pump.

use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crossbeam::channel::{self, Receiver, Sender};
use futures::future;
use futures::stream::{self, StreamExt};
use parking_lot::Mutex;
use zookeeper_client as zk;

use super::super::path::{validate, validate_non_root};
use super::super::{
    AddWatchMode, CoordError, CreateMode, Event, ExpiryReason, Op, OpResult, Session,
    SessionConfig, SessionEvent, SessionId, Stat, Version, Watch, WatcherKind,
};
use super::convert::{self, parent_of};
use super::events::Watches;
use super::CoordinatorShared;

/// A session on a ZooKeeper ensemble. Dropping it closes the session.
///
/// [`Session::stop_heartbeat`] does nothing here: the client crate pings on its own and has no
/// way to stop. Tests that need a dead client expire the session with
/// [`Coordinator::expire_session`](super::super::Coordinator::expire_session) or kill the
/// process.
pub struct ZooKeeperSession {
    shared: Arc<SessionShared>,
    coordinator: Arc<CoordinatorShared>,
    events: Receiver<Event>,
}

/// What the session's handle, its requests and its event pump share.
pub(crate) struct SessionShared {
    id: SessionId,
    timeout_ms: u64,
    /// Watch events queued beyond this expire the session (`QueueOverflow`).
    capacity: usize,
    request_timeout: Duration,
    max_data_bytes: usize,
    /// Bounded at `capacity + 1`: the last slot is kept for the session's end.
    sender: Sender<Event>,
    state: Mutex<State>,
}

/// Guarded by `SessionShared::state`; locked only on the runtime thread and never across an
/// await.
struct State {
    /// `None` once the session ended.
    client: Option<zk::Client>,
    watches: Watches,
    ended: bool,
    /// Connection changes the pump has seen. `zookeeper-client` 0.11.2 does not set persistent
    /// and recursive watches again when it reconnects (its `resend_watches` means to send them
    /// in a `SetWatches2` request but always picks `SetWatches`, which has no field for them), so
    /// the adapter does, as soon as the pump sees the new connection and before the session's
    /// next request.
    connection_changes: u64,
    /// The value of `connection_changes` when the persistent watches were last all set again.
    rewatched_at: u64,
    /// The pump's waker: every drain of the watches polls with it, so the pump stays the one
    /// woken by the next notification.
    pump_waker: Option<Waker>,
}

impl ZooKeeperSession {
    pub(crate) fn open(
        coordinator: &Arc<CoordinatorShared>,
        config: SessionConfig,
    ) -> Result<Self, CoordError> {
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
        let settings = &coordinator.config;
        let connect_timeout = Duration::from_millis(settings.connect_timeout_ms);
        let connector =
            zk::Client::connector().with_session_timeout(Duration::from_millis(config.timeout_ms));
        let connect = settings.connect.clone();
        let client = coordinator
            .runtime
            .run(async move { convert::connect(connector, &connect, connect_timeout).await })??;
        let (sender, events) = channel::bounded(config.event_queue_capacity.saturating_add(1));
        let states = client.state_watcher();
        let shared = Arc::new(SessionShared {
            id: SessionId(client.session_id().0),
            timeout_ms: u64::try_from(client.session_timeout().as_millis()).unwrap_or(u64::MAX),
            capacity: config.event_queue_capacity,
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
            max_data_bytes: settings.max_data_bytes,
            sender,
            state: Mutex::new(State {
                client: Some(client),
                watches: Watches::default(),
                ended: false,
                connection_changes: 0,
                rewatched_at: 0,
                pump_waker: None,
            }),
        });
        coordinator.runtime.spawn(pump(Arc::clone(&shared), states));
        let mut sessions = coordinator.sessions.lock();
        sessions.retain(|_, session| session.strong_count() > 0);
        sessions.insert(shared.id, Arc::downgrade(&shared));
        drop(sessions);
        Ok(ZooKeeperSession {
            shared,
            coordinator: Arc::clone(coordinator),
            events,
        })
    }

    /// Fails with `SessionExpired` once the session ended.
    fn check_live(&self) -> Result<(), CoordError> {
        if self.shared.state.lock().ended {
            return Err(self.shared.expired());
        }
        Ok(())
    }

    fn check_size(&self, data: &[u8]) -> Result<(), CoordError> {
        if data.len() > self.shared.max_data_bytes {
            return Err(CoordError::DataTooLarge {
                size_bytes: data.len(),
                max_bytes: self.shared.max_data_bytes,
            });
        }
        Ok(())
    }

    /// Runs `request` with the session's client on the runtime thread, then moves the watch
    /// events that arrived before its reply to the session's channel.
    fn request<T, F, Fut>(&self, request: F) -> Result<T, CoordError>
    where
        T: Send + 'static,
        F: FnOnce(zk::Client, Arc<SessionShared>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, CoordError>> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        self.coordinator.runtime.run(async move {
            let client = shared.client()?;
            let timeout = shared.request_timeout;
            let run = async {
                shared.connected(&client).await?;
                shared.rewatch(&client).await?;
                request(client, Arc::clone(&shared)).await
            };
            let result = tokio::time::timeout(timeout, run)
                .await
                .unwrap_or(Err(CoordError::ConnectionLoss));
            shared.deliver_pending();
            result
        })?
    }
}

impl SessionShared {
    fn expired(&self) -> CoordError {
        CoordError::SessionExpired { session: self.id }
    }

    fn client(&self) -> Result<zk::Client, CoordError> {
        let state = self.state.lock();
        match (&state.client, state.ended) {
            (Some(client), false) => Ok(client.clone()),
            _ => Err(self.expired()),
        }
    }

    /// Waits until the client is connected, so that a request is never queued in the client
    /// while it reconnects: the client would send it on the new connection before the
    /// persistent watches are set again, and its change would fire nothing.
    async fn connected(&self, client: &zk::Client) -> Result<(), CoordError> {
        let mut states = client.state_watcher();
        loop {
            match states.peek_state() {
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                    return Ok(())
                }
                state if state.is_terminated() => return Err(self.expired()),
                _ => {
                    states.changed().await;
                }
            }
        }
    }

    /// Sets the persistent watches again after a reconnect (see `State::connection_changes`).
    /// On failure the connection broke again: the next request tries again, and this one fails
    /// with `ConnectionLoss` rather than run before its watches are back. Two of these may run
    /// at once (the pump's and a request's); setting a watch twice is harmless.
    async fn rewatch(&self, client: &zk::Client) -> Result<(), CoordError> {
        let (changes, targets) = {
            let state = self.state.lock();
            if state.rewatched_at == state.connection_changes || state.ended {
                return Ok(());
            }
            (state.connection_changes, state.watches.persistent())
        };
        // All at once: the client sends them back to back, so a reconnect costs one round
        // trip however many watches there are, and they all go before the caller's request.
        let watchers = future::join_all(targets.iter().map(|(path, kind)| {
            let mode = match kind {
                WatcherKind::PersistentRecursive => zk::AddWatchMode::PersistentRecursive,
                _ => zk::AddWatchMode::Persistent,
            };
            client.watch(path, mode)
        }))
        .await;
        for ((path, kind), watcher) in targets.iter().zip(watchers) {
            let watcher = watcher.map_err(|_| CoordError::ConnectionLoss)?;
            self.deliver_pending();
            self.state
                .lock()
                .watches
                .replace_persistent(path, *kind, watcher);
        }
        let mut state = self.state.lock();
        state.rewatched_at = state.rewatched_at.max(changes);
        Ok(())
    }

    fn error(&self, error: zk::Error, path: &str) -> CoordError {
        convert::error(error, path, self.id)
    }

    fn add_oneshot(&self, path: &str, kind: WatcherKind, watcher: zk::OneshotWatcher) {
        let mut state = self.state.lock();
        if !state.ended {
            state.watches.add_oneshot(path, kind, watcher);
        }
    }

    /// Drains the watches with the pump's waker (so the pump stays registered).
    fn deliver_pending(&self) {
        let mut state = self.state.lock();
        let waker = state
            .pump_waker
            .clone()
            .unwrap_or_else(futures::task::noop_waker);
        self.deliver(&mut state, &mut Context::from_waker(&waker));
    }

    /// Moves delivered watch events to the channel; expires the session if it overflows.
    fn deliver(&self, state: &mut State, cx: &mut Context<'_>) {
        if state.ended {
            return;
        }
        for event in state.watches.drain(cx) {
            if self.sender.len() >= self.capacity {
                let reason = ExpiryReason::QueueOverflow;
                tokio::spawn(self.end(state, SessionEvent::Expired { reason }));
                return;
            }
            // Cannot be full: at most `capacity` watch events are ever queued, and the channel
            // holds one more.
            let _ = self.sender.try_send(Event::Watch(event));
        }
    }

    /// Ends the session in `state`; the future closes the connection (which deletes the
    /// session's ephemeral nodes, if it is still live) and then queues `event`, the last one.
    fn end(&self, state: &mut State, event: SessionEvent) -> impl Future<Output = ()> + 'static {
        state.ended = true;
        state.watches.clear();
        if let Some(waker) = state.pump_waker.take() {
            waker.wake();
        }
        let client = state.client.take();
        let sender = self.sender.clone();
        let timeout = self.request_timeout;
        async move {
            if let Some(client) = client {
                close_client(client, timeout).await;
            }
            let _ = sender.try_send(Event::Session(event));
        }
    }

    /// Expires the session now: its connection closes it, which deletes its ephemeral nodes
    /// in one transaction and fires the watches of other sessions just as an expiry does, and
    /// its handle is told `Expired { reason: Forced }`.
    ///
    /// Resuming the session on a second connection and closing it there (the way ZooKeeper's
    /// own tests expire a session) does not work with this client: it reconnects at once, and
    /// the two connections take the session from each other until one gives up.
    pub(crate) fn expire(
        self: &Arc<Self>,
        coordinator: &CoordinatorShared,
    ) -> Result<(), CoordError> {
        let shared = Arc::clone(self);
        coordinator.runtime.run(async move {
            let end = {
                let mut state = shared.state.lock();
                if state.ended {
                    return Err(shared.expired());
                }
                let reason = ExpiryReason::Forced;
                shared.end(&mut state, SessionEvent::Expired { reason })
            };
            end.await;
            Ok(())
        })?
    }
}

/// Drops the client, which closes its session, and waits (bounded) until the server confirmed.
async fn close_client(client: zk::Client, timeout: Duration) {
    let mut states = client.state_watcher();
    drop(client);
    let _ = tokio::time::timeout(timeout, async {
        while !states.peek_state().is_terminated() {
            states.changed().await;
        }
    })
    .await;
}

/// Moves watch events to the session's channel as they arrive, and ends the session when the
/// ensemble expires it.
async fn pump(shared: Arc<SessionShared>, states: zk::StateWatcher) {
    let mut states = stream::unfold(states, |mut states| async move {
        let state = states.changed().await;
        Some((state, states))
    })
    .boxed();
    let ending = poll_fn(|cx| {
        let mut state = shared.state.lock();
        if state.ended {
            return Poll::Ready(None);
        }
        state.pump_waker = Some(cx.waker().clone());
        shared.deliver(&mut state, cx);
        if state.ended {
            return Poll::Ready(None);
        }
        while let Poll::Ready(Some(session_state)) = states.poll_next_unpin(cx) {
            match session_state {
                zk::SessionState::Disconnected => state.connection_changes += 1,
                // The pump starts connected, so a connected state is always a new connection,
                // even when the `Disconnected` before it was overwritten before the pump saw it.
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                    state.connection_changes += 1;
                    if let Some(client) = state.client.clone() {
                        let shared = Arc::clone(&shared);
                        tokio::spawn(async move {
                            // A failure leaves the watches to the next request.
                            let _ = shared.rewatch(&client).await;
                        });
                    }
                }
                _ => {}
            }
            if matches!(
                session_state,
                zk::SessionState::Expired | zk::SessionState::AuthFailed
            ) {
                let reason = ExpiryReason::Timeout;
                let event = SessionEvent::Expired { reason };
                return Poll::Ready(Some(shared.end(&mut state, event)));
            }
        }
        Poll::Pending
    })
    .await;
    if let Some(end) = ending {
        end.await;
    }
}

async fn bad_version(client: &zk::Client, path: &str, expected: Version) -> CoordError {
    let actual = match client.check_stat(path).await {
        Ok(Some(stat)) => stat.version,
        _ => -1,
    };
    CoordError::BadVersion {
        path: path.to_owned(),
        expected: match expected {
            Version::Exactly(version) => version,
            Version::Any => -1,
        },
        actual,
    }
}

/// Validates a create's path as the reference does: a sequential path is a prefix ("/locks/" or
/// "/locks/n_"), checked with a suffix.
fn validate_create_path(path: &str, mode: CreateMode) -> Result<(), CoordError> {
    if mode.is_sequential() {
        return validate_non_root(&format!("{path}0"));
    }
    validate_non_root(path)
}

fn create_options(mode: CreateMode) -> zk::CreateOptions<'static> {
    convert::create_mode(mode).with_acls(zk::Acls::anyone_all())
}

fn op_path(op: &Op) -> &str {
    match op {
        Op::Create { path, .. }
        | Op::Delete { path, .. }
        | Op::SetData { path, .. }
        | Op::Check { path, .. } => path,
    }
}

impl ZooKeeperSession {
    fn validate_op(&self, op: &Op) -> Result<(), CoordError> {
        match op {
            Op::Create { path, data, mode } => {
                validate_create_path(path, *mode)?;
                self.check_size(data)
            }
            Op::Delete { path, .. } => validate_non_root(path),
            Op::SetData { path, data, .. } => {
                validate(path)?;
                self.check_size(data)
            }
            Op::Check { path, .. } => validate(path),
        }
    }
}

/// Translates the failure of op `index`.
async fn multi_failure(
    shared: &SessionShared,
    client: &zk::Client,
    ops: &[Op],
    index: usize,
    source: zk::Error,
) -> CoordError {
    let Some(op) = ops.get(index) else {
        return shared.error(source, "/");
    };
    let path = op_path(op);
    let error = match (source, op) {
        (zk::Error::BadVersion, Op::Delete { version, .. })
        | (zk::Error::BadVersion, Op::SetData { version, .. })
        | (zk::Error::BadVersion, Op::Check { version, .. }) => {
            match bad_version(client, path, *version).await {
                CoordError::BadVersion {
                    path,
                    expected,
                    actual,
                } => CoordError::BadVersion {
                    actual: version_within_multi(&ops[..index], &path, actual),
                    path,
                    expected,
                },
                other => other,
            }
        }
        (zk::Error::NoNode, Op::Create { .. }) => shared.error(zk::Error::NoNode, parent_of(path)),
        (source, _) => shared.error(source, path),
    };
    CoordError::MultiFailed {
        index,
        error: Box::new(error),
    }
}

/// The version of `path` as the ops before the failing one left it, from its version before
/// the `multi` (-1 for none): the server does not say, and the failed `multi` changed nothing.
fn version_within_multi(before: &[Op], path: &str, stored: i32) -> i32 {
    before
        .iter()
        .filter(|op| op_path(op) == path)
        .fold(stored, |version, op| match op {
            Op::Create { .. } => 0,
            Op::SetData { .. } => version.saturating_add(1),
            Op::Delete { .. } => -1,
            Op::Check { .. } => version,
        })
}

fn add_op(writer: &mut zk::MultiWriter<'_>, op: &Op) -> Result<(), zk::Error> {
    match op {
        Op::Create { path, data, mode } => writer.add_create(path, data, &create_options(*mode)),
        Op::Delete { path, version } => writer.add_delete(path, convert::version(*version)),
        Op::SetData {
            path,
            data,
            version,
        } => writer.add_set_data(path, data, convert::version(*version)),
        Op::Check { path, version } => {
            writer.add_check_version(path, convert::version(*version).unwrap_or(-1))
        }
    }
}

fn op_result(result: zk::MultiWriteResult) -> Result<OpResult, CoordError> {
    match result {
        zk::MultiWriteResult::Create { path, .. } => Ok(OpResult::Create { path }),
        zk::MultiWriteResult::Delete => Ok(OpResult::Delete),
        zk::MultiWriteResult::SetData { stat } => Ok(OpResult::SetData {
            stat: convert::stat(&stat),
        }),
        zk::MultiWriteResult::Check => Ok(OpResult::Check),
        _ => Err(CoordError::Refused {
            reason: "unknown multi result",
        }),
    }
}

impl Session for ZooKeeperSession {
    fn id(&self) -> SessionId {
        self.shared.id
    }

    fn timeout_ms(&self) -> u64 {
        self.shared.timeout_ms
    }

    fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String, CoordError> {
        self.check_live()?;
        validate_create_path(path, mode)?;
        self.check_size(data)?;
        let (path, data) = (path.to_owned(), data.to_vec());
        self.request(move |client, shared| async move {
            match client.create(&path, &data, &create_options(mode)).await {
                Ok((_, sequence)) if mode.is_sequential() => Ok(format!("{path}{sequence}")),
                Ok(_) => Ok(path),
                Err(zk::Error::NoNode) => Err(shared.error(zk::Error::NoNode, parent_of(&path))),
                Err(error) => Err(shared.error(error, &path)),
            }
        })
    }

    fn get_data(&self, path: &str, watch: Watch) -> Result<(Vec<u8>, Stat), CoordError> {
        self.check_live()?;
        validate(path)?;
        let path = path.to_owned();
        self.request(move |client, shared| async move {
            let read = match watch {
                Watch::None => client.get_data(&path).await,
                Watch::Set => {
                    client
                        .get_and_watch_data(&path)
                        .await
                        .map(|(data, stat, watcher)| {
                            shared.add_oneshot(&path, WatcherKind::Data, watcher);
                            (data, stat)
                        })
                }
            };
            read.map(|(data, stat)| (data, convert::stat(&stat)))
                .map_err(|error| shared.error(error, &path))
        })
    }

    fn set_data(&self, path: &str, data: &[u8], version: Version) -> Result<Stat, CoordError> {
        self.check_live()?;
        validate(path)?;
        self.check_size(data)?;
        let (path, data) = (path.to_owned(), data.to_vec());
        self.request(move |client, shared| async move {
            match client
                .set_data(&path, &data, convert::version(version))
                .await
            {
                Ok(stat) => Ok(convert::stat(&stat)),
                Err(zk::Error::BadVersion) => Err(bad_version(&client, &path, version).await),
                Err(error) => Err(shared.error(error, &path)),
            }
        })
    }

    fn delete(&self, path: &str, version: Version) -> Result<(), CoordError> {
        self.check_live()?;
        validate_non_root(path)?;
        let path = path.to_owned();
        self.request(move |client, shared| async move {
            match client.delete(&path, convert::version(version)).await {
                Ok(()) => Ok(()),
                Err(zk::Error::BadVersion) => Err(bad_version(&client, &path, version).await),
                Err(error) => Err(shared.error(error, &path)),
            }
        })
    }

    fn exists(&self, path: &str, watch: Watch) -> Result<Option<Stat>, CoordError> {
        self.check_live()?;
        validate(path)?;
        let path = path.to_owned();
        self.request(move |client, shared| async move {
            let stat = match watch {
                Watch::None => client.check_stat(&path).await,
                Watch::Set => client
                    .check_and_watch_stat(&path)
                    .await
                    .map(|(stat, watcher)| {
                        shared.add_oneshot(&path, WatcherKind::Data, watcher);
                        stat
                    }),
            };
            stat.map(|stat| stat.as_ref().map(convert::stat))
                .map_err(|error| shared.error(error, &path))
        })
    }

    fn get_children(&self, path: &str, watch: Watch) -> Result<(Vec<String>, Stat), CoordError> {
        self.check_live()?;
        validate(path)?;
        let path = path.to_owned();
        self.request(move |client, shared| async move {
            let read =
                match watch {
                    Watch::None => client.get_children(&path).await,
                    Watch::Set => client.get_and_watch_children(&path).await.map(
                        |(children, stat, watcher)| {
                            shared.add_oneshot(&path, WatcherKind::Children, watcher);
                            (children, stat)
                        },
                    ),
                };
            let (mut children, stat) = read.map_err(|error| shared.error(error, &path))?;
            children.sort_unstable();
            Ok((children, convert::stat(&stat)))
        })
    }

    fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>, CoordError> {
        self.check_live()?;
        for (index, op) in ops.iter().enumerate() {
            self.validate_op(op)
                .map_err(|error| CoordError::MultiFailed {
                    index,
                    error: Box::new(error),
                })?;
        }
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let ops = ops.to_vec();
        self.request(move |client, shared| async move {
            let mut writer = client.new_multi_writer();
            for (index, op) in ops.iter().enumerate() {
                if let Err(source) = add_op(&mut writer, op) {
                    return Err(multi_failure(&shared, &client, &ops, index, source).await);
                }
            }
            match writer.commit().await {
                Ok(results) => results.into_iter().map(op_result).collect(),
                Err(zk::MultiWriteError::OperationFailed { index, source }) => {
                    Err(multi_failure(&shared, &client, &ops, index, source).await)
                }
                Err(zk::MultiWriteError::RequestFailed { source }) => {
                    Err(shared.error(source, "/"))
                }
            }
        })
    }

    fn sync(&self, path: &str) -> Result<(), CoordError> {
        self.check_live()?;
        validate(path)?;
        let path = path.to_owned();
        self.request(move |client, shared| async move {
            client
                .sync(&path)
                .await
                .map_err(|error| shared.error(error, &path))
        })
    }

    fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<(), CoordError> {
        self.check_live()?;
        validate(path)?;
        let path = path.to_owned();
        let (zk_mode, kind) = match mode {
            AddWatchMode::Persistent => (zk::AddWatchMode::Persistent, WatcherKind::Persistent),
            AddWatchMode::PersistentRecursive => (
                zk::AddWatchMode::PersistentRecursive,
                WatcherKind::PersistentRecursive,
            ),
        };
        self.request(move |client, shared| async move {
            let watcher = client
                .watch(&path, zk_mode)
                .await
                .map_err(|error| shared.error(error, &path))?;
            let mut state = shared.state.lock();
            if !state.ended {
                state.watches.add_persistent(&path, kind, watcher);
            }
            Ok(())
        })
    }

    fn remove_watches(&self, path: &str, kind: WatcherKind) -> Result<(), CoordError> {
        self.check_live()?;
        validate(path)?;
        let path = path.to_owned();
        self.request(move |_client, shared| async move {
            shared.deliver_pending();
            if shared.state.lock().watches.remove(&path, kind) {
                Ok(())
            } else {
                Err(CoordError::NoWatcher { path })
            }
        })
    }

    fn stop_heartbeat(&self) {}

    fn close(&self) -> Result<(), CoordError> {
        let shared = Arc::clone(&self.shared);
        self.coordinator.runtime.run(async move {
            let end = {
                let mut state = shared.state.lock();
                (!state.ended).then(|| shared.end(&mut state, SessionEvent::Closed))
            };
            if let Some(end) = end {
                end.await;
            }
        })?;
        self.coordinator.sessions.lock().remove(&self.shared.id);
        Ok(())
    }
}

impl Drop for ZooKeeperSession {
    fn drop(&mut self) {
        // A session that cannot be closed now expires on the server after its timeout.
        let _ = self.close();
    }
}

impl std::fmt::Debug for ZooKeeperSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZooKeeperSession")
            .field("id", &self.shared.id)
            .field("timeout_ms", &self.shared.timeout_ms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_within_multi_replays_earlier_ops_on_the_path() {
        let ops = [
            Op::set_data("/m", b"x".to_vec(), Version::Any),
            Op::check("/other", Version::Any),
            Op::set_data("/m", b"y".to_vec(), Version::Any),
        ];
        assert_eq!(version_within_multi(&ops, "/m", 0), 2);
        assert_eq!(version_within_multi(&ops, "/other", 5), 5);
        let recreated = [
            Op::delete("/m", Version::Any),
            Op::create("/m", b"".to_vec(), CreateMode::Persistent),
        ];
        assert_eq!(version_within_multi(&recreated, "/m", 7), 0);
        assert_eq!(version_within_multi(&recreated[..1], "/m", 7), -1);
    }

    #[test]
    fn sequential_prefixes_are_checked_with_a_suffix() {
        assert_eq!(
            validate_create_path("/q/", CreateMode::PersistentSequential),
            Ok(())
        );
        assert!(validate_create_path("/q/", CreateMode::Persistent).is_err());
        assert!(validate_create_path("/", CreateMode::Persistent).is_err());
    }
}

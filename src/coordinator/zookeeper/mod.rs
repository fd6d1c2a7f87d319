//! [`ZooKeeperCoordinator`]: the [`Coordinator`] trait against a real ZooKeeper ensemble (3.8 or
//! newer), through the `zookeeper-client` crate.
//!
//! # Threads and runtime
//! The client crate is asynchronous. Each coordinator owns one thread running a single-threaded
//! `tokio` runtime; every session's connection task, every request and every session's event
//! pump runs on it, and the trait's methods block the calling thread on a result channel. The
//! rest of the crate stays synchronous and never sees a future.
//!
//! One thread is also what makes event delivery exact. The client crate hands each fired watch
//! to the watcher that asked for it; a request's reply is processed after every notification the
//! server sent before it (ZooKeeper's ordering guarantee), and on a single thread nothing runs in
//! between. So when a request completes, the adapter moves every pending watch event to the
//! session's channel before returning: a session sees an event before it can read the change.
//!
//! # Where it differs from `MemoryCoordinator`
//! - `BadVersion::actual` is read back after the failure (ZooKeeper does not report it), so it
//!   may be newer than the version that failed the check.
//! - `NoNode` of a `create` names the parent; of a `multi`, the op's path.
//! - `WatchedEvent::zxid` is `None` (ZooKeeper 3.8 does not send it).
//! - Events of different watches that arrive in one read from the socket are ordered by when
//!   the watch was set, not by zxid (the server does not say).
//! - Containers are deleted by the server's reaper, `znode.container.checkIntervalMs` later.
//! - A reconnect within a live session (another server of the ensemble, or the same one after a
//!   blip) is invisible: requests in flight may fail with `ConnectionLoss`, watches are set again
//!   by the client. Requests fail with `ConnectionLoss` after `request_timeout_ms` without reply.

mod convert;
mod events;
mod runtime;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use zookeeper_client as zk;

use super::{CoordError, Coordinator, Session, SessionConfig, SessionId};
use runtime::RuntimeHost;
use session::SessionShared;

pub use session::ZooKeeperSession;

/// How to reach an ensemble.
///
/// ## Defaults
/// - `request_timeout_ms`: 10 000. A request without a reply for this long fails with
///   `ConnectionLoss` (its outcome is unknown).
/// - `connect_timeout_ms`: 10 000. Opening a session that takes longer fails with
///   `ConnectionLoss`.
/// - `max_data_bytes`: 1 044 480 (ZooKeeper's default `jute.maxbuffer`, 1 MiB, less 4 KiB for
///   the request's header and path). Larger data fails with `DataTooLarge` before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooKeeperConfig {
    /// ZooKeeper's connect string: `host:port[,host:port...][/chroot]`.
    pub connect: String,
    /// See the defaults.
    pub request_timeout_ms: u64,
    /// See the defaults.
    pub connect_timeout_ms: u64,
    /// See the defaults.
    pub max_data_bytes: usize,
}

impl ZooKeeperConfig {
    /// A config for `connect` with the defaults.
    pub fn new(connect: impl Into<String>) -> Self {
        ZooKeeperConfig {
            connect: connect.into(),
            request_timeout_ms: 10_000,
            connect_timeout_ms: 10_000,
            max_data_bytes: 1_044_480,
        }
    }

    /// Sets the request timeout.
    pub fn with_request_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.request_timeout_ms = timeout_ms;
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.connect_timeout_ms = timeout_ms;
        self
    }
}

/// A [`Coordinator`] backed by a ZooKeeper ensemble. Every [`Coordinator::session`] is a real
/// ZooKeeper session on its own connection.
pub struct ZooKeeperCoordinator {
    shared: Arc<CoordinatorShared>,
}

/// What the coordinator's sessions share with it.
pub(crate) struct CoordinatorShared {
    pub(crate) config: ZooKeeperConfig,
    pub(crate) runtime: RuntimeHost,
    /// The live sessions opened here, by id, for `expire_session`. Guarded by its mutex;
    /// entries of dropped sessions are pruned when a session opens.
    pub(crate) sessions: Mutex<HashMap<SessionId, Weak<SessionShared>>>,
}

impl ZooKeeperCoordinator {
    /// Connects to the ensemble once to check that it serves, and creates the connect string's
    /// chroot if it is missing (as Kafka does with `zookeeper.connect`).
    ///
    /// # Errors
    /// `ConnectionLoss` if no server of the connect string serves within `connect_timeout_ms`;
    /// `BadArguments` for a malformed connect string.
    pub fn connect(config: ZooKeeperConfig) -> Result<Self, CoordError> {
        let runtime = RuntimeHost::start()?;
        let shared = Arc::new(CoordinatorShared {
            config,
            runtime,
            sessions: Mutex::new(HashMap::new()),
        });
        create_chroot(&shared)?;
        Ok(ZooKeeperCoordinator { shared })
    }

    /// The connect string.
    pub fn connect_string(&self) -> &str {
        &self.shared.config.connect
    }

    /// Opens a session and returns the concrete handle (the trait returns it boxed).
    ///
    /// # Errors
    /// As [`Coordinator::session`].
    pub fn open_session(&self, config: SessionConfig) -> Result<ZooKeeperSession, CoordError> {
        ZooKeeperSession::open(&self.shared, config)
    }
}

impl Coordinator for ZooKeeperCoordinator {
    fn session(&self, config: SessionConfig) -> Result<Arc<dyn Session>, CoordError> {
        Ok(Arc::new(self.open_session(config)?))
    }

    fn expire_session(&self, session: SessionId) -> Result<(), CoordError> {
        let owner = self.shared.sessions.lock().get(&session).cloned();
        match owner.and_then(|owner| owner.upgrade()) {
            Some(owner) => owner.expire(&self.shared),
            None => Err(CoordError::SessionExpired { session }),
        }
    }
}

/// Splits `host:port,.../chroot` into the hosts and the chroot (`None` without one).
fn split_chroot(connect: &str) -> (&str, Option<&str>) {
    match connect.find('/') {
        Some(at) if at + 1 < connect.len() => (&connect[..at], Some(&connect[at..])),
        Some(at) => (&connect[..at], None),
        None => (connect, None),
    }
}

fn create_chroot(shared: &CoordinatorShared) -> Result<(), CoordError> {
    let (hosts, chroot) = split_chroot(&shared.config.connect);
    let hosts = hosts.to_owned();
    let chroot = chroot.map(str::to_owned);
    let connect_timeout = Duration::from_millis(shared.config.connect_timeout_ms);
    shared.runtime.run(async move {
        let client = convert::connect(
            zk::Client::connector().with_session_timeout(connect_timeout),
            &hosts,
            connect_timeout,
        )
        .await?;
        if let Some(chroot) = chroot {
            let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
            tokio::time::timeout(connect_timeout, client.mkdir(&chroot, &options))
                .await
                .map_err(|_| CoordError::ConnectionLoss)?
                .map_err(|error| convert::error(error, &chroot, SessionId::NONE))?;
        }
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroot_is_split_from_the_hosts() {
        assert_eq!(split_chroot("a:1,b:2/x/y"), ("a:1,b:2", Some("/x/y")));
        assert_eq!(split_chroot("a:1/"), ("a:1", None));
        assert_eq!(split_chroot("a:1"), ("a:1", None));
    }

    #[test]
    fn an_unreachable_ensemble_fails_with_connection_loss() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let config = ZooKeeperConfig::new(format!("127.0.0.1:{port}")).with_connect_timeout_ms(300);
        assert!(matches!(
            ZooKeeperCoordinator::connect(config).map(|_| ()),
            Err(CoordError::ConnectionLoss)
        ));
    }
}

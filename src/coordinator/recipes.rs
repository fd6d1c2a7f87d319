//! Recipes on any [`Coordinator`](super::Coordinator): leader election and a lock.
//!
//! Both follow ZooKeeper's recipe: each contender creates an ephemeral sequential node under a
//! directory; the lowest sequence number leads (holds the lock); every other contender watches
//! only the node just below its own, so a departure wakes exactly one contender (no herd
//! effect). A contender whose session ends loses its node, and with it its place.
//!
//! A recipe reads the events of its session. Either give it a session of its own and call the
//! blocking `wait_*` methods, which consume that session's events, or keep your own event loop
//! and pass each event to `handle`.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use logbus::coordinator::recipes::{LeaderElection, Standing};
//! use logbus::coordinator::{Coordinator, MemoryCoordinator, SessionConfig};
//!
//! # fn main() -> Result<(), logbus::coordinator::CoordError> {
//! let coordinator = MemoryCoordinator::new();
//! let first = LeaderElection::join(coordinator.session(SessionConfig::default())?, "/election", b"1")?;
//! let mut second = LeaderElection::join(coordinator.session(SessionConfig::default())?, "/election", b"2")?;
//! assert!(first.is_leader());
//! assert!(!second.is_leader());
//! first.resign()?;
//! assert_eq!(second.wait_for_leadership(Duration::from_secs(10))?, Standing::First);
//! assert_eq!(second.leader()?.map(|(_, data)| data), Some(b"2".to_vec()));
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::CoordError;
use super::path;
use super::session::Session;
use super::types::{CreateMode, Event, Version, Watch};

/// The name prefix of contender nodes; the sequence suffix follows.
pub const CONTENDER_PREFIX: &str = "n_";

/// Where a contender stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Its node is the lowest: it leads, or holds the lock.
    First,
    /// It waits for the node just below its own to go.
    Waiting {
        /// The watched node.
        predecessor: String,
    },
}

/// One place in a queue of ephemeral sequential nodes.
struct Contender {
    session: Arc<dyn Session>,
    dir: String,
    node: String,
    standing: Standing,
}

impl Contender {
    fn enqueue(session: Arc<dyn Session>, dir: &str, data: &[u8]) -> Result<Contender, CoordError> {
        path::validate_non_root(dir)?;
        ensure_dir(session.as_ref(), dir)?;
        let prefix = path::join(dir, CONTENDER_PREFIX);
        let node = session.create(&prefix, data, CreateMode::EphemeralSequential)?;
        let mut contender = Contender {
            session,
            dir: dir.to_owned(),
            node,
            standing: Standing::First,
        };
        contender.check()?;
        Ok(contender)
    }

    /// Re-reads the queue; watches the predecessor if there is one.
    fn check(&mut self) -> Result<Standing, CoordError> {
        loop {
            let (children, _) = self.session.get_children(&self.dir, Watch::None)?;
            let own = path::name(&self.node);
            let mut queue: Vec<&String> = children
                .iter()
                .filter(|c| c.starts_with(CONTENDER_PREFIX))
                .collect();
            queue.sort_by_key(|name| sequence(name));
            let position = queue
                .iter()
                .position(|name| name.as_str() == own)
                .ok_or_else(|| CoordError::NoNode {
                    path: self.node.clone(),
                })?;
            if position == 0 {
                self.standing = Standing::First;
                return Ok(Standing::First);
            }
            let predecessor = path::join(&self.dir, queue[position - 1]);
            // Watch only the predecessor; if it went in between, look again.
            if self.session.exists(&predecessor, Watch::Set)?.is_some() {
                self.standing = Standing::Waiting { predecessor };
                return Ok(self.standing.clone());
            }
        }
    }

    fn handle(&mut self, event: &Event) -> Result<Option<Standing>, CoordError> {
        match event {
            Event::Session(_) => Err(CoordError::SessionExpired {
                session: self.session.id(),
            }),
            Event::Watch(watched) => match &self.standing {
                Standing::Waiting { predecessor } if *predecessor == watched.path => {
                    self.check().map(Some)
                }
                _ => Ok(None),
            },
        }
    }

    fn wait_first(&mut self, timeout: Duration) -> Result<Standing, CoordError> {
        let deadline = Instant::now() + timeout;
        while self.standing != Standing::First {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match self.session.events().recv_timeout(left) {
                Ok(event) => {
                    self.handle(&event)?;
                }
                Err(_) => break,
            }
        }
        Ok(self.standing.clone())
    }

    fn leave(&self) -> Result<(), CoordError> {
        match self.session.delete(&self.node, Version::Any) {
            Ok(()) | Err(CoordError::NoNode { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Creates `dir` and its missing ancestors as persistent nodes.
fn ensure_dir(session: &dyn Session, dir: &str) -> Result<(), CoordError> {
    let mut missing: Vec<&str> = Vec::new();
    let mut current = dir;
    while current != path::ROOT && session.exists(current, Watch::None)?.is_none() {
        missing.push(current);
        current = path::parent(current);
    }
    for node in missing.into_iter().rev() {
        match session.create(node, b"", CreateMode::Persistent) {
            Ok(_) | Err(CoordError::NodeExists { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The sequence number of a contender node's name (names without one sort last).
fn sequence(name: &str) -> i64 {
    let digits = name.len().saturating_sub(10);
    name.get(digits..)
        .and_then(|suffix| suffix.parse::<i64>().ok())
        .unwrap_or(i64::MAX)
}

/// A candidate in a leader election under a directory.
///
/// The candidate's data (say, a broker id) is stored in its node, so followers can read who
/// leads with [`LeaderElection::leader`].
///
/// Dropping a candidate without [`LeaderElection::resign`] leaves its node in place until its
/// session ends, like a process that stopped without saying so.
pub struct LeaderElection {
    contender: Contender,
}

impl LeaderElection {
    /// Joins the election under `dir` (created if missing) with `data` in the candidate's node.
    ///
    /// # Errors
    /// Whatever creating the nodes or reading the directory returns (`SessionExpired`,
    /// `InvalidPath`, `NoChildrenForEphemerals` if `dir` is under an ephemeral node).
    pub fn join(
        session: Arc<dyn Session>,
        dir: &str,
        data: &[u8],
    ) -> Result<LeaderElection, CoordError> {
        Contender::enqueue(session, dir, data).map(|contender| LeaderElection { contender })
    }

    /// The candidate's node.
    pub fn node(&self) -> &str {
        &self.contender.node
    }

    /// Where the candidate stood at the last check.
    pub fn standing(&self) -> &Standing {
        &self.contender.standing
    }

    /// Whether the candidate leads (as of the last check).
    pub fn is_leader(&self) -> bool {
        self.contender.standing == Standing::First
    }

    /// Re-reads the election.
    ///
    /// # Errors
    /// `NoNode` if the candidate's node is gone (its session ended), or a read error.
    pub fn check(&mut self) -> Result<Standing, CoordError> {
        self.contender.check()
    }

    /// Updates the standing on an event of the candidate's session; `Ok(None)` if the event is
    /// not the election's.
    ///
    /// # Errors
    /// `SessionExpired` on a session event; errors of [`LeaderElection::check`].
    pub fn handle(&mut self, event: &Event) -> Result<Option<Standing>, CoordError> {
        self.contender.handle(event)
    }

    /// Consumes the session's events until the candidate leads or `timeout` passes, and returns
    /// the standing.
    ///
    /// # Errors
    /// As [`LeaderElection::handle`].
    pub fn wait_for_leadership(&mut self, timeout: Duration) -> Result<Standing, CoordError> {
        self.contender.wait_first(timeout)
    }

    /// The current leader's node and data, if any.
    ///
    /// # Errors
    /// Read errors.
    pub fn leader(&self) -> Result<Option<(String, Vec<u8>)>, CoordError> {
        let session = &self.contender.session;
        let (mut children, _) = session.get_children(&self.contender.dir, Watch::None)?;
        children.retain(|c| c.starts_with(CONTENDER_PREFIX));
        children.sort_by_key(|name| sequence(name));
        for name in children {
            let node = path::join(&self.contender.dir, &name);
            match session.get_data(&node, Watch::None) {
                Ok((data, _)) => return Ok(Some((node, data))),
                Err(CoordError::NoNode { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// Leaves the election (deletes the candidate's node); the next candidate is woken.
    ///
    /// # Errors
    /// Delete errors other than `NoNode`.
    pub fn resign(self) -> Result<(), CoordError> {
        self.contender.leave()
    }
}

/// A distributed lock under a directory: waiters are served in arrival order.
pub struct Lock {
    contender: Contender,
}

impl Lock {
    /// Queues for the lock under `dir` (created if missing).
    ///
    /// # Errors
    /// As [`LeaderElection::join`].
    pub fn enqueue(session: Arc<dyn Session>, dir: &str) -> Result<Lock, CoordError> {
        Contender::enqueue(session, dir, b"").map(|contender| Lock { contender })
    }

    /// Whether the lock is held (as of the last check).
    pub fn is_held(&self) -> bool {
        self.contender.standing == Standing::First
    }

    /// Where the waiter stood at the last check.
    pub fn standing(&self) -> &Standing {
        &self.contender.standing
    }

    /// Updates the standing on an event of the lock's session.
    ///
    /// # Errors
    /// As [`LeaderElection::handle`].
    pub fn handle(&mut self, event: &Event) -> Result<Option<Standing>, CoordError> {
        self.contender.handle(event)
    }

    /// Consumes the session's events until the lock is held or `timeout` passes.
    ///
    /// # Errors
    /// As [`LeaderElection::handle`].
    pub fn wait_until_held(&mut self, timeout: Duration) -> Result<Standing, CoordError> {
        self.contender.wait_first(timeout)
    }

    /// Releases the lock, or leaves the queue.
    ///
    /// # Errors
    /// Delete errors other than `NoNode`.
    pub fn release(self) -> Result<(), CoordError> {
        self.contender.leave()
    }
}

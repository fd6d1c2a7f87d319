//! How a group member reaches its group coordinator, as Kafka's consumer does: find it
//! (FindCoordinator: the broker leading the group's `__consumer_offsets` partition), keep it,
//! and find it again when it answers that it moved (`NotCoordinator`), is away
//! (`CoordinatorNotAvailable`) or is still loading the group (`CoordinatorLoadInProgress`),
//! backing off `retry_backoff_ms` between tries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ConsumeError;
use crate::broker::{Broker, BrokerError};
use crate::group::{BlockingCoordinator, GroupError, OffsetsLogError};

/// The coordinator of one group, found on demand.
#[derive(Debug)]
pub(super) struct CoordinatorLink {
    /// The broker the consumer was made with; when it is gone, another of its cluster.
    broker: Broker,
    group_id: String,
    retry_backoff_ms: u64,
    /// How long a blocking call keeps finding the coordinator again.
    api_timeout_ms: u64,
    /// The coordinator found last; `None` until found, and after it answered that it moved.
    current: Mutex<Option<Arc<BlockingCoordinator>>>,
}

impl CoordinatorLink {
    pub fn new(
        broker: Broker,
        group_id: String,
        retry_backoff_ms: u64,
        api_timeout_ms: u64,
    ) -> Self {
        CoordinatorLink {
            broker,
            group_id,
            retry_backoff_ms,
            api_timeout_ms,
            current: Mutex::new(None),
        }
    }

    /// The coordinator, found first if not known.
    ///
    /// # Errors
    /// `Broker(Group(CoordinatorNotAvailable))` while the group's offsets partition has no
    /// leader in reach; the broker's errors creating the offsets topic.
    pub fn coordinator(&self) -> Result<Arc<BlockingCoordinator>, ConsumeError> {
        if let Some(known) = self.current.lock().as_ref() {
            return Ok(Arc::clone(known));
        }
        let not_available = || {
            ConsumeError::Group(GroupError::CoordinatorNotAvailable {
                group: self.group_id.clone(),
            })
        };
        let broker = self.broker.live_broker().ok_or_else(not_available)?;
        let found = broker.find_group_coordinator(&self.group_id)?;
        *self.current.lock() = Some(Arc::clone(&found));
        Ok(found)
    }

    /// Forgets `stale` (not a coordinator found since).
    fn forget(&self, stale: &Arc<BlockingCoordinator>) {
        let mut current = self.current.lock();
        if current
            .as_ref()
            .is_some_and(|known| Arc::ptr_eq(known, stale))
        {
            *current = None;
        }
    }

    /// One call to the coordinator. When it answers that it moved, it is forgotten, so the
    /// next call finds the new one.
    ///
    /// # Errors
    /// The coordinator's answer; as [`CoordinatorLink::coordinator`].
    pub fn call_once<T>(
        &self,
        op: impl FnOnce(&BlockingCoordinator) -> Result<T, GroupError>,
    ) -> Result<T, ConsumeError> {
        let coordinator = self.coordinator()?;
        let result = op(&coordinator).map_err(ConsumeError::Group);
        if result.as_ref().is_err_and(coordinator_moved) {
            self.forget(&coordinator);
        }
        result
    }

    /// Calls the coordinator, finding it again (after `retry_backoff_ms`) while it moved,
    /// for up to the API timeout.
    ///
    /// # Errors
    /// As [`CoordinatorLink::call_once`]; the last "moved" answer once the timeout passed.
    pub fn call<T>(
        &self,
        mut op: impl FnMut(&BlockingCoordinator) -> Result<T, GroupError>,
    ) -> Result<T, ConsumeError> {
        let deadline = Instant::now() + Duration::from_millis(self.api_timeout_ms);
        loop {
            match self.call_once(&mut op) {
                Err(error) if coordinator_moved(&error) && Instant::now() < deadline => {
                    // Kafka's consumer backs off the same way: the new leader of the offsets
                    // partition is elected (and loads) on the cluster's schedule, not on an
                    // event this client can wait for.
                    std::thread::sleep(Duration::from_millis(self.retry_backoff_ms));
                }
                other => return other,
            }
        }
    }
}

/// Whether `error` says to look for the coordinator again: it moved, is away, or is still
/// loading the group; or a commit it stored was not acknowledged by the offsets topic's
/// replicas (Kafka answers those `NOT_COORDINATOR` and `COORDINATOR_NOT_AVAILABLE`).
pub(super) fn coordinator_moved(error: &ConsumeError) -> bool {
    let error = match error {
        ConsumeError::Group(error) | ConsumeError::Broker(BrokerError::Group(error)) => error,
        _ => return false,
    };
    match error {
        GroupError::NotCoordinator { .. }
        | GroupError::CoordinatorNotAvailable { .. }
        | GroupError::CoordinatorLoadInProgress { .. }
        | GroupError::Storage {
            source: OffsetsLogError::NotLeader { .. },
            ..
        } => true,
        GroupError::Storage {
            source: OffsetsLogError::Replication(error),
            ..
        } => error.is_retriable(),
        _ => false,
    }
}

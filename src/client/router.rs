//! Where a client sends a partition's requests: the partition's leader, found through the
//! broker the client was made with, remembered until the leader says it no longer leads.

use std::collections::HashMap;
use std::sync::Arc;

use crate::broker::{Broker, BrokerError};
use crate::partition::PartitionError;
use crate::replication::ReplicationError;

/// A client's view of partition leaders.
#[derive(Debug)]
pub(crate) struct Router {
    bootstrap: Broker,
    leaders: HashMap<(Arc<str>, u32), Broker>,
}

impl Router {
    pub(crate) fn new(bootstrap: Broker) -> Router {
        Router {
            bootstrap,
            leaders: HashMap::new(),
        }
    }

    /// The broker to send `topic`-`partition`'s requests to: the cached leader (unless it
    /// crashed: a client forgets a node whose connection dropped), else the one the
    /// coordinator names (if it is open in this process), else the bootstrap broker (which
    /// answers with an error saying who leads).
    pub(crate) fn leader(&mut self, topic: &Arc<str>, partition: u32) -> Broker {
        let key = (Arc::clone(topic), partition);
        if let Some(broker) = self.leaders.get(&key).filter(|broker| !broker.is_crashed()) {
            return broker.clone();
        }
        if let Some(live) = self.bootstrap.live_broker() {
            self.bootstrap = live;
        }
        let broker = self
            .bootstrap
            .leader_of(topic, partition)
            .and_then(|id| self.bootstrap.peer(id))
            .unwrap_or_else(|| self.bootstrap.clone());
        self.leaders.insert(key, broker.clone());
        broker
    }

    /// Forgets the leader of `topic`-`partition` (after it said it no longer leads).
    pub(crate) fn invalidate(&mut self, topic: &Arc<str>, partition: u32) {
        self.leaders.remove(&(Arc::clone(topic), partition));
    }
}

/// What a client sees from a broker that crashed: its connection dropped. Retriable, and the
/// leadership moved (as a broker that is stopping answers).
pub(crate) fn broker_gone() -> BrokerError {
    BrokerError::Partition(crate::partition::PartitionError::Log(
        crate::log::LogError::Closed,
    ))
}

/// Whether a client should find the leader again and retry after `error`.
pub(crate) fn is_retriable(error: &BrokerError) -> bool {
    match error {
        BrokerError::Replication(error) => error.is_retriable(),
        BrokerError::UnknownPartition { .. } => true,
        BrokerError::Partition(crate::partition::PartitionError::Log(
            crate::log::LogError::Closed,
        )) => true,
        _ => false,
    }
}

/// Whether `error` refuses an idempotent producer's batch as out of sequence: an earlier batch
/// of the producer is missing from the partition, and this one was not appended.
pub(crate) fn is_out_of_order_sequence(error: &BrokerError) -> bool {
    matches!(
        error,
        BrokerError::Partition(PartitionError::OutOfOrderSequence { .. })
            | BrokerError::Replication(ReplicationError::Partition(
                PartitionError::OutOfOrderSequence { .. }
            ))
    )
}

/// Whether `error` says the partition's leadership moved (so the cached leader is stale).
pub(crate) fn leadership_moved(error: &BrokerError) -> bool {
    matches!(
        error,
        BrokerError::Replication(
            ReplicationError::NotLeader { .. }
                | ReplicationError::Offline { .. }
                | ReplicationError::Partition(crate::partition::PartitionError::Log(
                    crate::log::LogError::Closed
                ))
        ) | BrokerError::UnknownPartition { .. }
            | BrokerError::Partition(crate::partition::PartitionError::Log(
                crate::log::LogError::Closed
            ))
    )
}

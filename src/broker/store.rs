//! The data directory's topics and replicas: what the broker and its replica manager share.
//! The replica manager holds it directly (not the broker), so background threads never keep a
//! broker alive, and a broker closes on the thread that drops its last handle.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

use super::metadata::{Metadata, DELETE_SUFFIX};
use super::registry::read_topic_config;
use super::topic::TopicState;
use super::{BrokerError, TopicConfig};
use crate::clock::Clock;
use crate::coordinator::Session;
use crate::partition::{PartitionError, Replica};
use crate::replication::{PartitionSettings, ReplicaHost, ReplicationError};

#[derive(Debug)]
pub(crate) struct LocalStore {
    pub(crate) dir: PathBuf,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metadata: Metadata,
    /// Topics this broker knows, by name.
    pub(crate) topics: RwLock<HashMap<String, Arc<TopicState>>>,
}

impl LocalStore {
    pub(crate) fn run_maintenance(&self) -> Result<usize, BrokerError> {
        let topics: Vec<Arc<TopicState>> = self.topics.read().values().cloned().collect();
        let mut deleted = 0;
        let mut first_error = None;
        for replica in topics.iter().flat_map(|topic| topic.replicas()) {
            let log = replica.log();
            match log
                .apply_retention()
                .and_then(|count| log.flush_if_due().map(|()| count))
                .and_then(|count| log.clean(self.clock.now_ms()).map(|_| count))
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

    /// The topic's local state, created (and its configuration stored) if new here.
    pub(crate) fn ensure_topic(
        &self,
        name: &str,
        config: TopicConfig,
    ) -> Result<Arc<TopicState>, BrokerError> {
        if let Some(state) = self.topics.read().get(name) {
            return Ok(Arc::clone(state));
        }
        let mut topics = self.topics.write();
        if let Some(state) = topics.get(name) {
            return Ok(Arc::clone(state));
        }
        self.metadata.store_topic(name, &config)?;
        let state = Arc::new(TopicState::new(name, config));
        topics.insert(name.to_owned(), Arc::clone(&state));
        Ok(state)
    }

    /// Opens this broker's replica of a partition the coordinator assigned here.
    fn open_assigned_replica(
        &self,
        session: &dyn Session,
        topic: &str,
        partition: u32,
    ) -> Result<(Arc<Replica>, PartitionSettings), BrokerError> {
        let existing = self.topics.read().get(topic).cloned();
        let state = match existing {
            Some(state) => state,
            None => {
                let config = read_topic_config(session, topic)?.ok_or_else(|| {
                    BrokerError::UnknownTopic {
                        topic: topic.to_owned(),
                    }
                })?;
                self.ensure_topic(topic, config)?
            }
        };
        let replica = state.open_partition(&self.dir, partition, &self.clock)?;
        let config = state.config.read();
        Ok((
            replica,
            PartitionSettings {
                min_insync_replicas: config.min_insync_replicas,
                unclean_leader_election: config.unclean_leader_election,
            },
        ))
    }

    /// Removes a deleted topic's replicas and files from this broker.
    pub(crate) fn remove_local_topic(&self, name: &str) -> Result<(), BrokerError> {
        let Some(state) = self.topics.write().remove(name) else {
            return Ok(());
        };
        self.metadata.remove_topic(name)?;
        let nonce = self.clock.now_ms();
        for replica in state.mark_deleted() {
            let dir = replica.log().dir().to_owned();
            let file_name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let doomed = dir.with_file_name(format!("{file_name}.{nonce}{DELETE_SUFFIX}"));
            fs::rename(&dir, &doomed).map_err(BrokerError::io(&dir))?;
            fs::remove_dir_all(&doomed).map_err(BrokerError::io(&doomed))?;
        }
        Ok(())
    }

    /// Closes every log now (cleanly: flushed, with the clean-shutdown marker), so that a
    /// peer still holding a replica for a moment cannot write after the directory is unlocked.
    pub(crate) fn close_all(&self) {
        for topic in self.topics.read().values() {
            for replica in topic.replicas() {
                replica.close();
            }
        }
    }
}

impl ReplicaHost for LocalStore {
    fn open_replica(
        &self,
        session: &dyn Session,
        topic: &str,
        partition: u32,
    ) -> Result<(Arc<Replica>, PartitionSettings), ReplicationError> {
        self.open_assigned_replica(session, topic, partition)
            .map_err(|error| match error {
                BrokerError::Replication(error) => error,
                BrokerError::Partition(error) => ReplicationError::Partition(error),
                BrokerError::Log(error) => ReplicationError::Partition(PartitionError::Log(error)),
                BrokerError::Coordination(error) => ReplicationError::Coordination(error),
                _ => ReplicationError::UnknownTopicOrPartition {
                    topic: topic.to_owned(),
                    partition,
                },
            })
    }

    fn unclean_leader_election(&self, topic: &str) -> bool {
        self.topics
            .read()
            .get(topic)
            .is_some_and(|state| state.config.read().unclean_leader_election)
    }

    fn topic_deleted(&self, topic: &str) {
        // Best effort: files left behind are removed at the next open.
        let _ = self.remove_local_topic(topic);
    }
}

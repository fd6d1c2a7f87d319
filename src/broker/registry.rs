//! A topic's entries in the coordinator, in Kafka's ZooKeeper layout:
//! - `/brokers/topics/<topic>`: the replica assignment, `{"version":3,"partitions":{"0":[1,2],...}}`
//! - `/brokers/topics/<topic>/partitions/<p>/state`: leader, leader epoch and ISR (written by the
//!   controller and the leader; see `replication`)
//! - `/config/topics/<topic>`: the topic's configuration as properties
//! - `/latest_producer_id_block`: the last block of producer ids handed out, so that brokers
//!   sharing a coordinator never give two producers one id.
//!
//! The coordinator is the source of truth for which topics exist and where their replicas live.
//! Each broker also keeps the configuration of the topics it holds in its data directory, so
//! that a broker on a fresh in-memory coordinator (the single-broker default) can publish its
//! topics again when it opens.

use super::{BrokerError, TopicConfig};
use crate::coordinator::{CoordError, CreateMode, Op, Session, Version, Watch};
use crate::replication::{topic_path, Assignment, PartitionState};

/// Kafka's default `zookeeper.session.timeout.ms`.
pub const BROKER_SESSION_TIMEOUT_MS: u64 = 18_000;

const CONFIG_TOPICS_PATH: &str = "/config/topics";
const PRODUCER_ID_BLOCK_PATH: &str = "/latest_producer_id_block";

fn coordination(error: CoordError) -> BrokerError {
    BrokerError::Coordination(error)
}

pub(crate) fn config_path(topic: &str) -> String {
    format!("{CONFIG_TOPICS_PATH}/{topic}")
}

/// Creates `path` and any missing parents as empty persistent nodes.
fn ensure_path(session: &dyn Session, path: &str) -> Result<(), BrokerError> {
    let mut prefix = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        match session.create(&prefix, b"", CreateMode::Persistent) {
            Ok(_) | Err(CoordError::NodeExists { .. }) => {}
            Err(error) => return Err(coordination(error)),
        }
    }
    Ok(())
}

/// Creates a topic's configuration and assignment in one transaction.
///
/// # Errors
/// `TopicExists` when either entry exists; coordinator errors.
pub(crate) fn create_topic_entries(
    session: &dyn Session,
    topic: &str,
    config: &TopicConfig,
    assignment: &Assignment,
) -> Result<(), BrokerError> {
    ensure_path(session, CONFIG_TOPICS_PATH)?;
    ensure_path(session, crate::replication::TOPICS_PATH)?;
    let ops = [
        Op::create(
            config_path(topic),
            config.to_properties().into_bytes(),
            CreateMode::Persistent,
        ),
        Op::create(
            topic_path(topic),
            assignment.encode(),
            CreateMode::Persistent,
        ),
    ];
    match session.multi(&ops) {
        Ok(_) => Ok(()),
        Err(CoordError::MultiFailed { error, .. })
            if matches!(*error, CoordError::NodeExists { .. }) =>
        {
            Err(BrokerError::TopicExists {
                topic: topic.to_owned(),
            })
        }
        Err(error) => Err(coordination(error)),
    }
}

/// Publishes a topic this broker holds alone into a coordinator that does not know it (a
/// fresh in-memory coordinator after a restart), with each partition led by this broker at the
/// epoch its log last saw, so that appends continue with the epochs the logs already have.
///
/// # Errors
/// Coordinator errors.
pub(crate) fn restore_topic_entries(
    session: &dyn Session,
    broker_id: i32,
    broker_epoch: i64,
    topic: &str,
    config: &TopicConfig,
    leader_epochs: &[i32],
) -> Result<(), BrokerError> {
    if session
        .exists(&topic_path(topic), Watch::None)
        .map_err(coordination)?
        .is_some()
    {
        return Ok(());
    }
    let assignment = Assignment {
        partitions: vec![vec![broker_id]; leader_epochs.len()],
    };
    match create_topic_entries(session, topic, config, &assignment) {
        Ok(()) | Err(BrokerError::TopicExists { .. }) => {}
        Err(error) => return Err(error),
    }
    for (partition, &leader_epoch) in leader_epochs.iter().enumerate() {
        let state = PartitionState {
            leader: broker_id,
            leader_epoch,
            isr: vec![broker_id],
            isr_broker_epochs: vec![broker_epoch],
            controller_epoch: 0,
            zk_version: 0,
        };
        let dir = format!("{}/partitions/{partition}", topic_path(topic));
        ensure_path(session, &dir)?;
        match session.create(
            &format!("{dir}/state"),
            &state.encode(),
            CreateMode::Persistent,
        ) {
            Ok(_) | Err(CoordError::NodeExists { .. }) => {}
            Err(error) => return Err(coordination(error)),
        }
    }
    Ok(())
}

/// A topic's configuration as stored in the coordinator.
///
/// # Errors
/// `InvalidProperty` for a malformed entry; coordinator errors.
pub(crate) fn read_topic_config(
    session: &dyn Session,
    topic: &str,
) -> Result<Option<TopicConfig>, BrokerError> {
    match session.get_data(&config_path(topic), Watch::None) {
        Ok((data, _)) => {
            let text = String::from_utf8(data).map_err(|error| BrokerError::InvalidProperty {
                line: String::from_utf8_lossy(error.as_bytes()).into_owned(),
            })?;
            TopicConfig::from_properties(&text).map(Some)
        }
        Err(CoordError::NoNode { .. }) => Ok(None),
        Err(error) => Err(coordination(error)),
    }
}

/// Rewrites a topic's configuration and assignment (after adding partitions).
///
/// # Errors
/// Coordinator errors.
pub(crate) fn update_topic_entries(
    session: &dyn Session,
    topic: &str,
    config: &TopicConfig,
    assignment: &Assignment,
) -> Result<(), BrokerError> {
    let ops = [
        Op::set_data(
            config_path(topic),
            config.to_properties().into_bytes(),
            Version::Any,
        ),
        Op::set_data(topic_path(topic), assignment.encode(), Version::Any),
    ];
    session.multi(&ops).map(|_| ()).map_err(coordination)
}

/// Removes a topic's entries.
///
/// # Errors
/// Coordinator errors.
pub(crate) fn delete_topic_entries(session: &dyn Session, topic: &str) -> Result<(), BrokerError> {
    for root in [topic_path(topic), config_path(topic)] {
        delete_recursive(session, &root)?;
    }
    Ok(())
}

/// Deletes `path` and everything under it. The controller or a leader may create a node under
/// it meanwhile (a partition state it is writing as the topic goes): the deletion then starts
/// over, a bounded number of times.
fn delete_recursive(session: &dyn Session, path: &str) -> Result<(), BrokerError> {
    const ATTEMPTS: usize = 20;
    for _ in 0..ATTEMPTS {
        let children = match session.get_children(path, Watch::None) {
            Ok((children, _)) => children,
            Err(CoordError::NoNode { .. }) => return Ok(()),
            Err(error) => return Err(coordination(error)),
        };
        for child in children {
            delete_recursive(session, &format!("{path}/{child}"))?;
        }
        match session.delete(path, Version::Any) {
            Ok(()) | Err(CoordError::NoNode { .. }) => return Ok(()),
            Err(CoordError::NotEmpty { .. }) => continue,
            Err(error) => return Err(coordination(error)),
        }
    }
    Err(coordination(CoordError::NotEmpty {
        path: path.to_owned(),
    }))
}

/// Claims the next block of `block` producer ids, starting at `floor` or later, with a
/// conditional write of `/latest_producer_id_block` (Kafka's node, as decimal `start end`).
/// Returns the block's first id.
///
/// # Errors
/// Coordinator errors.
pub(crate) fn claim_producer_id_block(
    session: &dyn Session,
    floor: i64,
    block: i64,
) -> Result<i64, BrokerError> {
    loop {
        let (start, version) = match session.get_data(PRODUCER_ID_BLOCK_PATH, Watch::None) {
            Ok((data, stat)) => {
                let end = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|text| text.split_whitespace().nth(1))
                    .and_then(|end| end.parse::<i64>().ok())
                    .unwrap_or(0);
                (end.max(floor), Some(stat.version))
            }
            Err(CoordError::NoNode { .. }) => (floor, None),
            Err(error) => return Err(coordination(error)),
        };
        let data = format!("{start} {}", start + block);
        let written = match version {
            Some(version) => session
                .set_data(
                    PRODUCER_ID_BLOCK_PATH,
                    data.as_bytes(),
                    Version::Exactly(version),
                )
                .map(|_| ()),
            None => session
                .create(
                    PRODUCER_ID_BLOCK_PATH,
                    data.as_bytes(),
                    CreateMode::Persistent,
                )
                .map(|_| ()),
        };
        match written {
            Ok(()) => return Ok(start),
            Err(CoordError::BadVersion { .. } | CoordError::NodeExists { .. }) => continue,
            Err(error) => return Err(coordination(error)),
        }
    }
}

//! The broker's entries in the coordinator, in Kafka's ZooKeeper layout:
//! - `/brokers/ids/<id>` (ephemeral, this broker's session): `{"version":5,"broker_id":<id>}`
//! - `/brokers/topics/<topic>`: the replica assignment, `{"version":3,"partitions":{"0":[<id>],...}}`
//! - `/brokers/topics/<topic>/partitions/<p>/state`:
//!   `{"controller_epoch":0,"leader":<id>,"leader_epoch":<e>,"isr":[<id>],"version":1}`
//! - `/config/topics/<topic>`: the topic's configuration as properties.
//!
//! With one broker the data directory is the source of truth and these entries mirror it (they
//! are rewritten on open, since the default in-memory coordinator starts empty); replication
//! makes the coordinator the source of truth for assignment and partition state.

use std::sync::Arc;

use super::{BrokerError, TopicConfig};
use crate::coordinator::{CoordError, CreateMode, Session, Version};

/// Kafka's default `zookeeper.session.timeout.ms`.
pub const BROKER_SESSION_TIMEOUT_MS: u64 = 18_000;

fn coordination(error: CoordError) -> BrokerError {
    BrokerError::Coordination(error)
}

/// Creates `path` and any missing parents as persistent nodes holding `data` (parents empty).
fn ensure(session: &dyn Session, path: &str, data: &[u8]) -> Result<(), BrokerError> {
    let mut prefix = String::new();
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        prefix.push('/');
        prefix.push_str(part);
        let bytes: &[u8] = if i + 1 == parts.len() { data } else { b"" };
        match session.create(&prefix, bytes, CreateMode::Persistent) {
            Ok(_) | Err(CoordError::NodeExists { .. }) => {}
            Err(error) => return Err(coordination(error)),
        }
    }
    if !data.is_empty() {
        session
            .set_data(path, data, Version::Any)
            .map_err(coordination)?;
    }
    Ok(())
}

/// Registers the broker: fails with `BrokerIdInUse` when a live broker holds the id.
pub(crate) fn register_broker(session: &dyn Session, broker_id: i32) -> Result<(), BrokerError> {
    ensure(session, "/brokers/ids", b"")?;
    let data = format!("{{\"version\":5,\"broker_id\":{broker_id}}}");
    match session.create(
        &format!("/brokers/ids/{broker_id}"),
        data.as_bytes(),
        CreateMode::Ephemeral,
    ) {
        Ok(_) => Ok(()),
        Err(CoordError::NodeExists { .. }) => Err(BrokerError::BrokerIdInUse { broker_id }),
        Err(error) => Err(coordination(error)),
    }
}

/// Writes a topic's assignment, partition states and configuration (all on this broker).
pub(crate) fn publish_topic(
    session: &dyn Session,
    broker_id: i32,
    topic: &str,
    config: &TopicConfig,
    leader_epochs: &[i32],
) -> Result<(), BrokerError> {
    let partitions: Vec<String> = (0..config.partitions)
        .map(|partition| format!("\"{partition}\":[{broker_id}]"))
        .collect();
    let assignment = format!(
        "{{\"version\":3,\"partitions\":{{{}}}}}",
        partitions.join(",")
    );
    ensure(
        session,
        &format!("/brokers/topics/{topic}"),
        assignment.as_bytes(),
    )?;
    for (partition, leader_epoch) in leader_epochs.iter().enumerate() {
        let state = format!("{{\"controller_epoch\":0,\"leader\":{broker_id},\"leader_epoch\":{leader_epoch},\"isr\":[{broker_id}],\"version\":1}}");
        ensure(
            session,
            &format!("/brokers/topics/{topic}/partitions/{partition}/state"),
            state.as_bytes(),
        )?;
    }
    ensure(
        session,
        &format!("/config/topics/{topic}"),
        config.to_properties().as_bytes(),
    )
}

/// Removes a topic's entries.
pub(crate) fn unpublish_topic(session: &dyn Session, topic: &str) -> Result<(), BrokerError> {
    for root in [
        format!("/brokers/topics/{topic}"),
        format!("/config/topics/{topic}"),
    ] {
        delete_recursive(session, &root)?;
    }
    Ok(())
}

fn delete_recursive(session: &dyn Session, path: &str) -> Result<(), BrokerError> {
    let children = match session.get_children(path, crate::coordinator::Watch::None) {
        Ok((children, _)) => children,
        Err(CoordError::NoNode { .. }) => return Ok(()),
        Err(error) => return Err(coordination(error)),
    };
    for child in children {
        delete_recursive(session, &format!("{path}/{child}"))?;
    }
    match session.delete(path, Version::Any) {
        Ok(()) | Err(CoordError::NoNode { .. }) => Ok(()),
        Err(error) => Err(coordination(error)),
    }
}

/// The broker's coordinator session, kept for the broker's lifetime.
pub(crate) type BrokerSession = Arc<dyn Session>;

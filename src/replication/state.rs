//! What the controller keeps in the coordinator, in Kafka's ZooKeeper layout and JSON:
//! - `/controller` (ephemeral): `{"version":1,"brokerid":<id>,"timestamp":"<ms>"}`
//! - `/controller_epoch`: the epoch as decimal text
//! - `/brokers/topics/<topic>`: `{"version":3,"partitions":{"0":[1,2,3],...}}`
//! - `/brokers/topics/<topic>/partitions/<p>/state`:
//!   `{"controller_epoch":<c>,"leader":<id>,"version":1,"leader_epoch":<e>,"isr":[...]}`
//!
//! The partition state also carries `isr_broker_epochs`, an addition to Kafka's JSON (tools that
//! do not know it ignore it): for each ISR member, the creation zxid of the registration
//! (`/brokers/ids/<id>`) it was in sync under, -1 when unknown. A broker that restarts gets a
//! new registration, so a member that crashed (and may have lost unflushed records) is no
//! longer taken for the member that was in sync, even by a controller that never saw it go
//! (Kafka's KIP-903 guards its ISR with broker epochs the same way).
//!
//! The partition state is the one piece two writers touch (the controller on leader changes, the
//! leader on ISR changes), so it is only ever written with the version it was read at.

use std::collections::BTreeMap;

use super::json::{self, Value};
use crate::coordinator::Stat;

/// No leader (Kafka writes -1 for an offline partition).
pub const NO_LEADER: i32 = -1;

/// The path of a topic's replica assignment.
pub fn topic_path(topic: &str) -> String {
    format!("/brokers/topics/{topic}")
}

/// The path of a partition's leader and ISR.
pub fn state_path(topic: &str, partition: u32) -> String {
    format!("/brokers/topics/{topic}/partitions/{partition}/state")
}

pub const CONTROLLER_PATH: &str = "/controller";
pub const CONTROLLER_EPOCH_PATH: &str = "/controller_epoch";
pub const BROKER_IDS_PATH: &str = "/brokers/ids";
pub const TOPICS_PATH: &str = "/brokers/topics";

/// Why a coordinator entry could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Json(#[from] json::JsonError),
    #[error("{what}: missing or mistyped field {field}")]
    Field {
        what: &'static str,
        field: &'static str,
    },
}

/// A partition's leader, leader epoch and in-sync replicas, as stored; `zk_version` is the
/// version of the node it was read from (or written as), for the next conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// Each ISR member's registration epoch (parallel to `isr`; -1 when unknown).
    pub isr_broker_epochs: Vec<i64>,
    pub controller_epoch: i32,
    pub zk_version: i32,
}

/// A broker registration epoch that matches any (written by tools that do not record them).
pub const UNKNOWN_BROKER_EPOCH: i64 = -1;

impl PartitionState {
    pub fn encode(&self) -> Vec<u8> {
        let isr: Vec<String> = self.isr.iter().map(i32::to_string).collect();
        let epochs: Vec<String> = (0..self.isr.len())
            .map(|i| {
                self.isr_broker_epochs
                    .get(i)
                    .copied()
                    .unwrap_or(UNKNOWN_BROKER_EPOCH)
                    .to_string()
            })
            .collect();
        format!(
            "{{\"controller_epoch\":{},\"leader\":{},\"version\":1,\"leader_epoch\":{},\"isr\":[{}],\"isr_broker_epochs\":[{}]}}",
            self.controller_epoch,
            self.leader,
            self.leader_epoch,
            isr.join(","),
            epochs.join(",")
        )
        .into_bytes()
    }

    /// The registration epoch `broker` was in sync under, if it is in the ISR.
    pub fn member_epoch(&self, broker: i32) -> Option<i64> {
        let at = self.isr.iter().position(|&id| id == broker)?;
        Some(
            self.isr_broker_epochs
                .get(at)
                .copied()
                .unwrap_or(UNKNOWN_BROKER_EPOCH),
        )
    }

    /// Decodes a state node read with `stat`.
    ///
    /// # Errors
    /// `StateError` for malformed JSON or a missing field.
    pub fn decode(bytes: &[u8], stat: &Stat) -> Result<PartitionState, StateError> {
        let value = json::parse(bytes)?;
        let field = |field: &'static str| StateError::Field {
            what: "partition state",
            field,
        };
        let int = |name: &'static str| {
            value
                .get(name)
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| field(name))
        };
        Ok(PartitionState {
            leader: int("leader")?,
            leader_epoch: int("leader_epoch")?,
            controller_epoch: int("controller_epoch").unwrap_or(0),
            isr_broker_epochs: match value.get("isr_broker_epochs") {
                None => Vec::new(),
                Some(epochs) => epochs
                    .as_array()
                    .and_then(|epochs| epochs.iter().map(Value::as_i64).collect())
                    .ok_or_else(|| field("isr_broker_epochs"))?,
            },
            isr: broker_list(value.get("isr")).ok_or_else(|| field("isr"))?,
            zk_version: stat.version,
        })
    }
}

fn broker_list(value: Option<&Value>) -> Option<Vec<i32>> {
    value?
        .as_array()?
        .iter()
        .map(|id| id.as_i64().and_then(|n| i32::try_from(n).ok()))
        .collect()
}

/// A topic's replica assignment: for each partition, its replicas in preference order (the
/// first is the preferred leader).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub partitions: Vec<Vec<i32>>,
}

impl Assignment {
    pub fn encode(&self) -> Vec<u8> {
        let partitions: Vec<String> = self
            .partitions
            .iter()
            .enumerate()
            .map(|(partition, replicas)| {
                let ids: Vec<String> = replicas.iter().map(i32::to_string).collect();
                format!("\"{partition}\":[{}]", ids.join(","))
            })
            .collect();
        format!(
            "{{\"version\":3,\"partitions\":{{{}}}}}",
            partitions.join(",")
        )
        .into_bytes()
    }

    /// Decodes an assignment; partitions must be numbered densely from 0 and bounded by
    /// `max_partitions`.
    ///
    /// # Errors
    /// `StateError` for malformed JSON, a missing field, or sparse or too many partitions.
    pub fn decode(bytes: &[u8], max_partitions: u32) -> Result<Assignment, StateError> {
        let value = json::parse(bytes)?;
        let field = |field: &'static str| StateError::Field {
            what: "replica assignment",
            field,
        };
        let entries = value
            .get("partitions")
            .and_then(Value::as_object)
            .ok_or_else(|| field("partitions"))?;
        if entries.len() > max_partitions as usize {
            return Err(field("partitions"));
        }
        let mut by_number = BTreeMap::new();
        for (key, replicas) in entries {
            let partition: u32 = key.parse().map_err(|_| field("partitions"))?;
            let replicas = broker_list(Some(replicas)).ok_or_else(|| field("partitions"))?;
            by_number.insert(partition, replicas);
        }
        if by_number.keys().enumerate().any(|(i, &p)| i as u32 != p) {
            return Err(field("partitions"));
        }
        Ok(Assignment {
            partitions: by_number.into_values().collect(),
        })
    }
}

/// The `/controller` node's content.
pub fn controller_data(broker_id: i32, now_ms: i64) -> Vec<u8> {
    format!("{{\"version\":1,\"brokerid\":{broker_id},\"timestamp\":\"{now_ms}\"}}").into_bytes()
}

/// The broker id in a `/controller` node.
///
/// # Errors
/// `StateError` for malformed content.
pub fn decode_controller(bytes: &[u8]) -> Result<i32, StateError> {
    json::parse(bytes)?
        .get("brokerid")
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or(StateError::Field {
            what: "controller",
            field: "brokerid",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(version: i32) -> Stat {
        Stat {
            version,
            ..Stat::default()
        }
    }

    #[test]
    fn partition_state_round_trips_in_kafka_json() {
        let state = PartitionState {
            leader: 2,
            leader_epoch: 5,
            isr: vec![2, 0, 1],
            isr_broker_epochs: vec![40, -1, 7],
            controller_epoch: 3,
            zk_version: 9,
        };
        let bytes = state.encode();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"controller_epoch":3,"leader":2,"version":1,"leader_epoch":5,"isr":[2,0,1],"isr_broker_epochs":[40,-1,7]}"#
        );
        assert_eq!(PartitionState::decode(&bytes, &stat(9)), Ok(state));
        // Kafka's own JSON (no broker epochs) reads as unknown epochs.
        let kafka = PartitionState::decode(
            br#"{"controller_epoch":3,"leader":2,"version":1,"leader_epoch":5,"isr":[2,0]}"#,
            &stat(1),
        )
        .unwrap();
        assert_eq!(kafka.member_epoch(0), Some(UNKNOWN_BROKER_EPOCH));
        assert_eq!(kafka.member_epoch(1), None);
    }

    #[test]
    fn assignment_round_trips_and_rejects_gaps() {
        let assignment = Assignment {
            partitions: vec![vec![0, 1], vec![1, 2], vec![2, 0]],
        };
        let bytes = assignment.encode();
        assert_eq!(Assignment::decode(&bytes, 10), Ok(assignment));
        assert!(Assignment::decode(br#"{"version":3,"partitions":{"1":[0]}}"#, 10).is_err());
        assert!(Assignment::decode(br#"{"version":3,"partitions":{"0":[0],"1":[1]}}"#, 1).is_err());
        assert!(Assignment::decode(br#"{"version":3,"partitions":{"0":["x"]}}"#, 1).is_err());
    }

    #[test]
    fn controller_node_round_trips() {
        assert_eq!(decode_controller(&controller_data(7, 123)), Ok(7));
        assert!(decode_controller(b"{}").is_err());
    }
}

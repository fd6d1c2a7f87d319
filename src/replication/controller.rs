//! The controller: one broker at a time (the holder of the ephemeral `/controller`) elects
//! partition leaders and keeps each ISR free of dead brokers, writing partition states with
//! conditional writes so that a deposed controller or a leader's concurrent ISR change can
//! never be overwritten unseen.
//!
//! It is a reconciler rather than an event handler: each pass reads the live brokers, the
//! assignments and the partition states, and writes whatever differs from what they imply.
//! Events (watches, notices) only decide when a pass runs, so a lost event delays a decision
//! but never loses one, and a new controller needs no history to take over.

use std::collections::BTreeMap;

use crate::coordinator::{CoordError, CreateMode, Session, Stat, Version, Watch};

use super::error::ReplicationError;
use super::state::{
    controller_data, decode_controller, state_path, topic_path, Assignment, PartitionState,
    BROKER_IDS_PATH, CONTROLLER_EPOCH_PATH, CONTROLLER_PATH, NO_LEADER, TOPICS_PATH,
    UNKNOWN_BROKER_EPOCH,
};

/// Most partitions a topic assignment may list (as the broker's `MAX_PARTITIONS`).
pub const MAX_ASSIGNED_PARTITIONS: u32 = 10_000;

/// Why a partition's leader changed, for the caller to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionKind {
    /// From the live ISR (nothing acknowledged is lost).
    Clean,
    /// From outside the ISR (`unclean_leader_election`): acknowledged records may be lost.
    Unclean,
    /// The preferred (first assigned) replica took leadership back.
    Preferred,
    /// No live ISR member: the partition is offline.
    Offline,
}

/// One leader change the controller made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub topic: String,
    pub partition: u32,
    pub kind: ElectionKind,
    pub state: PartitionState,
}

/// The controller's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Move leadership back to preferred replicas when they are in sync again.
    pub auto_leader_rebalance: bool,
}

/// Per-topic answers the controller needs from the topic's configuration.
pub trait TopicPolicy: Send + Sync {
    /// Whether `topic` allows electing a replica outside the ISR.
    fn unclean_leader_election(&self, topic: &str) -> bool;
}

/// The controller's memory between passes.
#[derive(Debug, Default)]
pub struct ControllerState {
    /// The controller epoch while this broker is controller.
    pub epoch: Option<i32>,
    /// Brokers shutting down (controlled shutdown), with the creation zxid of the registration
    /// that asked, so that a restarted broker is not mistaken for the one that left.
    pub shutting_down: BTreeMap<i32, i64>,
    /// Every election made, in order (tests and operators read it).
    pub elections: Vec<Election>,
}

/// Tries to become controller if there is none. Returns the controller epoch when this broker
/// is (or just became) the controller.
///
/// # Errors
/// Coordinator errors other than losing the race.
pub fn ensure_controller(
    session: &dyn Session,
    broker_id: i32,
    now_ms: i64,
    state: &mut ControllerState,
) -> Result<Option<i32>, ReplicationError> {
    match session.get_data(CONTROLLER_PATH, Watch::None) {
        Ok((data, stat)) => {
            let holder = decode_controller(&data).ok();
            if holder == Some(broker_id) && stat.ephemeral_owner == session.id() {
                if state.epoch.is_none() {
                    state.epoch = Some(bump_controller_epoch(session)?);
                }
                return Ok(state.epoch);
            }
            state.epoch = None;
            return Ok(None);
        }
        Err(CoordError::NoNode { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    state.epoch = None;
    match session.create(
        CONTROLLER_PATH,
        &controller_data(broker_id, now_ms),
        CreateMode::Ephemeral,
    ) {
        Ok(_) => {
            state.epoch = Some(bump_controller_epoch(session)?);
            Ok(state.epoch)
        }
        Err(CoordError::NodeExists { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Increments `/controller_epoch` with a conditional write (creating it at 1).
fn bump_controller_epoch(session: &dyn Session) -> Result<i32, ReplicationError> {
    loop {
        match session.get_data(CONTROLLER_EPOCH_PATH, Watch::None) {
            Ok((data, stat)) => {
                let current: i32 = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                    .unwrap_or(0);
                let next = current.saturating_add(1);
                match session.set_data(
                    CONTROLLER_EPOCH_PATH,
                    next.to_string().as_bytes(),
                    Version::Exactly(stat.version),
                ) {
                    Ok(_) => return Ok(next),
                    Err(CoordError::BadVersion { .. }) => continue,
                    Err(error) => return Err(error.into()),
                }
            }
            Err(CoordError::NoNode { .. }) => {
                match session.create(CONTROLLER_EPOCH_PATH, b"1", CreateMode::Persistent) {
                    Ok(_) => return Ok(1),
                    Err(CoordError::NodeExists { .. }) => continue,
                    Err(error) => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// A live broker's registration: its epoch (the creation zxid of `/brokers/ids/<id>`) and
/// whether it holds everything it ever acknowledged (it did not crash with unflushed data since
/// it last did, see [`registration_data`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub epoch: i64,
    pub intact: bool,
}

/// The content of `/brokers/ids/<id>`: Kafka's fields, and `intact`, false when the broker
/// restarted after a crash that may have cut records its logs had not flushed (KIP-966's
/// unclean-shutdown flag).
///
/// With an `endpoint` (a broker that serves Kafka's protocol), Kafka's `host`, `port` and
/// `endpoints` fields say where clients reach it.
pub fn registration_data(broker_id: i32, intact: bool, endpoint: Option<&Endpoint>) -> Vec<u8> {
    match endpoint {
        None => format!("{{\"version\":5,\"broker_id\":{broker_id},\"intact\":{intact}}}"),
        Some(endpoint) => {
            let host = super::json::escape(&endpoint.host);
            let port = endpoint.port;
            format!(
                "{{\"version\":5,\"broker_id\":{broker_id},\"intact\":{intact},\
                 \"host\":\"{host}\",\"port\":{port},\
                 \"endpoints\":[\"PLAINTEXT://{host}:{port}\"]}}"
            )
        }
    }
    .into_bytes()
}

/// Where a broker serves Kafka's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// The Kafka endpoints of the live brokers that registered one.
///
/// # Errors
/// Coordinator errors.
pub fn broker_endpoints(
    session: &dyn Session,
) -> Result<BTreeMap<i32, Endpoint>, ReplicationError> {
    let children = match session.get_children(BROKER_IDS_PATH, Watch::None) {
        Ok((children, _)) => children,
        Err(CoordError::NoNode { .. }) => return Ok(BTreeMap::new()),
        Err(error) => return Err(error.into()),
    };
    let mut endpoints = BTreeMap::new();
    for child in children {
        let Ok(id) = child.parse::<i32>() else {
            continue;
        };
        let data = match session.get_data(&format!("{BROKER_IDS_PATH}/{child}"), Watch::None) {
            Ok((data, _)) => data,
            Err(CoordError::NoNode { .. }) => continue,
            Err(error) => return Err(error.into()),
        };
        let Ok(value) = super::json::parse(&data) else {
            continue;
        };
        let host = match value.get("host") {
            Some(super::json::Value::Str(host)) => host.clone(),
            _ => continue,
        };
        let Some(port) = value
            .get("port")
            .and_then(super::json::Value::as_i64)
            .and_then(|port| u16::try_from(port).ok())
        else {
            continue;
        };
        endpoints.insert(id, Endpoint { host, port });
    }
    Ok(endpoints)
}

/// The broker id holding `/controller`, if any.
///
/// # Errors
/// Coordinator errors.
pub fn controller_id(session: &dyn Session) -> Result<Option<i32>, ReplicationError> {
    match session.get_data(CONTROLLER_PATH, Watch::None) {
        Ok((data, _)) => Ok(decode_controller(&data).ok()),
        Err(CoordError::NoNode { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The live brokers and their registrations.
///
/// # Errors
/// Coordinator errors.
pub fn live_brokers(
    session: &dyn Session,
) -> Result<BTreeMap<i32, Registration>, ReplicationError> {
    let children = match session.get_children(BROKER_IDS_PATH, Watch::None) {
        Ok((children, _)) => children,
        Err(CoordError::NoNode { .. }) => return Ok(BTreeMap::new()),
        Err(error) => return Err(error.into()),
    };
    let mut live = BTreeMap::new();
    for child in children {
        let Ok(id) = child.parse::<i32>() else {
            continue;
        };
        match session.get_data(&format!("{BROKER_IDS_PATH}/{child}"), Watch::None) {
            Ok((data, stat)) => {
                let intact = super::json::parse(&data)
                    .ok()
                    .and_then(|value| match value.get("intact") {
                        Some(super::json::Value::Bool(intact)) => Some(*intact),
                        _ => None,
                    })
                    .unwrap_or(false);
                live.insert(
                    id,
                    Registration {
                        epoch: stat.czxid.0,
                        intact,
                    },
                );
            }
            Err(CoordError::NoNode { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(live)
}

/// The ids of the live brokers, sorted.
///
/// # Errors
/// Coordinator errors.
pub fn live_broker_ids(session: &dyn Session) -> Result<Vec<i32>, ReplicationError> {
    Ok(live_brokers(session)?.into_keys().collect())
}

/// Reads a topic's assignment.
///
/// # Errors
/// `BadState` for an unreadable assignment; coordinator errors.
pub fn read_assignment(
    session: &dyn Session,
    topic: &str,
) -> Result<Option<Assignment>, ReplicationError> {
    let path = topic_path(topic);
    match session.get_data(&path, Watch::None) {
        Ok((data, _)) => Assignment::decode(&data, MAX_ASSIGNED_PARTITIONS)
            .map(Some)
            .map_err(|source| ReplicationError::BadState { path, source }),
        Err(CoordError::NoNode { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Reads a partition's state.
///
/// # Errors
/// `BadState` for an unreadable state; coordinator errors.
pub fn read_state(
    session: &dyn Session,
    topic: &str,
    partition: u32,
) -> Result<Option<PartitionState>, ReplicationError> {
    let path = state_path(topic, partition);
    match session.get_data(&path, Watch::None) {
        Ok((data, stat)) => PartitionState::decode(&data, &stat)
            .map(Some)
            .map_err(|source| ReplicationError::BadState { path, source }),
        Err(CoordError::NoNode { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Writes `state` if the node is still at `state.zk_version`; returns the state as written
/// (with its new version), or `None` when another writer got there first.
///
/// # Errors
/// Coordinator errors other than a lost race.
pub fn write_state(
    session: &dyn Session,
    topic: &str,
    partition: u32,
    state: &PartitionState,
) -> Result<Option<PartitionState>, ReplicationError> {
    match session.set_data(
        &state_path(topic, partition),
        &state.encode(),
        Version::Exactly(state.zk_version),
    ) {
        Ok(stat) => Ok(Some(with_version(state, &stat))),
        Err(CoordError::BadVersion { .. } | CoordError::NoNode { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn with_version(state: &PartitionState, stat: &Stat) -> PartitionState {
    PartitionState {
        zk_version: stat.version,
        ..state.clone()
    }
}

/// One controller pass: for every partition, makes the stored state agree with the live
/// brokers. Returns the partitions whose state it wrote (to notify their replicas).
///
/// # Errors
/// Coordinator errors (the pass stops; the next one starts over).
pub fn reconcile(
    session: &dyn Session,
    controller_epoch: i32,
    config: ControllerConfig,
    policy: &dyn TopicPolicy,
    state: &mut ControllerState,
) -> Result<Vec<(String, u32, Vec<i32>)>, ReplicationError> {
    let registered = live_brokers(session)?;
    state
        .shutting_down
        .retain(|id, czxid| registered.get(id).map(|r| r.epoch) == Some(*czxid));
    let live: BTreeMap<i32, Registration> = registered
        .into_iter()
        .filter(|(id, _)| !state.shutting_down.contains_key(id))
        .collect();
    let topics = match session.get_children(TOPICS_PATH, Watch::None) {
        Ok((topics, _)) => topics,
        Err(CoordError::NoNode { .. }) => Vec::new(),
        Err(error) => return Err(error.into()),
    };
    let mut written = Vec::new();
    for topic in topics {
        let assignment = match read_assignment(session, &topic) {
            Ok(Some(assignment)) => assignment,
            Ok(None) | Err(ReplicationError::BadState { .. }) => continue,
            Err(error) => return Err(error),
        };
        let unclean = policy.unclean_leader_election(&topic);
        for (partition, replicas) in assignment.partitions.iter().enumerate() {
            let partition = partition as u32;
            // An unreadable state is left for an operator (it is reported by the brokers that
            // hold the partition); the controller goes on with the others.
            let current = match read_state(session, &topic, partition) {
                Ok(current) => current,
                Err(ReplicationError::BadState { .. }) => continue,
                Err(error) => return Err(error),
            };
            let Some((next, kind)) = decide(current.as_ref(), replicas, &live, unclean, config)
            else {
                continue;
            };
            let next = PartitionState {
                controller_epoch,
                ..next
            };
            let stored = match &current {
                Some(_) => write_state(session, &topic, partition, &next)?,
                None => create_state(session, &topic, partition, &next)?,
            };
            if let Some(stored) = stored {
                if let Some(kind) = kind {
                    state.elections.push(Election {
                        topic: topic.clone(),
                        partition,
                        kind,
                        state: stored.clone(),
                    });
                }
                written.push((topic.clone(), partition, replicas.clone()));
            }
        }
    }
    Ok(written)
}

fn create_state(
    session: &dyn Session,
    topic: &str,
    partition: u32,
    state: &PartitionState,
) -> Result<Option<PartitionState>, ReplicationError> {
    let path = state_path(topic, partition);
    let parent = format!("{}/partitions", topic_path(topic));
    for dir in [parent.clone(), format!("{parent}/{partition}")] {
        match session.create(&dir, b"", CreateMode::Persistent) {
            Ok(_) | Err(CoordError::NodeExists { .. }) => {}
            Err(CoordError::NoNode { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        }
    }
    match session.create(&path, &state.encode(), CreateMode::Persistent) {
        Ok(_) => Ok(Some(PartitionState {
            zk_version: 0,
            ..state.clone()
        })),
        Err(CoordError::NodeExists { .. } | CoordError::NoNode { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Whether ISR member `id`, in sync under registration `recorded`, is that same registration
/// and still live.
fn member_live(live: &BTreeMap<i32, Registration>, id: i32, recorded: i64) -> bool {
    live.get(&id)
        .is_some_and(|current| recorded == UNKNOWN_BROKER_EPOCH || recorded == current.epoch)
}

/// What the state of one partition should become, if anything changes, and whether that is
/// an election. `live` maps each live broker to its registration epoch. Pure, so the rules
/// can be tested on their own:
/// - a new partition: the first live assigned replica leads, the live replicas are the ISR;
/// - dead, restarted (a new registration: it may have lost unflushed records) or
///   shutting-down brokers leave the ISR (the leader stays if it is the same live one);
/// - a dead or restarted leader is replaced by the first remaining ISR member in assignment
///   order, with a new epoch; with none, by the first live replica if unclean election is
///   allowed, otherwise the partition goes offline (no leader, the ISR kept so that its last
///   member can return);
/// - an offline partition whose ISR has a live member again gets it as leader;
/// - with `auto_leader_rebalance`, a live in-sync preferred replica takes leadership back.
pub fn decide(
    current: Option<&PartitionState>,
    replicas: &[i32],
    live: &BTreeMap<i32, Registration>,
    unclean: bool,
    config: ControllerConfig,
) -> Option<(PartitionState, Option<ElectionKind>)> {
    let live_replicas: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|id| live.contains_key(id))
        .collect();
    let Some(current) = current else {
        let leader = live_replicas.first().copied().unwrap_or(NO_LEADER);
        return Some((with_isr(None, leader, 0, &live_replicas, live), None));
    };
    // The ISR members that are still the registration they were in sync under, in
    // assignment order.
    let live_isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|&id| {
            current
                .member_epoch(id)
                .is_some_and(|recorded| member_live(live, id, recorded))
        })
        .collect();
    let leader_live = current.leader != NO_LEADER && live_isr.contains(&current.leader);
    if leader_live {
        let preferred = replicas.first().copied();
        if config.auto_leader_rebalance
            && preferred != Some(current.leader)
            && preferred.is_some_and(|id| live_isr.contains(&id))
        {
            let leader = preferred.unwrap_or(current.leader);
            let next = with_isr(
                Some(current),
                leader,
                current.leader_epoch + 1,
                &live_isr,
                live,
            );
            return Some((next, Some(ElectionKind::Preferred)));
        }
        if live_isr.len() == current.isr.len() {
            return None;
        }
        let next = with_isr(
            Some(current),
            current.leader,
            current.leader_epoch,
            &live_isr,
            live,
        );
        return Some((next, None));
    }
    if let Some(&leader) = live_isr.first() {
        let next = with_isr(
            Some(current),
            leader,
            current.leader_epoch + 1,
            &live_isr,
            live,
        );
        return Some((next, Some(ElectionKind::Clean)));
    }
    if current.leader == NO_LEADER {
        // Offline: the last ISR members all went. The first of them to come back intact (it
        // lost nothing to a crash: it was paused, or shut down cleanly, or flushes every
        // append) leads under its new registration: what it has is everything acknowledged.
        // One that may have lost unflushed records does not (KIP-966): the partition stays
        // offline rather than silently lose them, unless unclean election is allowed.
        let returned = replicas.iter().copied().find(|id| {
            current.isr.contains(id) && live.get(id).is_some_and(|registration| registration.intact)
        });
        if let Some(leader) = returned {
            let next = PartitionState {
                isr_broker_epochs: vec![live[&leader].epoch],
                ..with_isr(
                    Some(current),
                    leader,
                    current.leader_epoch + 1,
                    &[leader],
                    live,
                )
            };
            return Some((next, Some(ElectionKind::Clean)));
        }
    }
    if current.isr.is_empty() && current.leader_epoch == 0 && current.leader == NO_LEADER {
        // Created while no replica was live: nothing was ever written, any replica is clean.
        let leader = *live_replicas.first()?;
        let next = with_isr(Some(current), leader, 1, &live_replicas, live);
        return Some((next, Some(ElectionKind::Clean)));
    }
    if unclean {
        if let Some(&leader) = live_replicas.first() {
            let next = with_isr(
                Some(current),
                leader,
                current.leader_epoch + 1,
                &[leader],
                live,
            );
            return Some((next, Some(ElectionKind::Unclean)));
        }
    }
    if current.leader == NO_LEADER {
        return None;
    }
    Some((
        PartitionState {
            leader: NO_LEADER,
            leader_epoch: current.leader_epoch + 1,
            ..current.clone()
        },
        Some(ElectionKind::Offline),
    ))
}

/// A state led by `leader` at `leader_epoch` with `isr`: members already in sync keep the
/// registration epoch they were in sync under, new ones get their current one.
fn with_isr(
    current: Option<&PartitionState>,
    leader: i32,
    leader_epoch: i32,
    isr: &[i32],
    live: &BTreeMap<i32, Registration>,
) -> PartitionState {
    let isr_broker_epochs = isr
        .iter()
        .map(|&id| {
            current
                .and_then(|state| state.member_epoch(id))
                .filter(|&recorded| recorded != UNKNOWN_BROKER_EPOCH)
                .or_else(|| live.get(&id).map(|registration| registration.epoch))
                .unwrap_or(UNKNOWN_BROKER_EPOCH)
        })
        .collect();
    PartitionState {
        leader,
        leader_epoch,
        isr: isr.to_vec(),
        isr_broker_epochs,
        controller_epoch: current.map_or(0, |state| state.controller_epoch),
        zk_version: current.map_or(-1, |state| state.zk_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: ControllerConfig = ControllerConfig {
        auto_leader_rebalance: true,
    };

    fn state(leader: i32, epoch: i32, isr: &[i32]) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            isr_broker_epochs: isr.iter().map(|&id| 100 + i64::from(id)).collect(),
            controller_epoch: 1,
            zk_version: 4,
        }
    }

    /// Live intact brokers, each under registration epoch 100 + id.
    fn live(ids: &[i32]) -> BTreeMap<i32, Registration> {
        ids.iter()
            .map(|&id| {
                (
                    id,
                    Registration {
                        epoch: 100 + i64::from(id),
                        intact: true,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_restarted_member_leaves_the_isr_and_a_restarted_leader_is_replaced() {
        let current = state(0, 3, &[0, 1, 2]);
        let mut restarted = live(&[0, 1, 2]);
        restarted.get_mut(&1).unwrap().epoch = 999;
        let (next, kind) = decide(Some(&current), &[0, 1, 2], &restarted, false, CONFIG).unwrap();
        assert_eq!(
            (next.leader, next.leader_epoch, next.isr.clone()),
            (0, 3, vec![0, 2])
        );
        assert_eq!(next.isr_broker_epochs, vec![100, 102]);
        assert_eq!(kind, None);
        restarted.get_mut(&0).unwrap().epoch = 998;
        let (next, kind) = decide(Some(&current), &[0, 1, 2], &restarted, false, CONFIG).unwrap();
        assert_eq!(
            (next.leader, next.leader_epoch, next.isr.clone()),
            (2, 4, vec![2])
        );
        assert_eq!(kind, Some(ElectionKind::Clean));
    }

    #[test]
    fn new_partition_takes_first_live_replica() {
        let (next, kind) = decide(None, &[2, 0, 1], &live(&[0, 1]), false, CONFIG).unwrap();
        assert_eq!(
            (next.leader, next.leader_epoch, next.isr),
            (0, 0, vec![0, 1])
        );
        assert_eq!(kind, None);
    }

    #[test]
    fn dead_leader_is_replaced_from_the_isr_in_assignment_order() {
        let current = state(0, 3, &[0, 2]);
        let (next, kind) =
            decide(Some(&current), &[0, 1, 2], &live(&[1, 2]), false, CONFIG).unwrap();
        assert_eq!(
            (next.leader, next.leader_epoch, next.isr.clone()),
            (2, 4, vec![2])
        );
        assert_eq!(next.zk_version, 4, "written against the version read");
        assert_eq!(kind, Some(ElectionKind::Clean));
    }

    #[test]
    fn no_live_isr_goes_offline_unless_unclean() {
        let current = state(0, 3, &[0]);
        let (offline, kind) = decide(Some(&current), &[0, 1], &live(&[1]), false, CONFIG).unwrap();
        assert_eq!((offline.leader, offline.isr.clone()), (NO_LEADER, vec![0]));
        assert_eq!(kind, Some(ElectionKind::Offline));
        assert_eq!(
            decide(Some(&offline), &[0, 1], &live(&[1]), false, CONFIG),
            None
        );
        let (unclean, kind) = decide(Some(&current), &[0, 1], &live(&[1]), true, CONFIG).unwrap();
        assert_eq!((unclean.leader, unclean.isr), (1, vec![1]));
        assert_eq!(kind, Some(ElectionKind::Unclean));
        let (back, kind) = decide(Some(&offline), &[0, 1], &live(&[0, 1]), false, CONFIG).unwrap();
        assert_eq!((back.leader, back.leader_epoch), (0, 5));
        assert_eq!(kind, Some(ElectionKind::Clean));
        // The last ISR member back from a crash that may have cut unflushed records: offline
        // it stays (KIP-966).
        let mut crashed = live(&[0, 1]);
        crashed.get_mut(&0).unwrap().intact = false;
        crashed.get_mut(&0).unwrap().epoch = 555;
        assert_eq!(
            decide(Some(&offline), &[0, 1], &crashed, false, CONFIG),
            None
        );
    }

    #[test]
    fn dead_followers_leave_the_isr_without_a_new_epoch() {
        let current = state(0, 3, &[0, 1, 2]);
        let (next, kind) =
            decide(Some(&current), &[0, 1, 2], &live(&[0, 2]), false, CONFIG).unwrap();
        assert_eq!(
            (next.leader, next.leader_epoch, next.isr),
            (0, 3, vec![0, 2])
        );
        assert_eq!(kind, None);
        assert_eq!(
            decide(Some(&current), &[0, 1, 2], &live(&[0, 1, 2]), false, CONFIG),
            None
        );
    }

    #[test]
    fn preferred_replica_takes_leadership_back_once_in_sync() {
        let current = state(1, 3, &[1, 2]);
        assert_eq!(
            decide(Some(&current), &[0, 1, 2], &live(&[0, 1, 2]), false, CONFIG),
            None,
            "not in the ISR yet"
        );
        let current = state(1, 3, &[1, 2, 0]);
        let (next, kind) =
            decide(Some(&current), &[0, 1, 2], &live(&[0, 1, 2]), false, CONFIG).unwrap();
        assert_eq!((next.leader, next.leader_epoch), (0, 4));
        assert_eq!(kind, Some(ElectionKind::Preferred));
        let off = ControllerConfig {
            auto_leader_rebalance: false,
        };
        assert_eq!(
            decide(Some(&current), &[0, 1, 2], &live(&[0, 1, 2]), false, off),
            None
        );
    }
}

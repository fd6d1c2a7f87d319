//! Replication across brokers, as Kafka does it: a controller elected through the coordinator
//! assigns replicas and elects leaders; followers pull from leaders through a [`Transport`];
//! leaders keep the ISR and the high watermark; leader epochs let a follower of a new leader
//! cut exactly its divergent suffix (KIP-101, KIP-279).
//!
//! # Layout
//! - `state`: the coordinator entries (Kafka's ZooKeeper layout and JSON) and their codecs
//! - `assign`: replica assignment (round robin with a shifting start)
//! - `controller`: controller election and the reconciling pass that elects leaders
//! - `partition`: one replica's role: leader (followers' progress, ISR, high watermark,
//!   acknowledgements) or follower (truncation, appending fetched batches)
//! - `manager`: one broker's replication: events, roles, ISR writes, fetching, serving peers
//! - `transport`: the broker-to-broker messages, the trait, and the in-process network

mod assign;
mod controller;
mod error;
mod json;
mod manager;
mod partition;
mod state;
mod transport;

pub use assign::assign_replicas;
pub use controller::{
    broker_endpoints, controller_id, decide, live_broker_ids, live_brokers, read_assignment,
    read_state, registration_data, ControllerConfig, ControllerState, Election, ElectionKind,
    Endpoint, Registration, TopicPolicy, MAX_ASSIGNED_PARTITIONS,
};
pub use error::ReplicationError;
pub use json::JsonError;
pub use manager::{LeadershipListener, Registrant, ReplicaHost, ReplicaManager, ReplicationConfig};
pub use partition::{AckLevel, PartitionSettings, PendingAppend, PlantedBugs, ReplicatedPartition};
pub use state::{
    controller_data, decode_controller, state_path, topic_path, Assignment, PartitionState,
    StateError, BROKER_IDS_PATH, CONTROLLER_EPOCH_PATH, CONTROLLER_PATH, NO_LEADER, TOPICS_PATH,
    UNKNOWN_BROKER_EPOCH,
};
pub use transport::{
    EpochAnswer, EpochQuery, EpochRequest, EpochResponse, FetchPartition, FetchRequest,
    FetchResponse, FetchedData, FetchedPartition, InProcessNetwork, LeaderAndIsrNotice,
    ReplicaError, ReplicaService, Transport, TransportError,
};

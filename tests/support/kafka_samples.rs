//! Sample Kafka requests for the decoder tests: a value in every field a version has, drawn
//! from a seeded generator, for every API the `kafka` front end serves.

use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
    OffsetForLeaderEpochRequest, ProduceRequest, ProducerId, SyncGroupRequest, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use logbus::kafka::decode::{KafkaRequest, SUPPORTED_APIS};
use uuid::Uuid;

/// A deterministic source of field values: every value differs from the field's default with
/// overwhelming odds, and nullable values alternate between null and a value.
pub struct Values {
    state: u64,
    null_next: bool,
}

impl Values {
    pub fn new(seed: u64) -> Self {
        Values {
            state: seed,
            null_next: seed.is_multiple_of(2),
        }
    }

    /// SplitMix64.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn i8(&mut self) -> i8 {
        i8::from_le_bytes([self.next().to_le_bytes()[0] | 0x10])
    }

    fn i16(&mut self) -> i16 {
        (self.next() as i16) | 0x100
    }

    fn i32(&mut self) -> i32 {
        (self.next() as i32) | 0x1_0000
    }

    fn i64(&mut self) -> i64 {
        (self.next() as i64) | 0x1_0000_0000
    }

    fn bool(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }

    fn uuid(&mut self) -> Uuid {
        Uuid::from_u64_pair(self.next(), self.next())
    }

    /// Up to 12 characters, some of them outside ASCII.
    fn string(&mut self) -> StrBytes {
        const CHARS: [char; 8] = ['a', 'z', '0', '-', '.', 'é', 'ß', '日'];
        let len = self.below(13);
        let text: String = (0..len)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
            .collect();
        StrBytes::from_string(text)
    }

    fn nullable<T>(&mut self, value: impl FnOnce(&mut Self) -> T) -> Option<T> {
        self.null_next = !self.null_next;
        if self.null_next {
            None
        } else {
            Some(value(self))
        }
    }

    fn bytes(&mut self) -> Bytes {
        let len = self.below(40);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Two to four elements.
    fn array<T>(&mut self, mut element: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let len = 2 + self.below(3);
        (0..len).map(|_| element(self)).collect()
    }

    /// One to three unknown tagged fields in a flexible version, none in a classic one. Tags
    /// start at 2, above every known tag of the structs served.
    fn tags(&mut self, flexible: bool) -> BTreeMap<i32, Bytes> {
        if !flexible {
            return BTreeMap::new();
        }
        let count = 1 + self.below(3);
        (0..count)
            .map(|_| (2 + self.below(5000) as i32, self.bytes()))
            .collect()
    }
}

/// A request type served by the decoders, with a sample builder.
pub trait Sample: Encodable + Decodable + PartialEq + Debug + Sized {
    const KEY: ApiKey;
    /// First flexible version (as the crate's header versions have it).
    fn flexible(version: i16) -> bool {
        Self::KEY.request_header_version(version) >= 2
    }
    /// A request with a value in every field `version` has.
    fn sample(version: i16, values: &mut Values) -> Self;
    /// The request of this type inside `request`, if it holds one.
    fn unwrap(request: KafkaRequest) -> Option<Self>;
}

macro_rules! unwrap_variant {
    ($variant:ident) => {
        fn unwrap(request: KafkaRequest) -> Option<Self> {
            match request {
                KafkaRequest::$variant(inner) => Some(inner),
                _ => None,
            }
        }
    };
}

impl Sample for ProduceRequest {
    const KEY: ApiKey = ApiKey::Produce;
    unwrap_variant!(Produce);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        ProduceRequest::default()
            .with_transactional_id(v.nullable(|v| TransactionalId(v.string())))
            .with_acks(v.i16())
            .with_timeout_ms(v.i32())
            .with_topic_data(v.array(|v| {
                TopicProduceData::default()
                    .with_name(TopicName(v.string()))
                    .with_partition_data(v.array(|v| {
                        PartitionProduceData::default()
                            .with_index(v.i32())
                            .with_records(v.nullable(Values::bytes))
                            .with_unknown_tagged_fields(v.tags(flexible))
                    }))
                    .with_unknown_tagged_fields(v.tags(flexible))
            }))
            .with_unknown_tagged_fields(v.tags(flexible))
    }
}

impl Sample for FetchRequest {
    const KEY: ApiKey = ApiKey::Fetch;
    unwrap_variant!(Fetch);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let mut request = FetchRequest::default()
            .with_replica_id(BrokerId(v.i32()))
            .with_max_wait_ms(v.i32())
            .with_min_bytes(v.i32())
            .with_max_bytes(v.i32())
            .with_isolation_level(v.i8())
            .with_topics(v.array(|v| {
                FetchTopic::default()
                    .with_topic(TopicName(v.string()))
                    .with_partitions(v.array(|v| {
                        let mut partition = FetchPartition::default()
                            .with_partition(v.i32())
                            .with_fetch_offset(v.i64())
                            .with_partition_max_bytes(v.i32())
                            .with_unknown_tagged_fields(v.tags(flexible));
                        if version >= 5 {
                            partition.log_start_offset = v.i64();
                        }
                        if version >= 9 {
                            partition.current_leader_epoch = v.i32();
                        }
                        if version >= 12 {
                            partition.last_fetched_epoch = v.i32();
                        }
                        partition
                    }))
                    .with_unknown_tagged_fields(v.tags(flexible))
            }))
            .with_unknown_tagged_fields(v.tags(flexible));
        if version >= 7 {
            request.session_id = v.i32();
            request.session_epoch = v.i32();
            request.forgotten_topics_data = v.array(|v| {
                ForgottenTopic::default()
                    .with_topic(TopicName(v.string()))
                    .with_partitions(v.array(Values::i32))
                    .with_unknown_tagged_fields(v.tags(flexible))
            });
        }
        if version >= 11 {
            request.rack_id = v.string();
        }
        if flexible {
            // A known tagged field (tag 0).
            request.cluster_id = v.nullable(Values::string);
        }
        request
    }
}

impl Sample for ListOffsetsRequest {
    const KEY: ApiKey = ApiKey::ListOffsets;
    unwrap_variant!(ListOffsets);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let mut request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(v.i32()))
            .with_topics(v.array(|v| {
                ListOffsetsTopic::default()
                    .with_name(TopicName(v.string()))
                    .with_partitions(v.array(|v| {
                        let mut partition = ListOffsetsPartition::default()
                            .with_partition_index(v.i32())
                            .with_timestamp(v.i64())
                            .with_unknown_tagged_fields(v.tags(flexible));
                        if version >= 4 {
                            partition.current_leader_epoch = v.i32();
                        }
                        partition
                    }))
                    .with_unknown_tagged_fields(v.tags(flexible))
            }))
            .with_unknown_tagged_fields(v.tags(flexible));
        if version >= 2 {
            request.isolation_level = v.i8();
        }
        request
    }
}

impl Sample for MetadataRequest {
    const KEY: ApiKey = ApiKey::Metadata;
    unwrap_variant!(Metadata);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let topics = v.nullable(|v| {
            v.array(|v| {
                let mut topic = MetadataRequestTopic::default()
                    .with_name(v.nullable(|v| TopicName(v.string())))
                    .with_unknown_tagged_fields(v.tags(flexible));
                if version >= 10 {
                    topic.topic_id = v.uuid();
                }
                topic
            })
        });
        let mut request = MetadataRequest::default()
            .with_topics(topics)
            .with_unknown_tagged_fields(v.tags(flexible));
        if version >= 4 {
            request.allow_auto_topic_creation = v.bool();
        }
        if (8..=10).contains(&version) {
            request.include_cluster_authorized_operations = v.bool();
        }
        if version >= 8 {
            request.include_topic_authorized_operations = v.bool();
        }
        request
    }
}

impl Sample for OffsetCommitRequest {
    const KEY: ApiKey = ApiKey::OffsetCommit;
    unwrap_variant!(OffsetCommit);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let mut request = OffsetCommitRequest::default()
            .with_group_id(GroupId(v.string()))
            .with_generation_id_or_member_epoch(v.i32())
            .with_member_id(v.string())
            .with_topics(v.array(|v| {
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(v.string()))
                    .with_partitions(v.array(|v| {
                        let mut partition = OffsetCommitRequestPartition::default()
                            .with_partition_index(v.i32())
                            .with_committed_offset(v.i64())
                            .with_committed_metadata(v.nullable(Values::string))
                            .with_unknown_tagged_fields(v.tags(flexible));
                        if version >= 6 {
                            partition.committed_leader_epoch = v.i32();
                        }
                        partition
                    }))
                    .with_unknown_tagged_fields(v.tags(flexible))
            }))
            .with_unknown_tagged_fields(v.tags(flexible));
        if version >= 7 {
            request.group_instance_id = v.nullable(Values::string);
        }
        if version <= 4 {
            request.retention_time_ms = v.i64();
        }
        request
    }
}

impl Sample for OffsetFetchRequest {
    const KEY: ApiKey = ApiKey::OffsetFetch;
    unwrap_variant!(OffsetFetch);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let topics = |v: &mut Values| {
            v.array(|v| {
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(v.string()))
                    .with_partition_indexes(v.array(Values::i32))
                    .with_unknown_tagged_fields(v.tags(flexible))
            })
        };
        // Null topics (every committed offset) exist from v2.
        let topics = if version >= 2 {
            v.nullable(topics)
        } else {
            Some(topics(v))
        };
        let mut request = OffsetFetchRequest::default()
            .with_group_id(GroupId(v.string()))
            .with_topics(topics)
            .with_unknown_tagged_fields(v.tags(flexible));
        if version >= 7 {
            request.require_stable = v.bool();
        }
        request
    }
}

impl Sample for FindCoordinatorRequest {
    const KEY: ApiKey = ApiKey::FindCoordinator;
    unwrap_variant!(FindCoordinator);
    fn sample(version: i16, v: &mut Values) -> Self {
        let mut request = FindCoordinatorRequest::default()
            .with_key(v.string())
            .with_unknown_tagged_fields(v.tags(Self::flexible(version)));
        if version >= 1 {
            request.key_type = v.i8();
        }
        request
    }
}

impl Sample for JoinGroupRequest {
    const KEY: ApiKey = ApiKey::JoinGroup;
    unwrap_variant!(JoinGroup);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let mut request = JoinGroupRequest::default()
            .with_group_id(GroupId(v.string()))
            .with_session_timeout_ms(v.i32())
            .with_member_id(v.string())
            .with_protocol_type(v.string())
            .with_protocols(v.array(|v| {
                JoinGroupRequestProtocol::default()
                    .with_name(v.string())
                    .with_metadata(v.bytes())
                    .with_unknown_tagged_fields(v.tags(flexible))
            }))
            .with_unknown_tagged_fields(v.tags(flexible));
        if version >= 1 {
            request.rebalance_timeout_ms = v.i32();
        }
        if version >= 5 {
            request.group_instance_id = v.nullable(Values::string);
        }
        request
    }
}

impl Sample for HeartbeatRequest {
    const KEY: ApiKey = ApiKey::Heartbeat;
    unwrap_variant!(Heartbeat);
    fn sample(version: i16, v: &mut Values) -> Self {
        let mut request = HeartbeatRequest::default()
            .with_group_id(GroupId(v.string()))
            .with_generation_id(v.i32())
            .with_member_id(v.string())
            .with_unknown_tagged_fields(v.tags(Self::flexible(version)));
        if version >= 3 {
            request.group_instance_id = v.nullable(Values::string);
        }
        request
    }
}

impl Sample for LeaveGroupRequest {
    const KEY: ApiKey = ApiKey::LeaveGroup;
    unwrap_variant!(LeaveGroup);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let mut request = LeaveGroupRequest::default()
            .with_group_id(GroupId(v.string()))
            .with_unknown_tagged_fields(v.tags(flexible));
        if version <= 2 {
            request.member_id = v.string();
        } else {
            request.members = v.array(|v| {
                MemberIdentity::default()
                    .with_member_id(v.string())
                    .with_group_instance_id(v.nullable(Values::string))
                    .with_unknown_tagged_fields(v.tags(flexible))
            });
        }
        request
    }
}

impl Sample for SyncGroupRequest {
    const KEY: ApiKey = ApiKey::SyncGroup;
    unwrap_variant!(SyncGroup);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let mut request = SyncGroupRequest::default()
            .with_group_id(GroupId(v.string()))
            .with_generation_id(v.i32())
            .with_member_id(v.string())
            .with_assignments(v.array(|v| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(v.string())
                    .with_assignment(v.bytes())
                    .with_unknown_tagged_fields(v.tags(flexible))
            }))
            .with_unknown_tagged_fields(v.tags(flexible));
        if version >= 3 {
            request.group_instance_id = v.nullable(Values::string);
        }
        if version >= 5 {
            request.protocol_type = v.nullable(Values::string);
            request.protocol_name = v.nullable(Values::string);
        }
        request
    }
}

impl Sample for DescribeGroupsRequest {
    const KEY: ApiKey = ApiKey::DescribeGroups;
    unwrap_variant!(DescribeGroups);
    fn sample(version: i16, v: &mut Values) -> Self {
        let mut request = DescribeGroupsRequest::default()
            .with_groups(v.array(|v| GroupId(v.string())))
            .with_unknown_tagged_fields(v.tags(Self::flexible(version)));
        if version >= 3 {
            request.include_authorized_operations = v.bool();
        }
        request
    }
}

impl Sample for ListGroupsRequest {
    const KEY: ApiKey = ApiKey::ListGroups;
    unwrap_variant!(ListGroups);
    fn sample(version: i16, v: &mut Values) -> Self {
        let mut request = ListGroupsRequest::default()
            .with_unknown_tagged_fields(v.tags(Self::flexible(version)));
        if version >= 4 {
            request.states_filter = v.array(Values::string);
        }
        request
    }
}

impl Sample for ApiVersionsRequest {
    const KEY: ApiKey = ApiKey::ApiVersions;
    unwrap_variant!(ApiVersions);
    fn sample(version: i16, v: &mut Values) -> Self {
        let mut request = ApiVersionsRequest::default()
            .with_unknown_tagged_fields(v.tags(Self::flexible(version)));
        if version >= 3 {
            request.client_software_name = v.string();
            request.client_software_version = v.string();
        }
        request
    }
}

impl Sample for CreateTopicsRequest {
    const KEY: ApiKey = ApiKey::CreateTopics;
    unwrap_variant!(CreateTopics);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        CreateTopicsRequest::default()
            .with_topics(v.array(|v| {
                CreatableTopic::default()
                    .with_name(TopicName(v.string()))
                    .with_num_partitions(v.i32())
                    .with_replication_factor(v.i16())
                    .with_assignments(v.array(|v| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(v.i32())
                            .with_broker_ids(v.array(|v| BrokerId(v.i32())))
                            .with_unknown_tagged_fields(v.tags(flexible))
                    }))
                    .with_configs(v.array(|v| {
                        CreatableTopicConfig::default()
                            .with_name(v.string())
                            .with_value(v.nullable(Values::string))
                            .with_unknown_tagged_fields(v.tags(flexible))
                    }))
                    .with_unknown_tagged_fields(v.tags(flexible))
            }))
            .with_timeout_ms(v.i32())
            .with_validate_only(v.bool())
            .with_unknown_tagged_fields(v.tags(flexible))
    }
}

impl Sample for DeleteTopicsRequest {
    const KEY: ApiKey = ApiKey::DeleteTopics;
    unwrap_variant!(DeleteTopics);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let mut request = DeleteTopicsRequest::default()
            .with_timeout_ms(v.i32())
            .with_unknown_tagged_fields(v.tags(flexible));
        if version >= 6 {
            request.topics = v.array(|v| {
                DeleteTopicState::default()
                    .with_name(v.nullable(|v| TopicName(v.string())))
                    .with_topic_id(v.uuid())
                    .with_unknown_tagged_fields(v.tags(flexible))
            });
        } else {
            request.topic_names = v.array(|v| TopicName(v.string()));
        }
        request
    }
}

impl Sample for InitProducerIdRequest {
    const KEY: ApiKey = ApiKey::InitProducerId;
    unwrap_variant!(InitProducerId);
    fn sample(version: i16, v: &mut Values) -> Self {
        let mut request = InitProducerIdRequest::default()
            .with_transactional_id(v.nullable(|v| TransactionalId(v.string())))
            .with_transaction_timeout_ms(v.i32())
            .with_unknown_tagged_fields(v.tags(Self::flexible(version)));
        if version >= 3 {
            request.producer_id = ProducerId(v.i64());
            request.producer_epoch = v.i16();
        }
        request
    }
}

impl Sample for OffsetForLeaderEpochRequest {
    const KEY: ApiKey = ApiKey::OffsetForLeaderEpoch;
    unwrap_variant!(OffsetForLeaderEpoch);
    fn sample(version: i16, v: &mut Values) -> Self {
        let flexible = Self::flexible(version);
        let mut request = OffsetForLeaderEpochRequest::default()
            .with_topics(v.array(|v| {
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(v.string()))
                    .with_partitions(v.array(|v| {
                        OffsetForLeaderPartition::default()
                            .with_partition(v.i32())
                            .with_current_leader_epoch(v.i32())
                            .with_leader_epoch(v.i32())
                            .with_unknown_tagged_fields(v.tags(flexible))
                    }))
                    .with_unknown_tagged_fields(v.tags(flexible))
            }))
            .with_unknown_tagged_fields(v.tags(flexible));
        if version >= 3 {
            request.replica_id = BrokerId(v.i32());
        }
        request
    }
}

/// Calls `$f::<Request>` for the request type of every API served, with the API's key.
macro_rules! for_each_api {
    ($f:ident($($arg:expr),*)) => {{
        $f::<ProduceRequest>($($arg),*);
        $f::<FetchRequest>($($arg),*);
        $f::<ListOffsetsRequest>($($arg),*);
        $f::<MetadataRequest>($($arg),*);
        $f::<OffsetCommitRequest>($($arg),*);
        $f::<OffsetFetchRequest>($($arg),*);
        $f::<FindCoordinatorRequest>($($arg),*);
        $f::<JoinGroupRequest>($($arg),*);
        $f::<HeartbeatRequest>($($arg),*);
        $f::<LeaveGroupRequest>($($arg),*);
        $f::<SyncGroupRequest>($($arg),*);
        $f::<DescribeGroupsRequest>($($arg),*);
        $f::<ListGroupsRequest>($($arg),*);
        $f::<ApiVersionsRequest>($($arg),*);
        $f::<CreateTopicsRequest>($($arg),*);
        $f::<DeleteTopicsRequest>($($arg),*);
        $f::<InitProducerIdRequest>($($arg),*);
        $f::<OffsetForLeaderEpochRequest>($($arg),*);
    }};
}

pub fn versions<T: Sample>() -> std::ops::RangeInclusive<i16> {
    let api = SUPPORTED_APIS
        .iter()
        .find(|api| api.key == T::KEY)
        .expect("every sampled API is served");
    api.min_version..=api.max_version
}

pub fn encode<T: Sample>(request: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    request
        .encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{:?} v{version} encodes: {e}", T::KEY));
    buf.freeze()
}

/// The crate's own decoder, for comparison. Only called on bytes ours accepted, whose counts
/// are therefore bounded by their length.
pub fn crate_decode<T: Sample>(body: &Bytes, version: i16) -> T {
    T::decode(&mut body.clone(), version).unwrap_or_else(|e| {
        panic!(
            "{:?} v{version}: the crate rejects what we accept: {e}",
            T::KEY
        )
    })
}

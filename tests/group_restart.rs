//! Committed offsets and groups survive a broker restart: the coordinator reads
//! `__consumer_offsets` back from its start; corrupt records there are typed errors.

use logbus::broker::{Broker, BrokerConfig, BrokerError, CleanupPolicy};
use logbus::group::{
    records, CommitRequest, GroupError, GroupState, MemberRef, OffsetAndMetadata, TopicPartition,
    OFFSETS_TOPIC,
};
use logbus::record::{BatchBuilder, BatchSpec};

fn open(dir: &std::path::Path) -> Broker {
    let config = BrokerConfig {
        maintenance_interval_ms: None,
        ..BrokerConfig::default()
    };
    Broker::open_with(dir, config).unwrap()
}

fn commit(broker: &Broker, group: &str, partition: u32, offset: u64, metadata: &str) {
    let request = CommitRequest {
        member: MemberRef::standalone(group),
        offsets: vec![(
            TopicPartition::new("events", partition),
            OffsetAndMetadata {
                metadata: metadata.into(),
                ..OffsetAndMetadata::new(offset)
            },
        )],
    };
    broker
        .group_coordinator()
        .unwrap()
        .commit_offsets(&request)
        .unwrap();
}

#[test]
fn committed_offsets_are_reloaded_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path());
        commit(&broker, "g1", 0, 5, "first");
        commit(&broker, "g1", 0, 9, "second");
        commit(&broker, "g1", 1, 3, "");
        commit(&broker, "g2", 0, 1, "");
        commit(&broker, "gone", 0, 4, "");
        broker.consumer_groups().unwrap().delete("gone").unwrap();
        let topic = broker.topic(OFFSETS_TOPIC).unwrap();
        assert_eq!(topic.partition_count(), 50);
        assert_eq!(topic.config().cleanup_policy, CleanupPolicy::Compact);
    }
    let broker = open(dir.path());
    let coordinator = broker.group_coordinator().unwrap();
    let g1 = coordinator.committed("g1", None).unwrap();
    let p0 = &g1[&TopicPartition::new("events", 0)];
    assert_eq!((p0.offset, p0.metadata.as_str()), (9, "second"));
    assert!(p0.commit_timestamp_ms > 0);
    assert_eq!(g1[&TopicPartition::new("events", 1)].offset, 3);
    assert_eq!(coordinator.committed("g2", None).unwrap().len(), 1);
    assert!(coordinator.committed("gone", None).unwrap().is_empty());
    assert_eq!(coordinator.describe("g1").unwrap().state, GroupState::Empty);
    // The records sit in the partition Kafka would pick for the group.
    let partition = records::offsets_partition_for("g1", 50);
    let replica = broker.replica(OFFSETS_TOPIC, partition).unwrap();
    assert!(replica.high_watermark() >= 2);
}

#[test]
fn a_corrupt_offsets_record_is_a_typed_error_and_its_groups_are_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let partition = records::offsets_partition_for("victim", 50);
    {
        let broker = open(dir.path());
        commit(&broker, "victim", 0, 5, "");
        let mut builder = BatchBuilder::new(BatchSpec::default());
        // An offset commit key whose value claims a negative offset.
        let key = records::encode_offset_key("victim", &TopicPartition::new("events", 1));
        let mut value = records::encode_offset_value(&OffsetAndMetadata::new(1));
        value[2] = 0xff;
        builder.append(0, Some(&key), Some(&value), &[]);
        let replica = broker.replica(OFFSETS_TOPIC, partition).unwrap();
        replica.append_producer_batch(&builder.finish()).unwrap();
    }
    let broker = open(dir.path());
    let error = broker.group_coordinator().unwrap_err();
    assert!(
        matches!(error, BrokerError::Group(GroupError::Corrupt { partition: p, .. }) if p == partition),
        "{error:?}"
    );
    let coordinator = broker.group_coordinator().unwrap();
    let victim = coordinator.committed("victim", None);
    assert!(
        matches!(victim, Err(GroupError::CoordinatorNotAvailable { .. })),
        "{victim:?}"
    );
    // Other partitions' groups still work.
    let other = (0..)
        .map(|i| format!("other-{i}"))
        .find(|g| records::offsets_partition_for(g, 50) != partition)
        .unwrap();
    commit(&broker, &other, 0, 2, "");
    assert_eq!(coordinator.committed(&other, None).unwrap().len(), 1);
}

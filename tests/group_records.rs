//! `__consumer_offsets` records and consumer protocol payloads are input: any bytes decode to a
//! value or a typed error, never a panic; what is encoded decodes back; a corrupt batch in the
//! offsets log fails the load with `Corrupt`.

use std::sync::Arc;

use bytes::Bytes;
use logbus::clock::ManualClock;
use logbus::group::protocol::{MemberAssignment, Subscription};
use logbus::group::records::{
    decode_group_value, decode_key, decode_offset_value, encode_offset_key, encode_offset_value,
    RecordKey,
};
use logbus::group::{
    load_partition, BlockingCoordinator, CommitRequest, CoordinatorConfig, GroupCoordinator,
    GroupError, MemberRef, MemoryOffsetsLog, OffsetAndMetadata, TopicPartition,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_key(&bytes);
        let _ = decode_offset_value(&bytes);
        let _ = decode_group_value(&bytes);
        let _ = Subscription::decode(&bytes);
        let _ = MemberAssignment::decode(&bytes);
    }

    #[test]
    fn offset_records_round_trip(
        group in "[a-z]{1,20}",
        topic in "[a-z.-]{1,30}",
        partition in 0u32..100_000,
        offset in 0u64..i64::MAX as u64,
        epoch in proptest::option::of(0i32..1000),
        metadata in ".{0,40}",
    ) {
        let tp = TopicPartition::new(topic, partition);
        let key = decode_key(&encode_offset_key(&group, &tp)).unwrap();
        prop_assert_eq!(key, RecordKey::OffsetCommit { group, partition: tp });
        let value = OffsetAndMetadata { offset, leader_epoch: epoch, metadata, commit_timestamp_ms: 5 };
        prop_assert_eq!(decode_offset_value(&encode_offset_value(&value)).unwrap(), value);
    }

    #[test]
    fn truncated_records_are_errors(cut in 0usize..40) {
        let value = encode_offset_value(&OffsetAndMetadata::new(9));
        if cut < value.len() {
            prop_assert!(decode_offset_value(&value[..cut]).is_err());
        }
    }
}

fn coordinator_over(log: Arc<MemoryOffsetsLog>) -> BlockingCoordinator {
    let config = CoordinatorConfig {
        offsets_topic_partitions: 3,
        ..CoordinatorConfig::default()
    };
    BlockingCoordinator::new(
        GroupCoordinator::new(config, 0),
        log,
        Arc::new(ManualClock::new(1_000)),
    )
}

#[test]
fn a_coordinator_taking_over_sees_what_the_previous_one_committed() {
    let log = Arc::new(MemoryOffsetsLog::new(3));
    let first = coordinator_over(Arc::clone(&log));
    first.take_over_all().unwrap();
    for offset in [3, 8] {
        first
            .commit_offsets(&CommitRequest {
                member: MemberRef::standalone("g"),
                offsets: vec![(TopicPartition::new("t", 1), OffsetAndMetadata::new(offset))],
            })
            .unwrap();
    }
    let second = coordinator_over(Arc::clone(&log));
    assert!(matches!(
        second.committed("g", None),
        Err(GroupError::NotCoordinator { .. })
    ));
    second.take_over_all().unwrap();
    let committed = second.committed("g", None).unwrap();
    assert_eq!(committed[&TopicPartition::new("t", 1)].offset, 8);
}

#[test]
fn a_garbage_batch_in_the_offsets_log_fails_the_load_with_corrupt() {
    let log = Arc::new(MemoryOffsetsLog::new(3));
    let partition = logbus::group::records::offsets_partition_for("g", 3);
    log.append_raw(partition, Bytes::from_static(&[0u8; 70]))
        .unwrap();
    let coordinator = coordinator_over(Arc::clone(&log));
    let loaded = load_partition(log.as_ref(), partition);
    assert!(
        matches!(loaded, Err(GroupError::Corrupt { .. })),
        "{loaded:?}"
    );
    assert!(matches!(
        coordinator.take_over(partition),
        Err(GroupError::Corrupt { .. })
    ));
    assert!(matches!(
        coordinator.committed("g", None),
        Err(GroupError::CoordinatorNotAvailable { .. })
    ));
}

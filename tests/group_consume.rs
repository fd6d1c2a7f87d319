/// A member whose application stops polling for longer than `max_poll_interval_ms` leaves the
/// group from its heartbeat thread; its next poll finds its partitions lost and rejoins.
#[test]
fn a_member_that_stops_polling_leaves_and_its_next_poll_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let broker = broker_with(dir.path(), Arc::new(clock.clone()));
    broker
        .create_topic("t", TopicConfig::with_partitions(2))
        .unwrap();
    let calls = Calls::default();
    let mut consumer = Consumer::with_config(
        &broker,
        ConsumerConfig {
            max_poll_interval_ms: 300,
            heartbeat_interval_ms: 10,
            ..config("paused")
        },
    );
    consumer.set_rebalance_listener(calls.clone()).unwrap();
    consumer.subscribe(["t"]).unwrap();
    consumer.poll(SHORT).unwrap();
    let first_member = consumer.group_metadata().unwrap().member_id;
    let admin = broker.consumer_groups().unwrap();
    assert_eq!(admin.describe("paused").unwrap().members.len(), 1);
    clock.advance_ms(301);
    let waited = Instant::now();
    while admin.describe("paused").unwrap().state != GroupState::Empty {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "the heartbeat thread never left"
        );
        std::thread::yield_now();
    }
    consumer.poll(SHORT).unwrap();
    assert_eq!(consumer.assignment(), tps("t", 2));
    assert_ne!(consumer.group_metadata().unwrap().member_id, first_member);
    let calls = calls.0.lock().unwrap().clone();
    assert_eq!(calls[1], ("lost", tps("t", 2)));
    assert_eq!(calls[2], ("assigned", tps("t", 2)));
}

//! A broker registers itself and its topics in its coordinator, in Kafka's ZooKeeper layout, and
//! a second live broker with the same id on a shared coordinator is refused.

use std::sync::Arc;

use logbus::broker::{Broker, BrokerConfig, BrokerError, TopicConfig};
use logbus::coordinator::{Coordinator, MemoryCoordinator, SessionConfig, Watch};

fn config(coordinator: &Arc<dyn Coordinator>, broker_id: i32) -> BrokerConfig {
    BrokerConfig {
        broker_id,
        coordinator: Some(Arc::clone(coordinator)),
        maintenance_interval_ms: None,
        ..BrokerConfig::default()
    }
}

#[test]
fn broker_and_topics_appear_in_the_coordinator() {
    let coordinator: Arc<dyn Coordinator> = Arc::new(MemoryCoordinator::new());
    let observer = coordinator.session(SessionConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open_with(dir.path(), config(&coordinator, 7)).unwrap();
        broker
            .create_topic("orders", TopicConfig::with_partitions(2))
            .unwrap();
        let (ids, _) = observer.get_children("/brokers/ids", Watch::None).unwrap();
        assert_eq!(ids, vec!["7".to_owned()]);
        let (assignment, _) = observer
            .get_data("/brokers/topics/orders", Watch::None)
            .unwrap();
        assert_eq!(
            String::from_utf8(assignment).unwrap(),
            r#"{"version":3,"partitions":{"0":[7],"1":[7]}}"#
        );
        let (state, _) = observer
            .get_data("/brokers/topics/orders/partitions/1/state", Watch::None)
            .unwrap();
        assert!(String::from_utf8(state).unwrap().contains(r#""leader":7"#));
        let (properties, _) = observer
            .get_data("/config/topics/orders", Watch::None)
            .unwrap();
        assert!(String::from_utf8(properties)
            .unwrap()
            .contains("partitions=2"));

        broker.create_partitions("orders", 3).unwrap();
        assert!(observer
            .exists("/brokers/topics/orders/partitions/2/state", Watch::None)
            .unwrap()
            .is_some());

        let other_dir = tempfile::tempdir().unwrap();
        let duplicate = Broker::open_with(other_dir.path(), config(&coordinator, 7));
        assert!(matches!(
            duplicate,
            Err(BrokerError::BrokerIdInUse { broker_id: 7 })
        ));

        broker.delete_topic("orders").unwrap();
        assert!(observer
            .exists("/brokers/topics/orders", Watch::None)
            .unwrap()
            .is_none());
        assert!(observer
            .exists("/config/topics/orders", Watch::None)
            .unwrap()
            .is_none());
        broker.create_topic("kept", TopicConfig::default()).unwrap();
    }
    // The broker's session closed with it: its registration is gone; its topics are not.
    let (ids, _) = observer.get_children("/brokers/ids", Watch::None).unwrap();
    assert!(ids.is_empty());
    // A fresh coordinator learns the stored topics when the broker reopens.
    let fresh: Arc<dyn Coordinator> = Arc::new(MemoryCoordinator::new());
    let _broker = Broker::open_with(dir.path(), config(&fresh, 7)).unwrap();
    let reader = fresh.session(SessionConfig::default()).unwrap();
    assert!(reader
        .exists("/brokers/topics/kept/partitions/0/state", Watch::None)
        .unwrap()
        .is_some());
}

//! Session expiry, ephemeral cleanup and watch ordering under a manual clock: time moves only
//! when a test advances it, and nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use logbus::coordinator::{
    AddWatchMode, CoordError, CreateMode, Event, EventType, ExpiryReason, ManualClock,
    MemoryCoordinator, MemoryCoordinatorConfig, MemorySession, Session, SessionConfig,
    SessionEvent, Version, Watch, WatchedEvent,
};

const START_MS: i64 = 1_000_000;

fn setup() -> (Arc<ManualClock>, MemoryCoordinator) {
    let clock = Arc::new(ManualClock::new(START_MS));
    let config = MemoryCoordinatorConfig {
        tick_ms: 1_000,
        ..MemoryCoordinatorConfig::default()
    };
    let coordinator = MemoryCoordinator::with_clock(Arc::clone(&clock) as _, config);
    (clock, coordinator)
}

fn open(coordinator: &MemoryCoordinator, timeout_ms: u64) -> MemorySession {
    coordinator
        .open_session(SessionConfig::default().with_timeout_ms(timeout_ms))
        .expect("session")
}

fn watch_event(session: &MemorySession) -> WatchedEvent {
    match session.events().try_recv() {
        Ok(Event::Watch(event)) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

fn expired(session: &MemorySession) -> bool {
    session.sync("/")
        == Err(CoordError::SessionExpired {
            session: session.id(),
        })
}

#[test]
fn session_expires_exactly_at_its_timeout_after_heartbeats_stop() {
    let (clock, coordinator) = setup();
    let owner = open(&coordinator, 6_000);
    let watcher = open(&coordinator, 6_000);
    owner
        .create("/eph", b"", CreateMode::Ephemeral)
        .expect("create");
    watcher.exists("/eph", Watch::Set).expect("exists");
    owner.stop_heartbeat();
    clock.advance_ms(5_999);
    coordinator.tick();
    assert_eq!(coordinator.live_sessions(), 2);
    assert!(watcher.events().is_empty());
    clock.advance_ms(1);
    coordinator.tick();
    assert_eq!(coordinator.live_sessions(), 1);
    assert_eq!(
        owner.events().try_recv(),
        Ok(Event::Session(SessionEvent::Expired {
            reason: ExpiryReason::Timeout
        }))
    );
    let event = watch_event(&watcher);
    assert_eq!(
        (event.kind, event.path.as_str()),
        (EventType::NodeDeleted, "/eph")
    );
    assert!(expired(&owner));
    assert_eq!(watcher.exists("/eph", Watch::None), Ok(None));
}

#[test]
fn a_heartbeating_handle_never_expires() {
    let (clock, coordinator) = setup();
    let session = open(&coordinator, 4_000);
    session
        .create("/eph", b"", CreateMode::Ephemeral)
        .expect("create");
    for _ in 0..10 {
        clock.advance_ms(3_600_000);
        coordinator.tick();
    }
    assert!(session
        .exists("/eph", Watch::None)
        .expect("exists")
        .is_some());
}

#[test]
fn expiry_is_also_checked_lazily_by_operations() {
    let (clock, coordinator) = setup();
    let owner = open(&coordinator, 4_000);
    let other = open(&coordinator, 4_000);
    owner
        .create("/eph", b"", CreateMode::Ephemeral)
        .expect("create");
    owner.stop_heartbeat();
    clock.advance_ms(4_000);
    assert_eq!(
        other.exists("/eph", Watch::None),
        Ok(None),
        "no tick needed"
    );
    assert!(expired(&owner));
}

#[test]
fn operations_count_as_heartbeats() {
    let (clock, coordinator) = setup();
    let session = open(&coordinator, 6_000);
    session.stop_heartbeat();
    clock.advance_ms(5_000);
    session.sync("/").expect("still live");
    clock.advance_ms(5_000);
    coordinator.tick();
    assert_eq!(
        coordinator.live_sessions(),
        1,
        "last heard 5 s ago, timeout 6 s"
    );
    clock.advance_ms(1_000);
    coordinator.tick();
    assert!(expired(&session));
}

#[test]
fn timeout_is_negotiated_between_2_and_20_ticks() {
    let (_, coordinator) = setup();
    assert_eq!(open(&coordinator, 1).timeout_ms(), 2_000);
    assert_eq!(open(&coordinator, 7_500).timeout_ms(), 7_500);
    assert_eq!(open(&coordinator, 10_000_000).timeout_ms(), 20_000);
}

#[test]
fn node_times_come_from_the_clock() {
    let (clock, coordinator) = setup();
    let session = open(&coordinator, 6_000);
    session
        .create("/t", b"", CreateMode::Persistent)
        .expect("create");
    clock.advance_ms(1_500);
    let stat = session.set_data("/t", b"x", Version::Any).expect("set");
    assert_eq!((stat.ctime_ms, stat.mtime_ms), (START_MS, START_MS + 1_500));
}

#[test]
fn sessions_expiring_together_end_in_id_order_each_in_one_transaction() {
    let (clock, coordinator) = setup();
    let watcher = open(&coordinator, 6_000);
    let first = open(&coordinator, 4_000);
    let second = open(&coordinator, 4_000);
    first
        .create("/dir", b"", CreateMode::Persistent)
        .expect("create");
    for (session, names) in [
        (&second, ["/dir/s1", "/dir/s2"]),
        (&first, ["/dir/f1", "/dir/f2"]),
    ] {
        for name in names {
            session
                .create(name, b"", CreateMode::Ephemeral)
                .expect("create");
        }
    }
    watcher
        .add_watch("/dir", AddWatchMode::PersistentRecursive)
        .expect("watch");
    watcher.get_children("/dir", Watch::Set).expect("children");
    second.stop_heartbeat();
    first.stop_heartbeat();
    clock.advance_ms(4_000);
    coordinator.tick();
    let events: Vec<WatchedEvent> = std::iter::from_fn(|| match watcher.events().try_recv() {
        Ok(Event::Watch(event)) => Some(event),
        _ => None,
    })
    .collect();
    let summary: Vec<(EventType, &str)> =
        events.iter().map(|e| (e.kind, e.path.as_str())).collect();
    assert_eq!(
        summary,
        [
            (EventType::NodeDeleted, "/dir/f1"),
            (EventType::NodeChildrenChanged, "/dir"),
            (EventType::NodeDeleted, "/dir/f2"),
            (EventType::NodeDeleted, "/dir/s1"),
            (EventType::NodeDeleted, "/dir/s2"),
        ]
    );
    assert!(
        events.iter().all(|e| e.zxid.is_some()),
        "the memory coordinator reports zxids"
    );
    assert!(events[..3].iter().all(|e| e.zxid == events[0].zxid));
    assert!(events[3..].iter().all(|e| e.zxid == events[3].zxid));
    assert!(events[0].zxid < events[3].zxid);
    assert!(expired(&first) && expired(&second));
}

#[test]
fn an_ended_session_channel_ends_with_its_session_event() {
    let (_, coordinator) = setup();
    let session = open(&coordinator, 6_000);
    session.close().expect("close");
    assert_eq!(
        session.events().try_recv(),
        Ok(Event::Session(SessionEvent::Closed))
    );
    assert!(session.events().try_recv().is_err());
    assert_eq!(coordinator.live_sessions(), 0);
}

#[test]
fn overflow_of_one_session_leaves_others_and_the_writer_alone() {
    let (_, coordinator) = setup();
    let writer = open(&coordinator, 6_000);
    let slow = coordinator
        .open_session(SessionConfig::default().with_event_queue_capacity(2))
        .expect("session");
    writer
        .create("/n", b"", CreateMode::Persistent)
        .expect("create");
    slow.add_watch("/n", AddWatchMode::Persistent)
        .expect("watch");
    for _ in 0..3 {
        writer.set_data("/n", b"x", Version::Any).expect("set");
    }
    assert_eq!(slow.events().len(), 3, "two events and the expiry");
    assert!(expired(&slow));
    assert!(!expired(&writer));
}

#[test]
fn the_system_clock_ticker_expires_stopped_sessions() {
    let config = MemoryCoordinatorConfig {
        tick_ms: 1,
        ..MemoryCoordinatorConfig::default()
    };
    let coordinator = MemoryCoordinator::with_config(config);
    let owner = coordinator
        .open_session(SessionConfig::default())
        .expect("session");
    assert_eq!(owner.timeout_ms(), 20);
    owner
        .create("/eph", b"", CreateMode::Ephemeral)
        .expect("create");
    owner.stop_heartbeat();
    // A wait on the channel, not a sleep: the ticker thread sends the event.
    let event = owner.events().recv_timeout(Duration::from_secs(10));
    assert_eq!(
        event,
        Ok(Event::Session(SessionEvent::Expired {
            reason: ExpiryReason::Timeout
        }))
    );
    assert_eq!(coordinator.live_sessions(), 0);
}

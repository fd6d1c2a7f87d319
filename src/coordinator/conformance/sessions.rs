//! Cases on sessions: expiry and close delete ephemeral nodes at once and end the session.

use std::collections::HashSet;
use std::sync::Arc;

use super::{expect_no_event, mkdir, next_event, next_watch, session, zxids, Factory};
use crate::coordinator::{
    AddWatchMode, CoordError, Coordinator, CreateMode, Event, EventType, SessionConfig,
    SessionEvent, Version, Watch,
};

fn assert_ended(s: &Arc<dyn crate::coordinator::Session>) {
    let expired = CoordError::SessionExpired { session: s.id() };
    assert_eq!(
        s.create("/after", b"", CreateMode::Persistent),
        Err(expired.clone())
    );
    assert_eq!(
        s.get_data("/", Watch::None).map(|_| ()),
        Err(expired.clone())
    );
    assert_eq!(
        s.set_data("/", b"", Version::Any).map(|_| ()),
        Err(expired.clone())
    );
    assert_eq!(s.delete("/x", Version::Any), Err(expired.clone()));
    assert_eq!(s.exists("/", Watch::None), Err(expired.clone()));
    assert_eq!(
        s.get_children("/", Watch::None).map(|_| ()),
        Err(expired.clone())
    );
    assert_eq!(s.multi(&[]), Err(expired.clone()));
    assert_eq!(s.sync("/"), Err(expired.clone()));
    assert_eq!(s.add_watch("/", AddWatchMode::Persistent), Err(expired));
}

/// An expired session's ephemeral nodes are gone, its handle gets `Expired` as its last event,
/// and every later operation fails with `SessionExpired`.
pub fn expired_session_loses_ephemerals_and_fails_later_ops(factory: &Factory) {
    let coordinator = factory();
    let owner = session(&coordinator);
    let other = session(&coordinator);
    mkdir(&owner, "/kept");
    owner
        .create("/gone", b"", CreateMode::Ephemeral)
        .expect("ephemeral");
    coordinator.expire_session(owner.id()).expect("expire");
    assert!(matches!(
        next_event(&owner),
        Event::Session(SessionEvent::Expired { .. })
    ));
    assert_eq!(other.exists("/gone", Watch::None), Ok(None));
    assert!(other
        .exists("/kept", Watch::None)
        .expect("exists")
        .is_some());
    assert_ended(&owner);
}

/// A closed session behaves like an expired one, with a `Closed` event.
pub fn closed_session_loses_ephemerals_and_fails_later_ops(factory: &Factory) {
    let coordinator = factory();
    let owner = session(&coordinator);
    let other = session(&coordinator);
    owner
        .create("/gone", b"", CreateMode::Ephemeral)
        .expect("ephemeral");
    owner.close().expect("close");
    assert_eq!(next_event(&owner), Event::Session(SessionEvent::Closed));
    assert_eq!(other.exists("/gone", Watch::None), Ok(None));
    assert_ended(&owner);
    assert_eq!(owner.close(), Ok(()), "closing twice is harmless");
}

/// Dropping the last handle of a session closes it.
pub fn dropping_the_last_handle_closes_the_session(factory: &Factory) {
    let coordinator = factory();
    let other = session(&coordinator);
    {
        let owner = session(&coordinator);
        owner
            .create("/gone", b"", CreateMode::Ephemeral)
            .expect("ephemeral");
        assert!(other.exists("/gone", Watch::Set).expect("exists").is_some());
    }
    let event = next_watch(&other);
    assert_eq!(
        (event.kind, event.path.as_str()),
        (EventType::NodeDeleted, "/gone")
    );
}

/// `expire_session` of a session that already ended fails with `SessionExpired`.
pub fn expiring_an_ended_session_fails(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    let id = s.id();
    s.close().expect("close");
    assert_eq!(
        coordinator.expire_session(id),
        Err(CoordError::SessionExpired { session: id })
    );
}

/// A zero timeout or queue capacity is refused.
pub fn bad_session_config_is_rejected(factory: &Factory) {
    let coordinator: Arc<dyn Coordinator> = factory();
    let zero_timeout = SessionConfig::default().with_timeout_ms(0);
    assert!(matches!(
        coordinator.session(zero_timeout).map(|_| ()),
        Err(CoordError::BadArguments { .. })
    ));
    let zero_queue = SessionConfig::default().with_event_queue_capacity(0);
    assert!(matches!(
        coordinator.session(zero_queue).map(|_| ()),
        Err(CoordError::BadArguments { .. })
    ));
}

/// All ephemeral nodes of an expired session go in one transaction: every deletion event
/// carries the same zxid, and nobody can observe some of them gone and others not.
pub fn expiry_deletes_all_ephemerals_in_one_transaction(factory: &Factory) {
    let coordinator = factory();
    let owner = session(&coordinator);
    let watcher = session(&coordinator);
    mkdir(&owner, "/e");
    for name in ["/e/1", "/e/2", "/top"] {
        owner
            .create(name, b"", CreateMode::Ephemeral)
            .expect("ephemeral");
    }
    watcher
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .expect("watch");
    coordinator.expire_session(owner.id()).expect("expire");
    let events: Vec<_> = (0..3).map(|_| next_watch(&watcher)).collect();
    let paths: HashSet<&str> = events.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, HashSet::from(["/e/1", "/e/2", "/top"]));
    assert!(events.iter().all(|e| e.kind == EventType::NodeDeleted));
    let parent = watcher
        .exists("/e", Watch::None)
        .expect("exists")
        .expect("stat");
    assert_eq!(parent.num_children, 0);
    if let Some(zxids) = zxids(&events) {
        assert!(zxids.iter().all(|z| *z == zxids[0]), "{events:?}");
        assert_eq!(parent.pzxid, zxids[0]);
    }
    expect_no_event(&watcher);
}

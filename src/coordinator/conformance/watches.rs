//! Cases on watches: one-shot, persistent and recursive; ordering; slow consumers.

use super::{
    expect_no_event, expect_watch, mkdir, next_event, next_watch, session, zxids, Factory,
};
use crate::coordinator::{
    AddWatchMode, CoordError, CreateMode, Event, EventType, ExpiryReason, SessionConfig,
    SessionEvent, Version, Watch, WatcherKind,
};

/// A data watch fires on the next change only.
pub fn data_watch_fires_once(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let watcher = session(&coordinator);
    mkdir(&writer, "/a");
    watcher.get_data("/a", Watch::Set).expect("get");
    writer.set_data("/a", b"1", Version::Any).expect("set");
    writer.set_data("/a", b"2", Version::Any).expect("set");
    let event = expect_watch(&watcher, EventType::NodeDataChanged, "/a");
    let (_, stat) = writer.get_data("/a", Watch::None).expect("get");
    if let Some(zxid) = event.zxid {
        assert!(zxid < stat.mzxid, "the event is the first change's");
    }
    expect_no_event(&watcher);
}

/// An exists watch on a missing node fires when it is created; on an existing one, when its
/// data changes.
pub fn exists_watch_fires_on_creation(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let watcher = session(&coordinator);
    assert_eq!(watcher.exists("/n", Watch::Set), Ok(None));
    writer
        .create("/n", b"", CreateMode::Persistent)
        .expect("create");
    expect_watch(&watcher, EventType::NodeCreated, "/n");
    assert!(watcher.exists("/n", Watch::Set).expect("exists").is_some());
    writer.set_data("/n", b"x", Version::Any).expect("set");
    expect_watch(&watcher, EventType::NodeDataChanged, "/n");
    expect_no_event(&watcher);
}

/// A child watch fires once on a child's creation or deletion, not on data changes.
pub fn child_watch_fires_on_child_changes(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let watcher = session(&coordinator);
    mkdir(&writer, "/p");
    watcher.get_children("/p", Watch::Set).expect("children");
    writer.set_data("/p", b"data", Version::Any).expect("set");
    mkdir(&writer, "/p/c1");
    mkdir(&writer, "/p/c2");
    expect_watch(&watcher, EventType::NodeChildrenChanged, "/p");
    expect_no_event(&watcher);
    watcher.get_children("/p", Watch::Set).expect("children");
    writer.delete("/p/c1", Version::Any).expect("delete");
    expect_watch(&watcher, EventType::NodeChildrenChanged, "/p");
    expect_no_event(&watcher);
}

/// A deletion fires the node's data and child watches as one `NodeDeleted` event per session.
pub fn deletion_fires_data_and_child_watches_once(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let watcher = session(&coordinator);
    mkdir(&writer, "/a");
    watcher.get_data("/a", Watch::Set).expect("get");
    watcher.get_children("/a", Watch::Set).expect("children");
    writer.delete("/a", Version::Any).expect("delete");
    expect_watch(&watcher, EventType::NodeDeleted, "/a");
    expect_no_event(&watcher);
}

/// `get_data` and `get_children` of a missing node leave no watch.
pub fn failed_read_leaves_no_watch(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let watcher = session(&coordinator);
    assert!(matches!(
        watcher.get_data("/x", Watch::Set),
        Err(CoordError::NoNode { .. })
    ));
    assert!(matches!(
        watcher.get_children("/x", Watch::Set),
        Err(CoordError::NoNode { .. })
    ));
    mkdir(&writer, "/x");
    mkdir(&writer, "/x/y");
    expect_no_event(&watcher);
}

/// A persistent watch fires on every data, existence and child change of its node until it is
/// removed, and not on grandchildren.
pub fn persistent_watch_fires_until_removed(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let watcher = session(&coordinator);
    watcher
        .add_watch("/p", AddWatchMode::Persistent)
        .expect("add watch");
    mkdir(&writer, "/p");
    expect_watch(&watcher, EventType::NodeCreated, "/p");
    writer.set_data("/p", b"1", Version::Any).expect("set");
    writer.set_data("/p", b"2", Version::Any).expect("set");
    expect_watch(&watcher, EventType::NodeDataChanged, "/p");
    expect_watch(&watcher, EventType::NodeDataChanged, "/p");
    mkdir(&writer, "/p/c");
    expect_watch(&watcher, EventType::NodeChildrenChanged, "/p");
    mkdir(&writer, "/p/c/d");
    expect_no_event(&watcher);
    watcher
        .remove_watches("/p", WatcherKind::Persistent)
        .expect("remove");
    writer.set_data("/p", b"3", Version::Any).expect("set");
    expect_no_event(&watcher);
}

/// A recursive watch fires for its node and every descendant, never with
/// `NodeChildrenChanged`, and not for siblings that share a name prefix.
pub fn recursive_watch_covers_descendants(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let watcher = session(&coordinator);
    watcher
        .add_watch("/r", AddWatchMode::PersistentRecursive)
        .expect("add watch");
    mkdir(&writer, "/r");
    expect_watch(&watcher, EventType::NodeCreated, "/r");
    mkdir(&writer, "/r/a");
    expect_watch(&watcher, EventType::NodeCreated, "/r/a");
    writer
        .create("/r/a/b", b"", CreateMode::Ephemeral)
        .expect("create");
    expect_watch(&watcher, EventType::NodeCreated, "/r/a/b");
    writer.set_data("/r/a/b", b"x", Version::Any).expect("set");
    expect_watch(&watcher, EventType::NodeDataChanged, "/r/a/b");
    writer.delete("/r/a/b", Version::Any).expect("delete");
    expect_watch(&watcher, EventType::NodeDeleted, "/r/a/b");
    mkdir(&writer, "/rx");
    expect_no_event(&watcher);
    watcher
        .remove_watches("/r", WatcherKind::PersistentRecursive)
        .expect("remove");
    mkdir(&writer, "/r/b");
    expect_no_event(&watcher);
}

/// `remove_watches` fails with `NoWatcher` when no watch of the kind is on the path.
pub fn remove_watches_without_watch_fails(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    mkdir(&s, "/w");
    let none = CoordError::NoWatcher { path: "/w".into() };
    assert_eq!(s.remove_watches("/w", WatcherKind::Any), Err(none.clone()));
    s.get_data("/w", Watch::Set).expect("get");
    assert_eq!(
        s.remove_watches("/w", WatcherKind::Children),
        Err(none.clone())
    );
    assert_eq!(s.remove_watches("/w", WatcherKind::Data), Ok(()));
    assert_eq!(s.remove_watches("/w", WatcherKind::Data), Err(none));
    s.set_data("/w", b"x", Version::Any).expect("set");
    expect_no_event(&s);
}

/// A session's events arrive in the order of the changes (zxid order).
pub fn events_arrive_in_zxid_order(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let other = session(&coordinator);
    let watcher = session(&coordinator);
    mkdir(&writer, "/o");
    watcher
        .add_watch("/o", AddWatchMode::PersistentRecursive)
        .expect("watch");
    let mut expected = Vec::new();
    for round in 0..10 {
        let (s, name) = if round % 2 == 0 {
            (&writer, "a")
        } else {
            (&other, "b")
        };
        let path = format!("/o/{name}{round}");
        mkdir(s, &path);
        s.set_data(&path, b"x", Version::Any).expect("set");
        expected.push((EventType::NodeCreated, path.clone()));
        expected.push((EventType::NodeDataChanged, path));
    }
    let events: Vec<_> = expected.iter().map(|_| next_watch(&watcher)).collect();
    let got: Vec<_> = events.iter().map(|e| (e.kind, e.path.clone())).collect();
    assert_eq!(got, expected);
    if let Some(zxids) = zxids(&events) {
        assert!(zxids.windows(2).all(|w| w[0] < w[1]), "{events:?}");
    }
}

/// Once a session can read a change, the event announcing it is already in its queue.
pub fn event_is_seen_before_the_change_can_be_read(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let watcher = session(&coordinator);
    mkdir(&writer, "/v");
    for round in 0..20u8 {
        watcher.get_data("/v", Watch::Set).expect("watch");
        writer.set_data("/v", &[round], Version::Any).expect("set");
        let (data, _) = watcher.get_data("/v", Watch::None).expect("read");
        assert_eq!(data, [round]);
        let queued = watcher.events().try_recv();
        assert!(
            matches!(&queued, Ok(Event::Watch(e)) if e.kind == EventType::NodeDataChanged),
            "round {round}: {queued:?}"
        );
    }
}

/// A session whose consumer does not keep up is expired once its queue is full; writers and
/// other sessions carry on.
pub fn slow_consumer_is_expired_and_never_blocks_writers(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let fast = session(&coordinator);
    let slow = coordinator
        .session(SessionConfig::default().with_event_queue_capacity(4))
        .expect("session");
    mkdir(&writer, "/s");
    slow.create("/slow-owned", b"", CreateMode::Ephemeral)
        .expect("ephemeral");
    slow.add_watch("/s", AddWatchMode::Persistent)
        .expect("watch");
    fast.add_watch("/s", AddWatchMode::Persistent)
        .expect("watch");
    for round in 0..10u8 {
        writer
            .set_data("/s", &[round], Version::Any)
            .expect("writes never block");
    }
    for _ in 0..10 {
        expect_watch(&fast, EventType::NodeDataChanged, "/s");
    }
    let mut watch_events = 0;
    let ended = loop {
        match next_event(&slow) {
            Event::Watch(_) => watch_events += 1,
            Event::Session(ended) => break ended,
        }
    };
    assert_eq!(watch_events, 4);
    assert_eq!(
        ended,
        SessionEvent::Expired {
            reason: ExpiryReason::QueueOverflow
        }
    );
    assert_eq!(
        slow.sync("/"),
        Err(CoordError::SessionExpired { session: slow.id() })
    );
    assert_eq!(writer.exists("/slow-owned", Watch::None), Ok(None));
}

/// Watches of an ended session never fire.
pub fn ended_session_watches_are_gone(factory: &Factory) {
    let coordinator = factory();
    let writer = session(&coordinator);
    let watcher = session(&coordinator);
    mkdir(&writer, "/x");
    watcher.get_data("/x", Watch::Set).expect("get");
    watcher
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .expect("watch");
    watcher.close().expect("close");
    writer.set_data("/x", b"1", Version::Any).expect("set");
    writer.sync("/").expect("sync");
    assert_eq!(next_event(&watcher), Event::Session(SessionEvent::Closed));
    assert!(watcher.events().try_recv().is_err());
}

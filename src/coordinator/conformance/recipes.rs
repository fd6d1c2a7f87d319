//! Cases on the recipes: leader election without herd effect, and the lock.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::{expect_no_event, expect_watch, next_event, session, Factory, EVENT_WAIT};
use crate::coordinator::recipes::{LeaderElection, Lock, Standing};
use crate::coordinator::{Coordinator, EventType};

/// The lowest candidate leads; each other candidate watches only its predecessor, so a
/// resignation wakes exactly one candidate.
pub fn election_elects_lowest_and_has_no_herd_effect(factory: &Factory) {
    let coordinator = factory();
    let sessions: Vec<_> = (0..5).map(|_| session(&coordinator)).collect();
    let mut candidates: Vec<LeaderElection> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            LeaderElection::join(Arc::clone(s), "/election/controller", &[b'0' + i as u8])
                .expect("join")
        })
        .collect();
    assert!(candidates[0].is_leader());
    for i in 1..5 {
        let expected = Standing::Waiting {
            predecessor: candidates[i - 1].node().to_owned(),
        };
        assert_eq!(candidates[i].standing(), &expected);
    }
    assert_eq!(
        candidates[3].leader().expect("leader"),
        Some((candidates[0].node().to_owned(), b"0".to_vec()))
    );
    candidates.remove(0).resign().expect("resign");
    let event = next_event(&sessions[1]);
    assert_eq!(
        candidates[0].handle(&event).expect("handle"),
        Some(Standing::First)
    );
    for waiting in &sessions[2..] {
        expect_no_event(waiting);
    }
    assert_eq!(
        candidates[2]
            .leader()
            .expect("leader")
            .map(|(_, data)| data),
        Some(b"1".to_vec())
    );
}

/// When a waiting candidate's predecessor expires, it watches the next one down instead, and
/// leads once the leader goes.
pub fn election_survives_predecessor_expiry(factory: &Factory) {
    let coordinator = factory();
    let (a, b, c) = (
        session(&coordinator),
        session(&coordinator),
        session(&coordinator),
    );
    let leader = LeaderElection::join(Arc::clone(&a), "/e", b"a").expect("join");
    let middle = LeaderElection::join(Arc::clone(&b), "/e", b"b").expect("join");
    let mut last = LeaderElection::join(Arc::clone(&c), "/e", b"c").expect("join");
    coordinator.expire_session(b.id()).expect("expire");
    let event = expect_watch(&c, EventType::NodeDeleted, middle.node());
    let standing = last
        .handle(&crate::coordinator::Event::Watch(event))
        .expect("handle");
    assert_eq!(
        standing,
        Some(Standing::Waiting {
            predecessor: leader.node().to_owned()
        })
    );
    leader.resign().expect("resign");
    assert_eq!(last.wait_for_leadership(EVENT_WAIT), Ok(Standing::First));
}

/// Waiters get the lock in arrival order, one at a time; threads contending through the lock
/// never overlap.
pub fn lock_is_mutually_exclusive_and_fifo(factory: &Factory) {
    let coordinator = factory();
    let sessions: Vec<_> = (0..3).map(|_| session(&coordinator)).collect();
    let mut locks: Vec<Lock> = sessions
        .iter()
        .map(|s| Lock::enqueue(Arc::clone(s), "/locks/l").expect("enqueue"))
        .collect();
    assert_eq!(
        locks.iter().map(Lock::is_held).collect::<Vec<_>>(),
        [true, false, false]
    );
    locks.remove(0).release().expect("release");
    assert_eq!(locks[0].wait_until_held(EVENT_WAIT), Ok(Standing::First));
    expect_no_event(&sessions[2]);
    assert!(!locks[1].is_held());
    locks.remove(0).release().expect("release");
    assert_eq!(locks[0].wait_until_held(EVENT_WAIT), Ok(Standing::First));
    locks.remove(0).release().expect("release");
    contend(&coordinator);
}

fn contend(coordinator: &Arc<dyn Coordinator>) {
    let inside = AtomicBool::new(false);
    let entries = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let s = session(coordinator);
                for _ in 0..5 {
                    let mut lock =
                        Lock::enqueue(Arc::clone(&s), "/locks/threads").expect("enqueue");
                    assert_eq!(lock.wait_until_held(EVENT_WAIT), Ok(Standing::First));
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    entries.fetch_add(1, Ordering::SeqCst);
                    inside.store(false, Ordering::SeqCst);
                    lock.release().expect("release");
                }
            });
        }
    });
    assert_eq!(entries.load(Ordering::SeqCst), 20);
}

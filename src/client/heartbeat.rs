//! Heartbeats for a group member. The member heartbeats from `poll` when one is due and from a
//! background thread (as Kafka's Java client does), so a consumer busy between polls keeps its
//! session. The thread also enforces `max_poll_interval_ms`: a member whose application has not
//! polled for that long leaves the group (a dynamic member sends LeaveGroup; a static one just
//! stops heartbeating), and its next poll rejoins.
//!
//! Due times come from the injected clock; the thread waits on a condition variable for the
//! clock's remaining milliseconds (with a manual clock, heartbeats then come from `poll`).
//!
//! A heartbeat answered "the coordinator moved" (or not reachable) is no news for the polling
//! thread: the link forgets that coordinator and the next heartbeat goes to the new one, which
//! loaded the member with a fresh session.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::coordinator_link::{coordinator_moved, CoordinatorLink};
use super::ConsumeError;
use crate::clock::Clock;
use crate::group::{GroupError, MemberRef};
use crate::partition::Notifier;

/// What the heartbeat learned for the polling thread.
#[derive(Debug)]
pub(super) enum BeatEvent {
    /// The group is rebalancing: rejoin.
    Rebalance,
    /// The membership is gone (unknown member, old generation, fenced): partitions are lost.
    Lost(GroupError),
    /// The application did not poll within `max_poll_interval_ms`; the member left.
    PollTimeout,
}

#[derive(Debug, Default)]
struct BeatState {
    /// The member in a stable generation; `None` while (re)joining or out of the group.
    member: Option<MemberRef>,
    last_poll_ms: i64,
    last_beat_ms: i64,
    event: Option<BeatEvent>,
    stopped: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<BeatState>,
    wake: Condvar,
    link: Arc<CoordinatorLink>,
    clock: Arc<dyn Clock>,
    /// The consumer's notifier: woken so a blocked poll sees the event.
    notifier: Arc<Notifier>,
    interval_ms: i64,
    max_poll_interval_ms: i64,
}

/// The heartbeat of one member, with its thread.
#[derive(Debug)]
pub(super) struct Heartbeat {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(
        link: Arc<CoordinatorLink>,
        clock: Arc<dyn Clock>,
        notifier: Arc<Notifier>,
        interval_ms: u32,
        max_poll_interval_ms: u32,
    ) -> Heartbeat {
        let now_ms = clock.now_ms();
        let shared = Arc::new(Shared {
            state: Mutex::new(BeatState {
                last_poll_ms: now_ms,
                last_beat_ms: now_ms,
                ..BeatState::default()
            }),
            wake: Condvar::new(),
            link,
            clock,
            notifier,
            interval_ms: i64::from(interval_ms.max(1)),
            max_poll_interval_ms: i64::from(max_poll_interval_ms),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("logbus-heartbeat".into())
            .spawn(move || run(&for_thread))
            .ok();
        Heartbeat { shared, thread }
    }

    /// Starts (`Some`) or pauses (`None`, while rejoining) heartbeats.
    pub fn set_member(&self, member: Option<MemberRef>) {
        let mut state = self.shared.state.lock();
        state.member = member;
        state.event = None;
        state.last_beat_ms = self.shared.clock.now_ms();
        drop(state);
        self.shared.wake.notify_all();
    }

    /// Records a poll, and heartbeats if one is due.
    pub fn polled(&self) {
        let now_ms = self.shared.clock.now_ms();
        self.shared.state.lock().last_poll_ms = now_ms;
        beat_if_due(&self.shared, now_ms);
    }

    pub fn take_event(&self) -> Option<BeatEvent> {
        self.shared.state.lock().event.take()
    }

    pub fn stop(&mut self) {
        self.shared.state.lock().stopped = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic on the heartbeat thread has nothing left to report to.
            let _ = thread.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared) {
    loop {
        let mut state = shared.state.lock();
        if state.stopped {
            return;
        }
        let now_ms = shared.clock.now_ms();
        let due_ms = state.last_beat_ms + shared.interval_ms;
        if state.member.is_none() || now_ms < due_ms {
            let wait_ms = (due_ms - now_ms).clamp(1, shared.interval_ms);
            shared
                .wake
                .wait_for(&mut state, Duration::from_millis(wait_ms as u64));
            continue;
        }
        drop(state);
        beat_if_due(shared, now_ms);
    }
}

/// What a heartbeat's answer means for the polling thread, if anything.
fn beat_event(answer: Result<(), ConsumeError>) -> Option<BeatEvent> {
    match answer {
        Ok(()) => None,
        // Tried again on the next beat, at the coordinator found then.
        Err(error) if coordinator_moved(&error) => None,
        Err(ConsumeError::Group(GroupError::RebalanceInProgress { .. })) => {
            Some(BeatEvent::Rebalance)
        }
        Err(ConsumeError::Group(error)) => Some(BeatEvent::Lost(error)),
        // Finding the coordinator failed (the offsets topic could not be read or made): the
        // next beat tries again; the session covers the gap.
        Err(_) => None,
    }
}

enum Action {
    Beat(MemberRef),
    Leave(MemberRef),
}

/// One heartbeat (or, past the poll interval, a leave) if due; the answer becomes an event.
fn beat_if_due(shared: &Shared, now_ms: i64) {
    let action = {
        let mut state = shared.state.lock();
        let Some(member) = state.member.clone() else {
            return;
        };
        if now_ms < state.last_beat_ms + shared.interval_ms {
            return;
        }
        state.last_beat_ms = now_ms;
        if now_ms - state.last_poll_ms > shared.max_poll_interval_ms {
            state.member = None;
            state.event = Some(BeatEvent::PollTimeout);
            Action::Leave(member)
        } else {
            Action::Beat(member)
        }
    };
    let event = match action {
        Action::Leave(member) => {
            if member.group_instance_id.is_none() {
                // Best effort: if the leave fails the session expires the member anyway.
                let _ = shared.link.call_once(|coordinator| {
                    coordinator.leave(&member.group_id, &member.member_id, None)
                });
            }
            None
        }
        Action::Beat(member) => {
            let answer = shared
                .link
                .call_once(|coordinator| coordinator.heartbeat(&member));
            beat_event(answer).map(|event| (member, event))
        }
    };
    let mut state = shared.state.lock();
    if let Some((member, event)) = event {
        // An answer about a membership the consumer has already replaced is stale.
        if state.member.as_ref() == Some(&member) {
            if matches!(event, BeatEvent::Lost(_)) {
                state.member = None;
            }
            state.event = Some(event);
        }
    }
    drop(state);
    shared.notifier.notify();
}

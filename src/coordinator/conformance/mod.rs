//! The conformance suite: ZooKeeper's semantics as tests written once, generic over any
//! [`Coordinator`].
//!
//! Each `pub fn` takes a [`Factory`] that makes a fresh, empty coordinator (for a real ensemble:
//! a fresh chroot), asserts, and panics on a failure. [`coordinator_conformance_tests!`]
//! instantiates every case as a `#[test]`:
//!
//! ```ignore
//! logbus::coordinator_conformance_tests!(|| -> std::sync::Arc<dyn logbus::coordinator::Coordinator> {
//!     std::sync::Arc::new(logbus::coordinator::MemoryCoordinator::new())
//! });
//! ```
//!
//! Nothing here advances time: session expiry goes through [`Coordinator::expire_session`],
//! which a ZooKeeper adapter implements too. Events are awaited on the session's channel with a
//! generous timeout (a wait, never a sleep), and "no event" is asserted after a `sync`, which a
//! remote adapter answers only after delivering every event sent before it.
//!
//! [`coordinator_conformance_tests!`]: crate::coordinator_conformance_tests

mod multi;
mod nodes;
mod recipes;
mod sessions;
mod watches;

use std::sync::Arc;
use std::time::Duration;

use super::{
    CoordError, Coordinator, CreateMode, Event, EventType, Session, SessionConfig, WatchedEvent,
    Zxid,
};

pub use multi::{
    kafka_controller_election, multi_applies_all_ops_at_one_zxid,
    multi_applies_nothing_when_an_op_fails, multi_of_only_checks, multi_ops_see_earlier_ops,
    multi_reports_each_kind_of_failure,
};
pub use nodes::{
    container_goes_with_its_last_child, create_existing_fails_with_node_exists,
    create_returns_path_and_fresh_stat,
    create_under_ephemeral_fails_with_no_children_for_ephemerals,
    create_without_parent_fails_with_no_node, delete_checks_version_and_children,
    ephemeral_nodes_record_their_owner, get_children_lists_sorted_names,
    invalid_paths_fail_every_operation, oversized_data_fails_with_data_too_large,
    root_cannot_be_created_or_deleted, sequential_suffix_is_parent_cversion_in_ten_digits,
    set_data_checks_version, stat_tracks_data_and_children, sync_validates_and_succeeds,
};
pub use recipes::{
    election_elects_lowest_and_has_no_herd_effect, election_survives_predecessor_expiry,
    lock_is_mutually_exclusive_and_fifo,
};
pub use sessions::{
    bad_session_config_is_rejected, closed_session_loses_ephemerals_and_fails_later_ops,
    dropping_the_last_handle_closes_the_session,
    expired_session_loses_ephemerals_and_fails_later_ops, expiring_an_ended_session_fails,
    expiry_deletes_all_ephemerals_in_one_transaction,
};
pub use watches::{
    child_watch_fires_on_child_changes, data_watch_fires_once,
    deletion_fires_data_and_child_watches_once, ended_session_watches_are_gone,
    event_is_seen_before_the_change_can_be_read, events_arrive_in_zxid_order,
    exists_watch_fires_on_creation, failed_read_leaves_no_watch,
    persistent_watch_fires_until_removed, recursive_watch_covers_descendants,
    remove_watches_without_watch_fails, slow_consumer_is_expired_and_never_blocks_writers,
};

/// Makes a fresh, empty coordinator.
pub type Factory = dyn Fn() -> Arc<dyn Coordinator>;

/// How long a test waits for an event that must come.
pub const EVENT_WAIT: Duration = Duration::from_secs(10);

/// Instantiates every conformance case as a `#[test]` calling it with `$factory`.
///
/// With `, if $available`, each test first evaluates `$available` and returns at once (passes
/// without running the case) when it is false: for coordinators that need an external server,
/// whose tests skip, loudly, where none can be had.
#[macro_export]
macro_rules! coordinator_conformance_tests {
    ($factory:expr) => {
        $crate::coordinator_conformance_tests!(@list $factory, true);
    };
    ($factory:expr, if $available:expr) => {
        $crate::coordinator_conformance_tests!(@list $factory, $available);
    };
    (@list $factory:expr, $available:expr) => {
        $crate::coordinator_conformance_tests!(@cases $factory, $available;
            create_returns_path_and_fresh_stat,
            create_existing_fails_with_node_exists,
            create_without_parent_fails_with_no_node,
            create_under_ephemeral_fails_with_no_children_for_ephemerals,
            invalid_paths_fail_every_operation,
            root_cannot_be_created_or_deleted,
            oversized_data_fails_with_data_too_large,
            sequential_suffix_is_parent_cversion_in_ten_digits,
            ephemeral_nodes_record_their_owner,
            set_data_checks_version,
            delete_checks_version_and_children,
            stat_tracks_data_and_children,
            get_children_lists_sorted_names,
            container_goes_with_its_last_child,
            sync_validates_and_succeeds,
            multi_applies_all_ops_at_one_zxid,
            multi_applies_nothing_when_an_op_fails,
            multi_reports_each_kind_of_failure,
            multi_ops_see_earlier_ops,
            multi_of_only_checks,
            kafka_controller_election,
            expired_session_loses_ephemerals_and_fails_later_ops,
            closed_session_loses_ephemerals_and_fails_later_ops,
            dropping_the_last_handle_closes_the_session,
            expiring_an_ended_session_fails,
            bad_session_config_is_rejected,
            expiry_deletes_all_ephemerals_in_one_transaction,
            data_watch_fires_once,
            exists_watch_fires_on_creation,
            child_watch_fires_on_child_changes,
            deletion_fires_data_and_child_watches_once,
            failed_read_leaves_no_watch,
            persistent_watch_fires_until_removed,
            recursive_watch_covers_descendants,
            remove_watches_without_watch_fails,
            events_arrive_in_zxid_order,
            event_is_seen_before_the_change_can_be_read,
            slow_consumer_is_expired_and_never_blocks_writers,
            ended_session_watches_are_gone,
            election_elects_lowest_and_has_no_herd_effect,
            election_survives_predecessor_expiry,
            lock_is_mutually_exclusive_and_fifo,
        );
    };
    (@cases $factory:expr, $available:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if $available {
                    $crate::coordinator::conformance::$name(&$factory);
                }
            }
        )*
    };
}

/// A session with the default config.
///
/// # Panics
/// If the coordinator refuses it.
pub fn session(coordinator: &Arc<dyn Coordinator>) -> Arc<dyn Session> {
    coordinator
        .session(SessionConfig::default())
        .expect("open session")
}

/// Waits for the session's next event.
///
/// # Panics
/// If none comes within [`EVENT_WAIT`].
pub fn next_event(session: &Arc<dyn Session>) -> Event {
    session
        .events()
        .recv_timeout(EVENT_WAIT)
        .expect("an event within the wait")
}

/// Waits for the session's next event and checks it is a watch event.
///
/// # Panics
/// If none comes, or it is a session event.
pub fn next_watch(session: &Arc<dyn Session>) -> WatchedEvent {
    match next_event(session) {
        Event::Watch(event) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

/// Waits for the next watch event and checks its kind and path.
///
/// # Panics
/// On a different event.
pub fn expect_watch(session: &Arc<dyn Session>, kind: EventType, path: &str) -> WatchedEvent {
    let event = next_watch(session);
    assert_eq!(
        (event.kind, event.path.as_str()),
        (kind, path),
        "event {event:?}"
    );
    event
}

/// Asserts that no event is pending once every earlier one had time to arrive.
///
/// # Panics
/// If an event is pending.
pub fn expect_no_event(session: &Arc<dyn Session>) {
    session.sync("/").expect("sync");
    if let Ok(event) = session.events().try_recv() {
        panic!("unexpected event {event:?}");
    }
}

/// The zxids of `events`, if the coordinator reports every one (ZooKeeper before 3.9 does not).
pub fn zxids(events: &[WatchedEvent]) -> Option<Vec<Zxid>> {
    events.iter().map(|event| event.zxid).collect()
}

/// Creates a persistent node with empty data.
///
/// # Panics
/// If the create fails.
pub fn mkdir(session: &Arc<dyn Session>, path: &str) {
    session
        .create(path, b"", CreateMode::Persistent)
        .expect("create persistent node");
}

/// Unwraps a `MultiFailed`.
///
/// # Panics
/// On any other result.
pub fn multi_failure<T: std::fmt::Debug>(result: Result<T, CoordError>) -> (usize, CoordError) {
    match result {
        Err(CoordError::MultiFailed { index, error }) => (index, *error),
        other => panic!("expected MultiFailed, got {other:?}"),
    }
}

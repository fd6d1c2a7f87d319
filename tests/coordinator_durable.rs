//! A coordinator opened on a directory: persistent nodes, data, versions and sequence counters
//! survive a restart; sessions and ephemeral nodes do not; snapshots trim the txn log; damage
//! is a typed error; a txn the log refuses is never applied.

use std::sync::Arc;

use logbus::clock::ManualClock;
use logbus::coordinator::{
    CoordError, Coordinator, CreateMode, DurabilityConfig, MemoryCoordinator,
    MemoryCoordinatorConfig, SessionConfig, StorageError, Txn, TxnObserver, Version, Watch,
};
use logbus::log::LogError;

fn open(dir: &std::path::Path, snapshot_every_txns: u64) -> MemoryCoordinator {
    let durability = DurabilityConfig {
        snapshot_every_txns,
        ..DurabilityConfig::default()
    };
    MemoryCoordinator::open_with(
        dir,
        Arc::new(ManualClock::new(1_000)),
        MemoryCoordinatorConfig::default(),
        durability,
    )
    .unwrap()
}

#[test]
fn persistent_state_survives_and_ephemeral_state_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let sequential;
    {
        let coordinator = open(dir.path(), 1_000_000);
        let session = coordinator.session(SessionConfig::default()).unwrap();
        session
            .create("/brokers", b"", CreateMode::Persistent)
            .unwrap();
        session
            .create("/brokers/ids", b"", CreateMode::Persistent)
            .unwrap();
        session
            .create("/brokers/ids/1", b"host-1", CreateMode::Ephemeral)
            .unwrap();
        session
            .create("/controller_epoch", b"1", CreateMode::Persistent)
            .unwrap();
        session
            .set_data("/controller_epoch", b"2", Version::Exactly(0))
            .unwrap();
        session
            .create("/queue", b"", CreateMode::Persistent)
            .unwrap();
        session
            .create("/queue/item-", b"a", CreateMode::PersistentSequential)
            .unwrap();
        sequential = session
            .create("/queue/item-", b"b", CreateMode::PersistentSequential)
            .unwrap();
        session.delete(&sequential, Version::Any).unwrap();
    }
    let coordinator = open(dir.path(), 1_000_000);
    let session = coordinator.session(SessionConfig::default()).unwrap();
    let (data, stat) = session.get_data("/controller_epoch", Watch::None).unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"2"[..], 1));
    assert!(
        session
            .exists("/brokers/ids/1", Watch::None)
            .unwrap()
            .is_none(),
        "ephemeral survived"
    );
    assert_eq!(
        session.get_children("/brokers/ids", Watch::None).unwrap().0,
        Vec::<String>::new()
    );
    // The parent's counter survived: the next sequential node does not reuse a number.
    let next = session
        .create("/queue/item-", b"c", CreateMode::PersistentSequential)
        .unwrap();
    assert!(next > sequential, "{next} after {sequential}");
    assert!(matches!(
        session.set_data("/controller_epoch", b"3", Version::Exactly(0)),
        Err(CoordError::BadVersion { actual: 1, .. })
    ));
}

#[test]
fn snapshots_trim_the_log_and_replay_gives_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let coordinator = open(dir.path(), 1_000_000);
        let session = coordinator.session(SessionConfig::default()).unwrap();
        session.create("/n", b"", CreateMode::Persistent).unwrap();
        for i in 0..50 {
            session
                .create(
                    &format!("/n/{i}"),
                    format!("{i}").as_bytes(),
                    CreateMode::Persistent,
                )
                .unwrap();
        }
        coordinator.snapshot_now().unwrap();
        for i in 0..50 {
            session
                .set_data(&format!("/n/{i}"), b"later", Version::Any)
                .unwrap();
        }
        before = coordinator.tree();
    }
    let log = std::fs::read_dir(dir.path().join("txnlog-0"))
        .unwrap()
        .count();
    assert!(log > 0);
    let start =
        std::fs::read_to_string(dir.path().join("txnlog-0/log-start-offset-checkpoint")).unwrap();
    assert!(
        start.ends_with(" 51\n"),
        "log start after the snapshot: {start:?}"
    );
    let coordinator = open(dir.path(), 1_000_000);
    assert_eq!(coordinator.tree().last_zxid(), before.last_zxid());
    let session = coordinator.session(SessionConfig::default()).unwrap();
    for i in 0..50 {
        let (data, stat) = session.get_data(&format!("/n/{i}"), Watch::None).unwrap();
        assert_eq!((data.as_slice(), stat.version), (&b"later"[..], 1));
    }
}

#[test]
fn background_snapshots_follow_the_txn_count() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path(), 10);
    let session = coordinator.session(SessionConfig::default()).unwrap();
    for i in 0..100 {
        session
            .create(&format!("/k{i}"), b"", CreateMode::Persistent)
            .unwrap();
    }
    drop(session);
    drop(coordinator);
    assert!(
        dir.path().join("snapshot").exists(),
        "no snapshot after 100 txns at 10 per snapshot"
    );
    let coordinator = open(dir.path(), 10);
    let session = coordinator.session(SessionConfig::default()).unwrap();
    assert_eq!(session.get_children("/", Watch::None).unwrap().0.len(), 100);
}

#[test]
fn damaged_files_are_typed_errors_and_a_second_opener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let coordinator = open(dir.path(), 1_000_000);
        let session = coordinator.session(SessionConfig::default()).unwrap();
        session.create("/a", b"x", CreateMode::Persistent).unwrap();
        coordinator.snapshot_now().unwrap();
        let second = MemoryCoordinator::open_with(
            dir.path(),
            Arc::new(ManualClock::new(0)),
            MemoryCoordinatorConfig::default(),
            DurabilityConfig::default(),
        );
        assert!(
            matches!(second, Err(CoordError::StorageFailed(StorageError(ref error))) if matches!(**error, LogError::Locked { .. }))
        );
    }
    let snapshot = dir.path().join("snapshot");
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&snapshot, bytes).unwrap();
    let reopened = MemoryCoordinator::open_with(
        dir.path(),
        Arc::new(ManualClock::new(0)),
        MemoryCoordinatorConfig::default(),
        DurabilityConfig::default(),
    );
    assert!(
        matches!(reopened, Err(CoordError::StorageFailed(StorageError(ref error))) if matches!(**error, LogError::Corrupt { .. }))
    );
}

/// A log that refuses the third txn.
struct RefusingLog {
    seen: parking_lot::Mutex<u32>,
    failure: StorageError,
}

impl TxnObserver for RefusingLog {
    fn committed(&self, _txn: &Txn) -> Result<(), CoordError> {
        let mut seen = self.seen.lock();
        *seen += 1;
        if *seen == 3 {
            return Err(CoordError::StorageFailed(self.failure.clone()));
        }
        Ok(())
    }
}

#[test]
fn a_refused_txn_is_not_applied_and_poisons_the_coordinator() {
    let coordinator = MemoryCoordinator::with_clock(
        Arc::new(ManualClock::new(0)),
        MemoryCoordinatorConfig::default(),
    );
    let failure = StorageError(Arc::new(LogError::FlushFailed));
    coordinator.observe_txns(Arc::new(RefusingLog {
        seen: parking_lot::Mutex::new(0),
        failure: failure.clone(),
    }));
    let session = coordinator.session(SessionConfig::default()).unwrap();
    session.create("/one", b"", CreateMode::Persistent).unwrap();
    session.create("/two", b"", CreateMode::Persistent).unwrap();
    let refused = session.create("/three", b"", CreateMode::Persistent);
    assert_eq!(refused, Err(CoordError::StorageFailed(failure.clone())));
    assert!(
        coordinator.tree().nodes().all(|(path, _)| path != "/three"),
        "refused txn was applied"
    );
    assert_eq!(
        session.exists("/one", Watch::None),
        Err(CoordError::StorageFailed(failure))
    );
}

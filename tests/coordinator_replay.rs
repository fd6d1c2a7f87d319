//! Durability readiness: every committed change is a `Txn` value; replaying the encoded txns
//! (from the start, or from a snapshot taken midway) rebuilds exactly the coordinator's tree.

use std::sync::Arc;

use logbus::coordinator::linearizability::SplitMix64;
use logbus::coordinator::{
    decode_snapshot, decode_txn, encode_snapshot, encode_txn, CreateMode, DataTree, ManualClock,
    MemoryCoordinator, MemoryCoordinatorConfig, MemorySession, NodeKind, Op, Session,
    SessionConfig, SessionId, Txn, TxnObserver, TxnOp, Version, Zxid,
};
use parking_lot::Mutex;

/// Keeps the encoded txns, as a log would.
#[derive(Default)]
struct EncodedLog {
    records: Mutex<Vec<Vec<u8>>>,
}

impl TxnObserver for EncodedLog {
    fn committed(&self, txn: &Txn) -> Result<(), logbus::coordinator::CoordError> {
        let mut bytes = Vec::new();
        encode_txn(txn, &mut bytes);
        self.records.lock().push(bytes);
        Ok(())
    }
}

const PATHS: [&str; 8] = ["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/1", "/c", "/c/q-"];
const MODES: [CreateMode; 5] = [
    CreateMode::Persistent,
    CreateMode::Ephemeral,
    CreateMode::PersistentSequential,
    CreateMode::EphemeralSequential,
    CreateMode::Container,
];

fn random_step(rng: &mut SplitMix64, session: &MemorySession) {
    let pick =
        |rng: &mut SplitMix64, len: usize| usize::try_from(rng.below(len as u64)).unwrap_or(0);
    let path = PATHS[pick(rng, PATHS.len())];
    let data = rng.next_u64().to_be_bytes();
    // Errors (NoNode, NodeExists, ...) are part of the workload: they commit nothing.
    let _ = match rng.below(5) {
        0 | 1 => session
            .create(path, &data, MODES[pick(rng, MODES.len())])
            .map(|_| ()),
        2 => session.set_data(path, &data, Version::Any).map(|_| ()),
        3 => session.delete(path, Version::Any),
        _ => session
            .multi(&[
                Op::create(path, data.to_vec(), MODES[pick(rng, MODES.len())]),
                Op::set_data(PATHS[pick(rng, PATHS.len())], data.to_vec(), Version::Any),
            ])
            .map(|_| ()),
    };
}

fn replay(records: &[Vec<u8>], mut tree: DataTree) -> DataTree {
    for record in records {
        tree.apply(&decode_txn(record).expect("decode"));
    }
    tree
}

#[test]
fn replaying_encoded_txns_rebuilds_the_tree() {
    let mut former_sessions = 0;
    for seed in 0..20 {
        let clock = Arc::new(ManualClock::new(0));
        let coordinator = MemoryCoordinator::with_clock(
            Arc::clone(&clock) as _,
            MemoryCoordinatorConfig::default(),
        );
        let log = Arc::new(EncodedLog::default());
        coordinator.observe_txns(Arc::clone(&log) as _);
        let mut rng = SplitMix64(seed);
        let mut sessions: Vec<MemorySession> = (0..3)
            .map(|_| {
                coordinator
                    .open_session(SessionConfig::default())
                    .expect("session")
            })
            .collect();
        for _ in 0..300 {
            clock.advance_ms(rng.below(50) as i64);
            match rng.below(40) {
                0 => {
                    sessions.remove(0).close().expect("close");
                    sessions.push(
                        coordinator
                            .open_session(SessionConfig::default())
                            .expect("session"),
                    );
                }
                1 => {
                    sessions[0].stop_heartbeat();
                    clock.advance_ms(60_000);
                    coordinator.tick();
                    sessions.remove(0);
                    sessions.push(
                        coordinator
                            .open_session(SessionConfig::default())
                            .expect("session"),
                    );
                }
                _ => {
                    let index = usize::try_from(rng.below(3)).unwrap_or(0);
                    random_step(&mut rng, &sessions[index]);
                }
            }
        }
        let records = log.records.lock().clone();
        assert!(
            records.len() > 50,
            "seed {seed}: only {} txns",
            records.len()
        );
        let zxids: Vec<i64> = records
            .iter()
            .map(|r| decode_txn(r).expect("decode").zxid.0)
            .collect();
        assert!(
            zxids.iter().enumerate().all(|(i, z)| *z == i as i64 + 1),
            "zxids are dense from 1"
        );
        let live = coordinator.tree();
        assert_eq!(
            replay(&records, DataTree::new()),
            live,
            "seed {seed}: full replay"
        );
        let middle = records.len() / 2;
        let snapshot = encode_snapshot(&replay(&records[..middle], DataTree::new()));
        let restored = decode_snapshot(&snapshot).expect("decode snapshot");
        assert_eq!(
            replay(&records[middle..], restored),
            live,
            "seed {seed}: snapshot + tail"
        );
        former_sessions += assert_restart_keeps_only_persistent_state(&live, clock);
    }
    assert!(
        former_sessions > 0,
        "the workload leaves ephemeral nodes to clean up"
    );
}

/// A coordinator restarted from a tree keeps persistent nodes with their data and versions,
/// and loses every ephemeral node (and containers emptied by that).
fn assert_restart_keeps_only_persistent_state(live: &DataTree, clock: Arc<ManualClock>) -> usize {
    let restarted =
        MemoryCoordinator::from_tree(live.clone(), clock, MemoryCoordinatorConfig::default());
    let tree = restarted.tree();
    assert_eq!(tree.ephemeral_owners().count(), 0);
    for (path, node) in live.nodes() {
        match (node.kind, tree.get(path)) {
            (NodeKind::Ephemeral(_), after) => assert!(after.is_none(), "{path} survived"),
            (NodeKind::Persistent, None) => panic!("persistent {path} lost"),
            (NodeKind::Persistent, Some(after)) => {
                assert_eq!(
                    (&after.data, after.stat.version),
                    (&node.data, node.stat.version),
                    "{path}"
                );
                assert!(
                    after.stat.cversion >= node.stat.cversion,
                    "{path}: sequence counter went back"
                );
            }
            (NodeKind::Container, _) => {}
        }
    }
    let mut expected = live.clone();
    let mut owners: Vec<SessionId> = live.ephemeral_owners().collect();
    owners.sort();
    for (i, session) in owners.iter().enumerate() {
        let zxid = Zxid(live.last_zxid().0 + 1 + i as i64);
        expected.apply(&Txn {
            zxid,
            time_ms: 0,
            ops: vec![TxnOp::CloseSession { session: *session }],
        });
    }
    assert_eq!(tree.nodes().count(), expected.nodes().count());
    for (path, node) in expected.nodes() {
        assert_eq!(
            tree.get(path)
                .map(|n| (&n.data, n.stat.version, n.stat.cversion)),
            Some((&node.data, node.stat.version, node.stat.cversion)),
            "{path}"
        );
    }
    let session = restarted
        .open_session(SessionConfig::default())
        .expect("session");
    assert!(
        owners.iter().all(|owner| *owner < session.id()),
        "session ids are not reused"
    );
    owners.len()
}

//! Cases on `multi`: all or nothing, results in order, the failing op named, Kafka's election.

use super::{expect_watch, mkdir, multi_failure, session, Factory};
use crate::coordinator::EventType;
use crate::coordinator::{
    AddWatchMode, CoordError, CreateMode, Event, Op, OpResult, SessionEvent, Version, Watch,
};

/// A successful `multi` returns one result per op, and all its changes share one zxid.
pub fn multi_applies_all_ops_at_one_zxid(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    mkdir(&s, "/m");
    let results = s
        .multi(&[
            Op::create("/m/a", b"a".to_vec(), CreateMode::Persistent),
            Op::create("/m/s-", b"".to_vec(), CreateMode::PersistentSequential),
            Op::set_data("/m", b"top".to_vec(), Version::Exactly(0)),
            Op::check("/m/a", Version::Exactly(0)),
        ])
        .expect("multi");
    assert_eq!(results.len(), 4);
    assert_eq!(
        results[0],
        OpResult::Create {
            path: "/m/a".into()
        }
    );
    assert_eq!(
        results[1],
        OpResult::Create {
            path: "/m/s-0000000001".into()
        }
    );
    let OpResult::SetData { stat } = results[2] else {
        panic!("set result {:?}", results[2])
    };
    assert_eq!(stat.version, 1);
    assert_eq!(results[3], OpResult::Check);
    let (_, a) = s.get_data("/m/a", Watch::None).expect("get");
    let (data, m) = s.get_data("/m", Watch::None).expect("get");
    assert_eq!(data, b"top");
    assert_eq!(a.czxid, m.mzxid);
    assert_eq!(m.pzxid, a.czxid);
    assert_eq!(stat, m);
}

/// When one op fails, none applies, and no watch fires.
pub fn multi_applies_nothing_when_an_op_fails(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    let watcher = super::session(&coordinator);
    mkdir(&s, "/m");
    watcher
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .expect("watch");
    let (index, error) = multi_failure(s.multi(&[
        Op::create("/m/new", b"".to_vec(), CreateMode::Persistent),
        Op::set_data("/m", b"x".to_vec(), Version::Any),
        Op::check("/m", Version::Exactly(0)),
    ]));
    assert_eq!(index, 2);
    assert_eq!(
        error,
        CoordError::BadVersion {
            path: "/m".into(),
            expected: 0,
            actual: 1
        }
    );
    assert_eq!(s.exists("/m/new", Watch::None), Ok(None));
    let (data, stat) = s.get_data("/m", Watch::None).expect("get");
    assert_eq!(
        (data.as_slice(), stat.version, stat.cversion),
        (&b""[..], 0, 0)
    );
    super::expect_no_event(&watcher);
}

/// Each failure kind is reported with the index of the first failing op.
pub fn multi_reports_each_kind_of_failure(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    mkdir(&s, "/m");
    mkdir(&s, "/m/child");
    s.create("/eph", b"", CreateMode::Ephemeral)
        .expect("ephemeral");
    let ok = Op::check("/m", Version::Any);
    let cases = [
        (
            Op::create("/m", b"".to_vec(), CreateMode::Persistent),
            CoordError::NodeExists { path: "/m".into() },
        ),
        (
            Op::create("/x/y", b"".to_vec(), CreateMode::Persistent),
            CoordError::NoNode { path: "/x".into() },
        ),
        (
            Op::delete("/m", Version::Any),
            CoordError::NotEmpty { path: "/m".into() },
        ),
        (
            Op::delete("/m/child", Version::Exactly(5)),
            CoordError::BadVersion {
                path: "/m/child".into(),
                expected: 5,
                actual: 0,
            },
        ),
        (
            Op::set_data("/none", b"".to_vec(), Version::Any),
            CoordError::NoNode {
                path: "/none".into(),
            },
        ),
        (
            Op::check("/none", Version::Any),
            CoordError::NoNode {
                path: "/none".into(),
            },
        ),
        (
            Op::create("/eph/c", b"".to_vec(), CreateMode::Persistent),
            CoordError::NoChildrenForEphemerals {
                parent: "/eph".into(),
            },
        ),
        (
            Op::create("bad", b"".to_vec(), CreateMode::Persistent),
            CoordError::InvalidPath {
                path: "bad".into(),
                reason: crate::coordinator::PathError::NotAbsolute,
            },
        ),
    ];
    for (op, expected) in cases {
        let (index, error) = multi_failure(s.multi(&[ok.clone(), op.clone()]));
        assert_eq!(index, 1, "{op:?}");
        // Only the kind: a remote ensemble reports an error code, not which node failed.
        assert_eq!(
            std::mem::discriminant(&error),
            std::mem::discriminant(&expected),
            "{op:?}: {error:?}"
        );
    }
    let result = s.multi(&[Op::set_data("/m", vec![0; 2 << 20], Version::Any)]);
    assert!(matches!(
        multi_failure(result),
        (0, CoordError::DataTooLarge { .. })
    ));
}

/// Later ops of a `multi` see the effects of earlier ones.
pub fn multi_ops_see_earlier_ops(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    let results = s
        .multi(&[
            Op::create("/t", b"".to_vec(), CreateMode::Persistent),
            Op::set_data("/t", b"1".to_vec(), Version::Exactly(0)),
            Op::set_data("/t", b"2".to_vec(), Version::Exactly(1)),
            Op::create("/t/c", b"".to_vec(), CreateMode::Persistent),
            Op::delete("/t/c", Version::Exactly(0)),
            Op::check("/t", Version::Exactly(2)),
        ])
        .expect("multi");
    let versions: Vec<i32> = results
        .iter()
        .filter_map(|r| match r {
            OpResult::SetData { stat } => Some(stat.version),
            _ => None,
        })
        .collect();
    assert_eq!(versions, [1, 2]);
    let (data, stat) = s.get_data("/t", Watch::None).expect("get");
    assert_eq!(
        (
            data.as_slice(),
            stat.version,
            stat.cversion,
            stat.num_children
        ),
        (&b"2"[..], 2, 2, 0)
    );
    let (index, _) = multi_failure(s.multi(&[
        Op::delete("/t", Version::Any),
        Op::check("/t", Version::Any),
    ]));
    assert_eq!(index, 1);
}

/// A `multi` of checks changes nothing and succeeds or fails like its checks.
pub fn multi_of_only_checks(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    mkdir(&s, "/c");
    assert_eq!(
        s.multi(&[Op::check("/c", Version::Exactly(0))]),
        Ok(vec![OpResult::Check])
    );
    assert_eq!(s.multi(&[]), Ok(vec![]));
    let (index, _) = multi_failure(s.multi(&[Op::check("/c", Version::Exactly(1))]));
    assert_eq!(index, 0);
}

fn elect(
    s: &std::sync::Arc<dyn crate::coordinator::Session>,
    broker: &[u8],
    epoch_version: i32,
) -> Result<(), CoordError> {
    s.multi(&[
        Op::create("/controller", broker.to_vec(), CreateMode::Ephemeral),
        Op::set_data(
            "/controller_epoch",
            broker.to_vec(),
            Version::Exactly(epoch_version),
        ),
    ])
    .map(|_| ())
}

/// Kafka's controller election: one `multi` creating the ephemeral `/controller` and bumping
/// `/controller_epoch` at its expected version. The loser sees `NodeExists`; after the winner's
/// session expires, a broker with a stale epoch version sees `BadVersion`, one with the current
/// version wins.
pub fn kafka_controller_election(factory: &Factory) {
    let coordinator = factory();
    let broker1 = session(&coordinator);
    let broker2 = session(&coordinator);
    broker1
        .create("/controller_epoch", b"0", CreateMode::Persistent)
        .expect("epoch");
    assert_eq!(elect(&broker1, b"1", 0), Ok(()));
    let (index, error) = multi_failure(elect(&broker2, b"2", 0));
    assert_eq!(
        (index, error),
        (
            0,
            CoordError::NodeExists {
                path: "/controller".into()
            }
        )
    );
    assert!(broker2
        .exists("/controller", Watch::Set)
        .expect("exists")
        .is_some());
    coordinator
        .expire_session(broker1.id())
        .expect("expire broker 1");
    expect_watch(&broker2, EventType::NodeDeleted, "/controller");
    assert!(matches!(
        broker1.events().recv_timeout(super::EVENT_WAIT),
        Ok(Event::Session(SessionEvent::Expired { .. }))
    ));
    let (index, error) = multi_failure(elect(&broker2, b"2", 0));
    assert_eq!(
        (index, error),
        (
            1,
            CoordError::BadVersion {
                path: "/controller_epoch".into(),
                expected: 0,
                actual: 1
            }
        )
    );
    let (_, epoch) = broker2
        .get_data("/controller_epoch", Watch::None)
        .expect("epoch");
    assert_eq!(elect(&broker2, b"2", epoch.version), Ok(()));
    let (controller, stat) = broker2
        .get_data("/controller", Watch::None)
        .expect("controller");
    assert_eq!(
        (controller.as_slice(), stat.ephemeral_owner),
        (&b"2"[..], broker2.id())
    );
    assert_eq!(
        broker2
            .get_data("/controller_epoch", Watch::None)
            .expect("epoch")
            .1
            .version,
        2
    );
}

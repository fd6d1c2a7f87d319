//! Cases on single-node operations: create, read, set, delete, children, containers, sync.

use super::{expect_watch, mkdir, session, Factory};
use crate::coordinator::{CoordError, CreateMode, EventType, PathError, SessionId, Version, Watch};

/// `create` returns the path; the node reads back with a fresh stat.
pub fn create_returns_path_and_fresh_stat(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    assert_eq!(
        s.create("/a", b"hello", CreateMode::Persistent),
        Ok("/a".to_owned())
    );
    let (data, stat) = s.get_data("/a", Watch::None).expect("get");
    assert_eq!(data, b"hello");
    assert_eq!(stat.version, 0);
    assert_eq!(stat.cversion, 0);
    assert_eq!(stat.data_length, 5);
    assert_eq!(stat.num_children, 0);
    assert_eq!(stat.ephemeral_owner, SessionId::NONE);
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(stat.czxid, stat.pzxid);
    assert_eq!(stat.ctime_ms, stat.mtime_ms);
    assert_eq!(s.exists("/a", Watch::None), Ok(Some(stat)));
}

/// A second create of a path fails with `NodeExists`, leaving the node as it was.
pub fn create_existing_fails_with_node_exists(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    s.create("/a", b"1", CreateMode::Persistent)
        .expect("create");
    for mode in [
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::Container,
    ] {
        assert_eq!(
            s.create("/a", b"2", mode),
            Err(CoordError::NodeExists { path: "/a".into() })
        );
    }
    assert_eq!(s.get_data("/a", Watch::None).expect("get").0, b"1");
}

/// A create under a missing parent fails with `NoNode`.
pub fn create_without_parent_fails_with_no_node(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    let result = s.create("/missing/child", b"", CreateMode::Persistent);
    assert!(
        matches!(result, Err(CoordError::NoNode { .. })),
        "{result:?}"
    );
    let result = s.create("/missing/seq-", b"", CreateMode::PersistentSequential);
    assert!(
        matches!(result, Err(CoordError::NoNode { .. })),
        "{result:?}"
    );
    assert_eq!(s.exists("/missing", Watch::None), Ok(None));
}

/// Ephemeral nodes cannot have children, whatever the child's mode.
pub fn create_under_ephemeral_fails_with_no_children_for_ephemerals(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    s.create("/e", b"", CreateMode::Ephemeral)
        .expect("create ephemeral");
    for mode in [
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::EphemeralSequential,
    ] {
        assert_eq!(
            s.create("/e/child", b"", mode),
            Err(CoordError::NoChildrenForEphemerals {
                parent: "/e".into()
            })
        );
    }
}

/// Every operation rejects every kind of malformed path with `InvalidPath`.
pub fn invalid_paths_fail_every_operation(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    for (path, reason) in crate::coordinator::path::MALFORMED_PATHS {
        let expected = CoordError::InvalidPath {
            path: path.to_owned(),
            reason,
        };
        assert_eq!(
            s.create(path, b"", CreateMode::Persistent),
            Err(expected.clone()),
            "create {path:?}"
        );
        assert_eq!(
            s.get_data(path, Watch::Set).map(|_| ()),
            Err(expected.clone()),
            "get {path:?}"
        );
        assert_eq!(
            s.set_data(path, b"", Version::Any).map(|_| ()),
            Err(expected.clone())
        );
        assert_eq!(
            s.delete(path, Version::Any),
            Err(expected.clone()),
            "delete {path:?}"
        );
        assert_eq!(
            s.exists(path, Watch::Set),
            Err(expected.clone()),
            "exists {path:?}"
        );
        assert_eq!(
            s.get_children(path, Watch::Set).map(|_| ()),
            Err(expected.clone())
        );
        assert_eq!(s.sync(path), Err(expected), "sync {path:?}");
    }
}

/// The root exists, but cannot be created or deleted.
pub fn root_cannot_be_created_or_deleted(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    assert!(s.exists("/", Watch::None).expect("exists").is_some());
    let root = CoordError::InvalidPath {
        path: "/".into(),
        reason: PathError::Root,
    };
    assert_eq!(
        s.create("/", b"", CreateMode::Persistent),
        Err(root.clone())
    );
    assert_eq!(s.delete("/", Version::Any), Err(root));
}

/// Data over the limit (1 MiB by default) fails with `DataTooLarge` on create and set.
pub fn oversized_data_fails_with_data_too_large(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    let big = vec![7u8; 1_000_000];
    s.create("/big", &big, CreateMode::Persistent)
        .expect("a large but accepted node");
    assert_eq!(
        s.get_data("/big", Watch::None).expect("get").0.len(),
        big.len()
    );
    let too_big = vec![0u8; 2 << 20];
    let result = s.create("/too-big", &too_big, CreateMode::Persistent);
    assert!(
        matches!(result, Err(CoordError::DataTooLarge { size_bytes, .. }) if size_bytes == too_big.len())
    );
    let result = s.set_data("/big", &too_big, Version::Any);
    assert!(
        matches!(result, Err(CoordError::DataTooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(s.exists("/too-big", Watch::None), Ok(None));
    assert_eq!(
        s.exists("/big", Watch::None)
            .expect("exists")
            .map(|stat| stat.version),
        Some(0)
    );
}

/// A sequential name ends with the parent's count of child creations as 10 digits, as in
/// ZooKeeper (whose reported `cversion` counts deletions too, so it runs ahead of the suffix once
/// a child was deleted); a suffix is never reused.
pub fn sequential_suffix_is_parent_cversion_in_ten_digits(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    mkdir(&s, "/q");
    assert_eq!(
        s.create("/q/n-", b"", CreateMode::PersistentSequential),
        Ok("/q/n-0000000000".into())
    );
    assert_eq!(
        s.create("/q/n-", b"", CreateMode::EphemeralSequential),
        Ok("/q/n-0000000001".into())
    );
    mkdir(&s, "/q/plain");
    s.delete("/q/plain", Version::Any).expect("delete");
    let cversion = s
        .exists("/q", Watch::None)
        .expect("exists")
        .expect("stat")
        .cversion;
    assert_eq!(cversion, 4);
    assert_eq!(
        s.create("/q/", b"", CreateMode::PersistentSequential),
        Ok("/q/0000000003".into())
    );
    s.delete("/q/n-0000000000", Version::Any).expect("delete");
    assert_eq!(
        s.create("/q/n-", b"", CreateMode::PersistentSequential),
        Ok("/q/n-0000000004".into())
    );
    let parent = s.exists("/q", Watch::None).expect("exists").expect("stat");
    assert_eq!((parent.cversion, parent.num_children), (7, 3));
}

/// An ephemeral node's stat names its session; a persistent one's names none.
pub fn ephemeral_nodes_record_their_owner(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    let path = s
        .create("/e-", b"", CreateMode::EphemeralSequential)
        .expect("create");
    let stat = s.exists(&path, Watch::None).expect("exists").expect("stat");
    assert_eq!(stat.ephemeral_owner, s.id());
    assert_ne!(s.id(), SessionId::NONE);
}

/// `set_data` with `Version::Any` always applies; with `Exactly` only at that version.
pub fn set_data_checks_version(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    assert_eq!(
        s.set_data("/a", b"x", Version::Any),
        Err(CoordError::NoNode { path: "/a".into() })
    );
    mkdir(&s, "/a");
    let stat = s.set_data("/a", b"one", Version::Any).expect("set any");
    assert_eq!((stat.version, stat.data_length), (1, 3));
    let stat = s
        .set_data("/a", b"two", Version::Exactly(1))
        .expect("set at 1");
    assert_eq!(stat.version, 2);
    assert_eq!(
        s.set_data("/a", b"three", Version::Exactly(1)),
        Err(CoordError::BadVersion {
            path: "/a".into(),
            expected: 1,
            actual: 2
        })
    );
    assert_eq!(s.get_data("/a", Watch::None), Ok((b"two".to_vec(), stat)));
}

/// `delete` checks existence, version and children.
pub fn delete_checks_version_and_children(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    assert_eq!(
        s.delete("/a", Version::Any),
        Err(CoordError::NoNode { path: "/a".into() })
    );
    mkdir(&s, "/a");
    mkdir(&s, "/a/b");
    assert_eq!(
        s.delete("/a", Version::Any),
        Err(CoordError::NotEmpty { path: "/a".into() })
    );
    assert_eq!(
        s.delete("/a/b", Version::Exactly(3)),
        Err(CoordError::BadVersion {
            path: "/a/b".into(),
            expected: 3,
            actual: 0
        })
    );
    assert_eq!(s.delete("/a/b", Version::Exactly(0)), Ok(()));
    assert_eq!(s.delete("/a", Version::Any), Ok(()));
    assert_eq!(s.exists("/a", Watch::None), Ok(None));
}

/// Writes move `mzxid` and `version`; child changes move `pzxid`, `cversion`, `num_children`.
pub fn stat_tracks_data_and_children(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    mkdir(&s, "/p");
    let created = s.exists("/p", Watch::None).expect("exists").expect("stat");
    let set = s.set_data("/p", b"d", Version::Any).expect("set");
    assert!(set.mzxid > created.mzxid);
    assert_eq!(
        (set.czxid, set.pzxid, set.cversion),
        (created.czxid, created.pzxid, 0)
    );
    mkdir(&s, "/p/c");
    let (_, child) = s.get_data("/p/c", Watch::None).expect("get");
    let parent = s.exists("/p", Watch::None).expect("exists").expect("stat");
    assert_eq!(
        (parent.num_children, parent.cversion, parent.pzxid),
        (1, 1, child.czxid)
    );
    assert_eq!((parent.version, parent.mzxid), (1, set.mzxid));
    s.delete("/p/c", Version::Any).expect("delete");
    let parent_after = s.exists("/p", Watch::None).expect("exists").expect("stat");
    assert_eq!((parent_after.num_children, parent_after.cversion), (0, 2));
    assert!(parent_after.pzxid > child.czxid);
}

/// `get_children` returns sorted names and the node's stat, or `NoNode`.
pub fn get_children_lists_sorted_names(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    assert_eq!(
        s.get_children("/none", Watch::Set).map(|_| ()),
        Err(CoordError::NoNode {
            path: "/none".into()
        })
    );
    mkdir(&s, "/d");
    for name in ["c", "a", "b"] {
        mkdir(&s, &format!("/d/{name}"));
    }
    let (children, stat) = s.get_children("/d", Watch::None).expect("children");
    assert_eq!(children, ["a", "b", "c"]);
    assert_eq!(stat.num_children, 3);
    let (root_children, _) = s.get_children("/", Watch::None).expect("root children");
    assert!(root_children.contains(&"d".to_owned()));
}

/// A container goes when its last child goes (ZooKeeper's reaper does it later, so the case
/// waits for the deletion event); one that never had a child stays.
pub fn container_goes_with_its_last_child(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    s.create("/c", b"", CreateMode::Container)
        .expect("container");
    s.create("/never", b"", CreateMode::Container)
        .expect("container");
    s.create("/c/1", b"", CreateMode::Ephemeral).expect("child");
    mkdir(&s, "/c/2");
    s.delete("/c/1", Version::Any).expect("delete");
    assert!(
        s.exists("/c", Watch::None).expect("exists").is_some(),
        "one child left"
    );
    s.delete("/c/2", Version::Any).expect("delete");
    if s.exists("/c", Watch::Set).expect("exists").is_some() {
        expect_watch(&s, EventType::NodeDeleted, "/c");
    }
    assert_eq!(s.exists("/c", Watch::None), Ok(None));
    assert!(s.exists("/never", Watch::None).expect("exists").is_some());
}

/// `sync` succeeds on any valid path and rejects invalid ones.
pub fn sync_validates_and_succeeds(factory: &Factory) {
    let coordinator = factory();
    let s = session(&coordinator);
    assert_eq!(s.sync("/"), Ok(()));
    assert_eq!(s.sync("/not-there"), Ok(()));
    assert!(matches!(
        s.sync("nope"),
        Err(CoordError::InvalidPath { .. })
    ));
}

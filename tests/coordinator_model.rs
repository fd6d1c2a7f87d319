//! Model-based test: random operations run against `MemoryCoordinator` and against a plain
//! `BTreeMap` model of ZooKeeper's rules side by side; every result and every node must agree.

use std::collections::BTreeMap;
use std::sync::Arc;

use logbus::coordinator::{
    CoordError, CreateMode, ManualClock, MemoryCoordinator, MemoryCoordinatorConfig, MemorySession,
    Session, SessionConfig, SessionId, Version, Watch,
};
use proptest::prelude::*;

const PATHS: [&str; 7] = ["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z", "/b/s-"];
const MODES: [CreateMode; 5] = [
    CreateMode::Persistent,
    CreateMode::Ephemeral,
    CreateMode::PersistentSequential,
    CreateMode::EphemeralSequential,
    CreateMode::Container,
];

#[derive(Debug, Clone)]
enum Action {
    Create {
        session: usize,
        path: usize,
        mode: usize,
        data: u8,
    },
    Set {
        session: usize,
        path: usize,
        version: Option<i32>,
        data: u8,
    },
    Delete {
        session: usize,
        pick: usize,
        version: Option<i32>,
    },
    Close {
        session: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct ModelNode {
    data: Vec<u8>,
    version: i32,
    cversion: i32,
    /// Child creations: ZooKeeper's sequence counter (`cversion` counts deletions too).
    creations: i32,
    owner: SessionId,
    container: bool,
}

/// ZooKeeper's rules over a map of paths.
#[derive(Debug, Default)]
struct Model {
    nodes: BTreeMap<String, ModelNode>,
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(slash) => &path[..slash],
    }
}

impl Model {
    fn new() -> Model {
        let root = ModelNode {
            data: vec![],
            version: 0,
            cversion: 0,
            creations: 0,
            owner: SessionId::NONE,
            container: false,
        };
        Model {
            nodes: BTreeMap::from([("/".to_owned(), root)]),
        }
    }

    fn children(&self, path: &str) -> Vec<&String> {
        self.nodes
            .keys()
            .filter(|p| *p != "/" && parent(p) == path)
            .collect()
    }

    fn create(
        &mut self,
        path: &str,
        mode: CreateMode,
        data: &[u8],
        owner: SessionId,
    ) -> Result<String, &'static str> {
        let sequential = matches!(
            mode,
            CreateMode::PersistentSequential | CreateMode::EphemeralSequential
        );
        let parent_path = parent(path).to_owned();
        let Some(parent_node) = self.nodes.get_mut(&parent_path) else {
            return Err("NoNode");
        };
        if parent_node.owner != SessionId::NONE {
            return Err("NoChildrenForEphemerals");
        }
        let created = if sequential {
            format!("{path}{:010}", parent_node.creations)
        } else {
            path.to_owned()
        };
        if self.nodes.contains_key(&created) {
            return Err("NodeExists");
        }
        let parent_node = self.nodes.get_mut(&parent_path).expect("checked");
        parent_node.cversion += 1;
        parent_node.creations += 1;
        let ephemeral = matches!(
            mode,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        );
        let node = ModelNode {
            data: data.to_vec(),
            version: 0,
            cversion: 0,
            creations: 0,
            owner: if ephemeral { owner } else { SessionId::NONE },
            container: mode == CreateMode::Container,
        };
        self.nodes.insert(created.clone(), node);
        Ok(created)
    }

    fn set(&mut self, path: &str, version: Option<i32>, data: &[u8]) -> Result<i32, &'static str> {
        let node = self.nodes.get_mut(path).ok_or("NoNode")?;
        if version.is_some_and(|v| v != node.version) {
            return Err("BadVersion");
        }
        node.version += 1;
        node.data = data.to_vec();
        Ok(node.version)
    }

    fn delete(&mut self, path: &str, version: Option<i32>) -> Result<(), &'static str> {
        let node = self.nodes.get(path).ok_or("NoNode")?;
        if version.is_some_and(|v| v != node.version) {
            return Err("BadVersion");
        }
        if !self.children(path).is_empty() {
            return Err("NotEmpty");
        }
        let emptied = self.remove(path);
        self.reap(emptied);
        Ok(())
    }

    /// Removes a leaf; returns its parent if that is now an empty container.
    fn remove(&mut self, path: &str) -> Vec<String> {
        self.nodes.remove(path);
        let parent_path = parent(path).to_owned();
        let parent_node = self.nodes.get_mut(&parent_path).expect("parent");
        parent_node.cversion += 1;
        let container = parent_node.container;
        if container && self.children(&parent_path).is_empty() {
            vec![parent_path]
        } else {
            vec![]
        }
    }

    fn reap(&mut self, mut emptied: Vec<String>) {
        while let Some(path) = emptied.pop() {
            if self.nodes.contains_key(&path) && self.children(&path).is_empty() {
                let more = self.remove(&path);
                emptied.extend(more);
            }
        }
    }

    fn close(&mut self, owner: SessionId) {
        let owned: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.owner == owner)
            .map(|(p, _)| p.clone())
            .collect();
        let mut emptied = Vec::new();
        for path in owned {
            emptied.extend(self.remove(&path));
        }
        self.reap(emptied);
    }
}

fn kind(error: &CoordError) -> &'static str {
    match error {
        CoordError::NoNode { .. } => "NoNode",
        CoordError::NodeExists { .. } => "NodeExists",
        CoordError::BadVersion { .. } => "BadVersion",
        CoordError::NotEmpty { .. } => "NotEmpty",
        CoordError::NoChildrenForEphemerals { .. } => "NoChildrenForEphemerals",
        other => panic!("unexpected error {other}"),
    }
}

fn version(v: Option<i32>) -> Version {
    v.map_or(Version::Any, Version::Exactly)
}

fn arb_action() -> impl Strategy<Value = Action> {
    let session = 0..2usize;
    let maybe_version = proptest::option::of(0..3i32);
    prop_oneof![
        4 => (session.clone(), 0..PATHS.len(), 0..MODES.len(), any::<u8>())
            .prop_map(|(session, path, mode, data)| Action::Create { session, path, mode, data }),
        2 => (session.clone(), 0..PATHS.len(), maybe_version.clone(), any::<u8>())
            .prop_map(|(session, path, version, data)| Action::Set { session, path, version, data }),
        3 => (session.clone(), any::<usize>(), maybe_version)
            .prop_map(|(session, pick, version)| Action::Delete { session, pick, version }),
        1 => session.prop_map(|session| Action::Close { session }),
    ]
}

fn open(coordinator: &MemoryCoordinator) -> MemorySession {
    coordinator
        .open_session(SessionConfig::default())
        .expect("session")
}

fn run(actions: &[Action]) {
    let clock = Arc::new(ManualClock::new(0));
    let coordinator = MemoryCoordinator::with_clock(clock, MemoryCoordinatorConfig::default());
    let mut sessions = [open(&coordinator), open(&coordinator)];
    let mut model = Model::new();
    for action in actions {
        match *action {
            Action::Create {
                session,
                path,
                mode,
                data,
            } => {
                let s = &sessions[session];
                let real = s
                    .create(PATHS[path], &[data], MODES[mode])
                    .map_err(|e| kind(&e));
                let expected = model.create(PATHS[path], MODES[mode], &[data], s.id());
                assert_eq!(real, expected, "{action:?}");
            }
            Action::Set {
                session,
                path,
                version: v,
                data,
            } => {
                let real = sessions[session].set_data(PATHS[path], &[data], version(v));
                let expected = model.set(PATHS[path], v, &[data]);
                assert_eq!(
                    real.map(|stat| stat.version).map_err(|e| kind(&e)),
                    expected,
                    "{action:?}"
                );
            }
            Action::Delete {
                session,
                pick,
                version: v,
            } => {
                let paths: Vec<String> =
                    model.nodes.keys().filter(|p| *p != "/").cloned().collect();
                let path = paths
                    .get(pick % paths.len().max(1))
                    .cloned()
                    .unwrap_or_else(|| "/a".to_owned());
                let real = sessions[session]
                    .delete(&path, version(v))
                    .map_err(|e| kind(&e));
                assert_eq!(real, model.delete(&path, v), "{action:?} on {path}");
            }
            Action::Close { session } => {
                model.close(sessions[session].id());
                sessions[session].close().expect("close");
                sessions[session] = open(&coordinator);
            }
        }
        assert_same_tree(&sessions[0], &model);
    }
}

fn assert_same_tree(session: &MemorySession, model: &Model) {
    for (path, node) in &model.nodes {
        let (data, stat) = session
            .get_data(path, Watch::None)
            .expect("model node exists");
        assert_eq!(data, node.data, "{path}");
        assert_eq!(
            (stat.version, stat.cversion, stat.ephemeral_owner),
            (node.version, node.cversion, node.owner),
            "{path}"
        );
        let (children, _) = session.get_children(path, Watch::None).expect("children");
        let expected: Vec<&str> = model
            .children(path)
            .iter()
            .map(|p| &p[p.rfind('/').unwrap_or(0) + 1..])
            .collect();
        assert_eq!(children, expected, "{path}");
    }
    for path in PATHS {
        if !model.nodes.contains_key(path) {
            assert_eq!(session.exists(path, Watch::None), Ok(None), "{path}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn coordinator_matches_the_model(actions in proptest::collection::vec(arb_action(), 1..60)) {
        run(&actions);
    }
}

//! The data tree: znodes keyed by path, and the one `apply` function every committed transaction
//! goes through.
//!
//! Validation ([`Prep`]) and application ([`DataTree::apply`]) are separate, as in ZooKeeper's
//! `PrepRequestProcessor` and `DataTree`: a request is checked against the tree plus the effects
//! of the earlier ops of the same `multi`, turned into a [`Txn`] that records every decision
//! (resolved sequential names, times, zxid), and only then applied. Applying a txn cannot fail,
//! so replaying a log of txns rebuilds the same tree.

use std::collections::{BTreeSet, HashMap};

use super::error::CoordError;
use super::path;
use super::txn::{NodeKind, Txn, TxnOp};
use super::types::{CreateMode, SessionId, Stat, Version, Zxid};

/// One znode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's data.
    pub data: Vec<u8>,
    /// The node's metadata; `data_length` and `num_children` are kept current.
    pub stat: Stat,
    /// Persistent, ephemeral or container.
    pub kind: NodeKind,
    /// Names of the children, sorted.
    pub children: BTreeSet<String>,
}

impl Node {
    fn new(data: Vec<u8>, kind: NodeKind, zxid: Zxid, time_ms: i64) -> Node {
        let stat = Stat {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime_ms: time_ms,
            mtime_ms: time_ms,
            ephemeral_owner: kind.owner(),
            data_length: data_length(&data),
            ..Stat::default()
        };
        Node {
            data,
            stat,
            kind,
            children: BTreeSet::new(),
        }
    }
}

/// What one applied txn changed, in order: the input of watch delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A node was created.
    Created(String),
    /// A node was deleted.
    Deleted(String),
    /// A node's data was set; its stat after the write.
    DataChanged(String, Stat),
    /// A child of this node was created or deleted.
    ChildrenChanged(String),
}

/// All znodes, the ephemeral index and the last applied zxid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTree {
    /// Every node by full path; the root is always present.
    nodes: HashMap<String, Node>,
    /// Paths of the ephemeral nodes of each session that has any.
    ephemerals: HashMap<SessionId, BTreeSet<String>>,
    /// The zxid of the last applied txn.
    last_zxid: Zxid,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// A tree holding only the root.
    pub fn new() -> DataTree {
        let root = Node::new(Vec::new(), NodeKind::Persistent, Zxid(0), 0);
        let nodes = HashMap::from([(path::ROOT.to_owned(), root)]);
        DataTree {
            nodes,
            ephemerals: HashMap::new(),
            last_zxid: Zxid(0),
        }
    }

    /// Rebuilds a tree from nodes (without children sets, which are derived) and the last zxid.
    /// The caller (snapshot decoding) has checked that every parent exists.
    pub(crate) fn from_parts(nodes: HashMap<String, Node>, last_zxid: Zxid) -> DataTree {
        let mut tree = DataTree {
            nodes,
            ephemerals: HashMap::new(),
            last_zxid,
        };
        let paths: Vec<String> = tree
            .nodes
            .keys()
            .filter(|p| *p != path::ROOT)
            .cloned()
            .collect();
        for node_path in paths {
            let owner = tree.nodes[&node_path].kind.owner();
            if owner != SessionId::NONE {
                tree.ephemerals
                    .entry(owner)
                    .or_default()
                    .insert(node_path.clone());
            }
            let name = path::name(&node_path).to_owned();
            if let Some(parent) = tree.nodes.get_mut(path::parent(&node_path)) {
                parent.children.insert(name);
            }
        }
        for node in tree.nodes.values_mut() {
            node.stat.num_children = count(node.children.len());
        }
        tree
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Every node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Number of nodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree holds only the root (never: the root is always there).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The zxid of the last applied txn.
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// The sessions owning ephemeral nodes.
    pub fn ephemeral_owners(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.ephemerals.keys().copied()
    }

    /// Whether `session` owns any ephemeral node.
    pub fn owns_ephemerals(&self, session: SessionId) -> bool {
        self.ephemerals.contains_key(&session)
    }

    /// Applies a committed txn and returns what changed, in order.
    ///
    /// # Panics
    /// If the txn was not prepared against this tree (a create under a missing parent, a zxid
    /// not above the last one): that is a bug, not input.
    pub fn apply(&mut self, txn: &Txn) -> Vec<Change> {
        assert!(
            txn.zxid > self.last_zxid,
            "txn {} not after {}",
            txn.zxid,
            self.last_zxid
        );
        self.last_zxid = txn.zxid;
        let mut changes = Vec::with_capacity(txn.ops.len() * 2);
        let mut emptied = Vec::new();
        for op in &txn.ops {
            self.apply_op(op, txn, &mut changes, &mut emptied);
        }
        self.reap_containers(emptied, txn, &mut changes);
        changes
    }

    fn apply_op(
        &mut self,
        op: &TxnOp,
        txn: &Txn,
        changes: &mut Vec<Change>,
        emptied: &mut Vec<String>,
    ) {
        match op {
            TxnOp::Create { path, data, kind } => self.create(path, data, *kind, txn, changes),
            TxnOp::Delete { path } => self.delete(path, txn.zxid, changes, emptied),
            TxnOp::SetData { path, data } => self.set_data(path, data, txn, changes),
            TxnOp::CloseSession { session } => {
                let paths = self.ephemerals.remove(session).unwrap_or_default();
                for path in paths {
                    self.delete(&path, txn.zxid, changes, emptied);
                }
            }
        }
    }

    fn create(
        &mut self,
        path: &str,
        data: &[u8],
        kind: NodeKind,
        txn: &Txn,
        changes: &mut Vec<Change>,
    ) {
        let parent_path = path::parent(path);
        let parent = self
            .nodes
            .get_mut(parent_path)
            .expect("create under a missing parent");
        assert!(
            parent.children.insert(path::name(path).to_owned()),
            "create of existing {path}"
        );
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = txn.zxid;
        parent.stat.num_children += 1;
        let node = Node::new(data.to_vec(), kind, txn.zxid, txn.time_ms);
        if kind.owner() != SessionId::NONE {
            self.ephemerals
                .entry(kind.owner())
                .or_default()
                .insert(path.to_owned());
        }
        self.nodes.insert(path.to_owned(), node);
        changes.push(Change::Created(path.to_owned()));
        changes.push(Change::ChildrenChanged(parent_path.to_owned()));
    }

    fn delete(
        &mut self,
        path: &str,
        zxid: Zxid,
        changes: &mut Vec<Change>,
        emptied: &mut Vec<String>,
    ) {
        let node = self.nodes.remove(path).expect("delete of a missing node");
        assert!(node.children.is_empty(), "delete of non-empty {path}");
        let owner = node.kind.owner();
        if let Some(paths) = self.ephemerals.get_mut(&owner) {
            paths.remove(path);
            if paths.is_empty() {
                self.ephemerals.remove(&owner);
            }
        }
        let parent_path = path::parent(path);
        let parent = self
            .nodes
            .get_mut(parent_path)
            .expect("node without parent");
        parent.children.remove(path::name(path));
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = zxid;
        parent.stat.num_children -= 1;
        if parent.kind == NodeKind::Container && parent.children.is_empty() {
            emptied.push(parent_path.to_owned());
        }
        changes.push(Change::Deleted(path.to_owned()));
        changes.push(Change::ChildrenChanged(parent_path.to_owned()));
    }

    fn set_data(&mut self, path: &str, data: &[u8], txn: &Txn, changes: &mut Vec<Change>) {
        let node = self.nodes.get_mut(path).expect("set of a missing node");
        node.data.clear();
        node.data.extend_from_slice(data);
        node.stat.version = node.stat.version.wrapping_add(1);
        node.stat.mzxid = txn.zxid;
        node.stat.mtime_ms = txn.time_ms;
        node.stat.data_length = data_length(data);
        changes.push(Change::DataChanged(path.to_owned(), node.stat));
    }

    /// Deletes the containers whose last child went in this txn, and their container parents in
    /// turn, once every op of the txn is applied (so a `multi` may empty and refill one).
    fn reap_containers(&mut self, mut emptied: Vec<String>, txn: &Txn, changes: &mut Vec<Change>) {
        while let Some(container) = emptied.pop() {
            let still_empty = self
                .nodes
                .get(&container)
                .is_some_and(|n| n.children.is_empty());
            if still_empty && container != path::ROOT {
                self.delete(&container, txn.zxid, changes, &mut emptied);
            }
        }
    }
}

/// What validation needs to know of a node, as seen after the earlier ops of a `multi`.
#[derive(Debug, Clone, Copy)]
struct View {
    version: i32,
    cversion: i32,
    num_children: i32,
    ephemeral: bool,
}

impl View {
    /// The next sequential child's number: the count of child creations so far. ZooKeeper keeps
    /// that count as its internal cversion and reports `cversion` as 2 x creations - children,
    /// which counts creations and deletions, as this tree's `cversion` does; so creations are
    /// (cversion + children) / 2.
    fn sequence(self) -> i32 {
        let creations = (i64::from(self.cversion) + i64::from(self.num_children)) / 2;
        i32::try_from(creations).unwrap_or(i32::MAX)
    }

    fn of(node: &Node) -> View {
        View {
            version: node.stat.version,
            cversion: node.stat.cversion,
            num_children: node.stat.num_children,
            ephemeral: node.kind.owner() != SessionId::NONE,
        }
    }
}

/// How many ops a [`Prep`] validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepScope {
    /// One op: no need to track its effects.
    Single,
    /// A `multi`: each op sees the effects of the earlier ones.
    Multi,
}

/// Validates ops against a tree plus the pending effects of the ops already prepared, and turns
/// them into [`TxnOp`]s.
pub struct Prep<'a> {
    tree: &'a DataTree,
    session: SessionId,
    max_data_bytes: usize,
    /// Whether later ops must see the effects of earlier ones (a `multi`).
    scope: PrepScope,
    /// Nodes changed by earlier ops: `None` = deleted. Empty for a single op.
    pending: HashMap<String, Option<View>>,
    /// The prepared ops.
    ops: Vec<TxnOp>,
}

impl<'a> Prep<'a> {
    /// Starts preparing a txn of `session` against `tree`.
    pub fn new(
        tree: &'a DataTree,
        session: SessionId,
        max_data_bytes: usize,
        scope: PrepScope,
    ) -> Prep<'a> {
        Prep {
            tree,
            session,
            max_data_bytes,
            scope,
            pending: HashMap::new(),
            ops: Vec::new(),
        }
    }

    fn remember(&mut self, path: &str, view: Option<View>) {
        if self.scope == PrepScope::Multi {
            self.pending.insert(path.to_owned(), view);
        }
    }

    /// The prepared ops.
    pub fn into_ops(self) -> Vec<TxnOp> {
        self.ops
    }

    fn view(&self, path: &str) -> Option<View> {
        if !self.pending.is_empty() {
            if let Some(pending) = self.pending.get(path) {
                return *pending;
            }
        }
        self.tree.get(path).map(View::of)
    }

    fn existing(&self, path: &str) -> Result<View, CoordError> {
        self.view(path).ok_or_else(|| CoordError::NoNode {
            path: path.to_owned(),
        })
    }

    fn check_size(&self, data: &[u8]) -> Result<(), CoordError> {
        if data.len() > self.max_data_bytes {
            return Err(CoordError::DataTooLarge {
                size_bytes: data.len(),
                max_bytes: self.max_data_bytes,
            });
        }
        Ok(())
    }

    /// Validates a create and returns the path to be created.
    ///
    /// # Errors
    /// `InvalidPath`, `DataTooLarge`, `NoNode` (parent), `NoChildrenForEphemerals`, `NodeExists`.
    pub fn create(
        &mut self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, CoordError> {
        // A sequential path is a prefix ("/locks/" or "/locks/n_"): check it with a suffix.
        let mut created = if mode.is_sequential() {
            format!("{path}0")
        } else {
            path.to_owned()
        };
        path::validate_non_root(&created)?;
        self.check_size(data)?;
        let parent_path = path::parent(&created).to_owned();
        let parent = self.existing(&parent_path)?;
        if parent.ephemeral {
            return Err(CoordError::NoChildrenForEphemerals {
                parent: parent_path,
            });
        }
        if mode.is_sequential() {
            created = format!("{path}{:010}", parent.sequence());
        }
        if self.view(&created).is_some() {
            return Err(CoordError::NodeExists { path: created });
        }
        self.record_create(&created, parent_path, parent, mode);
        self.ops.push(TxnOp::Create {
            path: created.clone(),
            data: data.to_vec(),
            kind: self.kind(mode),
        });
        Ok(created)
    }

    fn kind(&self, mode: CreateMode) -> NodeKind {
        match mode {
            CreateMode::Ephemeral | CreateMode::EphemeralSequential => {
                NodeKind::Ephemeral(self.session)
            }
            CreateMode::Container => NodeKind::Container,
            CreateMode::Persistent | CreateMode::PersistentSequential => NodeKind::Persistent,
        }
    }

    fn record_create(
        &mut self,
        created: &str,
        parent_path: String,
        parent: View,
        mode: CreateMode,
    ) {
        let node = View {
            version: 0,
            cversion: 0,
            num_children: 0,
            ephemeral: mode.is_ephemeral(),
        };
        let parent = View {
            cversion: parent.cversion.wrapping_add(1),
            num_children: parent.num_children + 1,
            ..parent
        };
        self.remember(created, Some(node));
        self.remember(&parent_path, Some(parent));
    }

    /// Validates a delete.
    ///
    /// # Errors
    /// `InvalidPath`, `NoNode`, `BadVersion`, `NotEmpty`.
    pub fn delete(&mut self, path: &str, version: Version) -> Result<(), CoordError> {
        path::validate_non_root(path)?;
        let node = self.checked(path, version)?;
        if node.num_children > 0 {
            return Err(CoordError::NotEmpty {
                path: path.to_owned(),
            });
        }
        let parent_path = path::parent(path);
        let parent = self.existing(parent_path)?;
        let parent = View {
            cversion: parent.cversion.wrapping_add(1),
            num_children: parent.num_children - 1,
            ..parent
        };
        self.remember(parent_path, Some(parent));
        self.remember(path, None);
        self.ops.push(TxnOp::Delete {
            path: path.to_owned(),
        });
        Ok(())
    }

    /// Validates a set-data and returns the node's version after it.
    ///
    /// # Errors
    /// `InvalidPath`, `DataTooLarge`, `NoNode`, `BadVersion`.
    pub fn set_data(
        &mut self,
        path: &str,
        data: &[u8],
        version: Version,
    ) -> Result<i32, CoordError> {
        path::validate(path)?;
        self.check_size(data)?;
        let node = self.checked(path, version)?;
        let new_version = node.version.wrapping_add(1);
        self.remember(
            path,
            Some(View {
                version: new_version,
                ..node
            }),
        );
        self.ops.push(TxnOp::SetData {
            path: path.to_owned(),
            data: data.to_vec(),
        });
        Ok(new_version)
    }

    /// Validates a check op (which changes nothing).
    ///
    /// # Errors
    /// `InvalidPath`, `NoNode`, `BadVersion`.
    pub fn check(&mut self, path: &str, version: Version) -> Result<(), CoordError> {
        path::validate(path)?;
        self.checked(path, version).map(|_| ())
    }

    fn checked(&self, path: &str, version: Version) -> Result<View, CoordError> {
        let node = self.existing(path)?;
        match version {
            Version::Exactly(expected) if expected != node.version => Err(CoordError::BadVersion {
                path: path.to_owned(),
                expected,
                actual: node.version,
            }),
            _ => Ok(node),
        }
    }
}

fn data_length(data: &[u8]) -> i32 {
    i32::try_from(data.len()).unwrap_or(i32::MAX)
}

fn count(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: SessionId = SessionId(9);

    /// Prepares `build` as one txn at the next zxid and applies it.
    fn commit(
        tree: &mut DataTree,
        scope: PrepScope,
        build: impl FnOnce(&mut Prep<'_>),
    ) -> Vec<Change> {
        let mut prep = Prep::new(tree, SESSION, 1024, scope);
        build(&mut prep);
        let ops = prep.into_ops();
        let txn = Txn {
            zxid: Zxid(tree.last_zxid().0 + 1),
            time_ms: 5,
            ops,
        };
        tree.apply(&txn)
    }

    fn create(tree: &mut DataTree, path: &str, mode: CreateMode) {
        commit(tree, PrepScope::Single, |prep| {
            prep.create(path, b"", mode).expect("create");
        });
    }

    #[test]
    fn nested_containers_go_with_their_last_descendant() {
        let mut tree = DataTree::new();
        create(&mut tree, "/c1", CreateMode::Container);
        create(&mut tree, "/c1/c2", CreateMode::Container);
        create(&mut tree, "/c1/c2/x", CreateMode::Persistent);
        let changes = commit(&mut tree, PrepScope::Single, |prep| {
            prep.delete("/c1/c2/x", Version::Any).expect("delete")
        });
        assert!(changes.contains(&Change::Deleted("/c1/c2".into())));
        assert!(changes.contains(&Change::Deleted("/c1".into())));
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.get("/").expect("root").stat.num_children, 0);
    }

    #[test]
    fn a_multi_that_empties_and_refills_a_container_keeps_it() {
        let mut tree = DataTree::new();
        create(&mut tree, "/c", CreateMode::Container);
        create(&mut tree, "/c/a", CreateMode::Persistent);
        commit(&mut tree, PrepScope::Multi, |prep| {
            prep.delete("/c/a", Version::Any).expect("delete");
            prep.create("/c/b", b"", CreateMode::Persistent)
                .expect("create");
        });
        assert_eq!(
            tree.get("/c").expect("container").children,
            BTreeSet::from(["b".to_owned()])
        );
    }

    #[test]
    fn sequential_creates_in_one_multi_get_consecutive_suffixes() {
        let mut tree = DataTree::new();
        let mut names = Vec::new();
        commit(&mut tree, PrepScope::Multi, |prep| {
            for _ in 0..3 {
                names.push(
                    prep.create("/s-", b"", CreateMode::EphemeralSequential)
                        .expect("create"),
                );
            }
        });
        assert_eq!(names, ["/s-0000000000", "/s-0000000001", "/s-0000000002"]);
        assert_eq!(tree.ephemeral_owners().collect::<Vec<_>>(), [SESSION]);
        commit(&mut tree, PrepScope::Single, |prep| {
            prep.ops.push(TxnOp::CloseSession { session: SESSION });
        });
        assert_eq!(tree.len(), 1);
        assert!(!tree.owns_ephemerals(SESSION));
    }

    #[test]
    fn a_multi_sees_its_own_deletes_and_versions() {
        let mut tree = DataTree::new();
        create(&mut tree, "/n", CreateMode::Persistent);
        let mut prep = Prep::new(&tree, SESSION, 1024, PrepScope::Multi);
        assert_eq!(prep.set_data("/n", b"1", Version::Exactly(0)), Ok(1));
        assert_eq!(prep.set_data("/n", b"2", Version::Exactly(1)), Ok(2));
        prep.delete("/n", Version::Exactly(2)).expect("delete");
        assert_eq!(
            prep.check("/n", Version::Any),
            Err(CoordError::NoNode { path: "/n".into() })
        );
        assert_eq!(
            prep.create("/n", b"", CreateMode::Persistent),
            Ok("/n".into())
        );
    }

    #[test]
    #[should_panic(expected = "not after")]
    fn applying_an_old_zxid_is_a_bug() {
        let mut tree = DataTree::new();
        create(&mut tree, "/a", CreateMode::Persistent);
        tree.apply(&Txn {
            zxid: Zxid(1),
            time_ms: 0,
            ops: Vec::new(),
        });
    }
}

//! Which sessions watch what, and which of them a change notifies.
//!
//! One-shot watches (set by `get_data`, `exists` and `get_children`) are removed when they fire;
//! persistent and persistent-recursive watches (`add_watch`) stay until removed. A session
//! notified twice for one change (say by a data watch and a persistent watch) gets one event, as
//! ZooKeeper delivers one event per connection.

use std::collections::{BTreeSet, HashMap};

use super::path;
use super::tree::Change;
use super::types::{AddWatchMode, EventType, SessionId, WatcherKind};

type Watchers = HashMap<String, BTreeSet<SessionId>>;

/// The watch tables.
#[derive(Debug, Default)]
pub struct WatchTable {
    /// One-shot data and exists watches.
    data: Watchers,
    /// One-shot child watches.
    children: Watchers,
    /// Persistent watches.
    persistent: Watchers,
    /// Persistent recursive watches.
    recursive: Watchers,
}

/// One notification to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Who.
    pub session: SessionId,
    /// What.
    pub kind: EventType,
}

impl WatchTable {
    /// Leaves a one-shot data (or exists) watch.
    pub fn add_data(&mut self, node_path: &str, session: SessionId) {
        add(&mut self.data, node_path, session);
    }

    /// Leaves a one-shot child watch.
    pub fn add_children(&mut self, node_path: &str, session: SessionId) {
        add(&mut self.children, node_path, session);
    }

    /// Adds a persistent watch.
    pub fn add_persistent(&mut self, node_path: &str, session: SessionId, mode: AddWatchMode) {
        match mode {
            AddWatchMode::Persistent => add(&mut self.persistent, node_path, session),
            AddWatchMode::PersistentRecursive => add(&mut self.recursive, node_path, session),
        }
    }

    /// Removes the session's watches of `kind` on `node_path`; returns whether any was there.
    pub fn remove(&mut self, node_path: &str, session: SessionId, kind: WatcherKind) -> bool {
        let tables: &mut [&mut Watchers] = match kind {
            WatcherKind::Data => &mut [&mut self.data],
            WatcherKind::Children => &mut [&mut self.children],
            WatcherKind::Persistent => &mut [&mut self.persistent],
            WatcherKind::PersistentRecursive => &mut [&mut self.recursive],
            WatcherKind::Any => &mut [
                &mut self.data,
                &mut self.children,
                &mut self.persistent,
                &mut self.recursive,
            ],
        };
        let mut removed = false;
        for table in tables.iter_mut() {
            removed |= remove(table, node_path, session);
        }
        removed
    }

    /// Removes every watch of a session that ended. Scans every table: sessions end far less
    /// often than watches fire.
    pub fn remove_session(&mut self, session: SessionId) {
        for table in [
            &mut self.data,
            &mut self.children,
            &mut self.persistent,
            &mut self.recursive,
        ] {
            table.retain(|_, sessions| {
                sessions.remove(&session);
                !sessions.is_empty()
            });
        }
    }

    /// Appends the notifications `change` causes to `out`, consuming the one-shot watches it
    /// fires, and returns the path the events name.
    pub fn fire<'c>(&mut self, change: &'c Change, out: &mut Vec<Delivery>) -> &'c str {
        let (node_path, kind) = match change {
            Change::Created(p) => (p.as_str(), EventType::NodeCreated),
            Change::Deleted(p) => (p.as_str(), EventType::NodeDeleted),
            Change::DataChanged(p, _) => (p.as_str(), EventType::NodeDataChanged),
            Change::ChildrenChanged(p) => (p.as_str(), EventType::NodeChildrenChanged),
        };
        let mut sessions = Vec::new();
        match kind {
            EventType::NodeChildrenChanged => take(&mut self.children, node_path, &mut sessions),
            EventType::NodeDeleted => {
                take(&mut self.data, node_path, &mut sessions);
                take(&mut self.children, node_path, &mut sessions);
            }
            EventType::NodeCreated | EventType::NodeDataChanged => {
                take(&mut self.data, node_path, &mut sessions)
            }
        }
        copy(&self.persistent, node_path, &mut sessions);
        if kind != EventType::NodeChildrenChanged && !self.recursive.is_empty() {
            copy(&self.recursive, node_path, &mut sessions);
            for ancestor in path::ancestors(node_path) {
                copy(&self.recursive, ancestor, &mut sessions);
            }
        }
        sessions.sort_unstable();
        sessions.dedup();
        out.extend(
            sessions
                .into_iter()
                .map(|session| Delivery { session, kind }),
        );
        node_path
    }

    /// Whether no watch is set at all (the common case for a write).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.children.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }
}

fn add(table: &mut Watchers, node_path: &str, session: SessionId) {
    match table.get_mut(node_path) {
        Some(sessions) => {
            sessions.insert(session);
        }
        None => {
            table.insert(node_path.to_owned(), BTreeSet::from([session]));
        }
    }
}

fn remove(table: &mut Watchers, node_path: &str, session: SessionId) -> bool {
    let Some(sessions) = table.get_mut(node_path) else {
        return false;
    };
    let removed = sessions.remove(&session);
    if sessions.is_empty() {
        table.remove(node_path);
    }
    removed
}

fn take(table: &mut Watchers, node_path: &str, out: &mut Vec<SessionId>) {
    if let Some(sessions) = table.remove(node_path) {
        out.extend(sessions);
    }
}

fn copy(table: &Watchers, node_path: &str, out: &mut Vec<SessionId>) {
    if let Some(sessions) = table.get(node_path) {
        out.extend(sessions.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SessionId = SessionId(1);
    const B: SessionId = SessionId(2);

    fn fired(table: &mut WatchTable, change: Change) -> Vec<(SessionId, EventType)> {
        let mut out = Vec::new();
        table.fire(&change, &mut out);
        out.into_iter().map(|d| (d.session, d.kind)).collect()
    }

    #[test]
    fn one_shot_watch_fires_once() {
        let mut table = WatchTable::default();
        table.add_data("/a", A);
        let change = Change::DataChanged("/a".into(), Default::default());
        assert_eq!(
            fired(&mut table, change.clone()),
            [(A, EventType::NodeDataChanged)]
        );
        assert_eq!(fired(&mut table, change), []);
        assert!(table.is_empty());
    }

    #[test]
    fn recursive_watch_skips_children_changed_and_covers_descendants() {
        let mut table = WatchTable::default();
        table.add_persistent("/a", A, AddWatchMode::PersistentRecursive);
        table.add_persistent("/a", B, AddWatchMode::Persistent);
        assert_eq!(
            fired(&mut table, Change::Created("/a/b/c".into())),
            [(A, EventType::NodeCreated)]
        );
        assert_eq!(
            fired(&mut table, Change::ChildrenChanged("/a".into())),
            [(B, EventType::NodeChildrenChanged)]
        );
        assert_eq!(
            fired(&mut table, Change::Deleted("/a".into())),
            [(A, EventType::NodeDeleted), (B, EventType::NodeDeleted)]
        );
    }

    #[test]
    fn one_event_per_session_per_change() {
        let mut table = WatchTable::default();
        table.add_data("/a", A);
        table.add_children("/a", A);
        table.add_persistent("/a", A, AddWatchMode::Persistent);
        assert_eq!(
            fired(&mut table, Change::Deleted("/a".into())),
            [(A, EventType::NodeDeleted)]
        );
    }

    #[test]
    fn remove_reports_whether_a_watch_was_there() {
        let mut table = WatchTable::default();
        table.add_children("/a", A);
        assert!(!table.remove("/a", A, WatcherKind::Data));
        assert!(table.remove("/a", A, WatcherKind::Any));
        assert!(table.is_empty());
        table.add_data("/a", B);
        table.remove_session(B);
        assert!(table.is_empty());
    }
}

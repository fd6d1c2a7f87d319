//! A session's watches as the client crate hands them out, and the translation of what they
//! deliver into the session's events.
//!
//! The client crate gives every watch its own receiver, and one notification from the server
//! reaches every receiver interested in it: a deletion reaches both the data and the child watch
//! of the node, a persistent watch and a one-shot watch on one node both get a data change.
//! ZooKeeper delivers it once per session, and so does the adapter: the receivers are drained
//! together, on the runtime thread where the client dispatches notifications, so all copies of
//! one notification are seen in the same pass, and a pass keeps, for each (kind, path), the
//! largest number of copies any one receiver got.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{self, BoxStream, Stream, StreamExt};
use zookeeper_client as zk;

use super::super::{EventType, WatchedEvent, WatcherKind, Zxid};
use super::convert;

/// One watch of the session.
struct Entry {
    path: String,
    /// `Data`, `Children`, `Persistent` or `PersistentRecursive`, never `Any`.
    kind: WatcherKind,
    /// Ends after a one-shot watch fired; dropping it removes the watch from the server.
    events: BoxStream<'static, zk::WatchedEvent>,
}

/// The session's watches, in the order they were set.
#[derive(Default)]
pub(crate) struct Watches {
    entries: Vec<Entry>,
}

impl Watches {
    /// Adds a one-shot data (or exists) or child watch.
    pub(crate) fn add_oneshot(
        &mut self,
        path: &str,
        kind: WatcherKind,
        watcher: zk::OneshotWatcher,
    ) {
        self.entries.push(Entry {
            path: path.to_owned(),
            kind,
            events: stream::once(watcher.changed()).boxed(),
        });
    }

    /// Adds a persistent or persistent-recursive watch.
    pub(crate) fn add_persistent(
        &mut self,
        path: &str,
        kind: WatcherKind,
        watcher: zk::PersistentWatcher,
    ) {
        // The watcher panics if polled after it delivered the session's end, so the stream ends
        // there.
        let events = stream::unfold(Some(watcher), |watcher| async move {
            let mut watcher = watcher?;
            let event = watcher.changed().await;
            let last =
                event.event_type == zk::EventType::Session && event.session_state.is_terminated();
            Some((event, (!last).then_some(watcher)))
        });
        self.entries.push(Entry {
            path: path.to_owned(),
            kind,
            events: events.boxed(),
        });
    }

    /// The persistent and recursive watches, to set again after a reconnect.
    pub(crate) fn persistent(&self) -> Vec<(String, WatcherKind)> {
        self.entries
            .iter()
            .filter(|entry| {
                matches!(
                    entry.kind,
                    WatcherKind::Persistent | WatcherKind::PersistentRecursive
                )
            })
            .map(|entry| (entry.path.clone(), entry.kind))
            .collect()
    }

    /// Replaces the receiver of a persistent watch by `watcher` (set again after a reconnect);
    /// drops `watcher` if the watch was removed meanwhile.
    pub(crate) fn replace_persistent(
        &mut self,
        path: &str,
        kind: WatcherKind,
        watcher: zk::PersistentWatcher,
    ) {
        let Some(index) = self
            .entries
            .iter()
            .position(|entry| entry.path == path && entry.kind == kind)
        else {
            return;
        };
        let old = self.entries.remove(index);
        self.add_persistent(path, kind, watcher);
        let new = self.entries.pop().expect("just added");
        self.entries.insert(index, new);
        // The old receiver goes after the new one is registered, so the client keeps the
        // server-side watch.
        drop(old);
    }

    /// Removes the watches of `kind` on `path`; whether there were any.
    pub(crate) fn remove(&mut self, path: &str, kind: WatcherKind) -> bool {
        let before = self.entries.len();
        self.entries.retain(|entry| {
            !(entry.path == path && (kind == WatcherKind::Any || entry.kind == kind))
        });
        self.entries.len() != before
    }

    /// Drops every watch.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Takes every event delivered so far, one per notification, registering `cx` to be woken
    /// by the next one.
    pub(crate) fn drain(&mut self, cx: &mut Context<'_>) -> Vec<WatchedEvent> {
        let mut out = Vec::new();
        let mut seen: HashMap<(EventType, String), usize> = HashMap::new();
        self.entries.retain_mut(|entry| {
            let mut mine: HashMap<(EventType, String), usize> = HashMap::new();
            let open = loop {
                match Pin::new(&mut entry.events).poll_next(cx) {
                    Poll::Pending => break true,
                    Poll::Ready(None) => break false,
                    Poll::Ready(Some(event)) => {
                        let Some(kind) = convert::event_type(event.event_type) else {
                            // Session states come from the session's state watcher.
                            continue;
                        };
                        let zxid = (event.zxid >= 0).then_some(Zxid(event.zxid));
                        let key = (kind, event.path);
                        let copies = mine.entry(key.clone()).or_default();
                        *copies += 1;
                        if *copies > seen.get(&key).copied().unwrap_or(0) {
                            out.push(WatchedEvent {
                                kind,
                                path: key.1.clone(),
                                zxid,
                            });
                        }
                    }
                }
            };
            for (key, copies) in mine {
                let seen = seen.entry(key).or_default();
                *seen = (*seen).max(copies);
            }
            open
        });
        out
    }
}

//! The generic coordinator conformance suite, unchanged, against a real ZooKeeper: one
//! standalone server for the whole binary, a fresh chroot for each case.
//!
//! Needs Debian's `zookeeper` package and Java. Without them the cases skip with a loud message,
//! except in CI (`CI=true`), where they fail.

#![cfg(feature = "zookeeper")]

#[path = "support/zk.rs"]
mod zk;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};

use logbus::coordinator::{Coordinator, ZooKeeperConfig, ZooKeeperCoordinator};

/// The server's connect string, or `None` where no server can be started.
fn server() -> Option<&'static str> {
    static SERVER: OnceLock<Option<String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if !zk::available("zookeeper_conformance") {
                return None;
            }
            let (started, connect) = mpsc::channel();
            // The server lives as long as this thread, which lives as long as the process: the
            // kernel kills the server when the process ends (see `Node::start`).
            std::thread::spawn(move || {
                let server = zk::ZooKeeper::standalone();
                started
                    .send(server.connect_string(""))
                    .expect("the test waits for the server");
                loop {
                    std::thread::park();
                }
            });
            Some(connect.recv().expect("the server thread started a server"))
        })
        .as_deref()
}

fn available() -> bool {
    server().is_some()
}

fn zookeeper_coordinator() -> Arc<dyn Coordinator> {
    static NEXT_CHROOT: AtomicUsize = AtomicUsize::new(0);
    let hosts = server().expect("the case runs only with a server");
    let chroot = NEXT_CHROOT.fetch_add(1, Ordering::Relaxed);
    let config = ZooKeeperConfig::new(format!("{hosts}/conformance/{chroot}"));
    Arc::new(ZooKeeperCoordinator::connect(config).expect("connect to the test server"))
}

logbus::coordinator_conformance_tests!(zookeeper_coordinator, if available());

//! The adapter against failures of real processes: a 3-node ensemble losing one node, then two,
//! and two broker processes electing a controller that is then killed with SIGKILL.
//!
//! Needs Debian's `zookeeper` package and Java; without them the tests skip loudly, except in
//! CI (`CI=true`), where they fail.

#![cfg(feature = "zookeeper")]

#[path = "support/zk.rs"]
mod zk;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus::coordinator::{
    AddWatchMode, CoordError, Coordinator, CreateMode, Event, EventType, Session, SessionConfig,
    SessionEvent, Version, Watch, ZooKeeperConfig, ZooKeeperCoordinator,
};

/// How long a recovery (an election, a reconnect, an expiry) may take.
const RECOVERY_WAIT: Duration = Duration::from_secs(30);

/// Retries `op` while it fails with `ConnectionLoss`, until `RECOVERY_WAIT` passes.
fn retry<T>(mut op: impl FnMut() -> Result<T, CoordError>) -> Result<T, CoordError> {
    let deadline = Instant::now() + RECOVERY_WAIT;
    loop {
        match op() {
            Err(CoordError::ConnectionLoss) if Instant::now() < deadline => {}
            other => return other,
        }
    }
}

fn session(coordinator: &ZooKeeperCoordinator) -> Arc<dyn Session> {
    retry(|| coordinator.session(SessionConfig::default().with_timeout_ms(4_000)))
        .expect("open a session")
}

#[test]
fn ensemble_survives_one_lost_node_and_recovers_from_two() {
    if !zk::available("ensemble_survives_one_lost_node_and_recovers_from_two") {
        return;
    }
    let mut ensemble = zk::ZooKeeper::start(3);
    let config = ZooKeeperConfig::new(ensemble.connect_string("/ensemble"))
        .with_request_timeout_ms(2_000)
        .with_connect_timeout_ms(2_000);
    let coordinator = ZooKeeperCoordinator::connect(config).expect("connect");
    let s = session(&coordinator);
    s.create("/a", b"0", CreateMode::Persistent)
        .expect("create");
    s.create("/mine", b"", CreateMode::Ephemeral)
        .expect("ephemeral");
    s.add_watch("/a", AddWatchMode::Persistent).expect("watch");
    s.create("/r", b"", CreateMode::Persistent).expect("create");
    s.add_watch("/r", AddWatchMode::PersistentRecursive)
        .expect("recursive watch");
    let leader = ensemble
        .nodes
        .iter()
        .position(|node| node.mode().as_deref() == Some("leader"))
        .expect("a leader");

    // One node down (the leader, the worst one): writes go on after a re-election.
    ensemble.nodes[leader].stop();
    let mut certain = true;
    retry(|| {
        let result = s.set_data("/a", b"1", Version::Exactly(0)).map(|_| ());
        certain &= result != Err(CoordError::ConnectionLoss);
        result
    })
    .or_else(|error| match error {
        // A try that failed with `ConnectionLoss` may have been applied.
        CoordError::BadVersion { actual: 1, .. } => Ok(()),
        other => Err(other),
    })
    .expect("a write with one node down");
    assert_eq!(s.get_data("/a", Watch::None).expect("read").0, b"1");
    // The reconnect kept the session: its ephemeral node and its watch are still there.
    let mine = s
        .exists("/mine", Watch::None)
        .expect("exists")
        .expect("kept");
    assert_eq!(mine.ephemeral_owner, s.id());
    let data_changed = |event: &Event| matches!(event, Event::Watch(e) if e.kind == EventType::NodeDataChanged && e.path == "/a");
    if certain {
        // The write went out on the new connection, after the watch was set again on it.
        let event = s
            .events()
            .recv_timeout(RECOVERY_WAIT)
            .expect("the watch survived the reconnect");
        assert!(data_changed(&event), "{event:?}");
    } else {
        // A write applied while the connection was down fires nothing, as in ZooKeeper
        // (ZOOKEEPER-4698), or fired before the connection broke.
        while let Ok(event) = s.events().try_recv() {
            assert!(data_changed(&event), "{event:?}");
        }
    }
    retry(|| s.set_data("/a", b"1b", Version::Any)).expect("a second write");
    let event = s
        .events()
        .recv_timeout(RECOVERY_WAIT)
        .expect("the watch fires after the reconnect");
    assert!(data_changed(&event), "{event:?}");
    // Every persistent watch was set again, the recursive one too.
    s.create("/r/x", b"", CreateMode::Persistent)
        .expect("create under the recursive watch");
    let event = s
        .events()
        .recv_timeout(RECOVERY_WAIT)
        .expect("the recursive watch fires after the reconnect");
    assert!(
        matches!(&event, Event::Watch(e) if e.kind == EventType::NodeCreated && e.path == "/r/x"),
        "{event:?}"
    );
    let other = session(&coordinator);
    other
        .create("/b", b"", CreateMode::Ephemeral)
        .expect("a new session with one node down");

    // Two nodes down: no quorum, and requests fail with a clear error.
    let second = (0..3)
        .find(|&i| ensemble.nodes[i].is_running())
        .expect("a running node");
    ensemble.nodes[second].stop();
    let started = Instant::now();
    assert_eq!(
        s.set_data("/a", b"2", Version::Any).map(|_| ()),
        Err(CoordError::ConnectionLoss)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed in bounded time"
    );

    // One node back: quorum again, and the ensemble serves.
    ensemble.nodes[second].start();
    ensemble.nodes[second].wait_ready();
    let written = retry(|| s.set_data("/a", b"3", Version::Any));
    match written {
        Ok(stat) => assert!(stat.version >= 2),
        // The outage outlived the session: a new one works.
        Err(CoordError::SessionExpired { .. }) => {
            let fresh = session(&coordinator);
            retry(|| fresh.set_data("/a", b"3", Version::Any)).expect("write after recovery");
        }
        Err(error) => panic!("no recovery: {error}"),
    }
}

#[test]
fn a_session_that_cannot_reach_the_ensemble_expires_with_its_persistent_watches() {
    if !zk::available(
        "a_session_that_cannot_reach_the_ensemble_expires_with_its_persistent_watches",
    ) {
        return;
    }
    let mut server = zk::ZooKeeper::standalone();
    let config = ZooKeeperConfig::new(server.connect_string(""))
        .with_request_timeout_ms(2_000)
        .with_connect_timeout_ms(2_000);
    let coordinator = ZooKeeperCoordinator::connect(config).expect("connect");
    let s = retry(|| coordinator.session(SessionConfig::default().with_timeout_ms(1_000)))
        .expect("open a session");
    s.add_watch("/w", AddWatchMode::Persistent).expect("watch");
    s.add_watch("/", AddWatchMode::PersistentRecursive)
        .expect("recursive watch");

    // The client gives the session up once it could not reach a server for its timeout; the
    // persistent watches then see the session's end, and the client panics if asked for more.
    server.nodes[0].stop();
    let event = s
        .events()
        .recv_timeout(RECOVERY_WAIT)
        .expect("the session's end is reported");
    assert!(
        matches!(event, Event::Session(SessionEvent::Expired { .. })),
        "{event:?}"
    );
    assert!(matches!(
        s.get_data("/w", Watch::None),
        Err(CoordError::SessionExpired { .. })
    ));

    // The adapter's runtime lives on: a session after the server's return works.
    server.nodes[0].start();
    server.nodes[0].wait_ready();
    let fresh = session(&coordinator);
    retry(|| fresh.create("/w", b"", CreateMode::Persistent)).expect("a write after the return");
}

/// The example binary, built by `cargo test` next to the test binaries.
fn example_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("current exe");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("examples").join("zk_controller");
    assert!(
        binary.exists(),
        "{} is missing: `cargo test --features zookeeper` builds it",
        binary.display()
    );
    binary
}

/// A broker process whose output lines arrive on a channel, tagged with its index.
struct Broker {
    child: Child,
}

impl Broker {
    fn spawn(
        index: usize,
        connect: &str,
        data: &std::path::Path,
        lines: mpsc::Sender<(usize, String)>,
    ) -> Broker {
        let mut child = Command::new(example_binary())
            .args([connect, &index.to_string()])
            .arg(data)
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the example");
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send((index, line)).is_err() {
                    return;
                }
            }
        });
        Broker { child }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a "became controller" line; returns the broker's index.
fn next_controller(lines: &mpsc::Receiver<(usize, String)>) -> usize {
    let deadline = Instant::now() + RECOVERY_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (index, line) = lines
            .recv_timeout(left)
            .expect("a broker becomes controller in time");
        if line.contains("became controller") {
            return index;
        }
    }
}

#[test]
fn killing_the_controller_process_hands_control_to_the_other() {
    if !zk::available("killing_the_controller_process_hands_control_to_the_other") {
        return;
    }
    let server = zk::ZooKeeper::standalone();
    let connect = server.connect_string("/kafka");
    let (sender, lines) = mpsc::channel();
    let mut brokers: Vec<Broker> = (0..2)
        .map(|index| {
            let data = server.dir().join(format!("broker{index}"));
            Broker::spawn(index, &connect, &data, sender.clone())
        })
        .collect();
    let first = next_controller(&lines);
    let started = Instant::now();
    brokers[first].child.kill().expect("SIGKILL the controller");
    let second = next_controller(&lines);
    assert_ne!(first, second, "the other broker took over");
    let epoch = |index: usize| {
        std::fs::read_to_string(server.dir().join(format!("broker{index}/controller_epoch")))
            .expect("controller epoch file")
    };
    assert_eq!((epoch(first).trim(), epoch(second).trim()), ("1", "2"));
    eprintln!("failover took {:?} after SIGKILL", started.elapsed());
    drop(brokers);
}

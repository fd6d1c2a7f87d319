//! Brokers on several machines (here: processes): three `kafka_broker` processes on
//! 127.0.0.1, coordinated by a real ZooKeeper, replicate a partition to each other over
//! Kafka's protocol (`KafkaTransport`). A confluent-kafka producer sends with acks=all to a
//! replication-factor-3, min.insync.replicas-2 topic; the leader's process is killed with
//! SIGKILL; the producer carries on against the new leader; the killed broker restarts on its
//! data directory, truncates by leader epoch, catches up and rejoins the ISR. Every
//! acknowledged record is then found once, at its offset, and the restarted broker's log
//! matches the leader's up to the high watermark.
//!
//! Needs ZooKeeper (Debian's package and Java) and the Kafka clients' virtual environment;
//! without them the test skips loudly, except in CI (`CI=true`), where it fails.

#![cfg(all(feature = "kafka", feature = "zookeeper"))]

#[path = "support/kafka_clients.rs"]
mod kafka_clients;
#[path = "support/zk.rs"]
mod zk;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus::coordinator::{
    Coordinator, Session, SessionConfig, ZooKeeperConfig, ZooKeeperCoordinator,
};
use logbus::log::{Log, LogConfig};
use logbus::replication::{read_state, PartitionState};

const TOPIC: &str = "failover";
const CHROOT: &str = "/logbus";
/// Within ZooKeeper's bounds for the support server's tick (2 to 20 ticks of 250 ms).
const SESSION_TIMEOUT_MS: u64 = 2_000;
/// Records acknowledged before the leader is killed, and sent after the new leader is known.
const MIDWAY: usize = 600;
const AFTER: usize = 900;

/// The example binary, which `cargo test` builds with the examples before running tests.
///
/// A run of this test alone (`cargo test --test kafka_failover`) does not build examples, and
/// building from inside a test would wait on the lock `cargo test` holds: a missing binary, or
/// one older than a source it is built from, fails the test with the command to run.
fn broker_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/kafka_broker
    let deps = exe.parent().expect("deps directory");
    let binary = deps
        .parent()
        .expect("target profile directory")
        .join("examples/kafka_broker");
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
    // Stale when a source it is built from changed after it was.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![
        root.join("examples/kafka_broker.rs"),
        root.join("Cargo.toml"),
    ];
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("read src")
            .filter_map(Result::ok)
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                sources.push(path);
            }
        }
    }
    let newest_source = sources.iter().filter_map(|path| modified(path)).max();
    let fresh = match (modified(&binary), newest_source) {
        (Some(binary), Some(source)) => binary >= source,
        (Some(_), None) => true,
        (None, _) => false,
    };
    assert!(
        fresh,
        "{} is missing or older than its sources: run `cargo build --features kafka,zookeeper \
         --example kafka_broker` (a whole `cargo test --all-features` builds it first)",
        binary.display()
    );
    binary
}

/// One broker process; killed (SIGKILL) when dropped, and by the kernel if the test dies.
struct BrokerProcess {
    id: i32,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
    zookeeper: String,
    child: Option<(Child, ChildStdin)>,
}

impl BrokerProcess {
    fn start(&mut self, binary: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the broker log");
        let mut command = Command::new(binary);
        command
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data")
            .arg(&self.dir)
            .args(["--broker-id", &self.id.to_string()])
            .args(["--zookeeper", &self.zookeeper])
            .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
            .arg("--stdin-stop")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        // SAFETY: the closure only calls `prctl`, which is async-signal-safe, between fork and
        // exec: the kernel kills the broker when the thread that started it ends.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().expect("spawn kafka_broker");
        let stdin = child.stdin.take().expect("stdin");
        self.child = Some((child, stdin));
    }

    /// `kill -9`.
    fn kill(&mut self) {
        if let Some((mut child, _)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A clean stop: closing stdin stops a `--stdin-stop` broker, which closes its logs.
    fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            drop(stdin);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().expect("wait").is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until<T>(what: &str, timeout: Duration, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn state(session: &dyn Session) -> Option<PartitionState> {
    read_state(session, TOPIC, 0).ok().flatten()
}

/// Every record of a partition directory's log, as (offset, value), below `high_watermark`.
fn log_records(dir: &Path, high_watermark: u64) -> Vec<(u64, String)> {
    let log = Log::open(dir, LogConfig::default()).expect("open the partition's log");
    let mut records = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < high_watermark {
        let read = log.read(offset, 1 << 20).expect("read the log");
        assert!(!read.bytes.is_empty(), "{} ends at {offset}", dir.display());
        for batch in read.batches() {
            let batch = batch.expect("a whole batch");
            for record in batch.records().expect("records") {
                let record = record.expect("a record");
                let at = record.offset as u64;
                if at >= offset && at < high_watermark {
                    let value = record.value.expect("a value");
                    records.push((at, String::from_utf8_lossy(&value).into_owned()));
                }
            }
            offset = offset.max(batch.header().last_offset() as u64 + 1);
        }
    }
    records
}

#[test]
fn brokers_in_three_processes_fail_over_and_lose_no_acknowledged_record() {
    let test = "brokers_in_three_processes_fail_over_and_lose_no_acknowledged_record";
    if !zk::available(test) || !kafka_clients::available(test) {
        return;
    }
    let binary = broker_binary();
    let zookeeper = zk::ZooKeeper::standalone();
    let connect = zookeeper.connect_string(CHROOT);
    let scratch = tempfile::tempdir().expect("scratch directory");
    let mut brokers: BTreeMap<i32, BrokerProcess> = (1..=3)
        .map(|id| {
            let broker = BrokerProcess {
                id,
                port: zk::free_port(),
                dir: scratch.path().join(format!("broker-{id}")),
                log: scratch.path().join(format!("broker-{id}.log")),
                zookeeper: connect.clone(),
                child: None,
            };
            (id, broker)
        })
        .collect();
    for broker in brokers.values_mut() {
        broker.start(&binary);
    }
    let bootstrap: String = brokers
        .values()
        .map(|broker| format!("127.0.0.1:{}", broker.port))
        .collect::<Vec<_>>()
        .join(",");
    let coordinator: Arc<dyn Coordinator> = Arc::new(
        ZooKeeperCoordinator::connect(ZooKeeperConfig::new(connect.as_str())).expect("connect"),
    );
    let session = coordinator
        .session(SessionConfig::default())
        .expect("a session");
    wait_until("three registered brokers", Duration::from_secs(20), || {
        let live = logbus::replication::live_broker_ids(session.as_ref()).ok()?;
        (live.len() == 3).then_some(())
    });

    let created = run_script(&["create", &bootstrap, TOPIC], Duration::from_secs(40));
    assert_eq!(created["created"], TOPIC);
    let first = wait_until("a leader and a full ISR", Duration::from_secs(20), || {
        state(session.as_ref()).filter(|state| state.leader >= 0 && state.isr.len() == 3)
    });

    // Produce continuously; kill the leader midway.
    let mut producer = Command::new(kafka_clients::python())
        .arg(failover_script())
        .args([
            "produce",
            &bootstrap,
            TOPIC,
            &MIDWAY.to_string(),
            &AFTER.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the producer");
    let mut producer_in = producer.stdin.take().expect("producer stdin");
    let mut producer_out = BufReader::new(producer.stdout.take().expect("producer stdout"));
    let mut line = String::new();
    producer_out
        .read_line(&mut line)
        .expect("read the producer");
    assert_eq!(line.trim(), "midway", "the producer said {line:?}");
    let killed = first.leader;
    brokers.get_mut(&killed).expect("the leader").kill();
    let second = wait_until("a new leader", Duration::from_secs(20), || {
        state(session.as_ref()).filter(|state| state.leader >= 0 && state.leader != killed)
    });
    assert!(second.leader_epoch > first.leader_epoch);
    assert!(!second.isr.contains(&killed), "isr {:?}", second.isr);
    writeln!(producer_in, "failed over").expect("tell the producer");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut producer_out, &mut rest).expect("producer report");
    assert!(producer.wait().expect("producer exit").success());
    let report: serde_json::Value = serde_json::from_str(rest.trim()).expect("producer JSON");
    let acked: Vec<(u64, String)> = report["acked"]
        .as_array()
        .expect("acked")
        .iter()
        .map(|ack| {
            assert_eq!(ack[0], 0, "one partition");
            (
                ack[1].as_u64().expect("offset"),
                ack[2].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    let after = report["acked_after_failover"].as_u64().expect("count");
    assert!(
        after >= AFTER as u64 * 9 / 10,
        "the producer did not carry on against the new leader: {after} acknowledged after \
         the failover; report {report}"
    );

    // The killed broker restarts on its data, truncates by epoch, catches up, rejoins.
    brokers
        .get_mut(&killed)
        .expect("the killed broker")
        .start(&binary);
    let rejoined = wait_until(
        "the restarted broker in the ISR",
        Duration::from_secs(20),
        || state(session.as_ref()).filter(|state| state.isr.contains(&killed)),
    );
    // (It may lead again: the preferred leader returns, as with Kafka's
    // auto.leader.rebalance.enable.)
    assert!(rejoined.isr.len() == 3, "isr {:?}", rejoined.isr);

    // Everything acknowledged is there, once, at its offset.
    let consumed = run_script(&["consume", &bootstrap, TOPIC], Duration::from_secs(50));
    let high_watermark = consumed["high_watermark"].as_u64().expect("high watermark");
    let records: Vec<(u64, String)> = consumed["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            (
                r[1].as_u64().expect("offset"),
                r[2].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        records.len() as u64,
        high_watermark,
        "one record per offset"
    );
    let by_offset: HashMap<u64, &str> = records.iter().map(|(o, v)| (*o, v.as_str())).collect();
    let mut offsets_of_value: HashMap<&str, u64> = HashMap::new();
    for (offset, value) in &records {
        if let Some(earlier) = offsets_of_value.insert(value.as_str(), *offset) {
            panic!("{value} at offsets {earlier} and {offset}");
        }
    }
    for (offset, value) in &acked {
        assert_eq!(
            by_offset.get(offset).copied(),
            Some(value.as_str()),
            "acknowledged {value} at {offset}"
        );
    }

    // The restarted broker's log is the others', up to the high watermark: every replica
    // holds exactly what the consumer read.
    for broker in brokers.values_mut() {
        broker.stop();
    }
    for (id, broker) in &brokers {
        let log = log_records(&broker.dir.join(format!("{TOPIC}-0")), high_watermark);
        assert!(
            log == records,
            "broker {id}'s log differs below the high watermark"
        );
    }
}

/// Runs a command of the failover script and parses the JSON it prints.
fn run_script(args: &[&str], timeout: Duration) -> serde_json::Value {
    let output = kafka_clients::run_with_timeout(
        Command::new(kafka_clients::python())
            .arg(failover_script())
            .args(args),
        timeout,
    );
    serde_json::from_slice(&output).unwrap_or_else(|error| {
        panic!(
            "failover.py {args:?} printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output)
        )
    })
}

fn failover_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/failover.py")
}

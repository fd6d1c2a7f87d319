//! Kafka's own clients for the Kafka-protocol tests: Debian's `kcat`, and a Python virtual
//! environment with `kafka-python` and `confluent-kafka` (made by `.ci/run` in
//! `target/kafka-clients-venv`, or named by `LOGBUS_KAFKA_PYTHON`).
//!
//! [`available`] decides whether a test can run: without the clients, a test outside CI says so
//! loudly and skips; in CI (`CI=true`) it fails.

#![allow(
    dead_code,
    reason = "each test binary uses a part of the support module"
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Python interpreter of the clients' virtual environment.
pub fn python() -> PathBuf {
    std::env::var_os("LOGBUS_KAFKA_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kafka-clients-venv/bin/python"),
        PathBuf::from,
    )
}

/// The driver script of the Python clients.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/clients.py")
}

fn missing() -> Option<String> {
    let python = python();
    let imports = Command::new(&python)
        .args(["-c", "import kafka, confluent_kafka"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !imports.is_ok_and(|status| status.success()) {
        return Some(format!(
            "{} cannot import kafka and confluent_kafka (run .ci/run, or set LOGBUS_KAFKA_PYTHON)",
            python.display()
        ));
    }
    let kcat = Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !kcat.is_ok_and(|status| status.success()) {
        return Some("no `kcat` on PATH (apt-get install kcat)".to_owned());
    }
    None
}

/// Whether the clients are installed. Outside CI, prints why not and returns `false`; in CI
/// (`CI=true`), panics instead.
pub fn available(test: &str) -> bool {
    match missing() {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: Kafka's clients are required in CI, but {why}")
        }
        Some(why) => {
            let _ = writeln!(std::io::stderr(), "\n!!!! SKIPPED {test}: {why} !!!!\n");
            false
        }
    }
}

/// Runs a subcommand of the Python driver and parses the JSON it prints.
pub fn run_python(args: &[&str], timeout: Duration) -> serde_json::Value {
    let output = run_with_timeout(Command::new(python()).arg(script()).args(args), timeout);
    serde_json::from_slice(&output).unwrap_or_else(|error| {
        panic!(
            "clients.py {args:?} printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output)
        )
    })
}

/// Runs `command`, killing it after `timeout`; panics unless it exits with success. Returns
/// its stdout (read as it comes, so a large output cannot fill the pipe and stall the child).
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> Vec<u8> {
    use std::io::Read;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {command:?}: {error}"));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    match status {
        None => panic!("{command:?} ran past {timeout:?}; stderr:\n{stderr}"),
        Some(status) if !status.success() => {
            panic!("{command:?} failed ({status}); stderr:\n{stderr}")
        }
        Some(_) => stdout,
    }
}

//! The two user-facing examples run as a newcomer runs them, as separate processes, with their
//! output checked against what their docs promise: `quickstart` continues on a second run where
//! the first stopped, and a short `event_bus` run prints its throughput and latency percentiles.
//!
//! The example binaries are found where `cargo test` puts them, next to this test's binary in
//! `target/<profile>/examples/`. `cargo test --test examples_run` does not build examples, so
//! this test builds the two it runs first, with the `cargo` that built it (a no-op when they are
//! up to date), rather than run whatever stale binary an earlier build left there.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The longest one run of an example may take before it is killed and the test fails. Each
/// run takes well under a second on an idle machine; this leaves room for a loaded one.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// `examples/quickstart.rs`: the records it produces per run, to a topic of 3 partitions, with
/// keys `user-0` to `user-9`.
const QUICKSTART_RECORDS: u64 = 1000;
const QUICKSTART_PARTITIONS: u32 = 3;
const QUICKSTART_KEYS: usize = 10;

/// The `--records` of the `event_bus` run: enough for its timings to stay well above the
/// printed precision (10 ms) even in an optimized build, few enough to take well under a
/// second in a debug one.
const EVENT_BUS_RECORDS: u64 = 50_000;

/// The path of a built example: `target/<profile>/examples/<name>`, next to this test's binary
/// (`target/<profile>/deps/examples_run-<hash>`), as in `tests/zookeeper_cluster.rs`.
fn example_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let test_binary = std::env::current_exe().expect("current exe");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    BUILT.get_or_init(|| build_examples(profile_dir));
    let binary = profile_dir.join("examples").join(name);
    assert!(
        binary.exists(),
        "{} is missing after building the examples",
        binary.display()
    );
    binary
}

/// Builds the two examples into `profile_dir/examples` (`target/debug` holds the `dev` profile's
/// output, any other profile directory is named after its profile).
fn build_examples(profile_dir: &Path) {
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev",
        Some(profile) => profile,
    };
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--profile", profile])
        .args(["--example", "quickstart", "--example", "event_bus"])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the examples failed: {status}");
}

/// What a finished run of an example left: its exit status and its output.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The run's stdout lines, after checking it exited successfully.
    fn success_lines(&self, what: &str) -> Vec<&str> {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self.stdout.lines().collect()
    }
}

/// Runs `binary` with `args`; kills it and fails if it is still running after `RUN_LIMIT`.
fn run_bounded(binary: &Path, args: &[&std::ffi::OsStr]) -> Run {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {}: {error}", binary.display()));
    // Read both pipes as the child writes them, so a full pipe cannot stall it.
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("read the output");
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill().expect("kill the example");
            child.wait().expect("reap the example");
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    match status {
        Some(status) => Run {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{} {args:?} did not finish within {RUN_LIMIT:?} and was killed:\nstdout:\n{stdout}\n\
             stderr:\n{stderr}",
            binary.display()
        ),
    }
}

/// Parses `text` as a `T`, or fails naming the line it came from.
fn parse<T: std::str::FromStr>(text: &str, line: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| panic!("cannot parse {text:?} in line {line:?}"))
}

/// `line` without `prefix`, or a failure naming both.
fn after<'a>(line: &'a str, prefix: &str) -> &'a str {
    line.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected a line starting {prefix:?}, got {line:?}"))
}

/// `text` split at the first `separator`, or a failure naming the line.
fn split<'a>(text: &'a str, separator: &str, line: &str) -> (&'a str, &'a str) {
    text.split_once(separator)
        .unwrap_or_else(|| panic!("expected {separator:?} in {text:?} (line {line:?})"))
}

/// A `{k: v, ...}` map as `{:?}` prints a `BTreeMap`; string keys lose their quotes.
fn parse_map<V: std::str::FromStr>(text: &str, line: &str) -> BTreeMap<String, V> {
    let inner = text
        .strip_prefix('{')
        .and_then(|text| text.strip_suffix('}'))
        .unwrap_or_else(|| panic!("expected a {{...}} map, got {text:?} (line {line:?})"));
    inner
        .split(", ")
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (key, value) = split(entry, ": ", line);
            (key.trim_matches('"').to_owned(), parse(value, line))
        })
        .collect()
}

/// One `  partition P: offsets S..E, high watermark H, B bytes on disk` line.
#[derive(Debug, PartialEq)]
struct PartitionLine {
    partition: u32,
    log_start: u64,
    log_end: u64,
    high_watermark: u64,
}

/// What one quickstart run printed, parsed line by line in the order `main` prints them.
#[derive(Debug)]
struct QuickstartOutput {
    created_topic: bool,
    earlier_records: u64,
    /// The partition and offset of the last record sent (`i = 999`, key `user-9`).
    last_sent: (u32, u64),
    consumed: u64,
    consumed_per_partition: BTreeMap<String, u64>,
    partition_of_key: BTreeMap<String, u32>,
    partitions: Vec<PartitionLine>,
}

fn parse_quickstart(lines: &[&str], data: &Path) -> QuickstartOutput {
    let mut lines = lines.iter().copied();
    let mut next = |what: &str| {
        lines
            .next()
            .unwrap_or_else(|| panic!("quickstart's output ends before {what}"))
    };
    let mut line = next("the topic line");
    let created_topic = line
        == format!(
            "created topic quickstart with {QUICKSTART_PARTITIONS} partitions in {}",
            data.display()
        );
    if created_topic {
        line = next("the earlier records line");
    }
    let earlier_records = parse(
        after(line, "the topic holds ")
            .strip_suffix(" records from earlier runs")
            .unwrap_or_else(|| panic!("unexpected line {line:?}")),
        line,
    );

    let line = next("the produced line");
    let rest = after(line, &format!("produced {QUICKSTART_RECORDS} records in "));
    let (millis, rest) = split(rest, " ms (last: Some(RecordMetadata { ", line);
    assert!(parse::<f64>(millis, line) > 0.0, "{line}");
    let rest = after(rest, "topic: \"quickstart\", partition: ");
    let (partition, rest) = split(rest, ", offset: Some(", line);
    let (offset, rest) = split(rest, "), timestamp: ", line);
    let timestamp = rest
        .strip_suffix(" }))")
        .unwrap_or_else(|| panic!("unexpected end of {line:?}"));
    assert!(parse::<i64>(timestamp, line) > 0, "{line}");
    let last_sent = (parse(partition, line), parse(offset, line));

    let line = next("the consumed line");
    let (consumed, per_partition) =
        split(after(line, "consumed "), " records: per partition ", line);
    let consumed = parse(consumed, line);
    let consumed_per_partition = parse_map(per_partition, line);

    let line = next("the keys line");
    let partition_of_key = parse_map(
        after(
            line,
            "each key stays on one partition (murmur2, as Kafka): ",
        ),
        line,
    );

    let partitions = (0..QUICKSTART_PARTITIONS)
        .map(|_| {
            let line = next("a partition line");
            let (partition, rest) = split(after(line, "  partition "), ": offsets ", line);
            let (log_start, rest) = split(rest, "..", line);
            let (log_end, rest) = split(rest, ", high watermark ", line);
            let (high_watermark, bytes) = split(rest, ", ", line);
            let bytes = bytes
                .strip_suffix(" bytes on disk")
                .unwrap_or_else(|| panic!("unexpected end of {line:?}"));
            assert!(parse::<u64>(bytes, line) > 0, "{line}");
            PartitionLine {
                partition: parse(partition, line),
                log_start: parse(log_start, line),
                log_end: parse(log_end, line),
                high_watermark: parse(high_watermark, line),
            }
        })
        .collect();
    assert_eq!(lines.next(), None, "quickstart printed more than expected");
    QuickstartOutput {
        created_topic,
        earlier_records,
        last_sent,
        consumed,
        consumed_per_partition,
        partition_of_key,
        partitions,
    }
}

/// The checks that hold for every quickstart run: it consumed exactly the records it produced,
/// each key `user-0`..`user-9` on one partition, and the last record sent (key `user-9`) is the
/// last offset of its partition.
fn check_quickstart_run(run: &QuickstartOutput) {
    assert_eq!(run.consumed, QUICKSTART_RECORDS, "{run:?}");
    assert_eq!(
        run.consumed_per_partition.values().sum::<u64>(),
        QUICKSTART_RECORDS,
        "{run:?}"
    );
    // `user-0`..`user-9` sort as numbered, the order of the printed map.
    assert_eq!(
        run.partition_of_key.keys().cloned().collect::<Vec<_>>(),
        (0..QUICKSTART_KEYS)
            .map(|i| format!("user-{i}"))
            .collect::<Vec<_>>(),
        "{run:?}"
    );
    assert!(
        run.partition_of_key
            .values()
            .all(|&partition| partition < QUICKSTART_PARTITIONS),
        "{run:?}"
    );
    assert_eq!(
        run.partitions
            .iter()
            .map(|line| line.partition)
            .collect::<Vec<_>>(),
        (0..QUICKSTART_PARTITIONS).collect::<Vec<_>>(),
        "{run:?}"
    );
    for line in &run.partitions {
        assert_eq!(line.log_start, 0, "nothing is deleted: {line:?}");
        assert_eq!(line.high_watermark, line.log_end, "one broker: {line:?}");
    }
    let (partition, offset) = run.last_sent;
    assert_eq!(partition, run.partition_of_key["user-9"], "{run:?}");
    assert_eq!(
        offset + 1,
        run.partitions[partition as usize].log_end,
        "{run:?}"
    );
}

/// `examples/quickstart.rs`, run twice with `--data` on the same fresh directory: both runs
/// exit successfully; the first creates the topic and finds 0 earlier records; the second
/// does not create it, finds exactly the 1000 records of the first, consumes only its own
/// 1000 (with the same count per partition and each key on the same partition as the first),
/// and leaves every partition's log end at twice where the first run left it.
#[test]
fn quickstart_second_run_continues_where_the_first_stopped() {
    let binary = example_binary("quickstart");
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("logbus-data");
    let args = [std::ffi::OsStr::new("--data"), data.as_os_str()];

    let first = run_bounded(&binary, &args);
    let first = parse_quickstart(&first.success_lines("the first quickstart run"), &data);
    check_quickstart_run(&first);
    assert!(first.created_topic, "a fresh directory has no topic");
    assert_eq!(first.earlier_records, 0);
    for line in &first.partitions {
        let consumed = first
            .consumed_per_partition
            .get(&line.partition.to_string())
            .copied()
            .unwrap_or(0);
        assert_eq!(line.log_end, consumed, "{first:?}");
    }

    let second = run_bounded(&binary, &args);
    let second = parse_quickstart(&second.success_lines("the second quickstart run"), &data);
    check_quickstart_run(&second);
    assert!(!second.created_topic, "the topic exists from the first run");
    assert_eq!(second.earlier_records, QUICKSTART_RECORDS);
    assert_eq!(
        second.consumed_per_partition, first.consumed_per_partition,
        "the same keys land on the same partitions"
    );
    assert_eq!(second.partition_of_key, first.partition_of_key);
    for (first, second) in first.partitions.iter().zip(&second.partitions) {
        assert_eq!(
            second.log_end,
            2 * first.log_end,
            "{first:?} then {second:?}"
        );
    }
}

/// A latency as `event_bus` prints it (`12.3 us`, `456 us`, `78 ms`), in ns.
fn parse_latency_ns(text: &str, line: &str) -> f64 {
    let (number, unit) = split(text, " ", line);
    let number: f64 = parse(number, line);
    match unit {
        "us" => number * 1e3,
        "ms" => number * 1e6,
        _ => panic!("unknown unit {unit:?} in {line:?}"),
    }
}

/// Checks a `<what> in S s: R records/s, M MB/s of values` line of `event_bus`: the three
/// numbers are positive and agree with each other and with the record count.
fn check_throughput_line(line: &str, what: &str) {
    let (seconds, rest) = split(after(line, &format!("{what} in ")), " s: ", line);
    let (rate, rest) = split(rest, " records/s, ", line);
    let megabytes = rest
        .strip_suffix(" MB/s of values")
        .unwrap_or_else(|| panic!("unexpected end of {line:?}"));
    let (seconds, rate, megabytes): (f64, f64, f64) = (
        parse(seconds, line),
        parse(rate, line),
        parse(megabytes, line),
    );
    assert!(seconds > 0.0 && rate > 0.0 && megabytes > 0.0, "{line}");
    // Both rates are the same count over the same time; the values are 100 bytes each.
    assert!(
        (megabytes - rate * 100.0 / 1e6).abs() <= 0.05 + 1e-4,
        "MB/s disagrees with records/s: {line}"
    );
    // The seconds are printed to 0.01 s, the rate to 1 record/s.
    let records = EVENT_BUS_RECORDS as f64;
    assert!(
        (rate * seconds - records).abs() <= rate * 0.005 + seconds * 0.5 + 1.0,
        "{rate} records/s for {seconds} s is not {records} records: {line}"
    );
}

/// `examples/event_bus.rs`, run once with `--records 50000` and `--data` on a fresh directory
/// (killed, failing the test, if it runs longer than `RUN_LIMIT`): it exits successfully and
/// prints its settings line, then the `produced in`/`consumed in` throughput lines (positive
/// seconds, records/s and MB/s that agree with 50000 records of 100 bytes) and the end-to-end
/// latency line whose p50, p90, p99, p99.9 and max are positive and in non-decreasing order.
#[test]
fn event_bus_short_run_prints_throughput_and_latency_percentiles() {
    let binary = example_binary("event_bus");
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("events");
    let records = EVENT_BUS_RECORDS.to_string();
    let run = run_bounded(
        &binary,
        &[
            "--records".as_ref(),
            records.as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
        ],
    );
    let lines = run.success_lines("event_bus");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines[0],
        format!(
            "{EVENT_BUS_RECORDS} records of 100 bytes, 2 producer threads, 2 consumer threads, \
             4 partitions, data in {}",
            data.display()
        )
    );
    check_throughput_line(lines[1], "produced");
    check_throughput_line(lines[2], "consumed");

    let line = lines[3];
    let mut rest = after(line, "end-to-end latency (send to poll): ");
    let mut latencies = Vec::new();
    for (label, separator) in [
        ("p50 ", ", "),
        ("p90 ", ", "),
        ("p99 ", ", "),
        ("p99.9 ", ", "),
        ("max ", ""),
    ] {
        let field;
        (field, rest) = if separator.is_empty() {
            (rest, "")
        } else {
            split(rest, separator, line)
        };
        latencies.push(parse_latency_ns(after(field, label), line));
    }
    assert!(latencies.iter().all(|&ns| ns > 0.0), "{line}");
    assert!(
        latencies.windows(2).all(|pair| pair[0] <= pair[1]),
        "percentiles out of order: {line}"
    );
}

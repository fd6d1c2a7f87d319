//! The `dump` example run as a program: its JSON reproduces the Kafka test vectors' fields, and
//! `--verify` passes a log written by `Log` and fails after a byte of a batch or an index entry
//! is damaged.
//!
//! The example binary is built once per test run with the `cargo` that runs the tests, into the
//! same target directory (`cargo test` does not build examples when given `--test dump_tool`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use logbus::log::{CleanupPolicy, DirtyRatio, Log, LogConfig, NewRecord};
use serde_json::Value;

const SEGMENT: &str = "00000000000000000000.log";

/// The path of the built `dump` example: `<target>/debug/examples/dump`, built on first use.
fn dump_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // This test runs as <target>/<profile>/deps/dump_tool-<hash>.
        let exe = std::env::current_exe().unwrap();
        let target_dir = exe.parent().unwrap().parent().unwrap().parent().unwrap();
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "dump", "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the dump example failed");
        target_dir.join("debug/examples/dump")
    })
}

fn dump(args: &[&str], path: &Path) -> Output {
    let output = Command::new(dump_binary())
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "dump panicked: {stderr}");
    output
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kafka-record-batches/vectors.json"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["vectors"].as_array().unwrap().clone()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The sample segment, copied into a directory that is not a valid partition directory name.
fn sample_segment(dir: &Path) -> PathBuf {
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kafka-record-batches/segment/00000000000000000000.log"
    );
    let path = dir.join(SEGMENT);
    std::fs::copy(source, &path).unwrap();
    path
}

#[test]
fn json_of_the_sample_segment_has_the_vectors_shape() {
    let dir = tempfile::tempdir().unwrap();
    let output = dump(&["--json"], &sample_segment(dir.path()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let batches = json_lines(&output);
    assert_eq!(batches.len(), 12);
    let mut expected_keys: Vec<String> =
        vectors()[0].as_object().unwrap().keys().cloned().collect();
    expected_keys.retain(|key| key != "name" && key != "hex");
    let mut next_offset = 0;
    for batch in &batches {
        let mut keys: Vec<String> = batch.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        expected_keys.sort();
        assert_eq!(keys, expected_keys);
        assert_eq!(batch["base_offset"].as_i64().unwrap(), next_offset);
        for record in batch["records"].as_array().unwrap() {
            assert_eq!(record["offset"].as_i64().unwrap(), next_offset);
            next_offset += 1;
        }
        assert_eq!(
            batch["records"].as_array().unwrap().len() as i64,
            batch["records_count"].as_i64().unwrap()
        );
    }
    assert_eq!(next_offset, 200);
    let epochs: Vec<i64> = batches
        .iter()
        .map(|b| b["partition_leader_epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(&epochs[..6], &[0, 0, 0, 0, 1, 1]);
    assert!(
        epochs.windows(2).all(|pair| pair[0] <= pair[1]),
        "{epochs:?}"
    );
}

#[test]
fn json_of_each_vector_reproduces_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    for vector in vectors() {
        let name = vector["name"].as_str().unwrap();
        let path = dir.path().join(format!("{name}.log"));
        std::fs::write(&path, hex(vector["hex"].as_str().unwrap())).unwrap();
        let output = dump(&["--json"], &path);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let batches = json_lines(&output);
        assert_eq!(batches.len(), 1, "{name}");
        let mut expected = vector.as_object().unwrap().clone();
        expected.remove("name");
        expected.remove("hex");
        if expected["compression"] != "none" {
            // This build cannot decompress: the header must still match, the records are null.
            expected.insert("records".to_owned(), Value::Null);
        }
        assert_eq!(batches[0], Value::Object(expected), "{name}");
    }
}

/// A log of 2,000 records in batches of 1 to 20, indexed every 1 KiB, in a directory `t-0`.
fn write_log(dir: &Path) -> Log {
    let config = LogConfig {
        index_interval_bytes: 1024,
        ..LogConfig::default()
    };
    let log = Log::open(dir.join("t-0"), config).unwrap();
    let value = [7u8; 100];
    let mut timestamp = 1_700_000_000_000;
    for i in 0..200 {
        let records: Vec<NewRecord> = (0..=i % 20)
            .map(|_| {
                timestamp += 1;
                NewRecord {
                    timestamp,
                    key: Some(b"key"),
                    value: Some(&value),
                    headers: &[],
                }
            })
            .collect();
        log.append_records(&records, i / 50).unwrap();
    }
    log
}

fn verify(path: &Path) -> Output {
    dump(&["--verify"], path)
}

#[test]
fn verify_passes_a_log_written_by_log_while_open_and_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let segment = dir.path().join("t-0").join(SEGMENT);
    log.flush().unwrap();
    // Open: the directory is locked and the files are pre-allocated with zeros.
    let output = verify(&segment);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    log.close().unwrap();
    let index = std::fs::metadata(segment.with_extension("index"))
        .unwrap()
        .len();
    assert!(
        index >= 8 * 10,
        "the test needs index entries, has {index} bytes"
    );
    let output = verify(&segment);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Compacted segments (offset gaps, rewritten batches, a delete horizon, indexes written by the
/// cleaner) are valid segments to Kafka's tool, and so to this one.
#[test]
fn verify_passes_the_segments_of_a_compacted_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.0).unwrap(),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path().join("t-0"), config).unwrap();
    for i in 0..400u32 {
        let key = (i % 37).to_be_bytes();
        let value = vec![b'v'; (i % 50) as usize];
        let record = NewRecord {
            timestamp: 1_000 + i64::from(i),
            key: Some(&key),
            value: (i % 11 != 0).then_some(&value[..]),
            headers: &[],
        };
        log.append_records(&[record, record], 0).unwrap();
    }
    log.roll().unwrap();
    let stats = log.clean(10_000).unwrap();
    assert!(stats.records_removed > 0 && stats.segments_replaced > 1);
    log.close().unwrap();
    let mut segments = 0;
    for entry in std::fs::read_dir(dir.path().join("t-0")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "log") {
            let output = verify(&path);
            assert!(
                output.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            segments += 1;
        }
    }
    assert_eq!(segments, 2, "the cleaned segment and the active one");
}

#[test]
fn verify_fails_after_a_byte_of_a_batch_flips() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path()).close().unwrap();
    let segment = dir.path().join("t-0").join(SEGMENT);
    let mut bytes = std::fs::read(&segment).unwrap();
    // Inside the first record's value (the batch header is 61 bytes): only the CRC can tell.
    bytes[100] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let output = verify(&segment);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("crc mismatch"), "{stderr}");
}

#[test]
fn verify_fails_after_an_index_entry_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path()).close().unwrap();
    let segment = dir.path().join("t-0").join(SEGMENT);
    let index_path = segment.with_extension("index");
    let mut index = std::fs::read(&index_path).unwrap();
    // Entry 3's position moves by one byte: it no longer starts a batch.
    index[3 * 8 + 7] ^= 0x01;
    std::fs::write(&index_path, index).unwrap();
    let output = verify(&segment);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not the start of a batch"));
}

#[test]
fn verify_fails_after_a_time_index_entry_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path()).close().unwrap();
    let segment = dir.path().join("t-0").join(SEGMENT);
    let time_index_path = segment.with_extension("timeindex");
    let mut time_index = std::fs::read(&time_index_path).unwrap();
    // Entry 2's timestamp jumps far ahead: entry 3 no longer increases after it.
    time_index[2 * 12] ^= 0x10;
    std::fs::write(&time_index_path, time_index).unwrap();
    assert_eq!(verify(&segment).status.code(), Some(1));
}

#[test]
fn random_bytes_give_an_error_and_a_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SEGMENT);
    // A fixed xorshift stream: reproducible garbage.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let garbage: Vec<u8> = (0..65_536)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&path, garbage).unwrap();
    for args in [&[][..], &["--json"], &["--verify"]] {
        let output = dump(args, &path);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("no valid batch header"));
    }
}

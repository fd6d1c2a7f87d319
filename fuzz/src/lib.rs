//! Shared pieces of the fuzz targets: a small valid log to start from, the fixed set of file
//! names a partition directory may hold, and a scratch directory on tmpfs (the log fsyncs on
//! open; on tmpfs that costs nothing, so each run stays fast).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use logbus::log::{
    Log, LogConfig, NewRecord, CLEAN_SHUTDOWN_FILE, LOG_START_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};

/// Directory name of every fuzzed log: a valid `<topic>-<partition>`.
pub const DIR_NAME: &str = "fuzz-0";
/// Base offset of the template's second segment (it rolls after this many records).
pub const SECOND_BASE: u64 = 10;

/// The file names the targets write, indexed by an input byte.
pub const FILE_NAMES: [&str; 9] = [
    "00000000000000000000.log",
    "00000000000000000000.index",
    "00000000000000000000.timeindex",
    "00000000000000000010.log",
    "00000000000000000010.index",
    "00000000000000000010.timeindex",
    "leader-epoch-checkpoint",
    RECOVERY_POINT_CHECKPOINT,
    LOG_START_CHECKPOINT,
];

/// Small limits, so a run touches little memory and disk and may roll.
pub fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        segment_index_bytes: 1 << 10,
        index_interval_bytes: 128,
        max_message_bytes: 16 << 10,
        ..LogConfig::default()
    }
}

/// A fresh scratch directory, on `/dev/shm` when there is one. The log goes in `DIR_NAME` inside.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new();
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("a temporary directory")
}

/// Files of a valid, cleanly closed log: 10 records in segment 0, 30 in segment 10, leader
/// epochs 0 and 1, batches of 1 to 4 records with keys, values, headers and tombstones.
pub fn template() -> &'static [(String, Vec<u8>)] {
    static TEMPLATE: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let scratch = scratch();
        let dir = scratch.path().join(DIR_NAME);
        write_template_log(&dir);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("the template directory")
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.file_name().is_some_and(|name| name != ".lock"))
            .map(|path| {
                (
                    file_name(&path),
                    std::fs::read(&path).expect("a template file"),
                )
            })
            .collect();
        files.sort();
        files
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

fn write_template_log(dir: &Path) {
    let log = Log::open(dir, config()).expect("the template log opens");
    let header = [logbus::record::Header::new(
        &b"trace"[..],
        Some(bytes::Bytes::from_static(b"1")),
    )];
    let value = [0x5a_u8; 300];
    let mut offset = 0u64;
    let mut timestamp = 1_700_000_000_000i64;
    for batch in 0..20u64 {
        let count = batch % 4 + 1;
        let records: Vec<NewRecord> = (0..count)
            .map(|i| {
                timestamp += 7;
                NewRecord {
                    timestamp: if i == 1 { timestamp - 20 } else { timestamp },
                    key: (i != 2).then_some(&b"key"[..]),
                    value: (i != 3).then_some(&value[..(batch as usize * 13) % 300]),
                    headers: if i == 0 { &header } else { &[] },
                }
            })
            .collect();
        let epoch = if offset < 25 { 0 } else { 1 };
        log.append_records(&records, epoch)
            .expect("the template append");
        offset += count;
        if offset >= SECOND_BASE && log.segment_count() == 1 {
            log.roll().expect("the template roll");
        }
        if offset >= 40 {
            break;
        }
    }
    log.close().expect("the template log closes");
}

/// Writes `files` into a new directory `DIR_NAME` under `root`.
pub fn write_dir(root: &Path, files: &[(String, Vec<u8>)]) -> PathBuf {
    let dir = root.join(DIR_NAME);
    std::fs::create_dir(&dir).expect("the log directory");
    for (name, contents) in files {
        std::fs::write(dir.join(name), contents).expect("a log file");
    }
    dir
}

/// Reads everything the log holds, batch by batch and record by record, and asks for offsets by
/// time; then appends and closes. Errors end a step; only a panic is a bug.
pub fn exercise(log: &Log) {
    read_everything(log);
    for timestamp in [
        i64::MIN,
        -1,
        0,
        1_700_000_000_000,
        1_700_000_000_100,
        i64::MAX,
    ] {
        let _ = log.offset_for_timestamp(timestamp);
    }
    let record = NewRecord {
        timestamp: 1_700_000_001_000,
        key: Some(b"k"),
        value: Some(b"v"),
        headers: &[],
    };
    let _ = log.append_records(&[record], 5);
    let _ = log.flush();
    read_everything(log);
}

/// Reads from the log start to the end in 4 KiB reads, iterating every record. Returns the
/// offsets and timestamps read.
pub fn read_everything(log: &Log) -> Vec<(u64, i64)> {
    let mut seen = Vec::new();
    let mut from = log.log_start_offset();
    // Each step advances `from`, which is bounded by the log end; the cap guards a bug.
    for _ in 0..10_000 {
        let Ok(read) = log.read(from, 4096) else {
            break;
        };
        if read.bytes.is_empty() {
            break;
        }
        let before = from;
        for batch in read.batches() {
            let Ok(batch) = batch else {
                return seen;
            };
            from = batch.header().next_offset() as u64;
            let Ok(records) = batch.records() else {
                continue;
            };
            for record in records.flatten() {
                seen.push((record.offset as u64, record.timestamp));
            }
        }
        if from <= before {
            break;
        }
    }
    seen
}

/// The clean-shutdown marker's file name.
pub const CLEAN_MARKER: &str = CLEAN_SHUTDOWN_FILE;

/// Batch header layout (see `src/record/batch.rs`): the length field, the CRC, and where the
/// CRC's coverage starts.
const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const HEADER_BYTES: usize = 61;

/// Rewrites the CRC of every batch laid back to back in `bytes`, as far as their length fields
/// hold, so mutated fields get past the checksum and reach the decoders behind it.
pub fn fix_crcs(bytes: &mut [u8]) {
    let mut position = 0;
    while position + HEADER_BYTES <= bytes.len() {
        let length_field = &bytes[position + BATCH_LENGTH_AT..position + BATCH_LENGTH_AT + 4];
        let length = i32::from_be_bytes(length_field.try_into().expect("4 bytes"));
        let Ok(length) = usize::try_from(length) else {
            return;
        };
        let end = position + BATCH_LENGTH_AT + 4 + length;
        if length < HEADER_BYTES - BATCH_LENGTH_AT - 4 || end > bytes.len() {
            return;
        }
        let crc = crc32c::crc32c(&bytes[position + ATTRIBUTES_AT..end]);
        bytes[position + CRC_AT..position + CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        position = end;
    }
}

/// Makes `bytes` one batch as far as the length field goes: it covers exactly the input.
pub fn fix_length(bytes: &mut [u8]) {
    if bytes.len() >= HEADER_BYTES {
        let length = (bytes.len() - BATCH_LENGTH_AT - 4) as i32;
        bytes[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    }
}

//! Prints and checks a log segment, like Kafka's `kafka-dump-log.sh`.
//!
//! ```text
//! cargo run --example dump -- [--verify] [--json] PATH.log
//! ```
//!
//! - default: one line per batch (offsets, position, size, leader epoch, CRC validity, attributes,
//!   timestamps, producer) followed by one `|`-prefixed line per record.
//! - `--json`: one JSON object per batch per line, with the field names of
//!   `tests/data/kafka-record-batches/vectors.json`.
//! - `--verify`: also checks the `.index` and `.timeindex` next to the `.log` against a scan of it,
//!   prints every fault, and a summary.
//!
//! The file is read directly (no `Log::open`), so it works on a segment whose directory is locked
//! by a running log or is not named `<topic>-<partition>`. Every byte is treated as untrusted:
//! garbage gives faults and a non-zero exit, never a panic.
//!
//! Exit status: 0 clean, 1 when a fault was found, 2 for a usage or I/O error.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use logbus::record::{validate, BatchHeader, DecodeError, Record, RecordBatch, TimestampType};

/// How many bytes of a key or value the text output shows.
const PREVIEW_BYTES: usize = 32;
/// `.index` entries: relative offset u32, position u32, big-endian.
const OFFSET_ENTRY_BYTES: usize = 8;
/// `.timeindex` entries: timestamp i64, relative offset u32, big-endian.
const TIME_ENTRY_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(Debug)]
struct Options {
    path: PathBuf,
    output: Output,
    verify: bool,
}

/// A batch found by the scan: where it lies and what it holds.
#[derive(Debug, Clone)]
struct ScannedBatch {
    position: u64,
    header: BatchHeader,
    /// Offsets of the decoded records (empty when the batch could not be decoded).
    record_offsets: Vec<i64>,
}

/// Everything the scan learned, for the index checks.
#[derive(Debug, Default)]
struct Scan {
    batches: Vec<ScannedBatch>,
    faults: Vec<String>,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            eprintln!("usage: dump [--verify] [--json] PATH.log");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(faults) => {
            eprintln!("{}: {faults} fault(s)", options.path.display());
            ExitCode::from(1)
        }
        // `dump ... | head` closed the pipe: the reader has what it wanted.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}: {error}", options.path.display());
            ExitCode::from(2)
        }
    }
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut path = None;
    let mut output = Output::Text;
    let mut verify = false;
    for arg in args {
        match arg.as_str() {
            "--json" => output = Output::Json,
            "--verify" => verify = true,
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            _ if path.is_some() => return Err("more than one path given".to_owned()),
            _ => path = Some(PathBuf::from(arg)),
        }
    }
    let path = path.ok_or("no segment path given")?;
    Ok(Options {
        path,
        output,
        verify,
    })
}

/// Dumps (and with `--verify` checks) the segment; returns the number of faults.
fn run(options: &Options) -> io::Result<usize> {
    let bytes = Bytes::from(std::fs::read(&options.path)?);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut scan = Scan::default();
    scan_log(&bytes, options.output, &mut out, &mut scan)?;
    if options.verify {
        check_segment_base(&options.path, &mut scan);
        let base_offset = segment_base_offset(&options.path, &scan);
        check_offset_index(
            &options.path.with_extension("index"),
            base_offset,
            &mut scan,
        )?;
        check_time_index(
            &options.path.with_extension("timeindex"),
            base_offset,
            &mut scan,
        )?;
    }
    out.flush()?;
    for fault in &scan.faults {
        eprintln!("fault: {fault}");
    }
    if options.verify && options.output == Output::Text {
        let records: usize = scan.batches.iter().map(|b| b.record_offsets.len()).sum();
        eprintln!(
            "verified {} batches, {} records, {} bytes: {} fault(s)",
            scan.batches.len(),
            records,
            bytes.len(),
            scan.faults.len()
        );
    }
    Ok(scan.faults.len())
}

/// The base offset a 20-digit segment file name gives, if it has one.
fn base_offset_from_name(path: &Path) -> Option<u64> {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| stem.len() == 20)
        .and_then(|stem| stem.parse::<u64>().ok())
}

/// A segment named by its base offset holds no batch below it.
fn check_segment_base(path: &Path, scan: &mut Scan) {
    let (Some(base), Some(first)) = (base_offset_from_name(path), scan.batches.first()) else {
        return;
    };
    if (first.header.base_offset as u64) < base {
        scan.faults.push(format!(
            "the first batch's base offset {} is below the segment's base offset {base} (its name)",
            first.header.base_offset
        ));
    }
}

/// The segment's base offset from its 20-digit file name, else the first batch's base offset.
fn segment_base_offset(path: &Path, scan: &Scan) -> u64 {
    let from_name = base_offset_from_name(path);
    let first_batch = scan.batches.first().map(|b| b.header.base_offset as u64);
    from_name.or(first_batch).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The log scan
// ---------------------------------------------------------------------------------------------

/// Walks the batches back to back, printing each, until the end of the file, a pre-allocated
/// zero tail, or a batch whose length cannot be trusted (the scan cannot resync after that).
fn scan_log(
    bytes: &Bytes,
    output: Output,
    out: &mut impl Write,
    scan: &mut Scan,
) -> io::Result<()> {
    let mut position = 0usize;
    let mut next_offset: Option<i64> = None;
    while position < bytes.len() {
        let rest = &bytes[position..];
        if rest.iter().all(|&byte| byte == 0) {
            if output == Output::Text {
                writeln!(
                    out,
                    "{} zero bytes of pre-allocated space at position {position}",
                    rest.len()
                )?;
            }
            break;
        }
        let header = match BatchHeader::decode(rest) {
            Ok(header) if header.total_bytes() <= rest.len() => header,
            Ok(header) => {
                scan.faults.push(format!(
                    "position {position}: batch of {} bytes runs past the end of the file ({} bytes left)",
                    header.total_bytes(),
                    rest.len()
                ));
                break;
            }
            Err(error) => {
                scan.faults.push(format!(
                    "position {position}: no valid batch header: {error}"
                ));
                break;
            }
        };
        let batch_bytes = bytes.slice(position..position + header.total_bytes());
        let scanned = scan_batch(position as u64, header, batch_bytes, output, out, scan)?;
        if let Some(expected) = next_offset {
            if header.base_offset < expected {
                scan.faults.push(format!(
                    "position {position}: base offset {} is below the previous batch's next offset {expected}",
                    header.base_offset
                ));
            }
        }
        next_offset = Some(header.next_offset());
        position += header.total_bytes();
        scan.batches.push(scanned);
    }
    Ok(())
}

/// Checks and prints one batch whose header decoded and whose bytes are all in the file.
fn scan_batch(
    position: u64,
    header: BatchHeader,
    batch_bytes: Bytes,
    output: Output,
    out: &mut impl Write,
    scan: &mut Scan,
) -> io::Result<ScannedBatch> {
    let total = batch_bytes.len();
    let crc_valid = match validate(&batch_bytes, total) {
        Ok(_) => true,
        Err(error) => {
            scan.faults.push(format!(
                "position {position}: batch at offset {}: {error}",
                header.base_offset
            ));
            false
        }
    };
    let records = if crc_valid {
        decode_records(position, batch_bytes, scan)
    } else {
        Err("not decoded: crc mismatch".to_owned())
    };
    match output {
        Output::Text => print_batch_text(out, position, &header, crc_valid, &records)?,
        Output::Json => print_batch_json(out, &header, &records)?,
    }
    let record_offsets = records
        .map(|rs| rs.iter().map(|r| r.offset).collect())
        .unwrap_or_default();
    Ok(ScannedBatch {
        position,
        header,
        record_offsets,
    })
}

/// Decodes the records of a batch whose CRC matched. A compressed batch is not a fault (this
/// build cannot decompress it); a record that does not decode, or an offset outside the batch or
/// not increasing, is.
fn decode_records(
    position: u64,
    batch_bytes: Bytes,
    scan: &mut Scan,
) -> Result<Vec<Record>, String> {
    let batch = RecordBatch::from_bytes(batch_bytes).map_err(|error| {
        scan.faults.push(format!("position {position}: {error}"));
        format!("not decoded: {error}")
    })?;
    let header = *batch.header();
    let records = match batch.records() {
        Ok(records) => records,
        Err(error @ DecodeError::UnsupportedCompression(_)) => {
            return Err(format!("not decoded: {error}"))
        }
        Err(error) => {
            scan.faults.push(format!("position {position}: {error}"));
            return Err(format!("not decoded: {error}"));
        }
    };
    let mut decoded = Vec::new();
    for record in records {
        let record = record.map_err(|error| {
            let fault = format!(
                "position {position}: batch at offset {}: record {}: {error}",
                header.base_offset,
                decoded.len()
            );
            scan.faults.push(fault.clone());
            fault
        })?;
        let previous = decoded
            .last()
            .map_or(header.base_offset - 1, |r: &Record| r.offset);
        if record.offset <= previous || record.offset > header.last_offset() {
            scan.faults.push(format!(
                "position {position}: record offset {} is not in {}..={} after {previous}",
                record.offset,
                header.base_offset,
                header.last_offset()
            ));
        }
        decoded.push(record);
    }
    Ok(decoded)
}

// ---------------------------------------------------------------------------------------------
// Text output
// ---------------------------------------------------------------------------------------------

fn timestamp_type_name(header: &BatchHeader) -> &'static str {
    match header.attributes.timestamp_type {
        TimestampType::CreateTime => "create_time",
        TimestampType::LogAppendTime => "log_append_time",
    }
}

fn print_batch_text(
    out: &mut impl Write,
    position: u64,
    header: &BatchHeader,
    crc_valid: bool,
    records: &Result<Vec<Record>, String>,
) -> io::Result<()> {
    let attributes = &header.attributes;
    writeln!(
        out,
        "baseOffset: {} lastOffset: {} count: {} position: {position} size: {} leaderEpoch: {} \
         crc: {:#010x} isValid: {crc_valid} attributes: {:#06x} codec: {} timestampType: {} \
         isTransactional: {} isControl: {} baseTimestamp: {} maxTimestamp: {} producerId: {} \
         producerEpoch: {} baseSequence: {}",
        header.base_offset,
        header.last_offset(),
        header.records_count,
        header.total_bytes(),
        header.partition_leader_epoch,
        header.crc,
        attributes.encode(),
        attributes.compression,
        timestamp_type_name(header),
        attributes.is_transactional,
        attributes.is_control,
        header.base_timestamp,
        header.max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
    )?;
    match records {
        Ok(records) => records
            .iter()
            .try_for_each(|record| print_record_text(out, record)),
        Err(reason) => writeln!(out, "| records {reason}"),
    }
}

fn print_record_text(out: &mut impl Write, record: &Record) -> io::Result<()> {
    let size = |field: &Option<Bytes>| field.as_ref().map_or(-1, |bytes| bytes.len() as i64);
    let headers: Vec<String> = record
        .headers
        .iter()
        .map(|header| {
            format!(
                "{}={}",
                String::from_utf8_lossy(&header.key),
                preview(header.value.as_deref())
            )
        })
        .collect();
    writeln!(
        out,
        "| offset: {} timestamp: {} keySize: {} valueSize: {} key: {} value: {} headers: [{}]",
        record.offset,
        record.timestamp,
        size(&record.key),
        size(&record.value),
        preview(record.key.as_deref()),
        preview(record.value.as_deref()),
        headers.join(", ")
    )
}

/// The first bytes of a field, printable ASCII as is and the rest escaped, or `null`.
fn preview(field: Option<&[u8]>) -> String {
    let Some(bytes) = field else {
        return "null".to_owned();
    };
    let mut text = String::from("\"");
    for &byte in bytes.iter().take(PREVIEW_BYTES) {
        match byte {
            b'"' | b'\\' => text.extend(['\\', byte as char]),
            0x20..=0x7e => text.push(byte as char),
            _ => {
                let _ = write!(text, "\\x{byte:02x}");
            }
        }
    }
    text.push('"');
    if bytes.len() > PREVIEW_BYTES {
        text.push_str("...");
    }
    text
}

// ---------------------------------------------------------------------------------------------
// JSON output: one object per batch per line, the test vectors' field names, written by hand
// ---------------------------------------------------------------------------------------------

fn print_batch_json(
    out: &mut impl Write,
    header: &BatchHeader,
    records: &Result<Vec<Record>, String>,
) -> io::Result<()> {
    let attributes = &header.attributes;
    let mut line = String::with_capacity(256);
    let _ = write!(
        line,
        "{{\"base_offset\":{},\"partition_leader_epoch\":{},\"magic\":{},\"crc\":{},\
         \"attributes\":{},\"compression\":\"{}\",\"timestamp_type\":\"{}\",\
         \"is_transactional\":{},\"is_control\":{},\"last_offset_delta\":{},\
         \"base_timestamp\":{},\"max_timestamp\":{},\"producer_id\":{},\"producer_epoch\":{},\
         \"base_sequence\":{},\"records_count\":{},\"records\":",
        header.base_offset,
        header.partition_leader_epoch,
        header.magic,
        header.crc,
        attributes.encode(),
        attributes.compression,
        timestamp_type_name(header),
        attributes.is_transactional,
        attributes.is_control,
        header.last_offset_delta,
        header.base_timestamp,
        header.max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        header.records_count,
    );
    match records {
        Ok(records) => {
            line.push('[');
            for (i, record) in records.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                push_record_json(&mut line, record);
            }
            line.push(']');
        }
        // Compressed or damaged: the records are unknown, not empty.
        Err(_) => line.push_str("null"),
    }
    line.push('}');
    writeln!(out, "{line}")
}

fn push_record_json(line: &mut String, record: &Record) {
    let _ = write!(
        line,
        "{{\"offset\":{},\"timestamp\":{},\"key\":",
        record.offset, record.timestamp
    );
    push_hex_or_null(line, record.key.as_deref());
    line.push_str(",\"value\":");
    push_hex_or_null(line, record.value.as_deref());
    line.push_str(",\"headers\":[");
    for (i, header) in record.headers.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push('[');
        push_json_string(line, &String::from_utf8_lossy(&header.key));
        line.push(',');
        push_hex_or_null(line, header.value.as_deref());
        line.push(']');
    }
    line.push_str("]}");
}

fn push_hex_or_null(line: &mut String, field: Option<&[u8]>) {
    match field {
        None => line.push_str("null"),
        Some(bytes) => {
            line.push('"');
            for byte in bytes {
                let _ = write!(line, "{byte:02x}");
            }
            line.push('"');
        }
    }
}

/// A JSON string literal (RFC 8259 escaping).
fn push_json_string(line: &mut String, text: &str) {
    line.push('"');
    for ch in text.chars() {
        match ch {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            ch if (ch as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", ch as u32);
            }
            ch => line.push(ch),
        }
    }
    line.push('"');
}

// ---------------------------------------------------------------------------------------------
// Index checks (--verify)
// ---------------------------------------------------------------------------------------------

/// Reads an index file, or `None` (with a note) when there is none.
fn read_index(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            eprintln!("note: no {} (an open rebuilds it)", path.display());
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The entries of an index file, without the trailing all-zero entries an active segment's
/// pre-allocated file holds. A length that is not a whole number of entries is a fault.
fn index_entries<'a>(
    path: &Path,
    bytes: &'a [u8],
    entry_bytes: usize,
    scan: &mut Scan,
) -> Vec<&'a [u8]> {
    if !bytes.len().is_multiple_of(entry_bytes) {
        scan.faults.push(format!(
            "{}: length {} is not a multiple of {entry_bytes}",
            path.display(),
            bytes.len()
        ));
    }
    let mut entries: Vec<&[u8]> = bytes.chunks_exact(entry_bytes).collect();
    while entries
        .last()
        .is_some_and(|entry| entry.iter().all(|&byte| byte == 0))
    {
        entries.pop();
    }
    entries
}

/// Index `i` of the batch that starts at `position`.
fn batch_at_position(scan: &Scan, position: u64) -> Option<usize> {
    scan.batches
        .binary_search_by_key(&position, |batch| batch.position)
        .ok()
}

/// Index of the batch whose offset range holds `offset`.
fn batch_holding_offset(scan: &Scan, offset: i64) -> Option<usize> {
    let after = scan
        .batches
        .partition_point(|batch| batch.header.base_offset <= offset);
    let i = after.checked_sub(1)?;
    (offset <= scan.batches[i].header.last_offset()).then_some(i)
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// An index entry's relative offset made absolute; saturating, since a file name may hold any
/// 20 digits.
fn absolute(base_offset: u64, relative: &[u8]) -> i64 {
    i64::try_from(base_offset)
        .unwrap_or(i64::MAX)
        .saturating_add(i64::from(be_u32(relative)))
}

fn be_i64(bytes: &[u8]) -> i64 {
    let mut raw = [0; 8];
    raw.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(raw)
}

/// Every `.index` entry must point at the start of a batch whose last offset is the entry's
/// offset, with offsets and positions increasing.
fn check_offset_index(path: &Path, base_offset: u64, scan: &mut Scan) -> io::Result<()> {
    let Some(bytes) = read_index(path)? else {
        return Ok(());
    };
    let name = path.display().to_string();
    let entries = index_entries(path, &bytes, OFFSET_ENTRY_BYTES, scan);
    let mut previous: Option<(i64, u32)> = None;
    for (i, entry) in entries.iter().enumerate() {
        let offset = absolute(base_offset, &entry[0..4]);
        let position = be_u32(&entry[4..8]);
        if let Some((last_offset, last_position)) = previous {
            if offset <= last_offset || position <= last_position {
                scan.faults.push(format!(
                    "{name}: entry {i} (offset {offset}, position {position}) does not increase after (offset {last_offset}, position {last_position})"
                ));
            }
        }
        previous = Some((offset, position));
        match batch_at_position(scan, u64::from(position)) {
            None => scan.faults.push(format!(
                "{name}: entry {i} (offset {offset}): position {position} is not the start of a batch"
            )),
            Some(b) if scan.batches[b].header.last_offset() != offset => scan.faults.push(format!(
                "{name}: entry {i}: offset {offset} but the batch at position {position} ends at offset {}",
                scan.batches[b].header.last_offset()
            )),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Every `.timeindex` entry's offset must be in the log and its timestamp no later than the
/// largest timestamp up to that batch; timestamps increase and offsets do not decrease.
fn check_time_index(path: &Path, base_offset: u64, scan: &mut Scan) -> io::Result<()> {
    let Some(bytes) = read_index(path)? else {
        return Ok(());
    };
    let name = path.display().to_string();
    let entries = index_entries(path, &bytes, TIME_ENTRY_BYTES, scan);
    let max_timestamp_through: Vec<i64> = scan
        .batches
        .iter()
        .scan(i64::MIN, |max, batch| {
            *max = (*max).max(batch.header.max_timestamp);
            Some(*max)
        })
        .collect();
    let mut previous: Option<(i64, i64)> = None;
    for (i, entry) in entries.iter().enumerate() {
        let timestamp = be_i64(&entry[0..8]);
        let offset = absolute(base_offset, &entry[8..12]);
        if let Some((last_timestamp, last_offset)) = previous {
            if timestamp <= last_timestamp || offset < last_offset {
                scan.faults.push(format!(
                    "{name}: entry {i} (timestamp {timestamp}, offset {offset}) does not increase after (timestamp {last_timestamp}, offset {last_offset})"
                ));
            }
        }
        previous = Some((timestamp, offset));
        let Some(b) = batch_holding_offset(scan, offset) else {
            scan.faults.push(format!(
                "{name}: entry {i}: offset {offset} is in no batch of the log"
            ));
            continue;
        };
        let batch = &scan.batches[b];
        let decoded = !batch.record_offsets.is_empty();
        if decoded && batch.record_offsets.binary_search(&offset).is_err() {
            scan.faults.push(format!(
                "{name}: entry {i}: offset {offset} is no record of its batch"
            ));
        }
        if timestamp > max_timestamp_through[b] {
            scan.faults.push(format!(
                "{name}: entry {i}: timestamp {timestamp} is later than every batch up to offset {offset} (max {})",
                max_timestamp_through[b]
            ));
        }
    }
    Ok(())
}

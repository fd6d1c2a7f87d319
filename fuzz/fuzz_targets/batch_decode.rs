//! Bytes from disk or a socket, decoded as one batch and as batches back to back: every path
//! returns a `DecodeError` or records, never a panic, and never an allocation sized by a length
//! field.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logbus::record::{BatchHeader, Batches, RecordBatch};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let _ = BatchHeader::decode(data);
    if let Ok(batch) = RecordBatch::from_bytes(bytes.clone()) {
        drain(&batch);
    }
    for batch in Batches::new(bytes) {
        match batch {
            Ok(batch) => drain(&batch),
            Err(_) => break,
        }
    }
});

/// Iterates every record and touches every field, so lazily computed parts are exercised.
fn drain(batch: &RecordBatch) {
    let header = batch.header();
    let _ = (
        header.last_offset(),
        header.next_offset(),
        header.last_sequence(),
    );
    let Ok(records) = batch.records() else {
        return;
    };
    for record in records {
        let Ok(record) = record else {
            break;
        };
        let total: usize = record.key.map_or(0, |k| k.len())
            + record.value.map_or(0, |v| v.len())
            + record.headers.iter().map(|h| h.key.len()).sum::<usize>();
        assert!(
            total <= batch.as_bytes().len(),
            "a record holds more bytes than its batch"
        );
    }
}

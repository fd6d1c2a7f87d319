//! Bytes from disk or a socket, decoded as one batch and as batches back to back: every path
//! returns a `DecodeError` or records, never a panic, and never an allocation sized by a length
//! field.
//!
//! Input: byte 0 is a mode; bit 0 sets the first batch's length field to cover the input, bit 1
//! rewrites the CRCs, so mutated headers and records get past the checksum to the record decoder
//! (random bytes almost never carry a valid CRC-32C). The rest is the bytes to decode.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logbus::record::{BatchHeader, Batches, RecordBatch};
use logbus_fuzz::{fix_crcs, fix_length};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut data = data.to_vec();
    if mode & 1 != 0 {
        fix_length(&mut data);
    }
    if mode & 2 != 0 {
        fix_crcs(&mut data);
    }
    let bytes = Bytes::from(data);
    let _ = BatchHeader::decode(&bytes);
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

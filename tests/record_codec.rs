//! Round-trip properties of the record batch codec, and totality of decoding: every truncation,
//! bit flip and lying length or count gives a typed error, never a panic, and no allocation made
//! while decoding is larger than the input.

use bytes::Bytes;
use logbus::record::{
    Attributes, BatchBuilder, BatchSpec, Batches, DecodeError, Header, RecordBatch, TimestampType,
};
use proptest::prelude::*;

#[path = "support/tracking_allocator.rs"]
mod tracking_allocator;
use tracking_allocator::{largest_allocation, TrackingAllocator};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// Fixed bookkeeping a decode may allocate whatever the input: the shared header `Bytes` makes
/// when a buffer is first cloned, and a batch's record iterator.
const BOOKKEEPING_BYTES: usize = 64;

/// [`first_error`] of `input`, with the largest allocation it made (the copy of the input is made
/// before tracking starts).
fn decode_all(input: &[u8]) -> (Option<DecodeError>, usize) {
    let bytes = Bytes::copy_from_slice(input);
    largest_allocation(|| first_error(bytes))
}

/// Decodes everything in `bytes` as batches and records, and returns the first error if any.
fn first_error(bytes: Bytes) -> Option<DecodeError> {
    let mut first_error = None;
    for batch in Batches::new(bytes.clone()) {
        let records = match batch.and_then(|batch| batch.records()) {
            Ok(records) => records,
            Err(error) => {
                first_error.get_or_insert(error);
                continue;
            }
        };
        for record in records {
            match record {
                Ok(record) => {
                    let _ = record.headers.iter().count();
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
    }
    if let Err(error) = RecordBatch::from_bytes(bytes) {
        first_error.get_or_insert(error);
    }
    first_error
}

#[derive(Debug, Clone)]
struct TestRecord {
    delta_gap: i32,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn bytes_field(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max))
}

fn test_record() -> impl Strategy<Value = TestRecord> {
    (
        0..3i32,
        -1_000_000i64..1_000_000,
        bytes_field(20),
        bytes_field(200),
        proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..8), bytes_field(8)),
            0..3,
        ),
    )
        .prop_map(|(delta_gap, timestamp, key, value, headers)| TestRecord {
            delta_gap,
            timestamp,
            key,
            value,
            headers,
        })
}

fn spec() -> impl Strategy<Value = BatchSpec> {
    (
        0i64..1 << 40,
        -1i32..100,
        any::<bool>(),
        any::<bool>(),
        -1i64..1000,
        -1i16..5,
        -1i32..1000,
    )
        .prop_map(
            |(
                base_offset,
                epoch,
                transactional,
                append_time,
                producer_id,
                producer_epoch,
                base_sequence,
            )| BatchSpec {
                base_offset,
                partition_leader_epoch: epoch,
                attributes: Attributes {
                    is_transactional: transactional,
                    timestamp_type: if append_time {
                        TimestampType::LogAppendTime
                    } else {
                        TimestampType::CreateTime
                    },
                    ..Attributes::default()
                },
                producer_id,
                producer_epoch,
                base_sequence,
            },
        )
}

fn build(spec: BatchSpec, records: &[TestRecord]) -> RecordBatch {
    let mut builder = BatchBuilder::new(spec);
    let mut delta = -1;
    for record in records {
        delta += 1 + record.delta_gap;
        let headers: Vec<Header> = record
            .headers
            .iter()
            .map(|(key, value)| Header::new(key.clone(), value.clone().map(Bytes::from)))
            .collect();
        builder.append_at_delta(
            delta,
            1_700_000_000_000 + record.timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &headers,
        );
    }
    builder.finish()
}

fn cases() -> u32 {
    std::env::var("LOGBUS_PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn batches_round_trip(spec in spec(), records in proptest::collection::vec(test_record(), 1..20)) {
        let batch = build(spec, &records);
        let decoded = RecordBatch::from_bytes(batch.as_bytes().clone()).unwrap();
        let header = *decoded.header();
        prop_assert_eq!(header.base_offset, spec.base_offset);
        prop_assert_eq!(header.partition_leader_epoch, spec.partition_leader_epoch);
        prop_assert_eq!(header.attributes, spec.attributes);
        prop_assert_eq!(header.records_count as usize, records.len());
        let max_timestamp = records.iter().map(|record| 1_700_000_000_000 + record.timestamp).max().unwrap();
        prop_assert_eq!(header.max_timestamp, max_timestamp);
        let mut offset = spec.base_offset - 1;
        for (record, original) in decoded.records().unwrap().zip(&records) {
            let record = record.unwrap();
            offset += 1 + i64::from(original.delta_gap);
            prop_assert_eq!(record.offset, offset);
            let timestamp = match spec.attributes.timestamp_type {
                TimestampType::CreateTime => 1_700_000_000_000 + original.timestamp,
                TimestampType::LogAppendTime => max_timestamp,
            };
            prop_assert_eq!(record.timestamp, timestamp);
            prop_assert_eq!(record.key.as_deref(), original.key.as_deref());
            prop_assert_eq!(record.value.as_deref(), original.value.as_deref());
            let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                record.headers.iter().map(|header| (header.key.to_vec(), header.value.as_deref().map(<[u8]>::to_vec))).collect();
            prop_assert_eq!(&headers, &original.headers);
        }
        prop_assert_eq!(header.last_offset(), offset);
    }

    #[test]
    fn every_truncation_is_a_typed_error(records in proptest::collection::vec(test_record(), 1..6)) {
        let batch = build(BatchSpec::default(), &records);
        let bytes = batch.as_bytes();
        for len in 0..bytes.len() {
            let (error, largest) = decode_all(&bytes[..len]);
            prop_assert!(RecordBatch::from_bytes(bytes.slice(..len)).is_err(), "truncation at {} decoded", len);
            prop_assert!(largest <= len.max(BOOKKEEPING_BYTES), "allocated {} for {} input bytes (error {:?})", largest, len, error);
        }
    }

    #[test]
    fn bit_flips_never_panic_and_crc_catches_them(records in proptest::collection::vec(test_record(), 1..6), seed in any::<u64>()) {
        let batch = build(BatchSpec::default(), &records);
        let mut bytes = batch.as_bytes().to_vec();
        let bit = (seed % (bytes.len() as u64 * 8)) as usize;
        bytes[bit / 8] ^= 1 << (bit % 8);
        let (error, largest) = decode_all(&bytes);
        prop_assert!(largest <= bytes.len().max(BOOKKEEPING_BYTES));
        // Flips after the CRC field are always caught; earlier ones hit offsets, length, epoch,
        // magic or the CRC itself and may decode (base offset, epoch) or fail another check.
        if bit / 8 >= 21 {
            prop_assert!(error.is_some(), "flip of bit {} went unnoticed", bit);
        }
    }

    /// A batch whose inner lengths and counts lie, with a CRC recomputed over the lie, so only the
    /// record decoder stands between the lie and a panic or a huge allocation.
    #[test]
    fn lying_inner_lengths_are_typed_errors(records in proptest::collection::vec(test_record(), 1..6), at in any::<prop::sample::Index>(), lie in any::<u8>()) {
        let batch = build(BatchSpec::default(), &records);
        let mut bytes = batch.as_bytes().to_vec();
        let position = 57 + at.index(bytes.len() - 57);
        bytes[position] = lie;
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        let (_, largest) = decode_all(&bytes);
        prop_assert!(largest <= bytes.len().max(BOOKKEEPING_BYTES), "allocated {} for {} bytes", largest, bytes.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (_, largest) = decode_all(&input);
        prop_assert!(largest <= input.len().max(BOOKKEEPING_BYTES));
    }
}

#[test]
fn huge_declared_counts_allocate_nothing_large() {
    // A batch that declares i32::MAX records and a record declaring i32::MAX headers.
    let batch = build(
        BatchSpec::default(),
        &[TestRecord {
            delta_gap: 0,
            timestamp: 0,
            key: None,
            value: None,
            headers: Vec::new(),
        }],
    );
    let mut bytes = batch.as_bytes().to_vec();
    bytes[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let last = bytes.len() - 1;
    bytes[last] = 0xfe; // headers count varint: start of a large value
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0x0f]);
    let length = (bytes.len() - 12) as i32;
    bytes[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let (error, largest) = decode_all(&bytes);
    assert!(error.is_some());
    assert!(largest <= bytes.len(), "allocated {largest}");
}

#[test]
fn wrong_magic_and_short_length_are_reported_as_such() {
    let batch = build(
        BatchSpec::default(),
        &[TestRecord {
            delta_gap: 0,
            timestamp: 0,
            key: None,
            value: Some(vec![1]),
            headers: Vec::new(),
        }],
    );
    let mut bytes = batch.as_bytes().to_vec();
    bytes[16] = 1;
    assert_eq!(
        RecordBatch::from_bytes(Bytes::from(bytes.clone())).unwrap_err(),
        DecodeError::UnsupportedMagic { magic: 1 }
    );
    bytes[16] = 2;
    bytes[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        RecordBatch::from_bytes(Bytes::from(bytes)).unwrap_err(),
        DecodeError::BadBatchLength { length: 10, .. }
    ));
}

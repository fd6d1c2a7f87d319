//! Rewriting a batch without some of its records, as Kafka's log cleaner does
//! (`MemoryRecords.filterTo`). Pure: bytes in, bytes out.
//!
//! The rewritten batch keeps what lets offsets and producer state survive compaction: the base
//! offset and the last offset delta of the original (so the batch spans the same offsets, and the
//! last sequence a producer state rebuild derives from it is unchanged), the partition leader
//! epoch, the producer id, epoch and base sequence, and the attributes. Kept records are copied
//! byte for byte: their offset and timestamp deltas stay valid because the base offset and the
//! base timestamp stay. What changes: the record count, the length, the CRC, and the max
//! timestamp, recomputed from the kept records for CreateTime batches (as Kafka does).
//!
//! The delete horizon (KIP-534): a batch that keeps a tombstone and has no horizon yet can be
//! given one: attribute bit 6 is set and the base timestamp field holds the horizon, so the kept
//! records' timestamp deltas are rewritten against it (their absolute timestamps do not change).
//! A batch with a horizon whose tombstones are all gone loses it (bit cleared, base timestamp back
//! to its first record's).

use super::batch::{
    BatchHeader, RecordBatch, TimestampType, ATTRIBUTES_AT, BATCH_HEADER_BYTES, CRC_AT,
    LOG_OVERHEAD_BYTES,
};
use super::builder::write_header;
use super::varint::{put_varint, put_varlong, varlong_len, Reader};
use super::{DecodeError, Record};

/// What [`filter_batch`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filtered {
    /// Every record kept and no horizon to change: the original bytes can be used as they are.
    /// Nothing was written.
    Unchanged,
    /// The rewritten batch, with this header, was appended to the output.
    Rewritten(BatchHeader),
    /// No record kept and no empty batch asked for: nothing written.
    Dropped,
}

/// How [`filter_batch`] rewrites a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FilterOptions {
    /// The delete horizon to stamp when the batch keeps a tombstone and has none yet; `None`
    /// stamps nothing.
    pub delete_horizon_ms: Option<i64>,
    /// Whether a batch left without records is still written, as a header alone (Kafka keeps
    /// the last batch of each producer so that its sequence state survives).
    pub keep_empty: bool,
}

/// The outcome of [`filter_batch`], with counts for the cleaner's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FilterResult {
    pub filtered: Filtered,
    pub records_kept: usize,
    pub records_removed: usize,
    pub tombstones_kept: usize,
    pub tombstones_removed: usize,
}

#[derive(Debug, Default)]
struct Counts {
    kept: usize,
    removed: usize,
    tombstones_kept: usize,
    tombstones_removed: usize,
    first_timestamp: Option<i64>,
    max_timestamp: i64,
}

/// What happens to the batch's delete horizon.
#[derive(Debug, Clone, Copy)]
enum Horizon {
    /// No horizon before, none after.
    Absent,
    /// The batch's horizon stays.
    Keep,
    /// A new horizon is stamped.
    Stamp(i64),
    /// The horizon goes (no tombstone left).
    Clear,
}

/// Writes `batch` without the records `keep` refuses to the end of `out`, as described in the
/// module documentation. `keep` sees the records in offset order.
///
/// # Errors
/// `UnsupportedCompression` for a compressed batch, and any error decoding its records; `out` is
/// then left as it was.
pub(crate) fn filter_batch(
    batch: &RecordBatch,
    options: FilterOptions,
    out: &mut Vec<u8>,
    keep: impl FnMut(&Record) -> bool,
) -> Result<FilterResult, DecodeError> {
    let start = out.len();
    let written = write_filtered(batch, options, out, start, keep);
    if !matches!(
        written,
        Ok(FilterResult {
            filtered: Filtered::Rewritten(_),
            ..
        })
    ) {
        out.truncate(start);
    }
    written
}

fn write_filtered(
    batch: &RecordBatch,
    options: FilterOptions,
    out: &mut Vec<u8>,
    start: usize,
    keep: impl FnMut(&Record) -> bool,
) -> Result<FilterResult, DecodeError> {
    let header = batch.header();
    out.resize(start + BATCH_HEADER_BYTES, 0);
    let counts = copy_kept(batch, out, keep)?;
    let horizon = match (
        header.attributes.has_delete_horizon,
        counts.tombstones_kept > 0,
    ) {
        (true, true) => Horizon::Keep,
        (true, false) => Horizon::Clear,
        (false, true) => options
            .delete_horizon_ms
            .map_or(Horizon::Absent, Horizon::Stamp),
        (false, false) => Horizon::Absent,
    };
    let result = |filtered| FilterResult {
        filtered,
        records_kept: counts.kept,
        records_removed: counts.removed,
        tombstones_kept: counts.tombstones_kept,
        tombstones_removed: counts.tombstones_removed,
    };
    if counts.kept == 0 && !options.keep_empty {
        return Ok(result(Filtered::Dropped));
    }
    if counts.removed == 0 && matches!(horizon, Horizon::Absent | Horizon::Keep) {
        return Ok(result(Filtered::Unchanged));
    }
    let base_timestamp = match (horizon, counts.first_timestamp) {
        // Kafka's empty batch header carries the original max timestamp in both fields.
        (_, None) => header.max_timestamp,
        (Horizon::Stamp(horizon), Some(_)) => horizon,
        (Horizon::Clear, Some(first)) => first,
        (Horizon::Absent | Horizon::Keep, Some(_)) => header.base_timestamp,
    };
    if counts.kept > 0 && base_timestamp != header.base_timestamp {
        let kept = out.split_off(start + BATCH_HEADER_BYTES);
        rebase_timestamps(&kept, header.base_timestamp, base_timestamp, out)?;
    }
    let batch_length = i32::try_from(out.len() - start - LOG_OVERHEAD_BYTES).map_err(|_| {
        DecodeError::BadBatchLength {
            length: (out.len() - start - LOG_OVERHEAD_BYTES) as i64,
            min: BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES,
            max: i32::MAX as usize,
        }
    })?;
    let keeps_max =
        counts.kept == 0 || header.attributes.timestamp_type == TimestampType::LogAppendTime;
    let mut attributes = header.attributes;
    attributes.has_delete_horizon =
        matches!(horizon, Horizon::Keep | Horizon::Stamp(_)) && counts.kept > 0;
    let rewritten = BatchHeader {
        batch_length,
        crc: 0,
        attributes,
        base_timestamp,
        max_timestamp: if keeps_max {
            header.max_timestamp
        } else {
            counts.max_timestamp
        },
        records_count: counts.kept as i32,
        ..*header
    };
    let batch_bytes = &mut out[start..];
    write_header(&mut batch_bytes[..BATCH_HEADER_BYTES], &rewritten);
    let crc = crc32c::crc32c(&batch_bytes[ATTRIBUTES_AT..]);
    batch_bytes[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(result(Filtered::Rewritten(BatchHeader {
        crc,
        ..rewritten
    })))
}

/// Copies the records `keep` accepts, byte for byte, to the end of `out`.
fn copy_kept(
    batch: &RecordBatch,
    out: &mut Vec<u8>,
    mut keep: impl FnMut(&Record) -> bool,
) -> Result<Counts, DecodeError> {
    let body = &batch.as_bytes()[BATCH_HEADER_BYTES..];
    let mut records = batch.records()?;
    let mut counts = Counts {
        max_timestamp: -1,
        ..Counts::default()
    };
    loop {
        let from = records.position();
        let Some(record) = records.next() else {
            return Ok(counts);
        };
        let record = record?;
        let tombstone = record.value.is_none();
        if keep(&record) {
            out.extend_from_slice(&body[from..records.position()]);
            counts.kept += 1;
            counts.tombstones_kept += usize::from(tombstone);
            counts.first_timestamp.get_or_insert(record.timestamp);
            counts.max_timestamp = counts.max_timestamp.max(record.timestamp);
        } else {
            counts.removed += 1;
            counts.tombstones_removed += usize::from(tombstone);
        }
    }
}

/// Rewrites encoded records so that their timestamp deltas count from `new_base` instead of
/// `old_base`, keeping each record's absolute timestamp; appends them to `out`.
fn rebase_timestamps(
    records: &[u8],
    old_base: i64,
    new_base: i64,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let mut reader = Reader::new(records);
    while reader.remaining() > 0 {
        let length = reader.varint()?;
        let length = usize::try_from(length).map_err(|_| DecodeError::InvalidField {
            field: "record.length",
            value: i64::from(length),
        })?;
        let body = reader.take(length)?;
        let mut fields = Reader::new(body);
        let attributes = fields.i8()?;
        let delta = fields.varlong()?;
        let rest = &body[fields.position()..];
        // Decoding adds with wrapping arithmetic, so this gives back the same timestamp.
        let rebased = old_base.wrapping_add(delta).wrapping_sub(new_base);
        let new_length = 1 + varlong_len(rebased) + rest.len();
        let new_length = i32::try_from(new_length).map_err(|_| DecodeError::InvalidField {
            field: "record.length",
            value: new_length as i64,
        })?;
        put_varint(out, new_length);
        out.push(attributes as u8);
        put_varlong(out, rebased);
        out.extend_from_slice(rest);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::record::{Attributes, BatchBuilder, BatchSpec, Compression, Header};

    /// Offsets 100.., producer 7 epoch 2 base sequence 40; keys k0..; every third a tombstone.
    fn batch(count: i32) -> RecordBatch {
        let mut builder = BatchBuilder::new(BatchSpec {
            base_offset: 100,
            partition_leader_epoch: 3,
            producer_id: 7,
            producer_epoch: 2,
            base_sequence: 40,
            ..BatchSpec::default()
        });
        for i in 0..count {
            let key = format!("k{i}");
            let value = format!("v{i}");
            let value = (i % 3 != 2).then_some(value.as_bytes());
            let headers = [Header::new(
                Bytes::from_static(b"h"),
                Some(Bytes::from(key.clone())),
            )];
            builder.append(
                1_000 + i64::from(i) * 10,
                Some(key.as_bytes()),
                value,
                &headers,
            );
        }
        builder.finish()
    }

    fn filter(
        batch: &RecordBatch,
        options: FilterOptions,
        keep: impl FnMut(&Record) -> bool,
    ) -> (FilterResult, Vec<u8>) {
        let mut out = b"prefix".to_vec();
        let result = filter_batch(batch, options, &mut out, keep).unwrap();
        assert_eq!(&out[..6], b"prefix", "earlier output is left alone");
        (result, out.split_off(6))
    }

    fn decoded(bytes: Vec<u8>) -> (BatchHeader, Vec<Record>) {
        let batch = RecordBatch::from_bytes(Bytes::from(bytes)).unwrap();
        let records = batch.records().unwrap().map(Result::unwrap).collect();
        (*batch.header(), records)
    }

    #[test]
    fn kept_records_keep_offsets_timestamps_and_the_producer_fields() {
        let original = batch(6);
        let (result, bytes) = filter(&original, FilterOptions::default(), |record| {
            record.offset % 2 == 1
        });
        let (header, records) = decoded(bytes);
        assert_eq!(result.filtered, Filtered::Rewritten(header));
        assert_eq!((result.records_kept, result.records_removed), (3, 3));
        let source: Vec<Record> = original.records().unwrap().map(Result::unwrap).collect();
        let expected: Vec<Record> = source.into_iter().filter(|r| r.offset % 2 == 1).collect();
        assert_eq!(records, expected);
        let before = original.header();
        assert_eq!(header.base_offset, before.base_offset);
        assert_eq!(header.last_offset_delta, before.last_offset_delta);
        assert_eq!(header.base_timestamp, before.base_timestamp);
        assert_eq!(header.max_timestamp, 1_050);
        assert_eq!(header.records_count, 3);
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence,
                header.partition_leader_epoch
            ),
            (7, 2, 40, 3)
        );
        assert!(!header.attributes.has_delete_horizon, "no tombstone kept");
    }

    #[test]
    fn all_kept_is_unchanged_none_kept_is_dropped_or_an_empty_header() {
        let original = batch(3);
        let (result, bytes) = filter(&original, FilterOptions::default(), |_| true);
        assert_eq!(result.filtered, Filtered::Unchanged);
        assert!(bytes.is_empty());
        let (result, bytes) = filter(&original, FilterOptions::default(), |_| false);
        assert_eq!(result.filtered, Filtered::Dropped);
        assert_eq!(result.tombstones_removed, 1);
        assert!(bytes.is_empty());
        let keep_empty = FilterOptions {
            keep_empty: true,
            ..FilterOptions::default()
        };
        let (_, bytes) = filter(&original, keep_empty, |_| false);
        let (header, records) = decoded(bytes);
        assert!(records.is_empty());
        assert_eq!(header.records_count, 0);
        assert_eq!(header.last_offset(), original.header().last_offset());
        assert_eq!(header.last_sequence(), original.header().last_sequence());
        assert_eq!(header.base_timestamp, original.header().max_timestamp);
    }

    #[test]
    fn a_kept_tombstone_gets_a_horizon_without_moving_any_timestamp() {
        let original = batch(6);
        let stamp = FilterOptions {
            delete_horizon_ms: Some(90_000_000),
            keep_empty: false,
        };
        let (result, bytes) = filter(&original, stamp, |_| true);
        let (header, records) = decoded(bytes.clone());
        assert_eq!(result.filtered, Filtered::Rewritten(header));
        assert!(header.attributes.has_delete_horizon);
        assert_eq!(header.base_timestamp, 90_000_000);
        let source: Vec<Record> = original.records().unwrap().map(Result::unwrap).collect();
        assert_eq!(records, source, "same records, same absolute timestamps");
        assert_eq!(header.max_timestamp, original.header().max_timestamp);

        // Stamped once, kept as is: a second horizon does not replace the first.
        let stamped = RecordBatch::from_bytes(Bytes::from(bytes)).unwrap();
        let later = FilterOptions {
            delete_horizon_ms: Some(95_000_000),
            keep_empty: false,
        };
        assert_eq!(
            filter(&stamped, later, |_| true).0.filtered,
            Filtered::Unchanged
        );

        // Its tombstones removed, the batch loses the horizon.
        let (_, bytes) = filter(&stamped, later, |record| record.value.is_some());
        let (header, records) = decoded(bytes);
        assert!(!header.attributes.has_delete_horizon);
        assert_eq!(header.base_timestamp, 1_000);
        let values: Vec<Record> = source.into_iter().filter(|r| r.value.is_some()).collect();
        assert_eq!(records, values);
    }

    #[test]
    fn compressed_batches_are_refused_and_leave_the_output_alone() {
        let mut builder = BatchBuilder::new(BatchSpec {
            attributes: Attributes {
                compression: Compression::Gzip,
                ..Attributes::default()
            },
            ..BatchSpec::default()
        });
        builder.append(1, Some(b"k"), Some(b"v"), &[]);
        let compressed = builder.finish();
        let mut out = b"x".to_vec();
        let error = filter_batch(&compressed, FilterOptions::default(), &mut out, |_| true);
        assert!(matches!(
            error,
            Err(DecodeError::UnsupportedCompression(Compression::Gzip))
        ));
        assert_eq!(out, b"x");
    }
}

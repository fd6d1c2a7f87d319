//! Reading one `__consumer_offsets` partition from its start into groups and offsets, as a
//! coordinator does when it takes the partition over. Later records win (compaction keeps the
//! last per key); a null value deletes its key.

use std::collections::BTreeMap;

use super::records::{
    decode_group_value, decode_key, decode_offset_value, GroupMetadataValue, OffsetAndMetadata,
    RecordKey,
};
use super::{GroupError, OffsetsLog, TopicPartition};

/// Bytes read per call while loading.
const LOAD_READ_BYTES: usize = 1 << 20;

/// What a partition held.
#[derive(Debug, Default)]
pub struct LoadedPartition {
    pub groups: BTreeMap<String, GroupMetadataValue>,
    pub offsets: BTreeMap<String, BTreeMap<TopicPartition, OffsetAndMetadata>>,
}

impl LoadedPartition {
    fn apply(
        &mut self,
        partition: u32,
        offset: u64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), GroupError> {
        let corrupt = |what| {
            move |failure: super::error::DecodeFailure| GroupError::Corrupt {
                what,
                partition,
                offset,
                reason: failure.0,
            }
        };
        match decode_key(key).map_err(corrupt("offsets record key"))? {
            RecordKey::OffsetCommit {
                group,
                partition: tp,
            } => {
                let offsets = self.offsets.entry(group).or_default();
                match value {
                    Some(value) => {
                        let committed =
                            decode_offset_value(value).map_err(corrupt("offset commit value"))?;
                        offsets.insert(tp, committed);
                    }
                    None => {
                        offsets.remove(&tp);
                    }
                }
            }
            RecordKey::GroupMetadata { group } => match value {
                Some(value) => {
                    let metadata =
                        decode_group_value(value).map_err(corrupt("group metadata value"))?;
                    self.groups.insert(group, metadata);
                }
                None => {
                    self.groups.remove(&group);
                    self.offsets.remove(&group);
                }
            },
        }
        Ok(())
    }
}

/// Reads `partition` of `log` from its start to its end.
///
/// # Errors
/// `Storage` when the log cannot be read; `Corrupt` for a batch or record that does not decode.
pub fn load_partition(log: &dyn OffsetsLog, partition: u32) -> Result<LoadedPartition, GroupError> {
    let storage = |source| GroupError::Storage { partition, source };
    let mut loaded = LoadedPartition::default();
    let mut from = log.start_offset(partition).map_err(storage)?;
    loop {
        let read = log
            .read(partition, from, LOAD_READ_BYTES)
            .map_err(storage)?;
        if read.bytes.is_empty() {
            return Ok(loaded);
        }
        let before = from;
        for batch in read.batches() {
            let batch = batch.map_err(|_| corrupt_batch(partition, from))?;
            let header = *batch.header();
            if !header.attributes.is_control {
                let records = batch
                    .records()
                    .map_err(|_| corrupt_batch(partition, from))?;
                for record in records {
                    let record = record.map_err(|_| corrupt_batch(partition, from))?;
                    let key = record.key.as_deref().ok_or(GroupError::Corrupt {
                        what: "offsets record",
                        partition,
                        offset: record.offset as u64,
                        reason: "record without a key",
                    })?;
                    loaded.apply(
                        partition,
                        record.offset as u64,
                        key,
                        record.value.as_deref(),
                    )?;
                }
            }
            from = header.next_offset() as u64;
        }
        if from <= before {
            return Err(corrupt_batch(partition, from));
        }
    }
}

fn corrupt_batch(partition: u32, offset: u64) -> GroupError {
    GroupError::Corrupt {
        what: "offsets batch",
        partition,
        offset,
        reason: "batch does not decode",
    }
}

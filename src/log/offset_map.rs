//! The cleaner's key map: for each key of the dirty section, the offset of its latest record.
//!
//! As Kafka's `SkimpyOffsetMap`, it stores a strong hash of the key instead of the key, in a
//! fixed table allocated once: memory is bounded by configuration, not by input. Each slot is
//! 24 bytes: a 128-bit hash (two SipHash-1-3 digests under random keys drawn per map, so
//! collisions are neither likely, about n^2 / 2^129 for n keys, nor predictable from the data)
//! and the offset. The table has a power-of-two number of slots, probed triangularly (which
//! visits every slot), and takes at most 90% of them (Kafka's load factor); past that `put`
//! reports `Full` and the cleaner cleans the prefix it mapped.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Bytes per slot: the two hash halves and the offset.
pub(crate) const SLOT_BYTES: u64 = 24;
/// Marks a free slot: offsets are below `i64::MAX`.
const FREE: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: [u64; 2],
    offset: u64,
}

/// The strong hash of a key, computed once per record and used for both insert and lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyHash([u64; 2]);

/// The map is full: the key was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

#[derive(Debug)]
pub(crate) struct OffsetMap {
    slots: Vec<Slot>,
    /// Keys held.
    used: usize,
    /// Keys the map takes before it reports `Full` (90% of the slots).
    max_used: usize,
    seeds: [RandomState; 2],
}

impl OffsetMap {
    /// A map for up to `keys_wanted` keys, within `buffer_bytes`: the table is the smaller of
    /// what the keys need and what the buffer holds, so a small dirty section allocates little.
    pub(crate) fn new(buffer_bytes: u64, keys_wanted: u64) -> OffsetMap {
        let by_buffer = prev_power_of_two((buffer_bytes / SLOT_BYTES).max(2));
        let by_keys = (keys_wanted.saturating_mul(10) / 9 + 1)
            .max(2)
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX);
        let slots = by_buffer.min(by_keys) as usize;
        let max_used = (slots * 9 / 10).clamp(1, slots - 1);
        OffsetMap {
            slots: vec![
                Slot {
                    hash: [0; 2],
                    offset: FREE,
                };
                slots
            ],
            used: 0,
            max_used,
            seeds: [RandomState::new(), RandomState::new()],
        }
    }

    pub(crate) fn hash(&self, key: &[u8]) -> KeyHash {
        KeyHash([self.seeds[0].hash_one(key), self.seeds[1].hash_one(key)])
    }

    /// Records `offset` as the latest for the key. Offsets are put in increasing order, so the
    /// last put for a key is its latest.
    ///
    /// # Errors
    /// `Full` when the key is new and the map holds its maximum; nothing changes then.
    pub(crate) fn put(&mut self, hash: KeyHash, offset: u64) -> Result<(), Full> {
        debug_assert_ne!(offset, FREE);
        let at = self.find(hash);
        let slot = &mut self.slots[at];
        if slot.offset == FREE {
            if self.used == self.max_used {
                return Err(Full);
            }
            self.used += 1;
            slot.hash = hash.0;
        }
        slot.offset = offset;
        Ok(())
    }

    /// The latest offset put for the key, if any.
    pub(crate) fn get(&self, hash: KeyHash) -> Option<u64> {
        let slot = self.slots[self.find(hash)];
        (slot.offset != FREE).then_some(slot.offset)
    }

    pub(crate) fn len(&self) -> usize {
        self.used
    }

    /// Bytes the table takes.
    #[cfg(test)]
    pub(crate) fn size_bytes(&self) -> u64 {
        self.slots.len() as u64 * SLOT_BYTES
    }

    /// The slot holding `hash`, or the free slot where it would go. Terminates because at least
    /// one slot is always free and triangular probing over a power of two visits every slot.
    fn find(&self, hash: KeyHash) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = hash.0[0] as usize & mask;
        let mut step = 0;
        loop {
            let slot = &self.slots[at];
            if slot.offset == FREE || slot.hash == hash.0 {
                return at;
            }
            step += 1;
            at = (at + step) & mask;
        }
    }
}

fn prev_power_of_two(n: u64) -> u64 {
    1 << (63 - n.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_per_key() {
        let mut map = OffsetMap::new(1 << 20, 100);
        for offset in 0..300u64 {
            let key = format!("key-{}", offset % 100);
            map.put(map.hash(key.as_bytes()), offset).unwrap();
        }
        assert_eq!(map.len(), 100);
        for k in 0..100u64 {
            let key = format!("key-{k}");
            assert_eq!(map.get(map.hash(key.as_bytes())), Some(200 + k));
        }
        assert_eq!(map.get(map.hash(b"absent")), None);
    }

    #[test]
    fn is_bounded_by_the_buffer_and_reports_full() {
        let buffer_bytes = 1024;
        let mut map = OffsetMap::new(buffer_bytes, 1_000_000);
        assert!(map.size_bytes() <= buffer_bytes);
        let mut added = 0;
        for offset in 0..1_000u64 {
            match map.put(map.hash(&offset.to_be_bytes()), offset) {
                Ok(()) => added += 1,
                Err(Full) => break,
            }
        }
        assert_eq!(added, map.len());
        assert_eq!(
            added,
            32 * 9 / 10,
            "42 slots fit 1 KiB; 32 is the power of two below"
        );
        // A full map still updates keys it holds.
        map.put(map.hash(&0u64.to_be_bytes()), 5_000).unwrap();
        assert_eq!(map.get(map.hash(&0u64.to_be_bytes())), Some(5_000));
    }

    #[test]
    fn is_sized_by_the_keys_wanted_when_fewer() {
        let map = OffsetMap::new(128 << 20, 10);
        assert_eq!(map.size_bytes(), 16 * SLOT_BYTES);
        let map = OffsetMap::new(128 << 20, 0);
        assert_eq!(map.size_bytes(), 2 * SLOT_BYTES);
    }
}

//! Choosing a partition, as Kafka's Java client does.
//!
//! A keyed record goes to `toPositive(murmur2(key)) % partitions`, so keys land where Kafka's own
//! clients put them. A keyless record goes to a sticky partition that changes once about
//! `batch_size` bytes were sent to it (KIP-480, with KIP-794's uniform switching), so keyless
//! traffic forms full batches yet spreads evenly.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit.
pub fn to_positive(value: i32) -> u32 {
    (value & 0x7fff_ffff) as u32
}

/// The partition Kafka's default partitioner gives `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    to_positive(murmur2(key)) % partitions
}

/// Chooses the partition of a record sent without an explicit one.
pub trait Partitioner: Send + Sync + std::fmt::Debug {
    /// A partition in `0..partitions` for a record of `record_bytes` to `topic`.
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        record_bytes: usize,
        partitions: u32,
    ) -> u32;
}

/// Kafka's built-in behaviour: murmur2 for keys, uniform sticky for the rest.
#[derive(Debug)]
pub struct DefaultPartitioner {
    switch_after_bytes: usize,
    sticky: Mutex<FxHashMap<String, Sticky>>,
    random: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Sticky {
    partition: u32,
    bytes: usize,
}

impl DefaultPartitioner {
    /// A partitioner whose keyless records move on after `batch_size` bytes.
    pub fn new(batch_size: usize) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_nanos() as u64);
        DefaultPartitioner {
            switch_after_bytes: batch_size.max(1),
            sticky: Mutex::new(FxHashMap::default()),
            random: AtomicU64::new(seed | 1),
        }
    }

    /// A uniformly chosen partition other than `avoid` when there is a choice.
    fn pick(&self, partitions: u32, avoid: Option<u32>) -> u32 {
        // xorshift64*: plenty for spreading load, and no dependency.
        let mut x = self.random.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random.store(x, Ordering::Relaxed);
        let draw = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32;
        match avoid {
            Some(avoid) if partitions > 1 => (avoid + 1 + draw % (partitions - 1)) % partitions,
            _ => draw % partitions,
        }
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        record_bytes: usize,
        partitions: u32,
    ) -> u32 {
        // Every rule gives partition 0 of one; a send to a one-partition topic skips the lock.
        if partitions <= 1 {
            return 0;
        }
        if let Some(key) = key {
            return partition_for_key(key, partitions);
        }
        let mut sticky = self.sticky.lock();
        let state = match sticky.get_mut(topic) {
            Some(state) if state.partition < partitions => state,
            _ => {
                let partition = self.pick(partitions, None);
                sticky
                    .entry(topic.to_owned())
                    .insert_entry(Sticky {
                        partition,
                        bytes: 0,
                    })
                    .into_mut()
            }
        };
        if state.bytes >= self.switch_after_bytes {
            state.partition = self.pick(partitions, Some(state.partition));
            state.bytes = 0;
        }
        state.bytes += record_bytes;
        state.partition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own `UtilsTest.testMurmur2` vectors.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for &(key, hash) in cases {
            assert_eq!(murmur2(key), hash, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn keyless_records_stick_then_move_evenly() {
        let partitioner = DefaultPartitioner::new(1000);
        let first = partitioner.partition("t", None, 100, 4);
        for _ in 0..9 {
            assert_eq!(partitioner.partition("t", None, 100, 4), first);
        }
        assert_ne!(
            partitioner.partition("t", None, 100, 4),
            first,
            "switches after batch_size bytes"
        );
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[partitioner.partition("t", None, 100, 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&count| count > 8_000),
            "uneven spread {counts:?}"
        );
        assert_eq!(
            partitioner.partition("t", Some(b"21"), 100, 4),
            to_positive(-973_932_308) % 4
        );
    }
}

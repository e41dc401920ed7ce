//! Bounded caches keyed by the hash of a text, shared by the stores: the sled store's
//! owners of identities and [`super::secrets::EncryptingStore`]'s decrypted records.

use std::sync::{Mutex, MutexGuard};

use crate::FastMap;

/// A 64-bit hash of a text (an identity, an IMSI) for the stores' caches: eight octets at
/// a time, each step a folded multiply (the 128-bit product's halves xored), so that every
/// input bit reaches every output bit. FxHash, tried first for the sled owner cache, let the
/// identities of the benchmark's population collide: of the 20,000 IMPUs of 10,000
/// subscribers (`sip:+99…@…` and `tel:+99…`, differing only in a few digits) 5,540 shared a
/// hash with another, and a quarter of the LIRs missed the cache. Like FxHash, not built to
/// resist crafted collisions: the caches check what they find, so those cost a miss.
pub(crate) fn text_hash(text: &str) -> u64 {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xd6e8_feb8_6659_fd93;
    fn fold(a: u64, b: u64) -> u64 {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    }
    let bytes = text.as_bytes();
    let mut h = (bytes.len() as u64).wrapping_mul(K2);
    let mut words = bytes.chunks_exact(8);
    let mut word = [0u8; 8];
    for w in &mut words {
        word.copy_from_slice(w);
        h = fold(h ^ u64::from_le_bytes(word), K1);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        word = [0; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = fold(h ^ u64::from_le_bytes(word), K1);
    }
    fold(h, K2)
}

/// Shards of a [`HashCache`] (the hash's bits 32 and up choose one).
pub(crate) const SHARDS: usize = 64;

/// Values keyed by the [`text_hash`] of a text, at most `capacity` of them (an arbitrary
/// entry goes when a shard is full). Keyed by the hash alone, not the text, which a lookup
/// would have to follow and compare: two texts that share a hash share an entry, so a
/// caller checks what it finds against what it looked for.
pub(crate) struct HashCache<V> {
    shards: Box<[Mutex<FastMap<u64, V>>]>,
    per_shard: usize,
}

impl<V> HashCache<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        HashCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(FastMap::default()))
                .collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    fn shard(&self, text: &str) -> (u64, MutexGuard<'_, FastMap<u64, V>>) {
        let hash = text_hash(text);
        let i = ((hash >> 32) % SHARDS as u64) as usize;
        // Plain maps, consistent after any panic: recover from poisoning.
        (
            hash,
            self.shards[i].lock().unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// What `f` makes of the entry for `text` (or for a text with the same hash).
    pub(crate) fn get<R>(&self, text: &str, f: impl FnOnce(&V) -> Option<R>) -> Option<R> {
        if self.per_shard == 0 {
            return None;
        }
        let (hash, shard) = self.shard(text);
        shard.get(&hash).and_then(f)
    }

    /// Keeps `value` for `text`. Returns the value it replaced or pushed out, for the
    /// caller to drop after the shard's lock.
    pub(crate) fn put(&self, text: &str, value: V) -> Option<V> {
        if self.per_shard == 0 {
            return None;
        }
        let (hash, mut shard) = self.shard(text);
        insert_bounded(&mut shard, self.per_shard, hash, value)
    }
}

/// Inserts into a cache shard's map of at most `cap` entries: when it is full and `key`
/// is new, an arbitrary entry goes first. Returns the value replaced or pushed out.
pub(crate) fn insert_bounded<K: std::hash::Hash + Eq + Clone, V>(
    map: &mut FastMap<K, V>,
    cap: usize,
    key: K,
    value: V,
) -> Option<V> {
    let mut out = None;
    if map.len() >= cap && !map.contains_key(&key) {
        let victim = map.keys().next().cloned()?;
        out = map.remove(&victim);
    }
    map.insert(key, value).or(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_hashes_tell_apart_every_identity_of_a_million_subscribers_and_spread_over_the_shards() {
        // The benchmark's population: IMPUs differing only in a few digits, and IMPIs.
        let mut seen = std::collections::HashSet::new();
        let mut shards = [0usize; SHARDS];
        for i in 0..1_000_000u64 {
            let msisdn = format!("+9901{i:010}");
            for id in [
                format!("sip:{msisdn}@ims.mnc001.mcc001.3gppnetwork.org"),
                format!("tel:{msisdn}"),
                format!("00101{i:010}@ims.sic001.mnc001.mcc001.3gppnetwork.org"),
            ] {
                let h = text_hash(&id);
                assert!(
                    seen.insert(h),
                    "{id} shares its hash {h:#x} with another identity"
                );
                if i < 10_000 {
                    shards[((h >> 32) % SHARDS as u64) as usize] += 1;
                }
            }
        }
        // 30,000 identities over 64 shards: about 469 each.
        assert!(
            shards.iter().all(|&n| (300..650).contains(&n)),
            "{shards:?}"
        );
        // Length counts: a prefix of zeros is not the same text.
        assert_ne!(text_hash("a"), text_hash("a\0"));
        assert_ne!(text_hash(""), text_hash("\0"));
    }

    #[test]
    fn a_cache_keeps_at_most_its_capacity_and_hands_back_what_it_replaces() {
        let cache = HashCache::new(SHARDS); // one entry per shard
        assert_eq!(cache.put("tel:+1", 1), None);
        assert_eq!(cache.get("tel:+1", |v| Some(*v)), Some(1));
        assert_eq!(cache.put("tel:+1", 2), Some(1), "replaced");
        let mut pushed_out = 0;
        for i in 0..1000 {
            pushed_out += usize::from(cache.put(&format!("tel:+2{i}"), 3).is_some());
        }
        let kept = (0..1000)
            .filter(|i| cache.get(&format!("tel:+2{i}"), |v| Some(*v)).is_some())
            .count();
        assert!(kept <= SHARDS, "{kept} kept");
        assert!(pushed_out >= 1000 - SHARDS, "{pushed_out} pushed out");
        assert_eq!(HashCache::<u8>::new(0).put("tel:+1", 1), None);
        assert_eq!(HashCache::<u8>::new(0).get("tel:+1", |v| Some(*v)), None);
    }
}

//! The in-memory tier: least-recently-used audio bounded by bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One synthesised sentence, shared by every call that speaks it.
pub type Audio = Arc<[i16]>;

struct Entry {
    audio: Audio,
    used: u64,
}

/// Audio by key, evicting the least recently used once `capacity` bytes are held.
pub struct MemoryTier {
    capacity: usize,
    held: usize,
    clock: u64,
    entries: HashMap<Arc<str>, Entry>,
    /// Last use → key, oldest first.
    recency: BTreeMap<u64, Arc<str>>,
}

impl MemoryTier {
    pub fn new(capacity_bytes: usize) -> Self {
        MemoryTier {
            capacity: capacity_bytes,
            held: 0,
            clock: 0,
            entries: HashMap::new(),
            recency: BTreeMap::new(),
        }
    }

    pub fn get(&mut self, key: &str) -> Option<Audio> {
        self.clock += 1;
        let entry = self.entries.get_mut(key)?;
        let (old, now) = (entry.used, self.clock);
        entry.used = now;
        if let Some(k) = self.recency.remove(&old) {
            self.recency.insert(now, k);
        }
        Some(entry.audio.clone())
    }

    /// Keeps `audio` unless it alone exceeds the capacity; evicts the oldest to make room.
    pub fn insert(&mut self, key: Arc<str>, audio: Audio) {
        let size = bytes(&audio);
        if size > self.capacity {
            return;
        }
        self.remove(&key);
        while self.held + size > self.capacity {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.held -= bytes(&e.audio);
            }
        }
        self.clock += 1;
        self.held += size;
        self.recency.insert(self.clock, key.clone());
        self.entries.insert(
            key,
            Entry {
                audio,
                used: self.clock,
            },
        );
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.recency.remove(&e.used);
            self.held -= bytes(&e.audio);
        }
    }
}

fn bytes(audio: &[i16]) -> usize {
    std::mem::size_of_val(audio)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(len: usize) -> Audio {
        vec![1i16; len].into()
    }

    #[test]
    fn evicts_least_recently_used_to_stay_within_capacity() {
        let mut tier = MemoryTier::new(300);
        tier.insert("a".into(), audio(50));
        tier.insert("b".into(), audio(50));
        tier.insert("c".into(), audio(50));
        assert!(tier.get("a").is_some(), "a is now the most recent");
        tier.insert("d".into(), audio(50));
        assert!(tier.get("b").is_none(), "b was the least recently used");
        assert!(tier.get("a").is_some());
        assert!(tier.get("c").is_some());
        assert!(tier.get("d").is_some());
        assert_eq!(tier.held, 300);
    }

    #[test]
    fn audio_larger_than_the_cache_is_not_kept_and_evicts_nothing() {
        let mut tier = MemoryTier::new(100);
        tier.insert("small".into(), audio(10));
        tier.insert("huge".into(), audio(1000));
        assert!(tier.get("huge").is_none());
        assert!(tier.get("small").is_some());
    }

    #[test]
    fn replacing_a_key_counts_its_bytes_once() {
        let mut tier = MemoryTier::new(1000);
        tier.insert("a".into(), audio(100));
        tier.insert("a".into(), audio(200));
        assert_eq!(tier.held, 400);
        assert_eq!(tier.get("a").unwrap().len(), 200);
    }
}

//! Verified API keys remembered by secret hash for `KEY_CACHE_TTL`, so most requests
//! authenticate without a database round trip.
//!
//! Revocation: a key revoked through this process's store is forgotten at once. One revoked by
//! another process (`boltcall keys revoke`, another node on PostgreSQL) is refused at most
//! `KEY_CACHE_TTL` after the revocation commits, because an entry is only trusted for that long
//! after the lookup that verified it *started*. Time is passed in, so tests drive it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ApiKey;

/// How long a verified key is trusted without asking the database again: the bound on how late
/// another process's revocation takes effect.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Entries beyond this many trigger a sweep of the expired ones on insert.
const SWEEP_ABOVE: usize = 1024;

/// SHA-256 of a key's secret.
pub(crate) type SecretHash = [u8; 32];

struct Entry {
    key: ApiKey,
    verified_at: Instant,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<SecretHash, Entry>,
    /// Bumped by every in-process revocation, so a lookup that raced one is not cached.
    generation: u64,
}

pub(crate) struct KeyCache {
    entries: Mutex<Entries>,
    ttl: Duration,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            entries: Mutex::default(),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key verified less than the TTL before `now`, if any.
    pub fn get(&self, hash: &SecretHash, now: Instant) -> Option<ApiKey> {
        let entries = self.lock();
        let entry = entries.by_hash.get(hash)?;
        (now.saturating_duration_since(entry.verified_at) < self.ttl).then(|| entry.key.clone())
    }

    /// Read before a lookup and handed back to `insert`.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Remembers `key`, verified by a lookup that started at `verified_at` after `generation()`
    /// returned `generation`; dropped when a revocation happened since.
    pub fn insert(&self, hash: SecretHash, key: ApiKey, verified_at: Instant, generation: u64) {
        let mut entries = self.lock();
        if entries.generation != generation {
            return;
        }
        if entries.by_hash.len() >= SWEEP_ABOVE {
            let ttl = self.ttl;
            entries
                .by_hash
                .retain(|_, e| verified_at.saturating_duration_since(e.verified_at) < ttl);
        }
        entries.by_hash.insert(hash, Entry { key, verified_at });
    }

    /// Forgets key `key_id` (revoked by this process).
    pub fn forget(&self, key_id: &str) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.by_hash.retain(|_, e| e.key.id != key_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Plan;

    fn key(id: &str) -> ApiKey {
        ApiKey {
            id: id.into(),
            workspace_id: "ws_1".into(),
            workspace_name: "acme".into(),
            live: true,
            plan: Plan::Pro,
            hint: "sk_live_…abcd".into(),
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            revoked_at: None,
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = KeyCache::new(KEY_CACHE_TTL);
        let t0 = Instant::now();
        cache.insert([1; 32], key("key_a"), t0, cache.generation());
        let just_before = t0 + KEY_CACHE_TTL - Duration::from_millis(1);
        assert_eq!(
            cache.get(&[1; 32], just_before).map(|k| k.id),
            Some("key_a".into())
        );
        assert!(cache.get(&[1; 32], t0 + KEY_CACHE_TTL).is_none());
        assert!(cache.get(&[2; 32], t0).is_none());
    }

    #[test]
    fn forgetting_a_key_drops_it_and_any_racing_lookup() {
        let cache = KeyCache::new(KEY_CACHE_TTL);
        let t0 = Instant::now();
        cache.insert([1; 32], key("key_a"), t0, cache.generation());
        cache.insert([2; 32], key("key_b"), t0, cache.generation());
        let racing = cache.generation();
        cache.forget("key_a");
        assert!(cache.get(&[1; 32], t0).is_none());
        assert!(cache.get(&[2; 32], t0).is_some());
        // A lookup that started before the revocation must not re-cache the key.
        cache.insert([1; 32], key("key_a"), t0, racing);
        assert!(cache.get(&[1; 32], t0).is_none());
    }

    #[test]
    fn a_full_cache_sweeps_expired_entries() {
        let cache = KeyCache::new(KEY_CACHE_TTL);
        let t0 = Instant::now();
        for i in 0..SWEEP_ABOVE {
            let mut hash = [0; 32];
            hash[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(hash, key("key_old"), t0, cache.generation());
        }
        cache.insert(
            [0xff; 32],
            key("key_new"),
            t0 + KEY_CACHE_TTL,
            cache.generation(),
        );
        assert_eq!(cache.lock().by_hash.len(), 1);
    }
}

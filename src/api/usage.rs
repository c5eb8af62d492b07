//! Counts API calls per key per UTC day in memory and flushes them to the store in batches, so
//! counting never puts a write on every request's path. The free plan's daily quota is checked
//! against the stored count plus what is not flushed yet.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{ApiKey, Store, StoreError};

struct KeyDay {
    day: String,
    /// Calls today, stored and pending.
    today: i64,
    pending: i64,
    workspace_id: String,
    live: bool,
}

/// Pending counts of one key for one day, ready to write.
struct Batch {
    key_id: String,
    workspace_id: String,
    live: bool,
    day: String,
    calls: i64,
}

#[derive(Default)]
pub struct UsageCounter {
    keys: Mutex<HashMap<String, KeyDay>>,
    /// Counts of a previous day left when a key rolled over to a new day.
    rolled: Mutex<Vec<Batch>>,
}

/// Whether a call was counted or the daily quota refused it.
pub enum Counted {
    Yes,
    OverDailyQuota,
}

impl UsageCounter {
    /// Counts one call by `key` on `day`, unless `daily_quota` is set and already used up.
    pub async fn count(
        &self,
        store: &Store,
        key: &ApiKey,
        day: &str,
        daily_quota: Option<u64>,
    ) -> Result<Counted, StoreError> {
        if !self.is_loaded(&key.id, day) {
            let stored = store.api_calls_on(&key.id, day).await?;
            self.load(key, day, stored);
        }
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = keys.get_mut(&key.id) else {
            return Ok(Counted::Yes);
        };
        if let Some(quota) = daily_quota
            && entry.today >= i64::try_from(quota).unwrap_or(i64::MAX)
        {
            return Ok(Counted::OverDailyQuota);
        }
        entry.today += 1;
        entry.pending += 1;
        Ok(Counted::Yes)
    }

    fn is_loaded(&self, key_id: &str, day: &str) -> bool {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(key_id).is_some_and(|e| e.day == day)
    }

    fn load(&self, key: &ApiKey, day: &str, stored: i64) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = KeyDay {
            day: day.to_string(),
            today: stored,
            pending: 0,
            workspace_id: key.workspace_id.clone(),
            live: key.live,
        };
        match keys.get_mut(&key.id) {
            Some(entry) if entry.day == day => {}
            Some(entry) => {
                let old = std::mem::replace(entry, fresh);
                if old.pending > 0 {
                    self.rolled
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Batch {
                            key_id: key.id.clone(),
                            workspace_id: old.workspace_id,
                            live: old.live,
                            day: old.day,
                            calls: old.pending,
                        });
                }
            }
            None => {
                keys.insert(key.id.clone(), fresh);
            }
        }
    }

    /// Writes every pending count to the store. Counts whose write fails are kept for the next
    /// flush.
    pub async fn flush(&self, store: &Store) -> Result<(), StoreError> {
        let mut batches =
            std::mem::take(&mut *self.rolled.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            for (key_id, entry) in keys.iter_mut().filter(|(_, e)| e.pending > 0) {
                batches.push(Batch {
                    key_id: key_id.clone(),
                    workspace_id: entry.workspace_id.clone(),
                    live: entry.live,
                    day: entry.day.clone(),
                    calls: std::mem::take(&mut entry.pending),
                });
            }
        }
        let mut first_error = None;
        for (i, b) in batches.iter().enumerate() {
            if let Err(e) = store
                .add_api_calls(&b.key_id, &b.workspace_id, b.live, &b.day, b.calls)
                .await
            {
                let mut rolled = self.rolled.lock().unwrap_or_else(|e| e.into_inner());
                rolled.extend(batches[i..].iter().map(|b| Batch {
                    key_id: b.key_id.clone(),
                    workspace_id: b.workspace_id.clone(),
                    live: b.live,
                    day: b.day.clone(),
                    calls: b.calls,
                }));
                first_error = Some(e);
                break;
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

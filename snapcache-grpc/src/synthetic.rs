//! The synthetic syncer of the fan-out demo, as a cache source: a resync of every key (type
//! `New`), then churn (updates, 10% deletions of present keys, re-creations), then `InSync`;
//! optionally more churn at a fixed rate afterwards.
//!
//! Keys are `key0000000`, `key0000001`, ... (10 bytes); a value is the number of the update
//! that set it, in decimal. The syncer keeps its own model of the state, so a test or a demo
//! can check every client against it.
//!
//! ```
//! use snapcache_grpc::synthetic::{Synthetic, SyntheticConfig};
//! let cache = snapcache::Cache::new(snapcache::Config::default());
//! let mut syncer = Synthetic::new(SyntheticConfig { keys: 100, updates: 1000, ..Default::default() });
//! syncer.run(&cache, |_| {})?;
//! cache.shutdown();
//! assert_eq!(cache.current_breadcrumb().kvs.len(), syncer.model().len());
//! # Ok::<(), snapcache::Closed<Vec<snapcache::Update>>>(())
//! ```

use std::collections::HashMap;

use bytes::Bytes;
use snapcache::{Cache, Closed, SyncStatus, Update, UpdateType};

/// What the synthetic syncer sends.
#[derive(Clone, Copy, Debug)]
pub struct SyntheticConfig {
    /// Distinct keys (default 100,000).
    pub keys: usize,
    /// Updates before `InSync`, the initial resync of every key included (default 1,000,000).
    pub updates: usize,
    /// Seed of the choice of keys (default 1).
    pub seed: u64,
    /// Updates per `on_updates` call (default 100).
    pub block: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            keys: 100_000,
            updates: 1_000_000,
            seed: 1,
            block: 100,
        }
    }
}

/// The syncer and its model of the state.
#[derive(Debug)]
pub struct Synthetic {
    config: SyntheticConfig,
    rng: u64,
    /// Per key, the number of the update that set it plus one; 0 = absent.
    model: Vec<u64>,
    sent: u64,
}

/// The key with index `i`.
pub fn key(i: usize) -> Bytes {
    Bytes::from(format!("key{i:07}"))
}

/// The index of a synthetic key (cheap: for clients that keep a compact state).
pub fn key_index(key: &[u8]) -> Option<usize> {
    let digits = key.strip_prefix(b"key")?;
    parse_decimal(digits).map(|n| n as usize)
}

/// The update number a synthetic value holds.
pub fn parse_value(value: &[u8]) -> Option<u64> {
    parse_decimal(value)
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

impl Synthetic {
    /// A syncer that has sent nothing yet. `keys` and `block` of 0 count as 1.
    pub fn new(mut config: SyntheticConfig) -> Self {
        config.keys = config.keys.max(1);
        config.block = config.block.max(1);
        Synthetic {
            config,
            rng: config.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1,
            model: vec![0; config.keys],
            sent: 0,
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The next update (the resync of every key first, then churn), applied to the model.
    fn next_update(&mut self) -> Update {
        let n = self.sent as usize;
        self.sent += 1;
        let keys = self.config.keys;
        let k = if n < keys {
            n
        } else {
            (self.next_random() % keys as u64) as usize
        };
        let present = self.model[k] != 0;
        if n >= keys && present && self.next_random().is_multiple_of(10) {
            self.model[k] = 0;
            return Update::delete(key(k));
        }
        self.model[k] = n as u64 + 1;
        let t = if present {
            UpdateType::Updated
        } else {
            UpdateType::New
        };
        Update::set(key(k), Bytes::from((n + 1).to_string()), t)
            .with_revision(Bytes::from(n.to_string()))
    }

    /// Sends `count` more updates in blocks; `progress` is called with each block's size.
    pub fn send(
        &mut self,
        cache: &Cache,
        count: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<(), Closed<Vec<Update>>> {
        let mut left = count;
        while left > 0 {
            let n = left.min(self.config.block);
            let block: Vec<Update> = (0..n).map(|_| self.next_update()).collect();
            cache.on_updates(block)?;
            progress(n);
            left -= n;
        }
        Ok(())
    }

    /// The whole run: `ResyncInProgress`, the configured updates, `InSync`.
    pub fn run(
        &mut self,
        cache: &Cache,
        progress: impl FnMut(usize),
    ) -> Result<(), Closed<Vec<Update>>> {
        let status = |s| cache.on_status_updated(s).map_err(|_| Closed(Vec::new()));
        status(SyncStatus::ResyncInProgress)?;
        self.send(cache, self.config.updates, progress)?;
        status(SyncStatus::InSync)
    }

    /// The state the syncer has sent: key to value.
    pub fn model(&self) -> HashMap<Bytes, Bytes> {
        self.model
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0)
            .map(|(k, v)| (key(k), Bytes::from((v).to_string())))
            .collect()
    }

    /// Updates sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_parse_back() {
        assert_eq!(key_index(&key(42)), Some(42));
        assert_eq!(key_index(b"key"), None);
        assert_eq!(key_index(b"kez0000001"), None);
        assert_eq!(parse_value(b"123"), Some(123));
        assert_eq!(parse_value(b"12a"), None);
    }
}

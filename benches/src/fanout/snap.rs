//! snapcache: the producer feeds a `Cache`; each follower takes the current breadcrumb
//! (a snapshot) up front and follows the deltas until the `InSync` breadcrumb.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use snapcache::{Breadcrumb, Bytes, Cache, CancelToken, Config, SyncStatus, Update, UpdateType};

use super::{
    lag_us, roles, wait_ready, Env, Followers, Measured, Outcome, Role, Scenario, Workload,
};

fn word(x: u32) -> Bytes {
    Bytes::copy_from_slice(&x.to_le_bytes())
}

fn decode(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4-byte key or value"))
}

/// The follower's input: its first breadcrumb and the key space.
type Input = (Arc<Breadcrumb>, usize);

fn load(crumb: &Breadcrumb, keys: usize) -> Vec<u32> {
    let mut state = vec![0; keys];
    for (k, u) in &crumb.kvs {
        state[decode(k) as usize] = decode(u.value.as_deref().expect("stored values"));
    }
    state
}

fn apply(state: &mut [u32], crumb: &Breadcrumb) {
    for d in &crumb.deltas {
        state[decode(&d.key) as usize] = d.value.as_deref().map_or(0, decode);
    }
}

fn blocking((mut crumb, keys): Input, r: Role) -> Outcome {
    r.wait();
    let token = CancelToken::new();
    let mut state = load(&crumb, keys);
    let mut lags = Vec::new();
    while crumb.sync_status != SyncStatus::InSync {
        crumb = crumb
            .next(&token)
            .expect("the cache outlives its followers");
        apply(&mut state, &crumb);
        if r.record {
            lags.push(lag_us(crumb.timestamp));
        }
    }
    Outcome { state, lags }
}

async fn task((mut crumb, keys): Input, r: Role) -> Outcome {
    r.started();
    let mut state = load(&crumb, keys);
    let mut lags = Vec::new();
    while crumb.sync_status != SyncStatus::InSync {
        crumb = crumb
            .next_async()
            .await
            .expect("the cache outlives its followers");
        apply(&mut state, &crumb);
        if r.record {
            lags.push(lag_us(crumb.timestamp));
        }
    }
    Outcome { state, lags }
}

/// Runs the snapcache variant, with `max_batch_size` = the batch size but at least the
/// default (100): with smaller batches the cache merges updates that arrive while it is busy
/// into one breadcrumb, as the watch variant merges versions.
pub fn run(w: &Workload, sc: Scenario, env: &Env) -> Measured {
    let batch = w.batches.first().map_or(1, |b| b.len());
    let cache = Cache::new(Config {
        max_batch_size: batch.max(snapcache::DEFAULT_MAX_BATCH_SIZE),
        ..Default::default()
    });
    cache
        .on_status_updated(SyncStatus::ResyncInProgress)
        .expect("open");
    let mut seen = vec![false; w.keys];
    let gate = Arc::new(AtomicBool::new(false));
    let roles = roles(sc.followers, sc.stalled.then_some(&gate));
    let (ready, n) = (roles[0].ready.clone(), roles.len());
    let inputs = roles
        .into_iter()
        .map(|r| ((cache.current_breadcrumb(), w.keys), r))
        .collect();
    let followers = Followers::spawn(env.rt, inputs, blocking, task);

    wait_ready(&ready, n);
    super::settle();
    let base = (env.live_bytes)();
    let start = Instant::now();
    for b in &w.batches {
        // Building the cache's updates (`Bytes` keys and values) is part of the producer's
        // cost: the API takes them owned.
        let updates = b
            .iter()
            .map(|&(k, v)| {
                if v == 0 {
                    seen[k as usize] = false;
                    Update::delete(word(k))
                } else if std::mem::replace(&mut seen[k as usize], true) {
                    Update::set(word(k), word(v), UpdateType::Updated)
                } else {
                    Update::set(word(k), word(v), UpdateType::New)
                }
            })
            .collect();
        cache.on_updates(updates).expect("open");
    }
    cache.on_status_updated(SyncStatus::InSync).expect("open");
    let token = CancelToken::new();
    let mut crumb = cache.current_breadcrumb();
    while crumb.sync_status != SyncStatus::InSync {
        crumb = crumb.next(&token).expect("open");
    }
    let producer = start.elapsed();
    let heap_growth = (env.live_bytes)() - base;
    drop(crumb);
    gate.store(true, Ordering::Release);
    let outcomes = followers.join(env.rt);
    cache.shutdown();
    Measured {
        producer,
        heap_growth,
        outcomes,
    }
}

//! `tokio::sync::watch<Arc<imbl::HashMap>>`: the producer publishes a new persistent version
//! per batch (an O(1) clone plus the batch's updates); a follower sees only the latest version
//! and diffs it against the one it saw before (imbl's `HashMap` has no structural diff, so the
//! diff walks both versions: O(keys) per version seen).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use super::{
    lag_us, roles, wait_ready, Env, Followers, Measured, Outcome, Role, Scenario, Workload,
};

type Map = imbl::HashMap<u32, u32>;

/// One published version.
struct Version {
    seq: u64,
    at: SystemTime,
    map: Map,
}

struct Input {
    rx: watch::Receiver<Arc<Version>>,
    last: u64,
    keys: usize,
}

/// Brings `state` (which mirrors `old`) to `new`.
fn diff(state: &mut [u32], old: &Map, new: &Map) {
    for (k, v) in new {
        if old.get(k) != Some(v) {
            state[*k as usize] = *v;
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            state[*k as usize] = 0;
        }
    }
}

async fn task(i: Input, r: Role) -> Outcome {
    r.started();
    follow(i, r).await
}

async fn follow(mut i: Input, r: Role) -> Outcome {
    let (mut state, mut lags) = (vec![0; i.keys], Vec::new());
    let mut seen = i.rx.borrow_and_update().clone();
    diff(&mut state, &Map::new(), &seen.map);
    if r.record && seen.seq > 0 {
        lags.push(lag_us(seen.at));
    }
    while seen.seq < i.last {
        i.rx.changed().await.expect("the producer keeps the sender");
        let v = i.rx.borrow_and_update().clone();
        diff(&mut state, &seen.map, &v.map);
        if r.record {
            lags.push(lag_us(v.at));
        }
        seen = v;
    }
    Outcome { state, lags }
}

fn blocking(i: Input, r: Role) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    r.wait();
    rt.block_on(follow(i, r))
}

/// Runs the watch variant.
pub fn run(w: &Workload, sc: Scenario, env: &Env) -> Measured {
    let (tx, _) = watch::channel(Arc::new(Version {
        seq: 0,
        at: SystemTime::now(),
        map: Map::new(),
    }));
    let gate = Arc::new(AtomicBool::new(false));
    let last = w.batches.len() as u64;
    let roles = roles(sc.followers, sc.stalled.then_some(&gate));
    let (ready, n) = (roles[0].ready.clone(), roles.len());
    let inputs = roles
        .into_iter()
        .map(|r| {
            let i = Input {
                rx: tx.subscribe(),
                last,
                keys: w.keys,
            };
            (i, r)
        })
        .collect();
    let followers = Followers::spawn(env.rt, inputs, blocking, task);

    wait_ready(&ready, n);
    let base = (env.live_bytes)();
    let start = Instant::now();
    let mut map = Map::new();
    for (n, b) in w.batches.iter().enumerate() {
        for &(k, v) in b.iter() {
            if v == 0 {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
        tx.send_replace(Arc::new(Version {
            seq: n as u64 + 1,
            at: SystemTime::now(),
            map: map.clone(),
        }));
    }
    let producer = start.elapsed();
    let heap_growth = (env.live_bytes)() - base;
    gate.store(true, Ordering::Release);
    let outcomes = followers.join(env.rt);
    drop(tx);
    Measured {
        producer,
        heap_growth,
        outcomes,
    }
}

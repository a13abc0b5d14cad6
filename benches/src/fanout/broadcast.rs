//! `tokio::sync::broadcast` (capacity [`CAPACITY`] batches): the producer applies each batch
//! to a shared source of truth and sends it under the same lock; a follower that gets
//! `Lagged` copies the source of truth (state and sequence number) and skips the messages it
//! already covers. A resync counts as one lag sample: the age of the state it copied.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use tokio::sync::broadcast::{self, error::RecvError};

use super::{
    apply, lag_us, roles, wait_ready, Env, Followers, Measured, Outcome, Role, Scenario, Workload,
};

/// Messages the channel holds before the slowest follower lags.
pub const CAPACITY: usize = 1024;

/// One published batch.
#[derive(Clone)]
struct Msg {
    seq: u64,
    at: SystemTime,
    batch: Arc<Vec<(u32, u32)>>,
}

/// The state after batch `seq` (1-based; 0 = nothing yet), published at `at`.
struct Truth {
    seq: u64,
    at: SystemTime,
    state: Vec<u32>,
}

struct Input {
    rx: broadcast::Receiver<Msg>,
    truth: Arc<RwLock<Truth>>,
    last: u64,
    keys: usize,
}

/// Handles one receive result: applies a batch, or resyncs from the source of truth.
fn step(
    res: Result<Msg, RecvError>,
    i: &Input,
    seq: &mut u64,
    state: &mut Vec<u32>,
    lags: &mut Vec<u32>,
    r: &Role,
) {
    match res {
        Ok(m) if m.seq <= *seq => {}
        Ok(m) => {
            assert_eq!(m.seq, *seq + 1, "a gap without Lagged");
            apply(state, &m.batch);
            *seq = m.seq;
            if r.record {
                lags.push(lag_us(m.at));
            }
        }
        Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => {
            let t = i.truth.read().unwrap();
            *seq = t.seq;
            state.clone_from(&t.state);
            // How stale the follower was when it caught up.
            if r.record && t.seq > 0 {
                lags.push(lag_us(t.at));
            }
        }
    }
}

fn blocking(mut i: Input, r: Role) -> Outcome {
    r.wait();
    let (mut seq, mut state, mut lags) = (0, vec![0; i.keys], Vec::new());
    while seq < i.last {
        let res = i.rx.blocking_recv();
        step(res, &i, &mut seq, &mut state, &mut lags, &r);
    }
    Outcome { state, lags }
}

async fn task(mut i: Input, r: Role) -> Outcome {
    r.started();
    let (mut seq, mut state, mut lags) = (0, vec![0; i.keys], Vec::new());
    while seq < i.last {
        let res = i.rx.recv().await;
        step(res, &i, &mut seq, &mut state, &mut lags, &r);
    }
    Outcome { state, lags }
}

/// Runs the broadcast variant.
pub fn run(w: &Workload, sc: Scenario, env: &Env) -> Measured {
    let (tx, _) = broadcast::channel::<Msg>(CAPACITY);
    let truth = Arc::new(RwLock::new(Truth {
        seq: 0,
        at: SystemTime::now(),
        state: vec![0; w.keys],
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
                truth: truth.clone(),
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
    for (n, b) in w.batches.iter().enumerate() {
        let mut t = truth.write().unwrap();
        apply(&mut t.state, b);
        t.seq = n as u64 + 1;
        t.at = SystemTime::now();
        // No receivers left is fine: every follower may already be done.
        let _ = tx.send(Msg {
            seq: t.seq,
            at: t.at,
            batch: Arc::new(b.to_vec()),
        });
    }
    let producer = start.elapsed();
    let heap_growth = (env.live_bytes)() - base;
    gate.store(true, Ordering::Release);
    let outcomes = followers.join(env.rt);
    Measured {
        producer,
        heap_growth,
        outcomes,
    }
}

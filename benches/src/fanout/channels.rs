//! One unbounded `crossbeam-channel` per follower: the producer sends every batch (an `Arc`)
//! to each follower in turn. Receivers are blocking, so beyond [`MAX_THREADS`] followers each
//! thread serves several followers round-robin (every follower gets every message, so the
//! blocking receives cannot deadlock). A stalled follower's queue grows without bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::{apply, lag_us, roles, wait_ready, Env, Measured, Outcome, Role, MAX_THREADS};
use super::{Scenario, Workload};

type Msg = Arc<(SystemTime, Arc<Vec<(u32, u32)>>)>;

/// Runs the crossbeam-channel variant.
pub fn run(w: &Workload, sc: Scenario, env: &Env) -> Measured {
    let gate = Arc::new(AtomicBool::new(false));
    let roles = roles(sc.followers, sc.stalled.then_some(&gate));
    let (ready, n) = (roles[0].ready.clone(), roles.len());
    let mut txs: Vec<Sender<Msg>> = Vec::with_capacity(roles.len());
    let n_groups = sc.followers.clamp(1, MAX_THREADS);
    let mut groups: Vec<Vec<(Receiver<Msg>, Role)>> = (0..n_groups).map(|_| Vec::new()).collect();
    for (i, r) in roles.into_iter().enumerate() {
        let (tx, rx) = unbounded();
        txs.push(tx);
        if r.gate.is_some() {
            // The stalled follower gets a thread of its own.
            groups.push(vec![(rx, r)]);
        } else {
            groups[i % n_groups].push((rx, r));
        }
    }
    let (last, keys) = (w.batches.len(), w.keys);
    let threads = groups
        .into_iter()
        .map(|g| {
            std::thread::spawn(move || {
                g.iter().for_each(|(_, r)| r.wait());
                let mut states: Vec<(Vec<u32>, Vec<u32>)> =
                    g.iter().map(|_| (vec![0; keys], Vec::new())).collect();
                for _ in 0..last {
                    for ((rx, r), (state, lags)) in g.iter().zip(&mut states) {
                        let m = rx.recv().expect("the producer sends every batch");
                        apply(state, &m.1);
                        if r.record {
                            lags.push(lag_us(m.0));
                        }
                    }
                }
                states
                    .into_iter()
                    .map(|(state, lags)| Outcome { state, lags })
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>();

    wait_ready(&ready, n);
    let base = (env.live_bytes)();
    let start = Instant::now();
    for b in &w.batches {
        let m: Msg = Arc::new((SystemTime::now(), Arc::new(b.to_vec())));
        for tx in &txs {
            tx.send(m.clone()).expect("followers wait for every batch");
        }
    }
    let producer = start.elapsed();
    let heap_growth = (env.live_bytes)() - base;
    gate.store(true, Ordering::Release);
    let outcomes = threads
        .into_iter()
        .flat_map(|t| t.join().expect("follower thread panicked"))
        .collect();
    Measured {
        producer,
        heap_growth,
        outcomes,
    }
}

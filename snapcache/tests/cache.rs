//! The reference cache tests' scenarios, the breadcrumb invariants and property tests, through
//! the public API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck};
use snapcache::{
    Breadcrumb, Cache, CancelToken, Cancelled, Closed, Config, Health, HealthReporter, SyncStatus,
    Update, UpdateType,
};

const fn size(full: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        full
    }
}

/// What a follower has seen: key -> the update that set it.
type State = HashMap<Bytes, Update>;

fn snapshot_state(b: &Breadcrumb) -> State {
    b.kvs.iter().map(|(k, u)| (k.clone(), u.clone())).collect()
}

fn apply(state: &mut State, deltas: &[Update]) {
    for d in deltas {
        if d.value.is_some() {
            state.insert(
                d.key.clone(),
                Update {
                    update_type: UpdateType::New,
                    ..d.clone()
                },
            );
        } else {
            state.remove(&d.key);
        }
    }
}

/// Same contents, ignoring revisions (a skipped no-op keeps the older revision).
fn same(a: &State, b: &State) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, u)| {
            b.get(k)
                .is_some_and(|v| v.value == u.value && v.ttl == u.ttl && v.key == u.key)
        })
}

/// Walks from `start` to the end of a finished chain, checking every invariant of the
/// breadcrumbs on the way; returns the last one.
fn check_chain(start: Arc<Breadcrumb>, max_batch_size: usize) -> Arc<Breadcrumb> {
    let mut crumb = start;
    let mut state = snapshot_state(&crumb);
    loop {
        assert!(
            crumb
                .kvs
                .iter()
                .all(|(_, u)| u.update_type == UpdateType::New),
            "a snapshot entry is not New"
        );
        let Some(next) = crumb.try_next() else {
            return crumb;
        };
        assert_eq!(
            next.sequence_number,
            crumb.sequence_number + 1,
            "sequence numbers not consecutive"
        );
        assert!(
            next.deltas.len() <= max_batch_size,
            "breadcrumb larger than max_batch_size"
        );
        assert!(
            !next.deltas.is_empty() || next.sync_status != crumb.sync_status,
            "a breadcrumb that changes nothing"
        );
        apply(&mut state, &next.deltas);
        assert!(
            same(&state, &snapshot_state(&next)),
            "snapshot {} != previous + deltas",
            next.sequence_number
        );
        crumb = next;
    }
}

#[derive(Default)]
struct Reports(Mutex<Vec<(String, Health)>>);

impl HealthReporter for Reports {
    fn report(&self, name: &str, health: Health) {
        self.0.lock().unwrap().push((name.to_string(), health));
    }
}

#[test]
fn health_is_reported_eagerly_and_per_status_and_ready_only_when_in_sync() {
    let reports = Arc::new(Reports::default());
    let cache = Cache::new(Config {
        health: Some(reports.clone()),
        health_name: "felix".into(),
        ..Default::default()
    });
    assert_eq!(
        reports.0.lock().unwrap().len(),
        1,
        "eager report at construction"
    );
    for s in [
        SyncStatus::WaitForDatastore,
        SyncStatus::ResyncInProgress,
        SyncStatus::InSync,
        SyncStatus::ResyncInProgress,
    ] {
        cache.on_status_updated(s).unwrap();
    }
    cache.shutdown();
    let r = reports.0.lock().unwrap();
    let ready: Vec<bool> = r.iter().map(|(_, h)| h.ready).collect();
    assert_eq!(
        ready,
        [false, false, false, true, false],
        "4 statuses -> 5 reports, ready iff InSync"
    );
    assert!(r.iter().all(|(n, h)| n == "felix" && h.live));
}

#[test]
fn config_defaults() {
    let c = Config {
        max_batch_size: 0,
        wake_up_interval: Duration::ZERO,
        health_name: String::new(),
        health: None,
    };
    let c = c.normalized();
    assert_eq!(c.max_batch_size, 100);
    assert_eq!(c.wake_up_interval, Duration::from_secs(1));
    assert_eq!(c.health_name, "cache");
    let d = Config::default();
    assert_eq!(
        (d.max_batch_size, d.wake_up_interval, d.health_name.as_str()),
        (100, Duration::from_secs(1), "cache")
    );
}

/// "As large as possible" is a legitimate setting (one breadcrumb per input, followers never
/// woken without news), not a reason to overflow, pre-allocate the whole queue or panic.
#[test]
fn extreme_config_values_work() {
    let cache = Cache::new(Config {
        max_batch_size: usize::MAX,
        wake_up_interval: Duration::MAX,
        ..Config::default()
    });
    let updates: Vec<Update> = (0..250)
        .map(|i| Update::set(format!("k{i}"), "v", UpdateType::New))
        .collect();
    cache.on_updates(updates).unwrap();
    cache.on_status_updated(SyncStatus::InSync).unwrap();
    cache.shutdown();
    let b = cache.current_breadcrumb();
    assert_eq!(b.kvs.len(), 250);
    assert_eq!(b.sync_status, SyncStatus::InSync);
}

#[test]
fn initial_breadcrumb() {
    let cache = Cache::new(Config::default());
    let b = cache.current_breadcrumb();
    assert_eq!(b.sequence_number, 0);
    assert!(b.kvs.is_empty() && b.deltas.is_empty());
    assert_eq!(b.sync_status, SyncStatus::WaitForDatastore);
    assert!(b.try_next().is_none());
}

/// How a test follower behaves.
#[derive(Clone, Copy)]
struct Pace {
    start_delay: Duration,
    per_step: Duration,
}

/// Follows from the current breadcrumb until InSync, checking that every key is first seen as
/// New, and returns the final state and breadcrumb.
fn follow(cache: &Cache, pace: Pace) -> (State, Arc<Breadcrumb>) {
    thread::sleep(pace.start_delay);
    let token = CancelToken::new();
    let mut crumb = cache.current_breadcrumb();
    let mut state = snapshot_state(&crumb);
    while crumb.sync_status != SyncStatus::InSync {
        crumb = crumb.next(&token).expect("not cancelled");
        for d in &crumb.deltas {
            if !state.contains_key(&d.key) && d.value.is_some() {
                assert_eq!(
                    d.update_type,
                    UpdateType::New,
                    "key {:?} first seen as {:?}",
                    d.key,
                    d.update_type
                );
            }
        }
        apply(&mut state, &crumb.deltas);
        if !pace.per_step.is_zero() && crumb.sequence_number % 50 == 0 {
            thread::sleep(pace.per_step);
        }
    }
    (state, crumb)
}

fn typha_updates(n: usize) -> Vec<Update> {
    (0..n)
        .map(|i| {
            let t = if i < 100 {
                UpdateType::New
            } else {
                UpdateType::Updated
            };
            Update::set(format!("config{}", i % 100), format!("config{}", i % 55), t)
                .with_revision(format!("{i}"))
        })
        .collect()
}

/// Typha's follower test: 12,345 updates of keys `config<i mod 100>` with values
/// `config<i mod 55>`, sent in blocks of 1, 100 and 101 with max_batch_size 10, then InSync;
/// followers of different speeds all end with the exact final state at InSync, and never see a
/// key first with a type other than New.
#[test]
fn followers_of_different_speeds_end_in_the_same_state() {
    let n = size(12_345, 60);
    let paces = [
        Pace {
            start_delay: Duration::ZERO,
            per_step: Duration::ZERO,
        },
        Pace {
            start_delay: Duration::from_millis(20),
            per_step: Duration::from_millis(2),
        },
        Pace {
            start_delay: Duration::from_millis(5),
            per_step: Duration::from_millis(5),
        },
        Pace {
            start_delay: Duration::from_millis(1),
            per_step: Duration::from_millis(1),
        },
    ];
    for block in [1, 100, 101] {
        let cache = Cache::new(Config {
            max_batch_size: 10,
            ..Default::default()
        });
        let updates = typha_updates(n);
        let results = thread::scope(|s| {
            let followers: Vec<_> = paces
                .iter()
                .map(|&p| {
                    let cache = &cache;
                    s.spawn(move || follow(cache, p))
                })
                .collect();
            for chunk in updates.chunks(block) {
                cache.on_updates(chunk.to_vec()).unwrap();
            }
            cache.on_status_updated(SyncStatus::InSync).unwrap();
            followers
                .into_iter()
                .map(|f| f.join().unwrap())
                .collect::<Vec<_>>()
        });
        let mut expect = State::new();
        apply(&mut expect, &updates);
        let last = cache.current_breadcrumb();
        assert!(same(&snapshot_state(&last), &expect));
        for (state, crumb) in results {
            assert!(
                same(&state, &expect),
                "block {block}: a follower ended in another state"
            );
            assert_eq!(crumb.sync_status, SyncStatus::InSync);
        }
        check_chain(cache.current_breadcrumb(), 10);
    }
}

/// The same with async followers on a tokio runtime (no thread per follower).
#[test]
fn async_followers_end_in_the_same_state() {
    let n = size(5_000, 50);
    let cache = Cache::new(Config {
        max_batch_size: 10,
        ..Default::default()
    });
    let updates = typha_updates(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..size(200, 4))
        .map(|i| {
            let cache = cache.clone();
            rt.spawn(async move {
                if i % 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(i as u64 % 20)).await;
                }
                let mut crumb = cache.current_breadcrumb();
                let mut state = snapshot_state(&crumb);
                while crumb.sync_status != SyncStatus::InSync {
                    crumb = crumb.next_async().await.expect("cache open");
                    apply(&mut state, &crumb.deltas);
                }
                state
            })
        })
        .collect();
    for chunk in updates.chunks(101) {
        cache.on_updates(chunk.to_vec()).unwrap();
    }
    cache.on_status_updated(SyncStatus::InSync).unwrap();
    let mut expect = State::new();
    apply(&mut expect, &updates);
    rt.block_on(async {
        for t in tasks {
            assert!(same(&t.await.unwrap(), &expect));
        }
    });
    assert!(cache.stats().next_blocking > 0 || cache.stats().next_non_blocking > 0);
}

/// A follower blocked on the empty initial breadcrumb returns promptly when cancelled, even
/// with a wake-up interval of an hour.
#[test]
fn cancelling_a_blocked_follower_wakes_it() {
    let cache = Cache::new(Config {
        wake_up_interval: Duration::from_secs(3600),
        ..Default::default()
    });
    let token = CancelToken::new();
    let (tx, rx) = mpsc::channel();
    let blocked = {
        let (cache, token) = (cache.clone(), token.clone());
        thread::spawn(move || {
            tx.send(()).unwrap();
            let r = cache.current_breadcrumb().next(&token);
            r.map(|b| b.sequence_number)
        })
    };
    rx.recv().unwrap();
    thread::sleep(Duration::from_millis(20)); // let it block (not required for correctness)
    token.cancel();
    // A watchdog, not a speed test: without the wake it would sleep for an hour.
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || done_tx.send(blocked.join().unwrap()).unwrap());
    assert_eq!(
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("cancel did not wake the follower"),
        Err(Cancelled)
    );
    // A successor that exists is returned even with a cancelled token.
    cache
        .on_updates(vec![Update::set("k", "v", UpdateType::New)])
        .unwrap();
    cache.shutdown();
    assert_eq!(cache.current_breadcrumb().sequence_number, 1);
    let first_after = Cache::new(Config::default());
    drop(first_after);
}

/// A value that counts when its last `Bytes` handle is gone.
struct Counted(Arc<AtomicUsize>);

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        b"old"
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Flushes this thread's epoch bag (which also collects what expired) until `done` holds;
/// panics after 30 s (a watchdog, not a speed test: without the behaviour tested it never
/// happens).
fn collect_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        crossbeam_epoch::pin().flush();
        thread::sleep(Duration::from_millis(1));
    }
}

/// Threads that sleep do not keep the memory of the breadcrumbs they left. A follower drops the
/// last reference to breadcrumb 1 and blocks for breadcrumb 3; the processing thread, having
/// replaced the only value breadcrumb 1 still held, waits for input. Both must hand their
/// deferred frees over before sleeping, so that another thread's epoch collection frees that
/// value while both still sleep (otherwise it stays queued in a sleeping thread's epoch bag).
#[test]
fn sleeping_threads_do_not_keep_the_breadcrumbs_they_left() {
    let freed = Arc::new(AtomicUsize::new(0));
    let cache = Cache::new(Config {
        max_batch_size: 1,
        wake_up_interval: Duration::from_secs(3600),
        ..Default::default()
    });
    let old = Bytes::from_owner(Counted(freed.clone()));
    cache
        .on_updates(vec![Update::set("k", old, UpdateType::New)])
        .unwrap();
    let token = CancelToken::new();
    let mut first = cache.current_breadcrumb();
    while first.sequence_number < 1 {
        first = first.next(&token).unwrap();
    }
    let (moved_on, moved_on_rx) = mpsc::channel();
    let follower = {
        let token = token.clone();
        thread::spawn(move || {
            let mut crumb = first;
            collect_until("the cache kept breadcrumb 1", || {
                Arc::strong_count(&crumb) == 1
            });
            // Breadcrumb 2 exists: breadcrumb 1 is dropped here, by us, its last holder.
            crumb = crumb.next(&token).unwrap();
            assert_eq!(crumb.sequence_number, 2);
            moved_on.send(()).unwrap();
            crumb.next(&token).map(|b| b.sequence_number)
        })
    };
    cache
        .on_updates(vec![Update::set("k", "new", UpdateType::New)])
        .unwrap();
    moved_on_rx.recv().unwrap();
    collect_until(
        "the value only breadcrumb 1 held was not freed while its last holders slept",
        || freed.load(Ordering::SeqCst) == 1,
    );
    assert!(!follower.is_finished(), "the follower was not asleep");
    token.cancel();
    assert_eq!(follower.join().unwrap(), Err(Cancelled));
}

#[test]
fn next_returns_existing_successor_even_when_cancelled() {
    let cache = Cache::new(Config::default());
    let first = cache.current_breadcrumb();
    cache
        .on_updates(vec![Update::set("k", "v", UpdateType::New)])
        .unwrap();
    cache.shutdown();
    let token = CancelToken::new();
    token.cancel();
    assert_eq!(first.next(&token).unwrap().sequence_number, 1);
}

/// Typha's server test: 10,000 keys, then half deleted; a late joiner's snapshot holds exactly
/// the other half.
#[test]
fn late_joiner_after_mass_deletion() {
    let n = size(10_000, 50);
    let cache = Cache::new(Config::default());
    let early = cache.current_breadcrumb();
    cache
        .on_updates(
            (0..n)
                .map(|i| Update::set(format!("k{i}"), format!("v{i}"), UpdateType::New))
                .collect(),
        )
        .unwrap();
    cache
        .on_updates(
            (0..n)
                .filter(|i| i % 2 == 0)
                .map(|i| Update::delete(format!("k{i}")))
                .collect(),
        )
        .unwrap();
    cache.on_status_updated(SyncStatus::InSync).unwrap();
    cache.shutdown();
    let late = cache.current_breadcrumb();
    let got = snapshot_state(&late);
    assert_eq!(got.len(), n / 2);
    assert!((0..n)
        .filter(|i| i % 2 == 1)
        .all(|i| got.contains_key(&Bytes::from(format!("k{i}")))));
    // And a follower that started early reaches the same state through the deltas.
    let end = check_chain(early, 100);
    assert_eq!(end.sequence_number, late.sequence_number);
}

#[test]
fn input_after_shutdown_is_refused_and_handed_back() {
    let cache = Cache::new(Config::default());
    let other = cache.clone();
    cache.shutdown();
    let u = vec![Update::set("k", "v", UpdateType::New)];
    assert_eq!(other.on_updates(u.clone()), Err(Closed(u)));
    assert_eq!(
        other.on_status_updated(SyncStatus::InSync),
        Err(Closed(SyncStatus::InSync))
    );
    assert_eq!(
        other.on_updates(Vec::new()),
        Ok(()),
        "an empty list is ignored, even when closed"
    );
    // A follower blocked at the end learns that nothing more will come.
    assert_eq!(
        cache
            .current_breadcrumb()
            .next(&CancelToken::new())
            .unwrap_err(),
        Cancelled
    );
}

struct Panicky(AtomicUsize);
impl HealthReporter for Panicky {
    fn report(&self, _: &str, _: Health) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("reporter failure");
    }
}

#[test]
fn a_panicking_health_reporter_does_not_stop_the_cache() {
    let reporter = Arc::new(Panicky(AtomicUsize::new(0)));
    let cache = Cache::new(Config {
        health: Some(reporter.clone()),
        ..Default::default()
    });
    cache.on_status_updated(SyncStatus::InSync).unwrap();
    cache
        .on_updates(vec![Update::set("k", "v", UpdateType::New)])
        .unwrap();
    cache.shutdown();
    assert_eq!(reporter.0.load(Ordering::SeqCst), 2);
    assert_eq!(cache.current_breadcrumb().kvs.len(), 1);
}

#[test]
fn empty_and_large_keys_and_values() {
    let big = Bytes::from(vec![7u8; size(4 << 20, 1 << 10)]);
    let cache = Cache::new(Config::default());
    cache
        .on_updates(vec![
            Update::set("", "", UpdateType::New),
            Update::set("big", big.clone(), UpdateType::New),
        ])
        .unwrap();
    cache.shutdown();
    let b = cache.current_breadcrumb();
    assert_eq!(
        b.kvs.get(&Bytes::new()).unwrap().value.as_deref(),
        Some(&[][..])
    );
    assert_eq!(
        b.kvs.get(&Bytes::from("big")).unwrap().value.as_ref(),
        Some(&big)
    );
}

#[test]
fn stats_count_what_happened() {
    let cache = Cache::new(Config {
        max_batch_size: 10,
        ..Default::default()
    });
    let first = cache.current_breadcrumb();
    cache
        .on_updates(
            (0..20)
                .map(|i| Update::set(format!("k{i}"), "v", UpdateType::New))
                .collect(),
        )
        .unwrap();
    cache
        .on_updates(vec![Update::set("k0", "v", UpdateType::Updated)])
        .unwrap(); // a no-op
    cache.on_updates(vec![Update::delete("k1")]).unwrap();
    cache.shutdown();
    let s = cache.stats();
    assert_eq!(s.updates_total, 22);
    assert_eq!(s.updates_skipped, 1);
    assert_eq!(s.keys, 19);
    assert_eq!(
        s.latest_sequence_number,
        cache.current_breadcrumb().sequence_number
    );
    assert_eq!(s.breadcrumbs_published, s.latest_sequence_number);
    assert_eq!(s.last_breadcrumb_size, 1);
    let token = CancelToken::new();
    let mut b = first;
    while let Ok(n) = b.next(&token) {
        b = n;
    }
    let s2 = cache.stats();
    assert_eq!(s2.next_non_blocking, s.latest_sequence_number);
}

/// Random update/status streams: whatever the batching, the chain satisfies every invariant,
/// and a follower starting from any breadcrumb ends equal to the newest snapshot.
#[derive(Clone, Debug)]
enum Input {
    Updates(Vec<(u8, Option<u8>, bool)>),
    Status(u8),
}

impl Arbitrary for Input {
    fn arbitrary(g: &mut Gen) -> Self {
        if u8::arbitrary(g) % 5 == 0 {
            Input::Status(u8::arbitrary(g) % 3)
        } else {
            let n = usize::arbitrary(g) % 30;
            Input::Updates(
                (0..n)
                    .map(|_| {
                        (
                            u8::arbitrary(g) % 16,
                            Option::<u8>::arbitrary(g).map(|v| v % 3),
                            bool::arbitrary(g),
                        )
                    })
                    .collect(),
            )
        }
    }
}

fn status(s: u8) -> SyncStatus {
    [
        SyncStatus::WaitForDatastore,
        SyncStatus::ResyncInProgress,
        SyncStatus::InSync,
    ][s as usize % 3]
}

fn stream_property(inputs: Vec<Input>, max: u8) -> bool {
    let max = max as usize % 7 + 1;
    let cache = Cache::new(Config {
        max_batch_size: max,
        ..Default::default()
    });
    let first = cache.current_breadcrumb();
    let mut model = State::new();
    let mut last_status = SyncStatus::WaitForDatastore;
    let mut midway = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        match input {
            Input::Updates(us) => {
                let us: Vec<Update> = us
                    .into_iter()
                    .map(|(k, v, updated)| match v {
                        None => Update::delete(vec![k]),
                        Some(v) => Update::set(
                            vec![k],
                            vec![v],
                            if updated {
                                UpdateType::Updated
                            } else {
                                UpdateType::New
                            },
                        ),
                    })
                    .collect();
                apply(&mut model, &us);
                cache.on_updates(us).unwrap();
            }
            Input::Status(s) => {
                last_status = status(s);
                cache.on_status_updated(last_status).unwrap();
            }
        }
        if i % 3 == 0 {
            midway.push(cache.current_breadcrumb());
        }
    }
    cache.shutdown();
    let last = cache.current_breadcrumb();
    assert!(
        same(&snapshot_state(&last), &model),
        "final snapshot != model"
    );
    assert_eq!(last.sync_status, last_status);
    assert_eq!(
        check_chain(first, max).sequence_number,
        last.sequence_number
    );
    for b in midway {
        check_chain(b, max);
    }
    true
}

#[test]
fn random_streams_keep_the_invariants() {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(size(100, 3) as u64);
    // Under Miri, short streams too (quickcheck's default size of 100 takes many minutes).
    let size = if cfg!(miri) { 12 } else { 100 };
    QuickCheck::new()
        .tests(tests)
        .rng(Gen::new(size))
        .quickcheck(stream_property as fn(Vec<Input>, u8) -> bool);
}

//! The fan-out harness: 1 producer, N followers, batches of B updates, for snapcache and the
//! channel-based alternatives (see `benches::fanout`). Prints a table and writes JSON for the
//! report tool. Every run asserts that each follower ends holding the producer's final state.
//!
//! ```sh
//! cargo run --release -p benches --bin fanout            # quick: 1/100/1,000 followers
//! cargo run --release -p benches --bin fanout -- --full  # adds 10,000 followers, more updates
//! ```
//! Flags: `--full`, `--json PATH` [target/fanout/fanout.json], `--keys N`, `--updates N`,
//! `--followers 1,100`, `--batches 1,100,1000`, `--variants snapcache,broadcast,...`.
//! Defaults: 1,000 keys and 50,000 updates (10,000 keys and 200,000 updates with `--full`).
//! A run is shortened (fewer updates) when followers x batches would exceed the delivery cap
//! (20M quick, 200M full); the JSON records the updates actually sent.
//!
//! Then a memory run per variant: 1 follower plus 1 stalled one (that reads nothing until the
//! producer is done), batches of 100: heap growth during production, with and without the
//! stalled follower, counted by a wrapping global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use benches::fanout::{run, Env, Record, Scenario, Workload, VARIANTS};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; the counter has no effect on allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> isize {
    LIVE.load(Relaxed)
}

struct Opts {
    json: String,
    keys: usize,
    updates: usize,
    cap: usize,
    followers: Vec<usize>,
    batches: Vec<usize>,
    variants: Vec<String>,
}

fn list(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(|x| x.trim().parse().map_err(|_| format!("not a number: {x}")))
        .collect()
}

fn parse() -> Result<Opts, String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--full");
    args.retain(|a| a != "--full");
    let mut o = Opts {
        json: "target/fanout/fanout.json".into(),
        keys: if full { 10_000 } else { 1_000 },
        updates: if full { 200_000 } else { 50_000 },
        cap: if full { 200_000_000 } else { 20_000_000 },
        followers: if full {
            vec![1, 100, 1_000, 10_000]
        } else {
            vec![1, 100, 1_000]
        },
        batches: vec![1, 100, 1_000],
        variants: VARIANTS.iter().map(|s| s.to_string()).collect(),
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--json" => o.json = v.clone(),
            "--keys" => o.keys = num()?.max(1),
            "--updates" => o.updates = num()?.max(1),
            "--followers" => o.followers = list(&v)?,
            "--batches" => o.batches = list(&v)?,
            "--variants" => o.variants = v.split(',').map(|s| s.trim().to_string()).collect(),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if let Some(bad) = o.variants.iter().find(|v| !VARIANTS.contains(&v.as_str())) {
        return Err(format!(
            "unknown variant {bad} (known: {})",
            VARIANTS.join(",")
        ));
    }
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let env = Env {
        rt: &rt,
        live_bytes,
    };
    let mut records: Vec<Record> = Vec::new();
    println!(
        "fan-out: {} keys, up to {} updates, 1 producer\n",
        o.keys, o.updates
    );
    println!("| variant            | followers | batch | updates | producer ns/update | lag p50 µs | lag p99 µs | samples |");
    println!("|--------------------|----------:|------:|--------:|-------------------:|-----------:|-----------:|--------:|");
    for &b in &o.batches {
        for &f in &o.followers {
            let batches = (o.updates / b.max(1)).min(o.cap / f.max(1)).max(1);
            let w = Workload::new(o.keys, batches * b.max(1), b, 1);
            for v in &o.variants {
                let sc = Scenario {
                    followers: f,
                    stalled: false,
                };
                let r = run(v, &w, sc, &env);
                println!(
                    "| {:18} | {:9} | {:5} | {:7} | {:18.1} | {:10.0} | {:10.0} | {:7} |",
                    r.variant,
                    r.followers,
                    r.batch,
                    r.updates,
                    r.producer_ns_per_update,
                    r.lag_p50_us,
                    r.lag_p99_us,
                    r.lag_samples
                );
                records.push(r);
            }
        }
    }

    println!("\nmemory: heap growth during production, 1 follower (+ 1 stalled), batches of 100\n");
    println!("| variant            | updates | no stall KiB | one stalled KiB |");
    println!("|--------------------|--------:|-------------:|----------------:|");
    let w = Workload::new(o.keys, o.updates, 100, 2);
    for v in &o.variants {
        let mut kib = [0.0; 2];
        for (i, stalled) in [false, true].into_iter().enumerate() {
            let sc = Scenario {
                followers: 1,
                stalled,
            };
            let mut r = run(v, &w, sc, &env);
            r.memory_run = true;
            kib[i] = r.heap_growth_bytes as f64 / 1024.0;
            records.push(r);
        }
        println!(
            "| {:18} | {:7} | {:12.0} | {:15.0} |",
            v,
            w.updates(),
            kib[0],
            kib[1]
        );
    }

    if let Some(dir) = std::path::Path::new(&o.json).parent() {
        std::fs::create_dir_all(dir).expect("create the JSON's directory");
    }
    let json = serde_json::to_string_pretty(&records).expect("serialize");
    std::fs::write(&o.json, json).expect("write the JSON");
    println!("\nverified: every follower of every run ended with the producer's final state");
    println!("wrote {}", o.json);
}

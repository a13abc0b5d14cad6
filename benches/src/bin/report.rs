//! The report generator: reads criterion's results (`<criterion>/**/new/benchmark.json` and
//! `estimates.json`) and the fan-out JSON, and writes `report.md` plus SVG plots into the
//! output directory. Benchmarks that were not run are skipped.
//!
//! ```sh
//! cargo run --release -p benches --bin report -- \
//!     [--criterion target/criterion] [--fanout target/fanout/fanout.json] \
//!     [--memory target/memory.md] [--out benches/report]
//! ```
//! Times are criterion's median estimates. The memory table (the output of the `memory`
//! binary, saved by `benches/run.sh`) is copied in as it is, if present.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use benches::fanout::Record;
use plotters::prelude::*;

/// One criterion benchmark.
#[derive(Clone, Debug)]
struct Bench {
    group: String,
    function: String,
    value: Option<String>,
    elements: Option<f64>,
    median_ns: f64,
}

fn find(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "new") {
                if p.join("benchmark.json").is_file() && p.join("estimates.json").is_file() {
                    out.push(p);
                }
            } else if p.file_name().is_none_or(|n| n != "report") {
                find(&p, out);
            }
        }
    }
}

fn load(dir: &Path) -> Vec<Bench> {
    let mut dirs = Vec::new();
    find(dir, &mut dirs);
    let mut v = Vec::new();
    for d in dirs {
        let read = |f: &str| -> Option<serde_json::Value> {
            serde_json::from_str(&std::fs::read_to_string(d.join(f)).ok()?).ok()
        };
        let (Some(b), Some(e)) = (read("benchmark.json"), read("estimates.json")) else {
            eprintln!("skipping unreadable {}", d.display());
            continue;
        };
        let Some(median_ns) = e["median"]["point_estimate"].as_f64() else {
            continue;
        };
        let mut function = b["function_id"].as_str().unwrap_or_default().to_string();
        let mut value = b["value_str"].as_str().map(str::to_string);
        // Older IDs put the parameter into the function name (`ctrie/1000`).
        if value.is_none() {
            if let Some((f, n)) = function.rsplit_once('/') {
                if n.parse::<u64>().is_ok() {
                    (function, value) = (f.to_string(), Some(n.to_string()));
                }
            }
        }
        v.push(Bench {
            group: b["group_id"].as_str().unwrap_or_default().to_string(),
            function,
            value,
            elements: b["throughput"]["Elements"].as_f64(),
            median_ns,
        });
    }
    v.sort_by(|a, b| (&a.group, &a.function, &a.value).cmp(&(&b.group, &b.function, &b.value)));
    v
}

/// Splits `map/hasher/alloc` into the map and the `hasher/alloc` configuration.
fn split(function: &str) -> (String, String) {
    match function.split_once('/') {
        Some((m, c)) => (m.to_string(), c.to_string()),
        None => (function.to_string(), String::new()),
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// A markdown table: `rows` x `cols`, cells from `cell`.
fn table(
    md: &mut String,
    corner: &str,
    rows: &[String],
    cols: &[String],
    cell: impl Fn(&str, &str) -> Option<String>,
) {
    let _ = writeln!(md, "| {corner} | {} |", cols.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(cols.len()));
    for r in rows {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| cell(r, c).unwrap_or_else(|| "–".into()))
            .collect();
        let _ = writeln!(md, "| {r} | {} |", cells.join(" | "));
    }
    md.push('\n');
}

/// One line per series; axes in log10 where asked (labels show the real values).
fn plot(
    path: &Path,
    title: &str,
    (xl, yl): (&str, &str),
    series: &BTreeMap<String, Vec<(f64, f64)>>,
    (log_x, log_y): (bool, bool),
) -> Result<(), Box<dyn std::error::Error>> {
    let tr = |v: f64, log: bool| if log { v.max(1e-12).log10() } else { v };
    let pts: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(n, p)| {
            let mut p: Vec<(f64, f64)> = p
                .iter()
                .map(|&(x, y)| (tr(x, log_x), tr(y, log_y)))
                .collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            (n.clone(), p)
        })
        .collect();
    if pts.is_empty() {
        return Ok(());
    }
    let all = pts.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    // Log axes span whole decades (labelled at each power of ten); linear ones get a margin.
    let range = |a: f64, b: f64, log: bool, from_zero: bool| -> (f64, f64, usize) {
        if log {
            let (lo, hi) = (a.floor(), b.ceil().max(a.floor() + 1.0));
            (lo, hi, (hi - lo) as usize + 1)
        } else {
            let pad = if (b - a).abs() < 1e-9 {
                0.5
            } else {
                (b - a) * 0.05
            };
            let lo = if from_zero { 0f64.min(a) } else { a - pad };
            (lo, b + pad, ((b - a).round() as usize + 1).clamp(2, 10))
        }
    };
    let (x0, x1, nx) = range(x0, x1, log_x, false);
    let (y0, y1, ny) = range(y0, y1, log_y, true);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let real = |v: f64, log: bool| if log { 10f64.powf(v) } else { v };
    let label = |v: f64| {
        if v.abs() >= 1e4 || (v != 0.0 && v.abs() < 1e-2) {
            format!("{v:.1e}")
        } else {
            format!("{v:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        }
    };
    chart
        .configure_mesh()
        .x_desc(xl)
        .y_desc(yl)
        .x_labels(nx)
        .y_labels(if log_y { ny } else { 10 })
        .x_label_formatter(&|v| label(real(*v, log_x)))
        .y_label_formatter(&|v| label(real(*v, log_y)))
        .draw()?;
    for (i, (name, p)) in pts.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(p.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart.draw_series(p.into_iter().map(|q| Circle::new(q, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

fn uniq<T: Ord + Clone>(it: impl IntoIterator<Item = T>) -> Vec<T> {
    it.into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Single-thread groups: ns per operation, maps x configurations.
fn single(md: &mut String, bs: &[Bench], group: &str) {
    let g: Vec<&Bench> = bs.iter().filter(|b| b.group == group).collect();
    if g.is_empty() {
        return;
    }
    let _ = writeln!(md, "### `{group}` (ns per operation)\n");
    let rows = uniq(g.iter().map(|b| split(&b.function).0));
    let cols = uniq(g.iter().map(|b| split(&b.function).1));
    table(md, "map", &rows, &cols, |r, c| {
        g.iter()
            .find(|b| split(&b.function) == (r.to_string(), c.to_string()))
            .map(|b| format!("{:.1}", b.median_ns / b.elements.unwrap_or(1.0)))
    });
}

/// Thread-scaling groups: Mops/s per map, configuration and thread count; one plot per
/// configuration.
fn scaling(md: &mut String, bs: &[Bench], group: &str, out: &Path) {
    let g: Vec<&Bench> = bs.iter().filter(|b| b.group == group).collect();
    if g.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### `{group}` (million operations per second, all threads)\n"
    );
    let mops = |b: &Bench| b.elements.unwrap_or(1.0) / b.median_ns * 1e3;
    let rows = uniq(g.iter().map(|b| split(&b.function).0));
    let configs = uniq(g.iter().map(|b| split(&b.function).1));
    let threads = uniq(g.iter().filter_map(|b| b.value.clone()));
    let cols: Vec<String> = configs
        .iter()
        .flat_map(|c| threads.iter().map(move |t| format!("{c} {t}t")))
        .collect();
    table(md, "map", &rows, &cols, |r, col| {
        let (c, t) = col.rsplit_once(' ')?;
        let t = t.trim_end_matches('t');
        g.iter()
            .find(|b| {
                split(&b.function) == (r.to_string(), c.to_string())
                    && b.value.as_deref() == Some(t)
            })
            .map(|b| format!("{:.2}", mops(b)))
    });
    for c in &configs {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for b in g.iter().filter(|b| &split(&b.function).1 == c) {
            if let Some(t) = b.value.as_deref().and_then(|t| t.parse::<f64>().ok()) {
                series
                    .entry(split(&b.function).0)
                    .or_default()
                    .push((t, mops(b)));
            }
        }
        let file = format!("{group}_{}.svg", c.replace('/', "_"));
        match plot(
            &out.join(&file),
            &format!("{group} ({c})"),
            ("threads", "Mops/s"),
            &series,
            (false, false),
        ) {
            Ok(()) => {
                let _ = writeln!(md, "![{group} {c}]({file})\n");
            }
            Err(e) => eprintln!("plot {file}: {e}"),
        }
    }
}

/// Groups with a size or count parameter: time per map and value, and a log-log plot.
fn by_value(md: &mut String, bs: &[Bench], group: &str, what: &str, out: &Path) {
    let g: Vec<&Bench> = bs.iter().filter(|b| b.group == group).collect();
    if g.is_empty() {
        return;
    }
    let _ = writeln!(md, "### `{group}` ({what})\n");
    let rows = uniq(g.iter().map(|b| b.function.clone()));
    let mut vals = uniq(g.iter().filter_map(|b| b.value.clone()));
    vals.sort_by_key(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    table(md, "map", &rows, &vals, |r, v| {
        g.iter()
            .find(|b| b.function == r && b.value.as_deref() == Some(v))
            .map(|b| fmt_ns(b.median_ns))
    });
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for b in &g {
        if let Some(n) = b.value.as_deref().and_then(|v| v.parse::<f64>().ok()) {
            series
                .entry(b.function.clone())
                .or_default()
                .push((n, b.median_ns));
        }
    }
    let file = format!("{group}.svg");
    match plot(
        &out.join(&file),
        &format!("{group} (log-log)"),
        ("keys", "ns"),
        &series,
        (true, true),
    ) {
        Ok(()) => {
            let _ = writeln!(md, "![{group}]({file})\n");
        }
        Err(e) => eprintln!("plot {file}: {e}"),
    }
}

/// Groups without a parameter: one time per map (and per entry where there is a throughput).
fn flat(md: &mut String, bs: &[Bench], group: &str, what: &str) {
    let g: Vec<&Bench> = bs.iter().filter(|b| b.group == group).collect();
    if g.is_empty() {
        return;
    }
    let _ = writeln!(md, "### `{group}` ({what})\n");
    let rows = uniq(g.iter().map(|b| b.function.clone()));
    let cols = vec!["time".to_string(), "ns per entry".to_string()];
    table(md, "map", &rows, &cols, |r, c| {
        let b = g.iter().find(|b| b.function == r)?;
        match c {
            "time" => Some(fmt_ns(b.median_ns)),
            _ => b.elements.map(|e| format!("{:.2}", b.median_ns / e)),
        }
    });
}

fn fanout(md: &mut String, path: &Path, out: &Path) {
    let Some(rs) = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str::<Vec<Record>>(&s).ok())
    else {
        eprintln!("no fan-out results at {} (skipped)", path.display());
        return;
    };
    let _ = writeln!(md, "## Fan-out\n\nEvery follower of every run ended with the producer's final state (asserted).\n");
    let _ = writeln!(
        md,
        "| variant | followers | batch | updates | producer ns/update | lag p50 µs | lag p99 µs |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for r in rs.iter().filter(|r| !r.memory_run) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {:.0} | {:.0} |",
            r.variant,
            r.followers,
            r.batch,
            r.updates,
            r.producer_ns_per_update,
            r.lag_p50_us,
            r.lag_p99_us
        );
    }
    md.push('\n');
    let mem: Vec<&Record> = rs.iter().filter(|r| r.memory_run).collect();
    if !mem.is_empty() {
        let _ = writeln!(md, "### Heap growth during production, 1 follower, with and without one stalled follower\n");
        let _ = writeln!(
            md,
            "| variant | updates | stalled | KiB |\n|---|---:|---|---:|"
        );
        for r in mem {
            let kib = r.heap_growth_bytes as f64 / 1024.0;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {kib:.0} |",
                r.variant, r.updates, r.stalled
            );
        }
        md.push('\n');
    }
    let batches = uniq(rs.iter().filter(|r| !r.memory_run).map(|r| r.batch));
    for b in batches {
        for (metric, file, yl) in [
            ("producer", "producer", "ns/update"),
            ("p99", "lag_p99", "µs"),
        ] {
            let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            for r in rs.iter().filter(|r| !r.memory_run && r.batch == b) {
                let y = if metric == "producer" {
                    r.producer_ns_per_update
                } else {
                    r.lag_p99_us
                };
                if y.is_finite() && y > 0.0 {
                    series
                        .entry(r.variant.clone())
                        .or_default()
                        .push((r.followers as f64, y));
                }
            }
            let f = format!("fanout_{file}_batch{b}.svg");
            let title = format!("fan-out {metric}, batches of {b} (log-log)");
            match plot(
                &out.join(&f),
                &title,
                ("followers", yl),
                &series,
                (true, true),
            ) {
                Ok(()) => {
                    let _ = writeln!(md, "![{title}]({f})\n");
                }
                Err(e) => eprintln!("plot {f}: {e}"),
            }
        }
    }
}

fn main() {
    let mut criterion = PathBuf::from("target/criterion");
    let mut fan = PathBuf::from("target/fanout/fanout.json");
    let mut out = PathBuf::from("benches/report");
    let mut memory = PathBuf::from("target/memory.md");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| {
            eprintln!("{a} needs a value");
            std::process::exit(2)
        });
        match a.as_str() {
            "--criterion" => criterion = v.into(),
            "--fanout" => fan = v.into(),
            "--out" => out = v.into(),
            "--memory" => memory = v.into(),
            _ => {
                eprintln!("unknown flag {a}");
                std::process::exit(2)
            }
        }
    }
    std::fs::create_dir_all(&out).expect("create the output directory");
    let bs = load(&criterion);
    let mut md = String::from("# Benchmark report\n\nGenerated by `cargo run --release -p benches --bin report` from criterion's median estimates and the fan-out JSON; missing benchmarks are left out. Configurations read `hasher/allocator`.\n\n");
    if !bs.is_empty() {
        md.push_str("## Maps, single thread\n\n");
        for g in ["insert", "get_hit", "get_miss"] {
            single(&mut md, &bs, g);
        }
        md.push_str("## Maps, mixes\n\n");
        for g in [
            "mix_read_heavy",
            "mix_exchange",
            "mix_rapid_grow",
            "mix_90_5_5",
            "write_cost",
        ] {
            scaling(&mut md, &bs, g, &out);
        }
        md.push_str("## Snapshots\n\n");
        by_value(
            &mut md,
            &bs,
            "snapshot_cost",
            "time to take a snapshot while one writer runs, by keys",
            &out,
        );
        flat(
            &mut md,
            &bs,
            "iterate_while_writing",
            "one full iteration while one writer runs",
        );
        flat(&mut md, &bs, "len", "`len()`");
    } else {
        eprintln!(
            "no criterion results under {} (skipped)",
            criterion.display()
        );
    }
    match std::fs::read_to_string(&memory) {
        Ok(m) => {
            md.push_str("## Memory per entry (system allocator)\n\n");
            md.push_str(&m);
            md.push('\n');
        }
        Err(_) => eprintln!("no memory table at {} (skipped)", memory.display()),
    }
    fanout(&mut md, &fan, &out);
    let path = out.join("report.md");
    std::fs::write(&path, md).expect("write report.md");
    println!("wrote {}", path.display());
}

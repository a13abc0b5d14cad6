//! `read_only_snapshot()` while a writer runs, system allocator (see `benches::snapshot_loop`).

fn main() {
    benches::snapshot_loop::run(
        "system allocator",
        benches::snapshot_loop::keys_arg(),
        benches::snapshot_loop::rate_arg(),
    );
}

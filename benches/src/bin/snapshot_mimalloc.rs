//! `read_only_snapshot()` while a writer runs, mimalloc (see `benches::snapshot_loop`).

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    benches::snapshot_loop::run(
        "mimalloc",
        benches::snapshot_loop::keys_arg(),
        benches::snapshot_loop::rate_arg(),
    );
}

//! The snapshot workloads of issue 13 with mimalloc (see `benches::targets`).

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    benches::targets::main("mimalloc");
}

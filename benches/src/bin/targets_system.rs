//! The snapshot workloads of issue 13 with the system allocator (see `benches::targets`).

fn main() {
    benches::targets::main("system");
}

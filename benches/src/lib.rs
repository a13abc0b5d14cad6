//! Shared code of the benchmarks in `benches/`: a common interface over ctrie and the peer
//! maps ([`maps`]), key generation and operation mixes ([`workload`]), the criterion
//! benchmark bodies shared by the system-allocator and mimalloc binaries ([`suite`]), the
//! fan-out comparison ([`fanout`]) and a snapshot loop run under both allocators
//! ([`snapshot_loop`]).

pub mod fanout;
pub mod maps;
pub mod snapshot_loop;
pub mod suite;
pub mod targets;
pub mod whole;
pub mod workload;

pub use maps::{fill, Contrie, Ctrie, DashMap, Map, Ops, Papaya, Scc};
pub use workload::{keys, random_keys};

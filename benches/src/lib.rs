//! Shared code of the benchmarks in `benches/`: a common interface over ctrie and the peer
//! maps ([`maps`]), key generation and operation mixes ([`workload`]), the criterion
//! benchmark bodies shared by the system-allocator and mimalloc binaries ([`suite`]), and the
//! fan-out comparison ([`fanout`]).

pub mod fanout;
pub mod maps;
pub mod suite;
pub mod whole;
pub mod workload;

pub use maps::{fill, Contrie, Ctrie, DashMap, Map, Ops, Papaya, Scc};
pub use workload::{keys, random_keys};

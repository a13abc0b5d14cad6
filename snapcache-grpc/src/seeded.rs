//! Seeded bugs, for showing that the tests catch them (`snapcache-grpc/mutants.sh`).
//!
//! Built only with the `mutants` feature; then `SNAPCACHE_GRPC_MUTANT=<name>` switches one on.
//! Without the feature [`active`] is a constant `false` and the checks compile away.
//!
//! | name | the bug |
//! |---|---|
//! | `wait_for_slow` | the server waits for a client that cannot take a message, instead of cutting it off |
//! | `encode_per_client` | each client task encodes every breadcrumb's deltas itself |
//! | `snapshot_per_client` | every client gets its own snapshot encoding |
//! | `resume_skips` | a resume starts one breadcrumb late |
//! | `resume_any_instance` | a resume point from another cache instance is accepted |
//! | `forget_deletions` | the client forgets to delete, on a fresh snapshot, keys it no longer has |
//! | `no_keepalive` | the server sends no HTTP/2 pings (a black-holed client is never noticed) |
//! | `drain_at_once` | graceful shutdown ends every stream at once |
//! | `no_name_check` | mutual TLS without the client-name check |
//! | `no_connection_limit` | `max_connections` is ignored |

/// Whether the seeded bug `name` is switched on.
#[cfg(feature = "mutants")]
pub(crate) fn active(name: &str) -> bool {
    std::env::var("SNAPCACHE_GRPC_MUTANT").is_ok_and(|v| v == name)
}

/// Whether the seeded bug `name` is switched on: never, without the `mutants` feature.
#[cfg(not(feature = "mutants"))]
#[inline(always)]
pub(crate) fn active(_name: &str) -> bool {
    false
}

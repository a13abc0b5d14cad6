//! The server's counters: readable with [`ServerHandle::stats`](super::ServerHandle::stats)
//! (tests, the demo, benchmarks) and emitted under Typha's metric names through the `metrics`
//! facade (a Prometheus endpoint in the server binary).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// A copy of the server's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStatsSnapshot {
    /// Streams accepted past the handshake (`typha_connections_accepted`).
    pub connections_accepted: u64,
    /// Streams refused at the handshake (bad request, too many connections, shutting down, not
    /// authorised).
    pub connections_refused: u64,
    /// Streams the server ended: fell behind, write timeout, shutdown
    /// (`typha_connections_dropped`).
    pub connections_dropped: u64,
    /// Of which for falling behind.
    pub connections_fell_behind: u64,
    /// Streams open now (`typha_connections_active`).
    pub connections_active: u64,
    /// Of which past their snapshot (`typha_connections_streaming`).
    pub connections_streaming: u64,
    /// TCP (or TLS) connections open now.
    pub tcp_connections: u64,
    /// Clients found behind while still in their grace period (`typha_connections_grace_used`).
    pub grace_used: u64,
    /// Breadcrumb deltas encoded to wire bytes (once per breadcrumb, whatever the client count).
    pub delta_encodings: u64,
    /// Snapshot encodings started (`typha_snapshots_generated`).
    pub snapshots_generated: u64,
    /// Clients served an existing encoding (`typha_snapshots_reused`).
    pub snapshots_reused: u64,
    /// Snapshots sent to clients (generated or reused).
    pub snapshots_sent: u64,
    /// Compressed snapshot bytes encoded.
    pub snapshot_bytes_encoded: u64,
    /// Clients resumed with deltas only (no snapshot).
    pub resumes: u64,
    /// Clients that asked to resume but got a snapshot.
    pub resumes_refused: u64,
    /// Message bytes handed to the transport (before any gRPC compression).
    pub bytes_sent: u64,
    /// Of which snapshot chunks.
    pub snapshot_bytes_sent: u64,
    /// Deltas messages sent.
    pub delta_messages_sent: u64,
    /// Key/values sent in deltas messages.
    pub delta_kvs_sent: u64,
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        #[derive(Debug, Default)]
        pub(crate) struct ServerStats { $($name: AtomicU64,)* }
        impl ServerStats {
            pub(crate) fn snapshot(&self) -> ServerStatsSnapshot {
                // Relaxed: monitoring counters, ordered with nothing.
                ServerStatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    connections_accepted,
    connections_refused,
    connections_dropped,
    connections_fell_behind,
    connections_active,
    connections_streaming,
    tcp_connections,
    grace_used,
    delta_encodings,
    snapshots_generated,
    snapshots_reused,
    snapshots_sent,
    snapshot_bytes_encoded,
    resumes,
    resumes_refused,
    bytes_sent,
    snapshot_bytes_sent,
    delta_messages_sent,
    delta_kvs_sent,
);

fn add(c: &AtomicU64, n: u64) {
    // Relaxed: monitoring counters.
    c.fetch_add(n, Ordering::Relaxed);
}

fn sub(c: &AtomicU64, n: u64) {
    // Relaxed: monitoring counters.
    c.fetch_sub(n, Ordering::Relaxed);
}

// Metric names are Typha's where Typha has one; the rest are prefixed `snapcache_`.
impl ServerStats {
    pub(crate) fn count_accepted(&self) {
        add(&self.connections_accepted, 1);
        add(&self.connections_active, 1);
        counter!("typha_connections_accepted").increment(1);
        gauge!("typha_connections_active").increment(1.0);
    }

    pub(crate) fn count_closed(&self, streaming: bool) {
        sub(&self.connections_active, 1);
        gauge!("typha_connections_active").decrement(1.0);
        if streaming {
            self.count_streaming(false);
        }
    }

    pub(crate) fn count_streaming(&self, on: bool) {
        if on {
            add(&self.connections_streaming, 1);
            gauge!("typha_connections_streaming").increment(1.0);
        } else {
            sub(&self.connections_streaming, 1);
            gauge!("typha_connections_streaming").decrement(1.0);
        }
    }

    pub(crate) fn count_refused(&self, reason: &'static str) {
        add(&self.connections_refused, 1);
        counter!("snapcache_connections_refused", "reason" => reason).increment(1);
    }

    pub(crate) fn count_dropped(&self, reason: &'static str, fell_behind: bool) {
        add(&self.connections_dropped, 1);
        if fell_behind {
            add(&self.connections_fell_behind, 1);
        }
        counter!("typha_connections_dropped", "reason" => reason).increment(1);
    }

    pub(crate) fn count_tcp(&self, open: bool) {
        if open {
            add(&self.tcp_connections, 1);
        } else {
            sub(&self.tcp_connections, 1);
        }
    }

    pub(crate) fn count_grace_used(&self) {
        add(&self.grace_used, 1);
        counter!("typha_connections_grace_used").increment(1);
    }

    pub(crate) fn count_delta_encoding(&self) {
        add(&self.delta_encodings, 1);
        counter!("snapcache_delta_encodings").increment(1);
    }

    pub(crate) fn count_snapshot_generated(&self) {
        add(&self.snapshots_generated, 1);
        counter!("typha_snapshots_generated").increment(1);
    }

    pub(crate) fn count_snapshot_reused(&self) {
        add(&self.snapshots_reused, 1);
        counter!("typha_snapshots_reused").increment(1);
    }

    pub(crate) fn count_snapshot_bytes(&self, n: u64) {
        add(&self.snapshot_bytes_encoded, n);
        counter!("typha_snapshot_compressed_bytes").increment(n);
    }

    pub(crate) fn count_snapshot_sent(&self, took: Duration) {
        add(&self.snapshots_sent, 1);
        histogram!("typha_client_snapshot_send_secs").record(took.as_secs_f64());
    }

    pub(crate) fn count_resume(&self, resumed: bool) {
        if resumed {
            add(&self.resumes, 1);
            counter!("snapcache_resumes").increment(1);
        } else {
            add(&self.resumes_refused, 1);
            counter!("snapcache_resumes_refused").increment(1);
        }
    }

    pub(crate) fn count_sent(&self, bytes: usize, snapshot: bool) {
        add(&self.bytes_sent, bytes as u64);
        if snapshot {
            add(&self.snapshot_bytes_sent, bytes as u64);
        }
    }

    /// A deltas message of `kvs` key/values whose last breadcrumb was published `lag` ago.
    pub(crate) fn count_deltas(&self, kvs: u64, lag: Duration) {
        add(&self.delta_messages_sent, 1);
        add(&self.delta_kvs_sent, kvs);
        histogram!("typha_kvs_per_msg").record(kvs as f64);
        histogram!("typha_client_latency_secs").record(lag.as_secs_f64());
    }
}

//! The handshake: checking a client's request, and deciding where its stream starts.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Code, Status};

use super::journal::Entry;
use super::snapshot::{SharedSnapshot, SnapshotSettings};
use super::{Refusal, Served, Shared};
use crate::proto::{Compression, EndReason, SyncRequest};
use crate::{END_REASON_METADATA_KEY, PROTOCOL_VERSION};

/// The longest client name or version accepted.
const MAX_NAME_LEN: usize = 256;
/// The most compressions a client may list.
const MAX_COMPRESSIONS: usize = 16;

/// A gRPC status ending a stream for `reason`, with the reason's name in the metadata.
pub(crate) fn status(reason: EndReason, code: Code, message: impl Into<String>) -> Status {
    let mut status = Status::new(code, message);
    status.metadata_mut().insert(
        END_REASON_METADATA_KEY,
        reason
            .as_str_name()
            .parse()
            .expect("enum names are valid metadata"),
    );
    status
}

fn bad_request(code: Code, message: impl Into<String>) -> Status {
    status(EndReason::BadRequest, code, message)
}

/// Checks the request and finds the cache it names.
pub(crate) fn validate<'a>(
    shared: &'a Shared,
    req: &SyncRequest,
) -> Result<&'a Arc<Served>, Status> {
    if req.protocol_version != PROTOCOL_VERSION {
        return Err(bad_request(
            Code::FailedPrecondition,
            format!(
                "incompatible protocol version {} (this server speaks version {PROTOCOL_VERSION})",
                req.protocol_version
            ),
        ));
    }
    if req.client_name.len() > MAX_NAME_LEN || req.client_version.len() > MAX_NAME_LEN {
        return Err(bad_request(
            Code::InvalidArgument,
            format!("client_name and client_version are limited to {MAX_NAME_LEN} bytes"),
        ));
    }
    if req.accepted_compressions.len() > MAX_COMPRESSIONS {
        return Err(bad_request(
            Code::InvalidArgument,
            format!("more than {MAX_COMPRESSIONS} accepted_compressions"),
        ));
    }
    if req.cache_name.is_empty() {
        return Err(bad_request(Code::InvalidArgument, "cache_name is empty"));
    }
    shared.caches.get(&req.cache_name).ok_or_else(|| {
        let mut names: Vec<&str> = shared.caches.keys().map(String::as_str).collect();
        names.sort_unstable();
        bad_request(
            Code::NotFound,
            format!(
                "unknown cache {:?} (this server serves {names:?})",
                req.cache_name
            ),
        )
    })
}

/// The status for a stream the server cannot take on.
pub(crate) fn refusal_status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::TooMany(max) => status(
            EndReason::TooManyConnections,
            Code::ResourceExhausted,
            format!("too many connections: this server accepts {max}; try another server"),
        ),
        Refusal::ShuttingDown => status(
            EndReason::ShuttingDown,
            Code::Unavailable,
            "the server is shutting down; try another server",
        ),
    }
}

/// Where a stream starts.
pub(crate) enum Start {
    /// A snapshot, then the deltas after it; `refused` says why a resume asked for was not
    /// possible.
    Snapshot {
        snapshot: Arc<SharedSnapshot>,
        entry: Arc<Entry>,
        refused: Option<String>,
    },
    /// Only the deltas after `entry`, the client's resume point.
    Resume { entry: Arc<Entry> },
}

/// The compression of snapshot chunks: the first the client accepts that we support.
pub(crate) fn pick_compression(req: &SyncRequest) -> Compression {
    req.accepted_compressions
        .iter()
        .find_map(|c| Compression::try_from(*c).ok())
        .unwrap_or(Compression::None)
}

/// Decides the start: a resume if the resume point is in the window, else a snapshot.
pub(crate) async fn plan(
    shared: &Shared,
    served: &Served,
    req: &SyncRequest,
) -> Result<Start, Status> {
    let journal = served.cache.journal();
    let mut refused = None;
    if let Some(resume) = &req.resume {
        let mut tries = 0;
        loop {
            match journal.find(&resume.cache_id, resume.sequence_number) {
                Ok(Some(entry)) => {
                    // Seeded bug: the resume starts one breadcrumb late (its deltas are lost).
                    let entry = match crate::seeded::active("resume_skips") {
                        true => entry.try_next().unwrap_or(entry),
                        false => entry,
                    };
                    shared.stats.count_resume(true);
                    return Ok(Start::Resume { entry });
                }
                Ok(None) => {
                    let newest = journal.newest_seq();
                    if resume.sequence_number > newest {
                        return Err(bad_request(
                            Code::InvalidArgument,
                            format!(
                                "resume point {} is ahead of this cache instance (newest breadcrumb {newest})",
                                resume.sequence_number
                            ),
                        ));
                    }
                    // Published, but the journal has not caught up yet: it will in a moment.
                    tries += 1;
                    if tries > 1000 {
                        refused = Some("the journal did not reach the resume point".into());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(why) => {
                    refused = Some(why.to_string());
                    break;
                }
            }
        }
        shared.stats.count_resume(false);
    }
    let settings = SnapshotSettings {
        chunk_bytes: shared.config.snapshot_chunk_bytes.max(1),
        reuse_for: shared.config.snapshot_reuse,
        zstd_level: shared.config.snapshot_zstd_level,
    };
    let (snapshot, entry) =
        served
            .cache
            .snapshots()
            .get(journal, pick_compression(req), settings, &shared.stats);
    Ok(Start::Snapshot {
        snapshot,
        entry,
        refused,
    })
}

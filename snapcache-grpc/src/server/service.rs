//! The gRPC service: the handshake, then a [`StreamTask`] per client.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TlsConnectInfo;
use tonic::{Code, Request, Response, Status};

use super::conn::ConnInfo;
use super::handshake::{self, plan, refusal_status, validate};
use super::stream::{StreamTask, QUEUE};
use super::tls::check_client_names;
use super::{Refusal, Shared};
use crate::proto::{EndReason, SyncRequest};
use crate::wire::Frame;

pub(crate) struct SyncService {
    shared: Arc<Shared>,
}

impl SyncService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SyncService { shared }
    }

    /// The connection info (plain or TLS), and the client's leaf certificate if any.
    fn connection(request: &Request<SyncRequest>) -> (Option<ConnInfo>, Option<Vec<u8>>) {
        let ext = request.extensions();
        if let Some(tls) = ext.get::<TlsConnectInfo<ConnInfo>>() {
            let leaf = tls
                .peer_certs()
                .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()));
            return (Some(tls.get_ref().clone()), leaf);
        }
        (ext.get::<ConnInfo>().cloned(), None)
    }

    async fn handshake(
        &self,
        request: Request<SyncRequest>,
    ) -> Result<Response<ReceiverStream<Result<Frame, Status>>>, Status> {
        let shared = &self.shared;
        let (conn, leaf) = Self::connection(&request);
        let conn = conn.ok_or_else(|| Status::internal("no connection info"))?;
        if let Some(tls) = &shared.config.tls {
            if !crate::seeded::active("no_name_check") {
                check_client_names(leaf.as_deref(), &tls.client_names).map_err(|why| {
                    shared.stats.count_refused("permission_denied");
                    handshake::status(EndReason::PermissionDenied, Code::PermissionDenied, why)
                })?;
            }
        }
        let req = request.into_inner();
        let served =
            validate(shared, &req).inspect_err(|_| shared.stats.count_refused("bad_request"))?;
        let reg = match shared.register(conn.kill.clone()) {
            Ok(reg) => reg,
            Err(refusal) => {
                shared.stats.count_refused(match refusal {
                    Refusal::TooMany(_) => "too_many_connections",
                    Refusal::ShuttingDown => "shutting_down",
                });
                return Err(refusal_status(refusal));
            }
        };
        let start = plan(shared, served, &req)
            .await
            .inspect_err(|_| shared.stats.count_refused("bad_request"))?;
        shared.stats.count_accepted();
        let connection_id = format!("{}-{}", &served.cache.journal().id[..8], reg.id);
        let client = match conn.remote {
            Some(addr) => format!("{} ({addr})", req.client_name),
            None => req.client_name.clone(),
        };
        tracing::info!(connection = %connection_id, %client, version = %req.client_version, cache = %served.name, resume = req.resume.is_some(), "client connected");
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = StreamTask {
            shared: shared.clone(),
            served: served.clone(),
            reg,
            kill: conn.kill,
            tx,
            connection_id,
            client,
        };
        tokio::spawn(task.run(start));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[tonic::async_trait]
impl crate::proto::server::sync_server::Sync for SyncService {
    type SyncStream = ReceiverStream<Result<Frame, Status>>;

    async fn sync(
        &self,
        request: Request<SyncRequest>,
    ) -> Result<Response<Self::SyncStream>, Status> {
        self.handshake(request).await
    }
}

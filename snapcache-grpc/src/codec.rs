//! The server's tonic codec: it writes pre-encoded [`Frame`]s as they are (no per-client
//! encoding) and decodes the client's `SyncRequest` with prost, reporting a malformed one as
//! `INVALID_ARGUMENT`.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

use crate::proto::SyncRequest;
use crate::wire::Frame;

/// Encodes [`Frame`]s, decodes [`SyncRequest`]s.
#[derive(Debug, Default)]
pub struct ServerCodec(PhantomData<()>);

impl Codec for ServerCodec {
    type Encode = Frame;
    type Decode = SyncRequest;
    type Encoder = FrameEncoder;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> FrameEncoder {
        FrameEncoder
    }

    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder
    }
}

/// Writes a frame's bytes.
#[derive(Debug)]
pub struct FrameEncoder;

impl Encoder for FrameEncoder {
    type Item = Frame;
    type Error = Status;

    fn encode(&mut self, item: Frame, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        item.write_to(dst);
        Ok(())
    }
}

/// Decodes a `SyncRequest`.
#[derive(Debug)]
pub struct RequestDecoder;

impl Decoder for RequestDecoder {
    type Item = SyncRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<SyncRequest>, Status> {
        SyncRequest::decode(src).map(Some).map_err(|e| {
            crate::server::end_status(
                crate::proto::EndReason::BadRequest,
                tonic::Code::InvalidArgument,
                format!("malformed SyncRequest: {e}"),
            )
        })
    }
}

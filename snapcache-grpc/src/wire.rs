//! Pre-encoded wire messages: how "encode once, send many" works with tonic.
//!
//! The server's response type is a [`Frame`]: the protobuf encoding of one `SyncResponse`, held
//! as a few byte strings written back to back. The expensive parts are shared between clients
//! (reference-counted [`Bytes`]):
//!
//! * a breadcrumb's deltas are encoded once, as the `kvs` records of a `Deltas` message
//!   ([`encode_kvs`]). Protobuf concatenates repeated fields, so the deltas of several
//!   breadcrumbs coalesce by placing their records side by side: [`deltas_frame`] adds only a
//!   per-message header and trailer (a few bytes: the sequence numbers);
//! * a snapshot chunk is encoded (and compressed) once, as a whole `SyncResponse`.
//!
//! Small per-client messages (hello, status, end) are encoded with prost ([`Frame::message`]).

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;
use snapcache::Update;

use crate::convert::kv_from_update;
use crate::proto;

/// One encoded `SyncResponse`: byte strings that, written in order, are its protobuf encoding.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    parts: Vec<Bytes>,
}

impl Frame {
    /// A frame of already encoded bytes.
    pub(crate) fn encoded(bytes: Bytes) -> Self {
        Frame { parts: vec![bytes] }
    }

    /// Encodes `message` (for small, per-client messages).
    pub(crate) fn message(message: proto::sync_response::Message) -> Self {
        let response = proto::SyncResponse {
            message: Some(message),
        };
        Frame::encoded(response.encode_to_vec().into())
    }

    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// Whether the frame is empty (an empty `SyncResponse`; never sent).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the encoding to `dst`.
    pub(crate) fn write_to(&self, dst: &mut impl BufMut) {
        for part in &self.parts {
            dst.put_slice(part);
        }
    }

    /// The encoding as one byte string (tests, and the benchmarks' byte counts).
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.len());
        self.write_to(&mut buf);
        buf.freeze()
    }
}

/// `SyncResponse` field numbers (see the `.proto`).
const RESPONSE_SNAPSHOT_CHUNK: u32 = 2;
const RESPONSE_DELTAS: u32 = 4;
/// `Deltas` field numbers.
const DELTAS_KVS: u32 = 1;
const DELTAS_FIRST: u32 = 2;
const DELTAS_LAST: u32 = 3;
const DELTAS_PUBLISHED: u32 = 4;

/// Encodes `updates` as the `kvs` records of a `Deltas` message (field 1, repeated): the part
/// of a deltas message that is shared by every client and every coalesced batch.
pub(crate) fn encode_kvs<'a>(updates: impl IntoIterator<Item = &'a Update>) -> Bytes {
    let mut buf = BytesMut::new();
    for u in updates {
        prost::encoding::message::encode(DELTAS_KVS, &kv_from_update(u), &mut buf);
    }
    buf.freeze()
}

/// A `SyncResponse { deltas }` made of the shared `kvs` records of consecutive breadcrumbs
/// `first..=last` (in order), plus the per-message sequence numbers.
pub(crate) fn deltas_frame(kvs: Vec<Bytes>, first: u64, last: u64, published_nanos: u64) -> Frame {
    let mut trailer = BytesMut::with_capacity(33);
    for (field, value) in [
        (DELTAS_FIRST, first),
        (DELTAS_LAST, last),
        (DELTAS_PUBLISHED, published_nanos),
    ] {
        if value != 0 {
            encode_key(field, WireType::Varint, &mut trailer);
            encode_varint(value, &mut trailer);
        }
    }
    let inner = kvs.iter().map(Bytes::len).sum::<usize>() + trailer.len();
    let mut header = BytesMut::with_capacity(11);
    encode_key(RESPONSE_DELTAS, WireType::LengthDelimited, &mut header);
    encode_varint(inner as u64, &mut header);
    let mut parts = Vec::with_capacity(kvs.len() + 2);
    parts.push(header.freeze());
    parts.extend(kvs.into_iter().filter(|b| !b.is_empty()));
    parts.push(trailer.freeze());
    Frame { parts }
}

/// A whole `SyncResponse { snapshot_chunk }` for `data` (an encoded, possibly compressed
/// `KvList` of `kv_count` entries): encoded once, shared by every client of the snapshot.
pub(crate) fn snapshot_chunk_bytes(data: &[u8], kv_count: u32) -> Bytes {
    let mut inner = BytesMut::with_capacity(data.len() + 16);
    prost::encoding::bytes::encode(1, &Bytes::copy_from_slice(data), &mut inner);
    if kv_count != 0 {
        prost::encoding::uint32::encode(2, &kv_count, &mut inner);
    }
    let mut out = BytesMut::with_capacity(inner.len() + 1 + encoded_len_varint(inner.len() as u64));
    encode_key(RESPONSE_SNAPSHOT_CHUNK, WireType::LengthDelimited, &mut out);
    encode_varint(inner.len() as u64, &mut out);
    out.put_slice(&inner);
    out.freeze()
}

/// Decodes a snapshot chunk's `data` (an encoded `KvList`, compressed as the hello said),
/// refusing to inflate it beyond `max_bytes`.
pub(crate) fn decode_snapshot_chunk(
    data: &[u8],
    compression: proto::Compression,
    max_bytes: usize,
) -> Result<proto::KvList, String> {
    use std::io::Read;
    let raw;
    let bytes = match compression {
        proto::Compression::None => data,
        proto::Compression::Zstd => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(data)
                .and_then(|d| d.take(max_bytes as u64 + 1).read_to_end(&mut out))
                .map_err(|e| format!("a snapshot chunk does not decompress: {e}"))?;
            if out.len() > max_bytes {
                return Err(format!(
                    "a snapshot chunk inflates beyond the limit of {max_bytes} bytes"
                ));
            }
            raw = out;
            &raw[..]
        }
    };
    proto::KvList::decode(bytes).map_err(|e| format!("a snapshot chunk does not decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sync_response::Message as M;
    use snapcache::UpdateType;

    fn decode(frame: &Frame) -> proto::SyncResponse {
        proto::SyncResponse::decode(frame.to_bytes()).expect("a valid SyncResponse")
    }

    /// Coalescing by concatenation gives exactly the message prost would encode.
    #[test]
    fn coalesced_deltas_decode_as_one_message() {
        let a = [Update::set("a", "1", UpdateType::New), Update::delete("b")];
        let b: [Update; 0] = [];
        let c = [Update::set("c", vec![0xff, 0], UpdateType::Updated).with_revision("9")];
        let frame = deltas_frame(
            vec![encode_kvs(&a), encode_kvs(&b), encode_kvs(&c)],
            5,
            7,
            42,
        );
        let expected = proto::SyncResponse {
            message: Some(M::Deltas(proto::Deltas {
                kvs: a.iter().chain(&c).map(kv_from_update).collect(),
                first_sequence_number: 5,
                last_sequence_number: 7,
                published_unix_nanos: 42,
            })),
        };
        assert_eq!(decode(&frame), expected);
        assert_eq!(frame.to_bytes(), Bytes::from(expected.encode_to_vec()));
    }

    #[test]
    fn an_empty_batch_is_a_valid_message() {
        let frame = deltas_frame(vec![], 1, 1, 0);
        match decode(&frame).message {
            Some(M::Deltas(d)) => {
                assert!(d.kvs.is_empty());
                assert_eq!((d.first_sequence_number, d.last_sequence_number), (1, 1));
            }
            other => panic!("not deltas: {other:?}"),
        }
    }

    #[test]
    fn snapshot_chunks_match_prost() {
        let expected = proto::SyncResponse {
            message: Some(M::SnapshotChunk(proto::SnapshotChunk {
                data: Bytes::from_static(b"some encoded kvs"),
                kv_count: 3,
            })),
        };
        let frame = Frame::encoded(snapshot_chunk_bytes(b"some encoded kvs", 3));
        assert_eq!(frame.to_bytes(), Bytes::from(expected.encode_to_vec()));
    }
}

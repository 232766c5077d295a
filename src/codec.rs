//! A pass-through gRPC codec: the request is already protobuf bytes (from the front end, or a
//! caller that encoded it) and the response stays bytes, so one Rust path serves every RPC.
//!
//! The bytes are never parsed here; a malformed message is the backend's to reject (it answers
//! INTERNAL or INVALID_ARGUMENT), so nothing in Rust can panic on it.

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// Encodes `Bytes` as the message body and decodes the body as `Bytes`, unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // `DecodeBuf` holds exactly one message; taking it all is a split of the buffer, not a copy.
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

//! ModelInfer and Predict at the front door, at wire cost: the thin tonic
//! adapter that serves them from their encoded bytes. Its codec reads a
//! request's routing head off the bytes (`hotswap_proto::routing`) and
//! keeps the bytes; the front door forwards them to the worker and passes
//! the worker's answer back as it came. The generated servers still serve
//! every other method (and these two over HTTP, decoded).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use hotswap_proto::error::to_status;
use hotswap_proto::guarded::{self, GuardedCodec};
use hotswap_proto::routing::{Head, InferHead, PredictHead};
use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes};
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tower::Service;

use crate::front::FrontDoor;
use crate::worker::Wire;

/// The methods served from bytes.
const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
const PREDICT: &str = "/hotswap.v1.Predictor/Predict";

/// A request as the front door routes it: its routing fields, and its
/// bytes as they came.
pub struct Routed<H> {
    /// What it is routed by.
    pub head: H,
    /// The encoded request.
    pub wire: Bytes,
}

/// Sends a [`Wire`] as it is, and takes an answer as its bytes: the codec
/// of calls to workers whose requests and answers the front door does not
/// decode.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireCodec;

impl Codec for WireCodec {
    type Encode = Wire;
    type Decode = Bytes;
    type Encoder = WireEncoder;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> WireEncoder {
        WireEncoder
    }

    fn decoder(&mut self) -> BytesDecoder {
        BytesDecoder
    }
}

/// Writes a [`Wire`]'s bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireEncoder;

impl Encoder for WireEncoder {
    type Item = Wire;
    type Error = Status;

    fn encode(&mut self, item: Wire, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        dst.put_slice(&item.body);
        dst.put_slice(&item.suffix);
        Ok(())
    }
}

/// Takes a message as its bytes (no copy: a slice of the receive buffer).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

/// The front door's codec for a forwarded method: requests as [`Routed`],
/// answers as [`Wire`].
struct RoutedCodec<H>(PhantomData<H>);

impl<H: Head> Codec for RoutedCodec<H> {
    type Encode = Wire;
    type Decode = Routed<H>;
    type Encoder = WireEncoder;
    type Decoder = RoutedDecoder<H>;

    fn encoder(&mut self) -> WireEncoder {
        WireEncoder
    }

    fn decoder(&mut self) -> RoutedDecoder<H> {
        RoutedDecoder(PhantomData)
    }
}

struct RoutedDecoder<H>(PhantomData<H>);

impl<H: Head> Decoder for RoutedDecoder<H> {
    type Item = Routed<H>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Routed<H>>, Status> {
        // A message arrives whole in one buffer; should it not, or should
        // it be malformed (fields appended to it would change prost's
        // account of where it ends), or its head not read, it is decoded as
        // a worker decodes it: the caller gets the worker's own refusal,
        // and a well-formed message the readers do not follow (groups) is
        // still served.
        let whole = buf.chunk().len() == buf.remaining();
        if whole
            && guarded::well_formed::<H::Message>(buf.chunk())
            && let Some(head) = H::read(buf.chunk())
        {
            let wire = buf.copy_to_bytes(buf.remaining());
            return Ok(Some(Routed { head, wire }));
        }
        let mut decoder = GuardedCodec::<H::Message, H::Message>::default().decoder();
        let Some(message) = decoder.decode(buf)? else {
            return Ok(None);
        };
        Ok(Some(Routed {
            head: H::of(&message),
            wire: message.encode_to_vec().into(),
        }))
    }
}

/// Serves ModelInfer and Predict from bytes, and every other method of
/// `inner` (a generated server) as `inner` does.
#[derive(Clone)]
pub struct Forwarding<S> {
    front: FrontDoor,
    inner: S,
    max_decoding: usize,
}

impl<S> Forwarding<S> {
    /// `inner`, with its forwarded methods served by `front` from requests
    /// of at most `max_decoding` bytes.
    pub fn new(front: FrontDoor, inner: S, max_decoding: usize) -> Forwarding<S> {
        Forwarding {
            front,
            inner,
            max_decoding,
        }
    }

    fn serve<H, F>(
        &self,
        request: http::Request<Body>,
        method: F,
    ) -> BoxFuture<'static, Result<http::Response<Body>, Infallible>>
    where
        H: Head,
        F: UnaryService<Routed<H>, Response = Wire> + Send + 'static,
        F::Future: Send,
    {
        let max = self.max_decoding;
        Box::pin(async move {
            let mut grpc = Grpc::new(RoutedCodec::<H>(PhantomData))
                .apply_max_message_size_config(Some(max), Some(usize::MAX));
            Ok(grpc.unary(method, request).await)
        })
    }
}

impl<S: NamedService> NamedService for Forwarding<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Forwarding<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The generated servers are always ready, and so are these methods.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match request.uri().path() {
            MODEL_INFER => self.serve(request, Infer(self.front.clone())),
            PREDICT => self.serve(request, Predict(self.front.clone())),
            _ => {
                let mut inner = self.inner.clone();
                Box::pin(async move { inner.call(request).await })
            }
        }
    }
}

/// ModelInfer, forwarded.
struct Infer(FrontDoor);

impl UnaryService<Routed<InferHead>> for Infer {
    type Response = Wire;
    type Future = BoxFuture<'static, Result<Response<Wire>, Status>>;

    fn call(&mut self, request: Request<Routed<InferHead>>) -> Self::Future {
        let front = self.0.clone();
        Box::pin(async move {
            front
                .forward_infer(request.into_inner())
                .await
                .map(Response::new)
                .map_err(|e| to_status(&e))
        })
    }
}

/// Predict, forwarded.
struct Predict(FrontDoor);

impl UnaryService<Routed<PredictHead>> for Predict {
    type Response = Wire;
    type Future = BoxFuture<'static, Result<Response<Wire>, Status>>;

    fn call(&mut self, request: Request<Routed<PredictHead>>) -> Self::Future {
        let front = self.0.clone();
        Box::pin(async move {
            front
                .forward_predict(request.into_inner())
                .await
                .map(Response::new)
                .map_err(|e| to_status(&e))
        })
    }
}

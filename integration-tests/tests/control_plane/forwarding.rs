//! The front door forwards ModelInfer and Predict as bytes (issue 26): a
//! request it cannot read, or whose routing fields read but whose tensors
//! do not decode, gets the worker's own refusal, the same code and message
//! as when the worker is called directly; the name and version the control
//! plane changes reach the worker, and the caller gets its own name back.

use std::marker::PhantomData;

use hotswap_control_plane::ControlPlaneConfig;
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer, iris_bucket, iris_infer};
use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Sends bytes as they are and takes the answer as bytes: a client that
/// can send what no generated client would.
#[derive(Default)]
struct Raw(PhantomData<()>);

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw::default()
    }

    fn decoder(&mut self) -> Raw {
        Raw::default()
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

/// Calls ModelInfer with `wire` as the request's bytes.
async fn infer_raw(channel: Channel, wire: &[u8]) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(Bytes::copy_from_slice(wire)),
        PathAndQuery::from_static("/inference.GRPCInferenceService/ModelInfer"),
        Raw::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_front_door_cannot_read_get_the_workers_own_refusal() {
    let (bucket, config) = iris_bucket(1).await;
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let control = ControlServer::start_with(ControlPlaneConfig {
        model_store: store.addr.to_string(),
        ..ControlPlaneConfig::default()
    })
    .await;
    let worker = WorkerServer::start_with(
        store.addr,
        &bucket,
        WorkerOptions {
            control_plane: Some(control.internal.to_string()),
            ..Default::default()
        },
    )
    .await;
    control.wait_for_workers(1).await;
    let good = iris_infer("iris", "").encode_to_vec();
    eventually("iris served through the front door", || async {
        infer_raw(control.channel().await, &good).await.ok()
    })
    .await;

    // The name, then an `inputs` entry whose own fields are cut short: the
    // head reads, the tensors do not decode.
    let mut bad_tensor = good.clone();
    bad_tensor.extend_from_slice(&[0x2a, 0x03, 0x0a, 0x05, b'x']);
    let cases: [(&str, Vec<u8>); 5] = [
        ("a key that is not a varint", vec![0xff; 11]),
        ("cut inside the name", good[..3].to_vec()),
        ("a name that is not UTF-8", vec![0x0a, 0x02, 0xc3, 0x28]),
        ("wire type 7", vec![0x0f]),
        ("tensors that do not decode", bad_tensor),
    ];
    for (what, wire) in cases {
        let direct = infer_raw(worker.channel().await, &wire)
            .await
            .expect_err(what);
        let front = infer_raw(control.channel().await, &wire)
            .await
            .expect_err(what);
        assert_eq!(
            (front.code(), front.message()),
            (direct.code(), direct.message()),
            "{what}: the front door's answer differs from the worker's"
        );
        assert_ne!(direct.code(), Code::Ok, "{what}");
    }

    // The caller's own name comes back; the worker answers the version
    // `latest` resolved to.
    let answer = infer_raw(control.channel().await, &good)
        .await
        .expect("ModelInfer");
    let answer = hotswap_proto::inference::ModelInferResponse::decode(answer).unwrap();
    assert_eq!(
        (answer.model_name.as_str(), answer.model_version.as_str()),
        ("iris", "1")
    );
    assert_eq!(answer.raw_output_contents.len(), answer.outputs.len());
    drop(worker);
}

//! The request limit at the front door (issue 25): a call a worker would
//! refuse for its size is refused by the control plane, before it is
//! forwarded; and numbers beyond FP32's range are refused, not turned into
//! infinity, on every JSON path. All three services as real processes.

use std::net::SocketAddr;
use std::time::Duration;

use hotswap_integration_tests::http::{Answer, post};
use hotswap_integration_tests::process::{Hotswap, metric, model_store_args, workspace_root};
use hotswap_integration_tests::worker::request;
use hotswap_proto::v1::predictor_client::PredictorClient;

/// A model-store, a control plane and one worker (with its metrics
/// listener), serving `total` (the sum of a float input `x` of shape
/// [batch, 4]).
struct Cluster {
    control: Hotswap,
    worker: Hotswap,
    _store: Hotswap,
    _bucket: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let bucket = tempfile::tempdir().expect("temp dir");
        let model = bucket.path().join("models/total/1/model.onnx");
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::copy(
            workspace_root().join("integration-tests/fixtures/onnx/total/model.onnx"),
            &model,
        )
        .expect("fixture");
        let config = bucket.path().join("hotswap.yaml");
        std::fs::write(
            &config,
            "- {name: total, predictor: {type: onnx, models: {path: models/total/}}}\n",
        )
        .unwrap();
        let store = Hotswap::start(&model_store_args(&config, &[]), &[]);
        let store_addr = store.addr.to_string();
        let control = Hotswap::start(
            &[
                "control-plane",
                "--model-store",
                &store_addr,
                "--listen",
                "127.0.0.1:0",
                "--internal-listen",
                "127.0.0.1:0",
            ],
            &[],
        );
        let internal = control.addr_of("control-plane-internal").to_string();
        let worker = Hotswap::start(
            &[
                "data-plane",
                "--model-store",
                &store_addr,
                "--control-plane",
                &internal,
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ],
            &[],
        );
        let cluster = Cluster {
            control,
            worker,
            _store: store,
            _bucket: bucket,
        };
        let front = cluster.control.addr;
        cluster
            .control
            .wait("a small call answered through the control plane")
            .within(Duration::from_secs(60))
            .every(Duration::from_millis(200))
            .until(|| async move {
                let answer = try_infer(front, &oip_json("1, 2, 3, 4", 1)).await;
                answer.ok().filter(|a| a.status == 200).map(|_| ())
            })
            .await;
        cluster
    }

    /// ModelInfer calls the worker has taken (the large call would be one).
    fn worker_infer_calls(&self) -> f64 {
        metric(
            self.worker.addr_of("metrics"),
            "hotswap_requests_total",
            "ModelInfer",
        )
        .unwrap_or(0.0)
    }
}

/// An Open Inference Protocol JSON request for `total` with `rows` rows.
fn oip_json(data: &str, rows: usize) -> String {
    format!(r#"{{"inputs":[{{"name":"x","datatype":"FP32","shape":[{rows},4],"data":[{data}]}}]}}"#)
}

async fn try_infer(addr: SocketAddr, body: &str) -> std::io::Result<Answer> {
    post(
        addr,
        "/v2/models/total/infer",
        &[("content-type", "application/json")],
        body.to_owned(),
    )
    .await
}

async fn infer(addr: SocketAddr, body: &str) -> Answer {
    try_infer(addr, body).await.expect("HTTP call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_workers_limit_is_refused_at_the_front_door() {
    let cluster = Cluster::start().await;
    let before = cluster.worker_infer_calls();
    assert!(before >= 1.0, "the warm-up call reached the worker");

    // 32 MB of `0,`: under the front door's body limit (twice the request
    // limit), yet 16 million FP32 zeros, 64 MB: four times what a worker
    // takes.
    let zeros = 16_000_000;
    let mut data = "0,".repeat(zeros);
    data.pop();
    let body = oip_json(&data, zeros / 4);
    drop(data);
    let started = std::time::Instant::now();
    let answer = infer(cluster.control.addr, &body).await;
    let took = started.elapsed();
    assert!(
        (400..500).contains(&answer.status),
        "{}: {}",
        answer.status,
        answer.text()
    );
    let message = answer.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        message,
        format!(
            "input `x` is {} bytes; requests are limited to {} bytes",
            zeros * 4,
            hotswap_proto::DEFAULT_MAX_REQUEST_BYTES
        )
    );
    assert_eq!(
        cluster.worker_infer_calls(),
        before,
        "the worker saw the refused call (answered in {took:?})"
    );
    eprintln!("refused in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_beyond_fp32_are_refused_on_every_json_path() {
    let cluster = Cluster::start().await;
    for addr in [cluster.control.addr, cluster.worker.addr] {
        // The Open Inference Protocol's JSON tensors (read by the HTTP
        // binding of whichever plane is called).
        let answer = infer(addr, &oip_json("1e39, 0, 0, 0", 1)).await;
        assert_eq!(answer.status, 400, "{addr}: {}", answer.text());
        assert_eq!(
            answer.json()["error"],
            "input `x`: 1e+39 is not a FP32 element",
            "{addr}"
        );
        // Cortex's JSON (read by the worker with the model's signature).
        let answer = post(
            addr,
            "/total",
            &[("content-type", "application/json")],
            "[[1e39, 0, 0, 0]]",
        )
        .await
        .expect("HTTP call");
        assert_eq!(answer.status, 400, "{addr}: {}", answer.text());
        let message = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.starts_with("input `x`: 1e+39 is not a valid FP32 element"),
            "{addr}: {message}"
        );
    }
    // hotswap.v1 JSON over gRPC.
    let mut predictor = PredictorClient::connect(format!("http://{}", cluster.control.addr))
        .await
        .expect("connect");
    let refused = predictor
        .predict(request("total", "[[-1e39, 0, 0, 0]]", &[]))
        .await
        .expect_err("out of range");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("input `x`") && refused.message().contains("FP32"),
        "{}",
        refused.message()
    );
}

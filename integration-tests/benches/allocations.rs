//! Allocations per call on the worker's path, counted by a counting global
//! allocator (`counting.rs`): a ModelInfer of one iris row (raw FP32
//! contents) and a Predict with JSON, each called on the worker's service
//! object directly (the worker's own call path: tensors in, the model run,
//! the answer built, no transport) and over gRPC on loopback (the client and
//! the HTTP/2 transport of both ends counted too, all in this process).
//!
//! Run with `cargo bench -p hotswap-integration-tests --bench allocations`
//! (after `.ci/setup`).

use std::future::Future;

use hotswap_data_plane::WorkerService;
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::counting::{self, Counting};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerServer, answer, iris, iris_infer, predict_json,
};
use hotswap_proto::service::{InferenceService, PredictorService};

#[global_allocator]
static ALLOC: Counting = Counting;

const CONFIG: &str = "- {name: iris, predictor: {type: onnx, models: {path: '{root}iris'}}}";

const CALLS: u64 = 2_000;

/// Allocations per call of `call`, made `CALLS` times one after another
/// (after as many to warm up).
async fn per_call<F, Fut>(call: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..CALLS {
        call().await;
    }
    let before = counting::allocations();
    for _ in 0..CALLS {
        call().await;
    }
    (counting::allocations() - before) as f64 / CALLS as f64
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bucket = TestBucket::new(Backend::Local).await;
        bucket.put("iris/1/model.onnx", iris(0)).await;
        let config = CONFIG.replace("{root}", &bucket.uri(""));
        let store = StoreServer::start(&bucket, &config, |_| {}).await;
        let worker = WorkerServer::start(&store, &bucket).await;
        answer(&worker.predictor().await, "iris", "model served", |_| true).await;
        let service = WorkerService::new(
            worker.worker.clone(),
            hotswap_proto::DEFAULT_MAX_REQUEST_BYTES,
        );
        let inference = worker.inference().await;
        let predictor = worker.predictor().await;

        let infer_direct = per_call(|| async {
            InferenceService::model_infer(&service, iris_infer("iris", ""))
                .await
                .expect("ModelInfer");
        })
        .await;
        let predict_direct = per_call(|| async {
            PredictorService::predict(&service, predict_json("iris", "", "", IRIS_INPUT))
                .await
                .expect("Predict");
        })
        .await;
        let infer_grpc = per_call(|| async {
            inference
                .clone()
                .model_infer(iris_infer("iris", ""))
                .await
                .expect("ModelInfer");
        })
        .await;
        let predict_grpc = per_call(|| async {
            predictor
                .clone()
                .predict(predict_json("iris", "", "", IRIS_INPUT))
                .await
                .expect("Predict");
        })
        .await;
        // What building the requests costs, counted in every row above.
        let requests = per_call(|| async {
            std::hint::black_box((
                iris_infer("iris", ""),
                predict_json("iris", "", "", IRIS_INPUT),
            ));
        })
        .await;

        println!();
        println!("| call | on the service object | over gRPC, client and both transports |");
        println!("|---|---|---|");
        println!("| ModelInfer, one iris row, raw FP32 | {infer_direct:.1} | {infer_grpc:.1} |");
        println!("| Predict, JSON | {predict_direct:.1} | {predict_grpc:.1} |");
        println!();
        println!(
            "Allocations per call, {CALLS} calls each after as many to warm up; building the two \
             requests themselves takes {requests:.1} of them."
        );
        drop(worker);
        drop(store);
    });
}

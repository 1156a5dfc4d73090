//! Python predictors with the user's virtualenv: the scikit-learn example
//! (pickled models, numpy results), memory given back when a model is
//! evicted, and two processes serving at once.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::process::{venv, workspace_root};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer, eventually, output_json};
use hotswap_proto::v1::{PredictRequest, PredictResponse, predict_request};
use tonic::Code;

fn request(api: &str, json: &str, version: &str) -> PredictRequest {
    PredictRequest {
        api: api.to_owned(),
        payload: Some(predict_request::Payload::Json(json.to_owned())),
        query_params: [("version".to_owned(), version.to_owned())].into(),
        ..Default::default()
    }
}

/// A store and a worker (with the project venv as the user's) for one
/// Python API whose predictor is `source`.
async fn serve(bucket: &TestBucket, api_yaml: &str, source: &str) -> (StoreServer, WorkerServer) {
    let source = source.to_owned();
    let store = StoreServer::start(bucket, api_yaml, move |c| {
        c.apis[0].predictor_source = Some(source)
    })
    .await;
    let options = WorkerOptions {
        python_venv: Some(venv()),
        ..Default::default()
    };
    let worker = WorkerServer::start_with(store.addr, bucket, options).await;
    (store, worker)
}

/// API `m`, predictor `source`, one model version with one small file.
async fn one_model_api(source: &str) -> (TestBucket, StoreServer, WorkerServer) {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("m/1/weights.txt", "x").await;
    let config = format!(
        "- {{name: m, predictor: {{type: python, path: m.py, multi_model_reloading: {{path: '{}'}}}}}}",
        bucket.uri("m")
    );
    let (store, worker) = serve(&bucket, &config, source).await;
    (bucket, store, worker)
}

/// The error `r` gets once the API has started (or failed to): calls while
/// it starts are UNAVAILABLE.
async fn first_refusal(worker: &WorkerServer, r: PredictRequest) -> tonic::Status {
    let p = worker.predictor().await;
    eventually("the API started or failed", || {
        let mut p = p.clone();
        let r = r.clone();
        async move {
            match p.predict(r).await {
                Err(s) if s.code() != Code::Unavailable => Some(s),
                _ => None,
            }
        }
    })
    .await
}

async fn first_answer(worker: &WorkerServer, r: PredictRequest) -> PredictResponse {
    let p = worker.predictor().await;
    eventually("the predictor answers", || {
        let mut p = p.clone();
        let r = r.clone();
        async move { p.predict(r).await.ok() }
    })
    .await
    .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sklearn_example_serves_both_versions() {
    let example = workspace_root().join("examples/python-sklearn");
    let bucket = TestBucket::new(Backend::Local).await;
    for v in [1, 2] {
        let model = std::fs::read(example.join(format!("models/iris/{v}/model.pkl"))).unwrap();
        bucket.put(&format!("iris/{v}/model.pkl"), model).await;
    }
    let config = std::fs::read_to_string(example.join("hotswap.yaml"))
        .unwrap()
        .replace("models/iris/", &bucket.uri("iris"));
    let source = std::fs::read_to_string(example.join("predictor.py")).unwrap();
    let (store, worker) = serve(&bucket, &config, &source).await;
    let setosa = "[[5.1, 3.5, 1.4, 0.2]]";

    let latest = first_answer(&worker, request("iris", setosa, "latest")).await;
    let out = output_json(&latest);
    assert_eq!(out["label"], serde_json::json!(["setosa"]));
    // Version 2 (1-nearest-neighbour) is sure; numpy arrays came back as lists.
    assert_eq!(out["probabilities"], serde_json::json!([[1.0, 0.0, 0.0]]));
    let mut p = worker.predictor().await;
    let v1 = output_json(
        &p.predict(request("iris", setosa, "1"))
            .await
            .unwrap()
            .into_inner(),
    );
    let p0 = v1["probabilities"][0][0].as_f64().unwrap();
    assert!(
        p0 > 0.9 && p0 < 1.0,
        "version 1 (logistic regression): {v1}"
    );
    let e = p.predict(request("iris", setosa, "3")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("LookupError"), "{}", e.message());
    let e = p
        .predict(request("iris", "[[1, 2]]", "1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    // The exception's line and a request id; the traceback is logged.
    assert!(
        e.message().contains("features")
            && e.message().contains("(request ")
            && !e.message().contains("Traceback"),
        "{}",
        e.message()
    );

    // A new version (version 1's logistic regression again, as 3) is what
    // the next `latest` gets; rewriting it in place (with the
    // nearest-neighbour model) is picked up too.
    let logistic = std::fs::read(example.join("models/iris/1/model.pkl")).unwrap();
    let neighbour = std::fs::read(example.join("models/iris/2/model.pkl")).unwrap();
    bucket.put("iris/3/model.pkl", logistic).await;
    let sure = |out: &serde_json::Value| out["probabilities"][0][0].as_f64() == Some(1.0);
    let p3 = worker.predictor().await;
    eventually("version 3 served as latest", || {
        let mut p = p3.clone();
        async move {
            let out = output_json(
                &p.predict(request("iris", setosa, "latest"))
                    .await
                    .ok()?
                    .into_inner(),
            );
            (!sure(&out)).then_some(())
        }
    })
    .await;
    bucket.put("iris/3/model.pkl", neighbour).await;
    eventually("version 3 rewritten in place", || {
        let mut p = p3.clone();
        async move {
            let out = output_json(
                &p.predict(request("iris", setosa, "3"))
                    .await
                    .ok()?
                    .into_inner(),
            );
            sure(&out).then_some(())
        }
    })
    .await;
    worker.stop().await;
    store.stop().await;
}

const BIG: &str = r#"
import numpy as np

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        # 200 MB that must go when the model is evicted.
        return np.ones(25_000_000)

    def predict(self, payload, query_params):
        if payload == "rss":
            return rss_mb()
        model = self.client.get_model(model_version=query_params["version"])
        return {"sum": float(model[:10].sum()), "rss": rss_mb()}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_model_gives_its_memory_back() {
    let bucket = TestBucket::new(Backend::Local).await;
    for v in [1, 2, 3] {
        bucket.put(&format!("big/{v}/weights.txt"), "x").await;
    }
    let config = format!(
        "- {{name: big, predictor: {{type: python, path: big.py, multi_model_reloading: {{path: '{}', cache_size: 1, disk_cache_size: 3}}}}}}",
        bucket.uri("big")
    );
    let (store, worker) = serve(&bucket, &config, BIG).await;
    let base = output_json(&first_answer(&worker, request("big", "\"rss\"", "")).await)
        .as_f64()
        .unwrap();
    let mut p = worker.predictor().await;
    let rss = |v: &str| {
        let r = request("big", "{}", v);
        let mut p = p.clone();
        async move {
            output_json(&p.predict(r).await.unwrap().into_inner())["rss"]
                .as_f64()
                .unwrap()
        }
    };
    let one = rss("1").await;
    assert!(
        one - base > 150.0,
        "a loaded model holds its 200 MB: {base} -> {one}"
    );
    // Each load evicts the previous model (cache_size 1): without the
    // release, three models would hold 600 MB.
    let two = rss("2").await;
    let three = rss("3").await;
    assert!(
        two - base < 300.0 && three - base < 300.0,
        "evicted models were released: {base} -> {one}, {two}, {three}"
    );
    let _ = p.predict(request("big", "\"rss\"", "")).await.unwrap();
    worker.stop().await;
    store.stop().await;
}

const PAIR: &str = r#"
import os, time

class PythonPredictor:
    def __init__(self, config, python_client):
        self.dir = config["dir"]

    def predict(self, payload):
        if isinstance(payload, str):
            return {"pid": os.getpid()}
        # Each call leaves a marker, then waits (bounded) until it sees the
        # other call's: only two processes working at once can both see two.
        open(os.path.join(self.dir, str(os.getpid()) + "-" + str(payload)), "w").close()
        deadline = time.time() + 20
        while len(os.listdir(self.dir)) < 2 and time.time() < deadline:
            time.sleep(0.01)
        return {"pid": os.getpid(), "together": len(os.listdir(self.dir)) >= 2}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_serve_at_once_and_survive_a_kill() {
    let markers = tempfile::tempdir().unwrap();
    let bucket = TestBucket::new(Backend::Local).await;
    let config = format!(
        "- {{name: pair, predictor: {{type: python, path: pair.py, processes_per_replica: 2, config: {{dir: '{}'}}}}}}",
        markers.path().display()
    );
    let (store, worker) = serve(&bucket, &config, PAIR).await;
    let w = &worker;
    let pool = eventually("the predictor is running", || async move {
        match w.worker.python_state("pair") {
            Some(hotswap_data_plane::worker::PythonState::Ready(pool)) => Some(pool),
            _ => None,
        }
    })
    .await;
    let mut calls = Vec::new();
    for i in 0..2 {
        let mut p = worker.predictor().await;
        calls.push(tokio::spawn(async move {
            p.predict(request("pair", &i.to_string(), "")).await
        }));
    }
    let mut pids = std::collections::HashSet::new();
    for c in calls {
        let out = output_json(&c.await.unwrap().unwrap().into_inner());
        assert_eq!(out["together"], true, "both calls ran at the same time");
        pids.insert(out["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 2);

    // Kill one process from outside: calls keep succeeding (on the other,
    // then on its replacement).
    let victim = pool.pids()[0];
    // SAFETY: kill(2) on a child process of this test's worker.
    unsafe {
        libc::kill(victim as i32, libc::SIGKILL);
    }
    let mut p = worker.predictor().await;
    let mut ok = 0;
    for i in 0..10 {
        // A call that was routed to the dying process fails UNAVAILABLE.
        match p.predict(request("pair", &format!("\"k{i}\""), "")).await {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), Code::Unavailable, "{e:?}"),
        }
    }
    assert!(ok >= 5, "the surviving process kept serving ({ok} of 10)");
    eventually("the killed process replaced", || async {
        let now = pool.pids();
        (now.len() == 2 && !now.contains(&victim)).then_some(())
    })
    .await;
    worker.stop().await;
    store.stop().await;
}

const ONNX_PREDICTOR: &str = r#"
class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client

    def predict(self, payload, query_params):
        version = query_params.get("version", "latest")
        if payload == "signature":
            m = self.client.get_model(model_version=version)
            s = m["session"]
            return {
                "signatures": m["signatures"],
                "input_signatures": m["input_signatures"],
                "output_signatures": m["output_signatures"],
                "inputs": [[i.name, i.shape, i.type] for i in s.get_inputs()],
                "outputs": [[o.name, o.shape, o.type] for o in s.get_outputs()],
            }
        if payload == "session":
            # Code written against onnxruntime.InferenceSession, unchanged.
            import numpy as np
            session = self.client.get_model(model_version=version)["session"]
            x = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
            label, = session.run(["label"], {session.get_inputs()[0].name: x})
            everything = session.run(None, {"input": x})
            return {"label": label.tolist(), "outputs": len(everything), "p": everything[0].tolist()}
        probabilities, label = self.client.predict(payload, model_version=version)
        return {"label": label.tolist(), "type": str(label.dtype), "p": probabilities.tolist()}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onnx_predictor_runs_models_through_onnx_client() {
    let bucket = TestBucket::new(Backend::Local).await;
    for (v, label) in [(1, 0), (2, 1)] {
        bucket
            .put(
                &format!("iris/{v}/model.onnx"),
                hotswap_integration_tests::worker::iris(label),
            )
            .await;
    }
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, path: onnx_predictor.py, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    let (store, worker) = serve(&bucket, &config, ONNX_PREDICTOR).await;
    let setosa = "[[5.1, 3.5, 1.4, 0.2]]";
    let latest = output_json(&first_answer(&worker, request("iris", setosa, "latest")).await);
    assert_eq!(latest["label"], serde_json::json!([1]), "{latest}");
    assert_eq!(
        latest["type"], "int64",
        "outputs are numpy arrays of the model's types"
    );
    let mut p = worker.predictor().await;
    let one = output_json(
        &p.predict(request("iris", setosa, "1"))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(one["label"], serde_json::json!([0]));
    let named = output_json(
        &p.predict(request("iris", r#"{"input": [[5.1, 3.5, 1.4, 0.2]]}"#, "2"))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(named["label"], serde_json::json!([1]));

    let signature = output_json(
        &p.predict(request("iris", "\"signature\"", ""))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(
        signature["input_signatures"]["input"],
        serde_json::json!({"shape": [-1, 4], "type": "float32"})
    );
    assert_eq!(signature["signatures"][0]["name"], "input");
    assert_eq!(signature["output_signatures"]["label"]["type"], "int64");
    assert_eq!(
        signature["inputs"],
        serde_json::json!([["input", [null, 4], "tensor(float)"]])
    );
    assert_eq!(
        signature["outputs"][1],
        serde_json::json!(["label", [null], "tensor(int64)"])
    );

    // get_model()["session"] runs the worker's session of that version.
    for (version, label) in [("1", 0), ("2", 1)] {
        let session = output_json(
            &p.predict(request("iris", "\"session\"", version))
                .await
                .unwrap()
                .into_inner(),
        );
        assert_eq!(session["label"], serde_json::json!([label]), "{session}");
        assert_eq!(session["outputs"], 2, "{session}");
    }

    let e = p
        .predict(request("iris", "[[1, 2, 3]]", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert!(
        e.message().contains("ValueError") && e.message().contains("input `input`"),
        "{}",
        e.message()
    );
    let e = p.predict(request("iris", setosa, "9")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("LookupError"), "{}", e.message());
    worker.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_per_process_runs_calls_at_once_in_one_process() {
    let markers = tempfile::tempdir().unwrap();
    let bucket = TestBucket::new(Backend::Local).await;
    let config = format!(
        "- {{name: pair, predictor: {{type: python, path: pair.py, processes_per_replica: 1, threads_per_process: 2, config: {{dir: '{}'}}}}}}",
        markers.path().display()
    );
    let (store, worker) = serve(&bucket, &config, PAIR).await;
    first_answer(&worker, request("pair", "\"warm-up\"", "")).await;
    let mut calls = Vec::new();
    for i in 0..2 {
        let mut p = worker.predictor().await;
        calls.push(tokio::spawn(async move {
            p.predict(request("pair", &i.to_string(), "")).await
        }));
    }
    let mut pids = std::collections::HashSet::new();
    for c in calls {
        let out = output_json(&c.await.unwrap().unwrap().into_inner());
        // The predictor sleeps while it waits, which releases the GIL.
        assert_eq!(out["together"], true, "both calls ran at the same time");
        pids.insert(out["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 1, "in one process");
    worker.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_load_model_is_internal_with_its_line_or_its_traceback() {
    let source = r#"
class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        raise IOError("weights are corrupt in " + model_path.split("/")[-1])

    def predict(self, payload):
        return self.client.get_model()
"#;
    let (bucket, store, worker) = one_model_api(source).await;
    let failed = |worker: &WorkerServer| {
        let worker_addr = worker.addr;
        eventually("the load fails", move || async move {
            let mut p = hotswap_proto::v1::predictor_client::PredictorClient::new(
                hotswap_integration_tests::serving::channel(worker_addr).await,
            );
            p.predict(request("m", "{}", ""))
                .await
                .err()
                .filter(|e| e.code() == Code::Internal)
        })
    };
    // By default: the exception's line and a request id naming the log
    // line that holds the traceback.
    let e = failed(&worker).await;
    assert!(
        e.message().contains("OSError: weights are corrupt")
            && e.message().contains("(request ")
            && !e.message().contains("Traceback"),
        "{}",
        e.message()
    );
    // A worker told to return tracebacks (debugging) returns it whole.
    let debugging = WorkerServer::start_with(
        store.addr,
        &bucket,
        WorkerOptions {
            python_venv: Some(venv()),
            python_tracebacks: true,
            ..Default::default()
        },
    )
    .await;
    let e = failed(&debugging).await;
    assert!(
        e.message().contains("Traceback") && e.message().contains("in load_model"),
        "{}",
        e.message()
    );
    assert!(
        e.message().contains("OSError: weights are corrupt"),
        "{}",
        e.message()
    );
    debugging.stop().await;
    worker.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_can_be_fetched_in_init_and_key_errors_are_internal() {
    let source = r#"
class PythonPredictor:
    def __init__(self, config, python_client):
        self.python_client_for_nesting = python_client
        # Models may be fetched while the predictor is built.
        self.model = python_client.get_model()

    def load_model(self, model_path):
        files = sorted(__import__("os").listdir(model_path))
        if not hasattr(self, "nested"):
            # load_model may itself ask for a model (one built from another).
            self.nested = True
            self.python_client_for_nesting.get_model(model_version="1")
        return {"files": files}

    def predict(self, payload):
        if payload == "key":
            return {}["missing"]
        return self.model
"#;
    let (_bucket, store, worker) = one_model_api(source).await;
    let out = output_json(&first_answer(&worker, request("m", "{}", "")).await);
    assert_eq!(out, serde_json::json!({"files": ["weights.txt"]}));
    // A KeyError is the user's bug, not a missing model: INTERNAL.
    let e = worker
        .predictor()
        .await
        .predict(request("m", "\"key\"", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e:?}");
    assert!(e.message().contains("KeyError"), "{}", e.message());
    worker.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_version_leaves_memory_at_once() {
    let bucket = TestBucket::new(Backend::Local).await;
    for v in [1, 2] {
        bucket.put(&format!("big/{v}/weights.txt"), "x").await;
    }
    let config = format!(
        "- {{name: big, predictor: {{type: python, path: big.py, multi_model_reloading: {{path: '{}', cache_size: 4}}}}}}",
        bucket.uri("big")
    );
    let (store, worker) = serve(&bucket, &config, BIG).await;
    let base = output_json(&first_answer(&worker, request("big", "\"rss\"", "")).await)
        .as_f64()
        .unwrap();
    let mut p = worker.predictor().await;
    let loaded = output_json(
        &p.predict(request("big", "{}", "1"))
            .await
            .unwrap()
            .into_inner(),
    )["rss"]
        .as_f64()
        .unwrap();
    assert!(loaded - base > 150.0, "{base} -> {loaded}");
    // Removed from the bucket: the process drops its copy without waiting
    // for a get_model or an LRU eviction.
    bucket.delete_prefix("big/1/").await;
    let p2 = p.clone();
    eventually("the removed model's memory given back", || {
        let mut p = p2.clone();
        async move {
            let rss = output_json(
                &p.predict(request("big", "\"rss\"", ""))
                    .await
                    .ok()?
                    .into_inner(),
            )
            .as_f64()?;
            (rss - base < 80.0).then_some(())
        }
    })
    .await;
    let e = p.predict(request("big", "{}", "1")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    worker.stop().await;
    store.stop().await;
}

/// Point 3 of the Cortex contract over gRPC: a raw body with its
/// Content-Type and headers reaches `predict` as Cortex passed it, and
/// text, bytes and a chosen status come back in the response's new fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_headers_reach_predict_and_bytes_come_back() {
    let source = r#"
class Reply:
    def __init__(self):
        self.status_code, self.body, self.media_type, self.headers = 202, b"queued", None, {}

class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload, headers):
        if payload == b"reply":
            return Reply()
        if isinstance(payload, bytes):
            return payload[::-1]
        return f"{type(payload).__name__} {payload!r} from {headers.get('x-user')}"
"#;
    let bucket = TestBucket::new(Backend::Local).await;
    let config = "- {name: b, predictor: {type: python, path: b.py}}";
    let (_store, worker) = serve(&bucket, config, source).await;
    let body = |body: &[u8], content_type: &str| PredictRequest {
        api: "b".to_owned(),
        payload: Some(predict_request::Payload::Body(body.to_vec())),
        content_type: content_type.to_owned(),
        headers: [("X-User".to_owned(), "ada".to_owned())].into(),
        ..Default::default()
    };
    let sent_bytes = first_answer(&worker, body(&[1, 2, 3], "application/octet-stream")).await;
    assert_eq!(
        sent_bytes.output,
        Some(hotswap_proto::v1::predict_response::Output::Body(vec![
            3, 2, 1
        ]))
    );
    assert_eq!(sent_bytes.content_type, "application/octet-stream");
    assert_eq!(sent_bytes.status_code, 0);

    let mut p = worker.predictor().await;
    for (sent, content_type, want) in [
        (
            &br#"{"a": 1}"#[..],
            "application/json",
            "dict {'a': 1} from ada",
        ),
        (b"hi", "text/plain; charset=utf-8", "str 'hi' from ada"),
        (
            b"k=v",
            "application/x-www-form-urlencoded",
            "dict {'k': 'v'} from ada",
        ),
    ] {
        let r = p
            .predict(body(sent, content_type))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.content_type, "text/plain; charset=utf-8",
            "{content_type}"
        );
        assert_eq!(
            r.output,
            Some(hotswap_proto::v1::predict_response::Output::Body(
                want.as_bytes().to_vec()
            )),
            "{content_type}"
        );
    }
    let chosen = p.predict(body(b"reply", "")).await.unwrap().into_inner();
    assert_eq!(chosen.status_code, 202);
    let bad = p.predict(body(b"{", "application/json")).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    assert!(bad.message().contains("not valid JSON"), "{bad:?}");
}

/// An API with models whose class has no load_model fails when it starts,
/// saying so; it never serves a call that would fail at get_model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_with_models_needs_load_model_at_start() {
    let source = "class PythonPredictor:\n    def __init__(self, config, python_client):\n        self.client = python_client\n    def predict(self, payload):\n        return self.client.get_model()\n";
    let (_bucket, _store, worker) = one_model_api(source).await;
    let status = first_refusal(&worker, request("m", "[1]", "latest")).await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("defines no load_model"),
        "{status:?}"
    );
}

/// Version folders beside a stray file make one unversioned model; the
/// version's reason says so, and asking for one of the numbers says why it
/// is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_file_beside_version_folders_is_named_when_a_version_is_not_found() {
    let bucket = TestBucket::new(Backend::Local).await;
    for key in ["m/1/weights.txt", "m/2/weights.txt", "m/README.md"] {
        bucket.put(key, "x").await;
    }
    let config = format!(
        "- {{name: m, predictor: {{type: python, path: m.py, multi_model_reloading: {{path: '{}'}}}}}}",
        bucket.uri("m")
    );
    let source = "class PythonPredictor:\n    def __init__(self, config, python_client):\n        self.client = python_client\n    def load_model(self, model_path):\n        return model_path\n    def predict(self, query_params):\n        return self.client.get_model(model_version=query_params['version'])\n";
    let (store, worker) = serve(&bucket, &config, source).await;
    let store = &store;
    let listed = eventually("the model-store indexed the folder", || async move {
        let listed = store
            .client()
            .await
            .list_models(hotswap_proto::v1::ListModelsRequest::default())
            .await
            .unwrap()
            .into_inner();
        (!listed.apis[0].models.is_empty()).then_some(listed)
    })
    .await;
    let versions = &listed.apis[0].models[0].versions;
    assert_eq!(versions.len(), 1, "{listed:?}");
    assert!(
        versions[0]
            .reason
            .contains("version folders (1, 2) sit beside other entries (README.md)"),
        "{listed:?}"
    );
    let status = first_refusal(&worker, request("m", "0", "2")).await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(
        status
            .message()
            .contains("sit beside other entries (README.md)"),
        "{status:?}"
    );
}

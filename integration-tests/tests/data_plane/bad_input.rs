//! Every kind of bad request is INVALID_ARGUMENT (or NOT_FOUND for names
//! that do not exist) with a message naming the input, over both protocols,
//! and the worker keeps serving afterwards.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, fixture, iris, iris_infer, predict_json,
};
use hotswap_proto::inference::model_infer_request::InferInputTensor;
use hotswap_proto::inference::{InferTensorContents, ModelInferRequest};
use hotswap_proto::v1::{PredictRequest, Tensor, Tensors, predict_request};
use tonic::Code;

const CONFIG: &str = "
- name: iris
  predictor: {type: onnx, models: {path: '{root}iris'}}
- name: pair
  predictor: {type: onnx, models: {path: '{root}pair'}}
";

/// Small enough that a 1,000-element input is over it.
const LIMIT: usize = 2048;

fn expect(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, needles: &[&str]) {
    let status = result.expect_err("the request must fail");
    assert_eq!(status.code(), code, "{status:?}");
    for n in needles {
        assert!(
            status.message().contains(n),
            "{:?} should mention {n:?}",
            status.message()
        );
    }
}

fn f32_input(name: &str, shape: Vec<i64>, values: &[f32]) -> InferInputTensor {
    InferInputTensor {
        name: name.into(),
        datatype: "FP32".into(),
        shape,
        contents: Some(InferTensorContents {
            fp32_contents: values.to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_requests_name_the_input_and_harm_nothing() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    bucket.put("pair/model.onnx", fixture("two_inputs")).await;
    let config = CONFIG.replace("{root}", &bucket.uri(""));
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let worker = WorkerServer::start_with(
        store.addr,
        &bucket,
        WorkerOptions {
            max_request_bytes: Some(LIMIT),
            ..Default::default()
        },
    )
    .await;
    let mut p = worker.predictor().await;
    let mut inf = worker.inference().await;
    eventually("both models ready", || {
        let w = &worker;
        async move { (w.ready_versions().await.len() == 2).then_some(()) }
    })
    .await;

    // Predict (JSON and tensors).
    let invalid = Code::InvalidArgument;
    expect(
        p.predict(predict_json("iris", "", "", r#"{"inputs": [[1,2,3,4]]}"#))
            .await,
        invalid,
        &["unknown input `inputs`", "`input`"],
    );
    expect(
        p.predict(predict_json("pair", "", "", r#"{"a": [[1,2,3]]}"#))
            .await,
        invalid,
        &["missing input `b`"],
    );
    expect(
        p.predict(predict_json("iris", "", "", "[[1, 2, 3]]")).await,
        invalid,
        &["input `input`", "shape [1, 3]", "[-1, 4]"],
    );
    expect(
        p.predict(predict_json("iris", "", "", "[1, 2, 3, 4]"))
            .await,
        invalid,
        &["input `input`", "shape [4]"],
    );
    expect(
        p.predict(predict_json("iris", "", "", r#"[["a", 2, 3, 4]]"#))
            .await,
        invalid,
        &["input `input`", "FP32"],
    );
    expect(
        p.predict(predict_json("iris", "", "", "[[1, 2, 3, 4]"))
            .await,
        invalid,
        &["not valid JSON"],
    );
    expect(
        p.predict(predict_json("iris", "", "", "[[1, 2], [3]]"))
            .await,
        invalid,
        &["input `input`", "not rectangular"],
    );
    expect(
        p.predict(predict_json("pair", "", "", "[[1, 2, 3]]")).await,
        invalid,
        &["bare value", "`a`", "`b`"],
    );
    let big = format!("[[{}]]", vec!["1.0"; 1000].join(","));
    expect(
        p.predict(predict_json("iris", "", "", &big)).await,
        invalid,
        &["payload", "limited to 2048 bytes"],
    );
    let wrong_dtype = PredictRequest {
        api: "iris".into(),
        payload: Some(predict_request::Payload::Tensors(Tensors {
            tensors: vec![Tensor {
                name: "input".into(),
                datatype: "INT64".into(),
                shape: vec![1, 4],
                data: vec![0; 32],
            }],
        })),
        ..Default::default()
    };
    expect(
        p.predict(wrong_dtype.clone()).await,
        invalid,
        &["input `input`", "INT64", "FP32"],
    );
    let mut short = wrong_dtype.clone();
    if let Some(predict_request::Payload::Tensors(t)) = &mut short.payload {
        t.tensors[0].datatype = "FP32".into();
        t.tensors[0].data = vec![0; 15];
    }
    expect(
        p.predict(short).await,
        invalid,
        &["input `input`", "15 raw bytes"],
    );
    expect(
        p.predict(PredictRequest {
            api: "iris".into(),
            ..Default::default()
        })
        .await,
        invalid,
        &["payload is missing"],
    );

    // Names that do not exist are NOT_FOUND and list what does.
    expect(
        p.predict(predict_json("irises", "", "", IRIS_INPUT)).await,
        Code::NotFound,
        &["api `irises`", "iris, pair"],
    );
    expect(
        p.predict(predict_json("iris", "setosa", "", IRIS_INPUT))
            .await,
        Code::NotFound,
        &["model `setosa`", "iris"],
    );
    expect(
        p.predict(predict_json("iris", "", "9", IRIS_INPUT)).await,
        Code::NotFound,
        &["\"9\"", "versions: 1"],
    );
    expect(
        p.predict(predict_json("iris", "", "newest", IRIS_INPUT))
            .await,
        Code::NotFound,
        &["\"newest\"", "versions: 1"],
    );

    // ModelInfer.
    let infer = |inputs: Vec<InferInputTensor>, raw: Vec<Vec<u8>>| ModelInferRequest {
        model_name: "pair".into(),
        inputs,
        raw_input_contents: raw.into_iter().map(Into::into).collect(),
        ..Default::default()
    };
    let a = || f32_input("a", vec![1, 3], &[1.0, 2.0, 3.0]);
    let b = || f32_input("b", vec![1, 3], &[1.0, 2.0, 3.0]);
    expect(
        inf.model_infer(infer(vec![a()], vec![])).await,
        invalid,
        &["missing input `b`"],
    );
    expect(
        inf.model_infer(infer(
            vec![a(), b(), f32_input("c", vec![1], &[1.0])],
            vec![],
        ))
        .await,
        invalid,
        &["unknown input `c`"],
    );
    expect(
        inf.model_infer(infer(
            vec![a(), f32_input("b", vec![3, 1], &[1.0, 2.0, 3.0])],
            vec![],
        ))
        .await,
        invalid,
        &["input `b`", "shape [3, 1]"],
    );
    expect(
        inf.model_infer(infer(
            vec![a(), f32_input("b", vec![1, 3], &[1.0, 2.0])],
            vec![],
        ))
        .await,
        invalid,
        &["input `b`", "3 elements"],
    );
    let mut as_int = b();
    as_int.datatype = "INT32".into();
    as_int.contents = Some(InferTensorContents {
        int_contents: vec![1, 2, 3],
        ..Default::default()
    });
    expect(
        inf.model_infer(infer(vec![a(), as_int], vec![])).await,
        invalid,
        &["input `b`", "INT32", "FP32"],
    );
    let mut unknown_type = b();
    unknown_type.datatype = "FLOAT32".into();
    expect(
        inf.model_infer(infer(vec![a(), unknown_type], vec![]))
            .await,
        invalid,
        &["input `b`", "unknown datatype"],
    );
    let raw_a = InferInputTensor {
        contents: None,
        ..a()
    };
    let raw_b = InferInputTensor {
        contents: None,
        ..b()
    };
    expect(
        inf.model_infer(infer(
            vec![raw_a.clone(), raw_b.clone()],
            vec![vec![0; 12], vec![0; 11]],
        ))
        .await,
        invalid,
        &["input `b`", "11 raw bytes"],
    );
    expect(
        inf.model_infer(infer(vec![raw_a.clone(), raw_b.clone()], vec![vec![0; 12]]))
            .await,
        invalid,
        &["raw_input_contents has 1 entries for 2 inputs"],
    );
    let huge = InferInputTensor {
        shape: vec![1000, 3],
        ..raw_b.clone()
    };
    expect(
        inf.model_infer(infer(vec![raw_a, huge], vec![vec![0; 12], vec![0; 12_000]]))
            .await,
        invalid,
        &["input `b`", "limited to 2048 bytes"],
    );
    expect(
        inf.model_infer(iris_infer("nope", "")).await,
        Code::NotFound,
        &["model `nope`", "iris, pair"],
    );
    expect(
        inf.model_infer(iris_infer("iris", "4")).await,
        Code::NotFound,
        &["versions: 1"],
    );

    // Still serving.
    let ok = inf
        .model_infer(iris_infer("iris", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.model_version, "1");
    worker.stop().await;
    store.stop().await;
}

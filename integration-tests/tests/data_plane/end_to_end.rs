//! Predict and ModelInfer answer with the right version; `latest` follows
//! new versions; metadata, config, statistics and the repository index
//! describe what is served.

use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, answer, fixture, iris, iris_infer, iris_label, output_json, predict_json,
};
use hotswap_proto::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use hotswap_proto::inference::{
    InferTensorContents, ModelConfigRequest, ModelInferRequest, ModelMetadataRequest,
    ModelReadyRequest, ModelStatisticsRequest, ServerReadyRequest,
};
use hotswap_proto::v1::{
    OutputFormat, PredictRequest, Tensor, Tensors, predict_request, predict_response,
};

use super::stack;

const CONFIG: &str = "
- name: iris
  predictor: {type: onnx, models: {path: '{root}iris'}}
- name: tools
  predictor:
    type: onnx
    models:
      paths:
        - {name: pair, path: '{root}pair'}
        - {name: ids, path: '{root}ids'}
";

#[tokio::test]
async fn predict_and_infer_follow_the_latest_version() {
    let (bucket, store, worker) = stack(CONFIG).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    bucket.put("pair/model.onnx", fixture("two_inputs")).await;
    bucket.put("ids/model.onnx", fixture("int64")).await;
    let mut predictor = worker.predictor().await;
    let mut inference = worker.inference().await;

    let first = eventually("iris version 1 served", || {
        let mut p = predictor.clone();
        async move {
            Some(
                p.predict(predict_json("iris", "", "latest", IRIS_INPUT))
                    .await
                    .ok()?
                    .into_inner(),
            )
        }
    })
    .await;
    assert_eq!(
        (first.model.as_str(), first.version, iris_label(&first)),
        ("iris", 1, 0)
    );
    assert!(
        inference
            .server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );

    // A new version becomes `latest` once loaded; the old one stays
    // reachable by number.
    bucket.put("iris/2/model.onnx", iris(1)).await;
    let second = answer(&predictor, "iris", "iris version 2 is latest", |r| {
        r.version == 2
    })
    .await;
    assert_eq!(iris_label(&second), 1);
    let pinned = predictor
        .predict(predict_json("iris", "iris", "1", IRIS_INPUT))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((pinned.version, iris_label(&pinned)), (1, 0));

    // ModelInfer: raw contents, typed contents, a chosen output.
    let r = inference
        .model_infer(iris_infer("iris", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.model_version, "2");
    let label_at = r.outputs.iter().position(|o| o.name == "label").unwrap();
    assert_eq!(r.outputs[label_at].datatype, "INT64");
    assert_eq!(
        i64::from_le_bytes(r.raw_output_contents[label_at][..8].try_into().unwrap()),
        1
    );
    let mut typed = iris_infer("iris", "1");
    typed.raw_input_contents.clear();
    typed.inputs[0].contents = Some(InferTensorContents {
        fp32_contents: vec![5.1, 3.5, 1.4, 0.2],
        ..Default::default()
    });
    typed.outputs = vec![InferRequestedOutputTensor {
        name: "label".into(),
        ..Default::default()
    }];
    typed.id = "req-7".into();
    let r = inference.model_infer(typed).await.unwrap().into_inner();
    assert_eq!(
        (r.model_version.as_str(), r.id.as_str(), r.outputs.len()),
        ("1", "req-7", 1)
    );
    assert_eq!(
        i64::from_le_bytes(r.raw_output_contents[0][..8].try_into().unwrap()),
        0
    );

    // Two inputs by JSON object; int64 through ModelInfer and tensors.
    let pair = predictor
        .predict(predict_json(
            "tools",
            "pair",
            "",
            r#"{"a": [[1, 2, 3]], "b": [[10, 20, 30]]}"#,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        output_json(&pair)["sum"],
        serde_json::json!([[11.0, 22.0, 33.0]])
    );
    assert_eq!(
        output_json(&pair)["product"],
        serde_json::json!([[10.0, 40.0, 90.0]])
    );
    let ids = ModelInferRequest {
        model_name: "tools/ids".into(),
        inputs: vec![InferInputTensor {
            name: "ids".into(),
            datatype: "INT64".into(),
            shape: vec![2, 2],
            contents: Some(InferTensorContents {
                int64_contents: vec![1, 2, 3, 5],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = inference
        .model_infer(ids.clone())
        .await
        .unwrap()
        .into_inner();
    let doubled = r.outputs.iter().position(|o| o.name == "doubled").unwrap();
    let values: Vec<i64> = r.raw_output_contents[doubled]
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values, vec![2, 4, 6, 10]);
    let mean = r.outputs.iter().position(|o| o.name == "mean").unwrap();
    assert_eq!(r.outputs[mean].datatype, "FP64");
    assert_eq!(r.outputs[mean].shape, vec![2, 1]);
    let tensors = PredictRequest {
        api: "tools".into(),
        model: "ids".into(),
        payload: Some(predict_request::Payload::Tensors(Tensors {
            tensors: vec![Tensor {
                name: "ids".into(),
                datatype: "INT64".into(),
                shape: vec![1, 2],
                data: [7i64, 9].iter().flat_map(|v| v.to_le_bytes()).collect(),
            }],
        })),
        output_format: OutputFormat::Tensors as i32,
        ..Default::default()
    };
    let r = predictor.predict(tensors).await.unwrap().into_inner();
    let Some(predict_response::Output::Tensors(out)) = r.output else {
        panic!("tensors expected")
    };
    let mean = out.tensors.iter().find(|t| t.name == "mean").unwrap();
    assert_eq!(f64::from_le_bytes(mean.data[..8].try_into().unwrap()), 8.0);

    // Metadata and config from the ONNX session; statistics count calls.
    let meta = inference
        .model_metadata(ModelMetadataRequest {
            name: "iris".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.versions, vec!["1", "2"]);
    assert_eq!(meta.platform, "onnxruntime_onnx");
    assert_eq!(
        (
            meta.inputs[0].name.as_str(),
            meta.inputs[0].datatype.as_str()
        ),
        ("input", "FP32")
    );
    assert_eq!(meta.inputs[0].shape, vec![-1, 4]);
    let config = inference
        .model_config(ModelConfigRequest {
            name: "tools/pair".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    let inputs: Vec<&str> = config.input.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(inputs, vec!["a", "b"]);
    assert_eq!(config.input[0].dims, vec![-1, 3]);
    let stats = inference
        .model_statistics(ModelStatisticsRequest {
            name: "iris".into(),
            version: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.model_stats.len(), 1);
    let s = &stats.model_stats[0];
    assert_eq!(s.version, "1");
    // First call (before v2 arrived), the pinned Predict and one ModelInfer.
    assert!(s.inference_count >= 3, "{s:?}");
    assert!(
        s.inference_stats
            .as_ref()
            .unwrap()
            .success
            .as_ref()
            .unwrap()
            .ns
            > 0
    );
    let ready = inference
        .model_ready(ModelReadyRequest {
            name: "pair".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        ready.ready,
        "a model name only one API has resolves on its own"
    );
    let mut index = worker.ready_versions().await;
    index.sort();
    assert_eq!(
        index,
        [
            ("iris", "1"),
            ("iris", "2"),
            ("tools/ids", "1"),
            ("tools/pair", "1")
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );

    // A removed version stops being latest and stops answering.
    bucket.delete_prefix("iris/2/").await;
    answer(&predictor, "iris", "version 2 gone", |r| r.version == 1).await;
    let gone = predictor
        .predict(predict_json("iris", "", "2", IRIS_INPUT))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    assert!(gone.message().contains("versions: 1"), "{}", gone.message());

    worker.stop().await;
    store.stop().await;
}

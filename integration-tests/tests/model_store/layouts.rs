//! The layouts a bucket may hold: the seed's valid ones produce the
//! expected snapshot, invalid ones are published INVALID with the reason.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::{StoreServer, Watcher, file_paths, is_valid};
use hotswap_proto::v1::{GetModelRequest, ListModelsRequest};

use crate::support::{SAVED_MODEL_SORTED, contents, put_all, put_saved_model};

/// 1. The seed's layouts produce the expected snapshot.
pub async fn seed_layouts(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    put_all(
        &bucket,
        &[
            "single/model.onnx",
            "versioned/1/model.onnx",
            "versioned/2/model.onnx",
        ],
    )
    .await;
    put_saved_model(&bucket, "tf/a").await;
    put_saved_model(&bucket, "tf/b/1").await;
    put_saved_model(&bucket, "tf/b/2").await;
    put_all(
        &bucket,
        &[
            "py/text-generator/model.pkl",
            "py/text-generator/data.txt",
            "py/sentiment/24753823/model.pkl",
            "py/sentiment/24753823/data.txt",
            "py/sentiment/26234288/model.pkl",
        ],
    )
    .await;
    let config = format!(
        r#"
- name: single
  predictor: {{type: onnx, models: {{path: "{single}"}}}}
- name: versioned
  predictor: {{type: onnx, models: {{path: "{versioned}"}}}}
- name: multi
  predictor:
    type: tensorflow
    models:
      paths:
        - {{name: a, path: "{a}"}}
        - {{name: b, path: "{b}"}}
- name: mixed
  predictor: {{type: python, path: predictor.py, multi_model_reloading: {{dir: "{py}"}}}}
"#,
        single = bucket.uri("single/"),
        versioned = bucket.uri("versioned"),
        a = bucket.uri("tf/a"),
        b = bucket.uri("tf/b/"),
        py = bucket.uri("py"),
    );
    let server = StoreServer::start(&bucket, &config, |_| {}).await;
    let watcher = Watcher::synced(&server).await;

    // (api, model, version, versioned, valid, location, files)
    #[allow(clippy::type_complexity)]
    let got: Vec<(String, String, u64, bool, bool, String, Vec<&str>)> = watcher
        .view
        .values()
        .map(|v| {
            (
                v.api.clone(),
                v.model.clone(),
                v.version,
                v.versioned,
                is_valid(v),
                v.location.clone(),
                file_paths(v),
            )
        })
        .collect();
    let tf = SAVED_MODEL_SORTED.to_vec();
    let row = |api: &str, model: &str, version, versioned, at: &str, files: Vec<&'static str>| {
        (
            api.to_owned(),
            model.to_owned(),
            version,
            versioned,
            true,
            bucket.uri(at),
            files,
        )
    };
    let expected = vec![
        row(
            "mixed",
            "sentiment",
            24753823,
            true,
            "py/sentiment/24753823/",
            vec!["data.txt", "model.pkl"],
        ),
        row(
            "mixed",
            "sentiment",
            26234288,
            true,
            "py/sentiment/26234288/",
            vec!["model.pkl"],
        ),
        row(
            "mixed",
            "text-generator",
            1,
            false,
            "py/text-generator/",
            vec!["data.txt", "model.pkl"],
        ),
        row("multi", "a", 1, false, "tf/a/", tf.clone()),
        row("multi", "b", 1, true, "tf/b/1/", tf.clone()),
        row("multi", "b", 2, true, "tf/b/2/", tf),
        row("single", "single", 1, false, "single/", vec!["model.onnx"]),
        row(
            "versioned",
            "versioned",
            1,
            true,
            "versioned/1/",
            vec!["model.onnx"],
        ),
        row(
            "versioned",
            "versioned",
            2,
            true,
            "versioned/2/",
            vec!["model.onnx"],
        ),
    ];
    assert_eq!(got, expected);
    for v in watcher.view.values() {
        assert_eq!(v.content_hash.len(), 64, "sha-256 hex");
        let prefix = v
            .location
            .strip_prefix(&bucket.uri(""))
            .expect("location in the bucket");
        for f in &v.files {
            let written = contents(&format!("{prefix}{}", f.path));
            assert_eq!(f.size, written.len() as u64, "{f:?}");
            assert!(!f.etag.is_empty() && f.modified.is_some(), "{f:?}");
        }
    }

    // The operator view agrees.
    let mut client = server.client().await;
    let list = client
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.revision, watcher.revision);
    let names: Vec<&str> = list
        .apis
        .iter()
        .map(|a| a.api.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["single", "versioned", "multi", "mixed"]);
    let versioned = &list.apis[1].models[0];
    assert_eq!(
        (versioned.model.as_str(), versioned.latest),
        ("versioned", Some(2))
    );
    assert!(
        list.apis
            .iter()
            .all(|a| a.sources.iter().all(|s| s.healthy))
    );
    let b = client
        .get_model(GetModelRequest {
            api: "multi".into(),
            model: "b".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((b.latest, b.versions.len()), (Some(2), 2));
    let missing = client
        .get_model(GetModelRequest {
            api: "multi".into(),
            model: "c".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert_eq!(
        missing.message(),
        "model `c` not found in api `multi`; models: a, b"
    );
    server.stop().await;
}

/// 4. Invalid layouts are published INVALID with the reason.
pub async fn invalid_layouts(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    put_all(
        &bucket,
        &[
            "onnx/none/1/model.txt",
            "onnx/two/1/a.onnx",
            "onnx/two/1/b.onnx",
            "onnx/ok/1/model.onnx",
            "onnx/mixed/1/model.onnx",
            "onnx/mixed/README.md",
            "tf/pb-only/1/saved_model.pb",
            "tf/no-pb/1/variables/variables.index",
            "tf/no-pb/1/variables/variables.data-00000-of-00001",
            "tf/onnx/1/model.onnx",
            "py/anything/1/weights.bin",
        ],
    )
    .await;
    put_saved_model(&bucket, "tf/ok/1").await;
    let config = format!(
        r#"
- {{name: onnx, predictor: {{type: onnx, models: {{dir: "{onnx}"}}}}}}
- {{name: tf, predictor: {{type: tensorflow, models: {{dir: "{tf}"}}}}}}
- {{name: inf, predictor: {{type: tensorflow, models: {{dir: "{tf}"}}}}, compute: {{inf: 1}}}}
- {{name: py, predictor: {{type: python, path: p.py, multi_model_reloading: {{dir: "{py}"}}}}}}
"#,
        onnx = bucket.uri("onnx"),
        tf = bucket.uri("tf"),
        py = bucket.uri("py"),
    );
    let server = StoreServer::start(&bucket, &config, |_| {}).await;
    let w = Watcher::synced(&server).await;
    let check = |api: &str, model: &str, valid: bool, reason: &str| {
        let v = w
            .view
            .values()
            .find(|v| v.api == api && v.model == model)
            .unwrap_or_else(|| panic!("{api}/{model} missing: {:?}", w.view.keys()));
        assert_eq!(is_valid(v), valid, "{api}/{model}: {}", v.reason);
        assert!(
            v.reason.contains(reason),
            "{api}/{model}: {:?} lacks {reason:?}",
            v.reason
        );
        if valid {
            assert_eq!(v.reason, "");
        }
    };
    check("onnx", "none", false, "found none (files: model.txt)");
    check("onnx", "two", false, "found 2 (a.onnx, b.onnx)");
    check("onnx", "ok", true, "");
    check(
        "onnx",
        "mixed",
        false,
        "version folders (1) sit beside other entries (README.md)",
    );
    check("tf", "ok", true, "");
    check(
        "tf",
        "pb-only",
        false,
        "missing variables/variables.index, variables/variables.data-*",
    );
    check("tf", "no-pb", false, "missing saved_model.pb");
    check("tf", "onnx", false, "missing saved_model.pb");
    // The same folders on Inferentia: saved_model.pb alone is the layout.
    check("inf", "pb-only", true, "");
    check("inf", "ok", true, "");
    check("inf", "no-pb", false, "expected saved_model.pb");
    check("inf", "onnx", false, "expected saved_model.pb");
    check("py", "anything", true, "");
    server.stop().await;
}

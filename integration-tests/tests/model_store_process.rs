//! `hotswap model-store` as a real process: it logs the address it bound,
//! reads cloud endpoints and credentials from the standard environment,
//! reports health, stops cleanly on SIGTERM and refuses bad configs.

use std::time::Duration;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::process::{Hotswap, model_store_args, run_hotswap};
use hotswap_integration_tests::wait::Wait;
use hotswap_proto::v1::model_store_client::ModelStoreClient;
use hotswap_proto::v1::{GetModelRequest, WatchRequest};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("apis.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A config serving `bucket`'s `iris` folder as an ONNX API, written in `dir`.
fn iris_config(dir: &std::path::Path, bucket: &TestBucket) -> String {
    write_config(
        dir,
        &format!(
            "- {{name: iris, predictor: {{type: onnx, models: {{path: \"{}\"}}}}}}",
            bucket.uri("iris")
        ),
    )
}

/// Starts the process on `bucket` and checks what an operator would: health
/// turns SERVING and the model is listed with its version.
async fn serve_and_check(bucket: &TestBucket, env: &[(&str, &str)]) {
    bucket.put("iris/7/model.onnx", "onnx bytes").await;
    let dir = tempfile::tempdir().unwrap();
    let config = iris_config(dir.path(), bucket);
    let mut hotswap = Hotswap::start(
        &model_store_args(&config, &["--poll-interval", "100ms"]),
        env,
    );
    let uri = format!("http://{}", hotswap.addr);
    let channel = tonic::transport::Channel::from_shared(uri.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel);
    hotswap
        .wait("the model-store healthy")
        .until(|| {
            let mut health = health.clone();
            async move {
                let status = health
                    .check(HealthCheckRequest {
                        service: "hotswap.v1.ModelStore".into(),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .status;
                (status == ServingStatus::Serving as i32).then_some(())
            }
        })
        .await;
    let mut client = ModelStoreClient::connect(uri).await.unwrap();
    let model = client
        .get_model(GetModelRequest {
            api: "iris".into(),
            model: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(model.latest, Some(7));
    assert_eq!(model.versions[0].location, bucket.uri("iris/7/"));

    // Connected clients do not hold up a clean exit.
    let status = hotswap.process.terminate(Duration::from_secs(8)).await;
    drop((client, health));
    assert!(status.success(), "exit {status}: {:#?}", hotswap.log());
    let log = hotswap.log();
    assert!(
        log.iter()
            .any(|l| l.contains("published") && l.contains("version=7")),
        "{log:#?}"
    );
}

#[tokio::test]
async fn serves_a_local_folder() {
    let bucket = TestBucket::new(Backend::Local).await;
    serve_and_check(&bucket, &[]).await;
}

#[tokio::test]
async fn serves_s3_with_the_standard_aws_environment() {
    let bucket = TestBucket::new(Backend::S3).await;
    let endpoint = bucket.emulator_endpoint().unwrap().to_owned();
    serve_and_check(
        &bucket,
        &[
            ("HOTSWAP_S3_ENDPOINT", &endpoint),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            // Keep the credential chain off the network and off this
            // machine's own AWS files.
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ],
    )
    .await;
}

#[tokio::test]
async fn serves_gcs_through_storage_emulator_host() {
    let bucket = TestBucket::new(Backend::Gcs).await;
    let host = bucket
        .emulator_endpoint()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    serve_and_check(&bucket, &[("STORAGE_EMULATOR_HOST", &host)]).await;
}

#[test]
fn a_bad_config_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "- name: iris\n  predictor:\n    type: onnx\n    models: {dir: /m, cache_size: 4, disk_cache_size: 2}\n",
    );
    let (code, stderr) = run_hotswap(&model_store_args(&config, &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "api `iris`: predictor.models.cache_size: must not exceed disk_cache_size (4 > 2)"
        ),
        "{stderr}"
    );
    let (code, stderr) = run_hotswap(&model_store_args("/nonexistent.yaml", &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent.yaml: cannot read"),
        "{stderr}"
    );
}

/// The Watch subscriber gauge follows subscribers as they come and go, with
/// no version published meanwhile.
#[tokio::test]
async fn the_subscriber_gauge_follows_watch_streams() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", "onnx bytes").await;
    let dir = tempfile::tempdir().unwrap();
    let config = iris_config(dir.path(), &bucket);
    let hotswap = Hotswap::start(
        &model_store_args(&config, &["--metrics-listen", "127.0.0.1:0"]),
        &[],
    );
    let metrics = hotswap.addr_of("metrics");
    let gauge = || {
        hotswap_integration_tests::process::metric(metrics, "hotswap_store_watch_subscribers", "")
    };
    let wait_for = async |want: f64| {
        Wait::new(format!("the gauge at {want}"))
            .context(|| format!("gauge {:?}", gauge()))
            .until(|| std::future::ready((gauge() == Some(want)).then_some(())))
            .await
    };
    let mut client = ModelStoreClient::connect(format!("http://{}", hotswap.addr))
        .await
        .unwrap();
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut stream = client
            .watch(WatchRequest::default())
            .await
            .unwrap()
            .into_inner();
        stream.message().await.unwrap().expect("a first message");
        streams.push(stream);
    }
    // Everything was published before the subscribers came.
    wait_for(2.0).await;
    streams.pop();
    wait_for(1.0).await;
    streams.clear();
    wait_for(0.0).await;
}

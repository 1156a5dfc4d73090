//! The stack under load while it is scaled, a worker is killed, a new
//! version arrives and the model-store restarts.

use std::sync::Arc;
use std::time::Duration;

use hotswap_integration_tests::compose::{Compose, docker};
use hotswap_integration_tests::process::workspace_root;
use hotswap_integration_tests::worker::{IRIS_INPUT, iris_infer, iris_label, predict_json};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::v1::ListWorkersRequest;
use hotswap_proto::v1::control_plane_client::ControlPlaneClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::Channel;

use crate::{Load, blocking, until, until_latest, workers, write_version};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_compose_stack_scales_survives_and_swaps_under_load() {
    // The iris example with versions 1 and 2 only; 3 arrives later.
    let models = workspace_root().join("examples/iris-onnx");
    let compose = Arc::new(
        blocking(move || {
            Compose::up(&models, |bucket| {
                std::fs::remove_dir_all(bucket.join("models/iris/3")).expect("drop version 3")
            })
        })
        .await,
    );
    let channel = Channel::from_shared(format!("http://{}", compose.addr))
        .unwrap()
        .connect_lazy();
    let internal = Channel::from_shared(format!("http://{}", compose.internal))
        .unwrap()
        .connect_lazy();
    until(&compose, "one worker registered", || async {
        (workers(&internal).await.len() == 1).then_some(())
    })
    .await;

    // 1. Predict and ModelInfer through the published port.
    let mut p = PredictorClient::new(channel.clone());
    until_latest(&compose, &p, 2, 1).await;
    let infer = GrpcInferenceServiceClient::new(channel.clone())
        .model_infer(iris_infer("iris", "1"))
        .await
        .expect("ModelInfer")
        .into_inner();
    assert_eq!(infer.model_version, "1");
    let one = p
        .predict(predict_json("iris", "", "1", IRIS_INPUT))
        .await
        .expect("version 1")
        .into_inner();
    assert_eq!(iris_label(&one), 0);
    // Registration and ListWorkers are not served where clients call.
    let front_list = ControlPlaneClient::new(channel.clone())
        .list_workers(ListWorkersRequest {})
        .await
        .expect_err("ListWorkers on the published front door");
    assert_eq!(front_list.code(), tonic::Code::Unimplemented);

    // 2. Scale 1 -> 3 under load: the new workers register and get calls.
    let load = Load::start(&channel);
    let c = compose.clone();
    blocking(move || c.run(&["up", "-d", "--no-recreate", "--scale", "data-plane=3"]))
        .await
        .expect("scale to 3");
    until(&compose, "three workers taking calls", || async {
        let w = workers(&internal).await;
        (w.len() == 3 && w.iter().all(|w| w.routed > 0)).then_some(())
    })
    .await;
    load.finish("scale 1 -> 3", &compose).await;

    // 3. Kill one worker container under load: it is dropped.
    let load = Load::start(&channel);
    let c = compose.clone();
    let victim = blocking(move || c.containers("data-plane")).await[0].clone();
    let short = victim[..12].to_owned();
    let before = workers(&internal).await;
    let killed_id = before
        .iter()
        .find(|w| w.address.starts_with(&short))
        .unwrap_or_else(|| panic!("no worker advertises container {short}: {before:?}"))
        .worker_id
        .clone();
    blocking(move || docker(&["kill", &victim]))
        .await
        .expect("docker kill");
    until(&compose, "the killed worker dropped", || async {
        let w = workers(&internal).await;
        (!w.iter().any(|w| w.worker_id == killed_id)).then_some(())
    })
    .await;
    // The restart policy brings the container back as a new worker; wait
    // until every running worker container is registered again.
    let c = compose.clone();
    until(&compose, "every running worker registered", || {
        let c = c.clone();
        let internal = internal.clone();
        async move {
            let running = blocking(move || c.containers("data-plane")).await;
            let registered = workers(&internal).await;
            let all = running
                .iter()
                .all(|id| registered.iter().any(|w| w.address.starts_with(&id[..12])));
            (all && registered.len() == running.len()).then_some(())
        }
    })
    .await;
    drop(c);
    load.finish("docker kill of a worker", &compose).await;

    // 4. Scale down to 1 under load.
    let load = Load::start(&channel);
    let c = compose.clone();
    blocking(move || c.run(&["up", "-d", "--no-recreate", "--scale", "data-plane=1"]))
        .await
        .expect("scale to 1");
    until(&compose, "one worker left", || async {
        (workers(&internal).await.len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    load.finish("scale 3 -> 1", &compose).await;

    // 5. A new version written into the mounted bucket becomes latest.
    let load = Load::start(&channel);
    write_version(&compose, 3, 2);
    until_latest(&compose, &p, 3, 2).await;
    let (_, versions) = load.finish("a new version", &compose).await;
    assert!(
        versions.contains(&3),
        "the load saw version 3: {versions:?}"
    );

    // 6. Restart the model-store under load: workers keep serving, then
    // catch up with a version written after it is back.
    let load = Load::start(&channel);
    let c = compose.clone();
    blocking(move || c.run(&["restart", "--timeout", "5", "model-store"]))
        .await
        .expect("restart the model-store");
    write_version(&compose, 4, 0);
    until_latest(&compose, &p, 4, 0).await;
    load.finish("a model-store restart", &compose).await;
    drop(p);
    drop(channel);
    drop(internal);
    let compose = Arc::try_unwrap(compose).unwrap_or_else(|_| panic!("compose still shared"));
    blocking(move || drop(compose)).await;
}

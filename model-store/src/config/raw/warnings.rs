//! Cortex fields that load but change nothing here: one warning each,
//! naming the field and what hotswap does instead.

use super::{PredictorType, RawApi};

impl RawApi {
    /// One line per Cortex field present that changes nothing here: the
    /// field, and what hotswap does instead.
    pub(super) fn warnings(&self) -> Vec<String> {
        let p = &self.predictor;
        let scaled = "replicas are the operator's (compose --scale, Kubernetes), not an API's";
        let runs_in_worker = "predictors run in the worker's image and Python environment \
                              (docs/configuration.md: adding packages)";
        let compute = &self.compute;
        [
            (self.autoscaling.is_some(), "autoscaling", scaled.to_owned()),
            (
                self.update_strategy.is_some(),
                "update_strategy",
                "workers swap each new model version in live; there is no rolling update".to_owned(),
            ),
            (
                self.networking.as_ref().is_some_and(|n| n.endpoint.is_some()),
                "networking.endpoint",
                format!("the API is called by its name (POST /{}, gRPC api field)", self.name),
            ),
            (
                self.networking.as_ref().is_some_and(|n| n.api_gateway.is_some()),
                "networking.api_gateway",
                "the control plane is the front door".to_owned(),
            ),
            (p.image.is_some(), "predictor.image", runs_in_worker.to_owned()),
            (
                p.tensorflow_serving_image.is_some(),
                "predictor.tensorflow_serving_image",
                "SavedModels run in the worker through TensorFlow's C library".to_owned(),
            ),
            (p.dependencies.is_some(), "predictor.dependencies", runs_in_worker.to_owned()),
            (
                p.python_path.is_some(),
                "predictor.python_path",
                "the predictor file is loaded on its own; import packages from the worker's \
                 Python environment"
                    .to_owned(),
            ),
            (
                p.log_level.is_some(),
                "predictor.log_level",
                "the worker's log level applies (RUST_LOG)".to_owned(),
            ),
            (
                p.shm_size.is_some(),
                "predictor.shm_size",
                "predictor processes use the worker's /dev/shm".to_owned(),
            ),
            (
                p.server_side_batching.is_some() && p.predictor_type == PredictorType::Python,
                "predictor.server_side_batching",
                "a python predictor's calls are not batched: each runs as it arrives (onnx and \
                 tensorflow APIs batch them)"
                    .to_owned(),
            ),
            (
                compute.cpu.is_some() || compute.mem.is_some(),
                "compute.cpu/mem",
                "resource requests for whoever schedules the workers; hotswap does not enforce them"
                    .to_owned(),
            ),
            (
                compute.gpu.is_some_and(|g| g > 0),
                "compute.gpu",
                format!(
                    "{} requested, but hotswap serves on CPU only: this API runs on CPU",
                    compute.gpu.unwrap_or(0)
                ),
            ),
        ]
        .into_iter()
        .filter(|(present, _, _)| *present)
        .map(|(_, field, what)| format!("{field}: {what}"))
        .collect()
    }
}

//! The one place that decides how an API is served. Everything else (the
//! worker's reconciler and services, the front door's routing, what a worker
//! reports) asks this rather than looking at predictor types itself.

use hotswap_proto::v1::{Api, PredictorType};

/// How an API is served: by the worker's own runtimes, or by a predictor
/// class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKind {
    /// The worker loads the API's model versions (ONNX, TensorFlow) and runs
    /// them itself; calls name a model and a version.
    Models,
    /// A predictor class runs the calls in Python processes: a Python
    /// predictor, or an ONNX/TensorFlow API with `predictor.path` (a class
    /// around the models, which reach it through its client). Calls name
    /// the API; its models are the class's business.
    Predictor,
}

impl ApiKind {
    /// How `api` is served: a Python predictor or a `predictor.path` makes
    /// it a predictor class.
    pub fn of(api: &Api) -> ApiKind {
        if api.predictor_type == PredictorType::Python as i32 || !api.predictor_source.is_empty() {
            ApiKind::Predictor
        } else {
            ApiKind::Models
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictor_classes_decide() {
        let api = |predictor_type: PredictorType, source: &str| Api {
            predictor_type: predictor_type as i32,
            predictor_source: source.to_owned(),
            ..Default::default()
        };
        assert_eq!(ApiKind::of(&api(PredictorType::Onnx, "")), ApiKind::Models);
        assert_eq!(
            ApiKind::of(&api(PredictorType::Tensorflow, "")),
            ApiKind::Models
        );
        assert_eq!(
            ApiKind::of(&api(PredictorType::Python, "class P: ...")),
            ApiKind::Predictor
        );
        assert_eq!(
            ApiKind::of(&api(PredictorType::Onnx, "class P: ...")),
            ApiKind::Predictor
        );
    }
}

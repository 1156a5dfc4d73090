//! The front door: `hotswap.v1.Predictor` and the Open Inference Protocol,
//! answered from the catalog where it can (names, versions, readiness, the
//! repository index) and routed to a worker where a model must run.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use hotswap_common::catalog::{Catalog, ModelRef, VersionKey, is_latest};
use hotswap_proto::inference::{
    self as pb, InferStatistics, ModelStatistics, StatisticDuration,
    repository_index_response::ModelIndex,
};
use hotswap_proto::limit::RequestLimit;
use hotswap_proto::service::{InferenceService, PredictorService};
use hotswap_proto::v1::{PredictRequest, PredictResponse};
use tokio::sync::watch;

use crate::Error;
use crate::registry::{Registry, Route};
use crate::router::Router;

/// The front-door services (Predict and the Open Inference Protocol):
/// resolve names against the catalog and route each call to a worker.
#[derive(Clone)]
pub struct FrontDoor {
    pub(crate) catalog: watch::Receiver<Arc<Catalog>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) router: Arc<Router>,
    /// The workers' limit on a request's payload: a call a worker would
    /// refuse for its size is refused here, before it is forwarded.
    pub(crate) limit: RequestLimit,
}

impl FrontDoor {
    fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// A model by protocol name and its resolved version.
    fn by_name(&self, name: &str, version: &str) -> Result<(ModelRef, VersionKey), Error> {
        let catalog = self.catalog();
        let m = catalog.model_by_name(name)?;
        let key = resolve(&catalog, &self.registry, &m, version)?;
        Ok((m, key))
    }
}

/// The version a call is routed by: the catalog's rule
/// ([`Catalog::resolve`]) with what the workers report holding. A `latest`
/// call still goes to the worker as `latest`: the worker applies the same
/// rule with what it knows first-hand (it starts loading a newer version in
/// the background, falls back when a new version fails to load), and its
/// answer names the version it used.
pub fn resolve(
    catalog: &Catalog,
    registry: &Registry,
    m: &ModelRef,
    version: &str,
) -> Result<VersionKey, Error> {
    let resolved = catalog.resolve(registry, m, version)?;
    Ok(VersionKey::of(resolved.first()))
}

#[async_trait]
impl PredictorService for FrontDoor {
    type Error = Error;

    async fn predict(&self, mut request: PredictRequest) -> Result<PredictResponse, Error> {
        let to = self.route_predict(&request.api, &request.model, &request.version)?;
        self.limit.check_predict(&request)?;
        if let Some((model, version)) = to.rename {
            request.model = model;
            request.version = version;
        }
        // Shared between the attempts: a retry sends this one request.
        let request = Arc::new(request);
        self.router
            .call(&to.route, |w| {
                let request = request.clone();
                async move { w.predict(request).await }
            })
            .await
    }
}

#[async_trait]
impl InferenceService for FrontDoor {
    type Error = Error;

    async fn server_live(&self) -> Result<pb::ServerLiveResponse, Error> {
        Ok(pb::ServerLiveResponse { live: true })
    }

    async fn server_ready(&self) -> Result<pb::ServerReadyResponse, Error> {
        Ok(pb::ServerReadyResponse {
            ready: self.catalog().complete && self.registry.any_ready(),
        })
    }

    async fn model_ready(&self, r: pb::ModelReadyRequest) -> Result<pb::ModelReadyResponse, Error> {
        let catalog = self.catalog();
        let m = catalog.model_by_name(&r.name)?;
        // On demand, any registered worker may load it.
        let ready =
            catalog.model_ready(&*self.registry, &m, &r.version, !self.registry.is_empty())?;
        Ok(pb::ModelReadyResponse { ready })
    }

    async fn server_metadata(&self) -> Result<pb::ServerMetadataResponse, Error> {
        Ok(hotswap_proto::service::server_metadata())
    }

    async fn model_metadata(
        &self,
        mut r: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, Error> {
        let (m, key) = self.by_name(&r.name, &r.version)?;
        r.name = m.protocol_name();
        r.version = forwarded_version(&r.version, &key);
        self.router
            .call(&Route::Version(key), |w| {
                let request = r.clone();
                async move { w.model_metadata(request).await }
            })
            .await
    }

    async fn model_infer(
        &self,
        mut r: pb::ModelInferRequest,
    ) -> Result<pb::ModelInferResponse, Error> {
        let to = self.route_infer(&r.model_name, &r.model_version)?;
        self.limit.check_infer(&r)?;
        let asked_as = std::mem::replace(&mut r.model_name, to.name);
        r.model_version = to.version;
        let forwarded = Arc::new(r);
        let mut response = self
            .router
            .call(&to.route, |w| {
                let request = forwarded.clone();
                async move { w.model_infer(request).await }
            })
            .await?;
        response.model_name = asked_as;
        Ok(response)
    }

    async fn model_config(
        &self,
        mut r: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, Error> {
        let (m, key) = self.by_name(&r.name, &r.version)?;
        r.name = m.protocol_name();
        r.version = forwarded_version(&r.version, &key);
        self.router
            .call(&Route::Version(key), |w| {
                let request = r.clone();
                async move { w.model_config(request).await }
            })
            .await
    }

    /// Every worker's counters, summed per model version.
    async fn model_statistics(
        &self,
        r: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, Error> {
        let mut forwarded = r.clone();
        if !r.name.is_empty() {
            forwarded.name = self.catalog().model_by_name(&r.name)?.protocol_name();
        }
        let calls = self.registry.all().into_iter().map(|w| {
            let request = forwarded.clone();
            // One slow worker must not hold up the whole answer.
            tokio::time::timeout(STATISTICS_TIMEOUT, async move {
                w.api.model_statistics(request).await
            })
        });
        let mut merged: BTreeMap<(String, String), ModelStatistics> = BTreeMap::new();
        for result in futures::future::join_all(calls).await {
            // A worker that cannot answer just contributes nothing.
            let Ok(Ok(response)) = result else { continue };
            for s in response.model_stats {
                let entry = merged
                    .entry((s.name.clone(), s.version.clone()))
                    .or_insert_with(|| ModelStatistics {
                        name: s.name.clone(),
                        version: s.version.clone(),
                        inference_stats: Some(InferStatistics::default()),
                        ..Default::default()
                    });
                entry.last_inference = entry.last_inference.max(s.last_inference);
                // Saturating: a worker's counters are its own word, and
                // an absurd one must not overflow the sum.
                entry.inference_count = entry.inference_count.saturating_add(s.inference_count);
                entry.execution_count = entry.execution_count.saturating_add(s.execution_count);
                if let (Some(total), Some(add)) =
                    (entry.inference_stats.as_mut(), s.inference_stats)
                {
                    add_duration(&mut total.success, add.success);
                    add_duration(&mut total.fail, add.fail);
                    add_duration(&mut total.queue, add.queue);
                    add_duration(&mut total.compute_input, add.compute_input);
                    add_duration(&mut total.compute_infer, add.compute_infer);
                    add_duration(&mut total.compute_output, add.compute_output);
                }
            }
        }
        Ok(pb::ModelStatisticsResponse {
            model_stats: merged.into_values().collect(),
        })
    }

    async fn repository_index(
        &self,
        r: pb::RepositoryIndexRequest,
    ) -> Result<pb::RepositoryIndexResponse, Error> {
        let catalog = self.catalog();
        let models = catalog
            .versions
            .iter()
            .map(|(key, v)| {
                let name = ModelRef {
                    api: key.api.clone(),
                    model: key.model.clone(),
                }
                .protocol_name();
                // Held only until a version within the policy loads: calls
                // naming it are NOT_FOUND, so it is not shown as ready.
                let (state, reason) = if Catalog::excluded(v) {
                    ("UNAVAILABLE", v.reason.clone())
                } else if self.registry.served_anywhere(&Route::Version(key.clone())) {
                    ("READY", String::new())
                } else if Catalog::valid(v) {
                    ("UNAVAILABLE", "not loaded on any worker".to_owned())
                } else {
                    ("UNAVAILABLE", format!("invalid: {}", v.reason))
                };
                ModelIndex {
                    name,
                    version: key.version.to_string(),
                    state: state.to_owned(),
                    reason,
                }
            })
            .filter(|m| !r.ready || m.state == "READY")
            .collect();
        Ok(pb::RepositoryIndexResponse { models })
    }
}

/// How long ModelStatistics waits for each worker.
const STATISTICS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The version to ask the worker for: `latest` stays `latest` (named, so
/// that the worker does not split it by `traffic` again: the control plane
/// has drawn already), a number is the number the catalog has.
pub(crate) fn forwarded_version(asked: &str, key: &VersionKey) -> String {
    if is_latest(asked) {
        "latest".to_owned()
    } else {
        key.version.to_string()
    }
}

fn add_duration(total: &mut Option<StatisticDuration>, add: Option<StatisticDuration>) {
    if let Some(add) = add {
        let t = total.get_or_insert_with(StatisticDuration::default);
        t.count = t.count.saturating_add(add.count);
        t.ns = t.ns.saturating_add(add.ns);
    }
}

mod forward;

#[cfg(test)]
mod tests;

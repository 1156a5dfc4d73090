//! The inference room: the one entry point every handler calls to run a
//! model (Predict, ModelInfer, a Python predictor's `onnx_client` /
//! `tensorflow_client`): resolve the version, acquire its instance from the
//! models room (loading it on demand), read the inputs against its
//! signature, batch or run, and record statistics. Metadata calls use the
//! first two steps alone ([`Inference::instance`]).

mod batch;
mod run;
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hotswap_common::catalog::{Catalog, ModelRef, Resolved, VersionKey};
use hotswap_proto::v1::ModelVersion;

use crate::Error;
use crate::models::{Loaded, Models, failure_error};
use crate::tensor::{Tensor, json};

pub use batch::{Batcher, Batching};
pub(crate) use run::off_runtime;
pub use stats::{Phases, Stats, VersionStats};

/// A call's inputs, as far as a handler can read them without the model.
pub enum Inputs {
    /// Named tensors, decoded.
    Tensors(Vec<Tensor>),
    /// JSON text checked for syntax and size, read into tensors with the
    /// model's signature once the version is known.
    Json(json::JsonPayload),
    /// A JSON value (from a Python predictor's client).
    Value(serde_json::Value),
}

/// One inference call.
pub struct Call {
    /// The model.
    pub model: ModelRef,
    /// A number, a label, `latest` or "".
    pub version: String,
    /// Whether a call naming no version may be sent to a version by the
    /// model's `traffic` weights (a client's call; not a predictor's).
    pub traffic: bool,
    /// The inputs.
    pub inputs: Inputs,
    /// Outputs asked for; empty for all.
    pub outputs: Vec<String>,
}

/// What answered a call.
pub struct Answer {
    /// The version that ran.
    pub key: VersionKey,
    /// Its outputs.
    pub outputs: Vec<Tensor>,
}

/// The execution side of a worker (see the module's doc).
pub struct Inference {
    models: Arc<Models>,
    stats: Stats,
    /// Requests running now.
    in_flight: AtomicUsize,
}

impl Inference {
    /// Execution over the instances `models` holds.
    pub fn new(models: Arc<Models>) -> Inference {
        Inference {
            models,
            stats: Stats::default(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The catalog as last received.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.models.catalog()
    }

    /// Per-version counters (ModelStatistics).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Requests running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether a call for `version` of `m` would be served without an
    /// error now (the catalog's one readiness rule, with this worker's
    /// holdings).
    pub fn model_ready(&self, m: &ModelRef, version: &str) -> Result<bool, Error> {
        Ok(self
            .catalog()
            .model_ready(&*self.models, m, version, true)?)
    }

    /// Runs a call: resolve → acquire → read inputs → batch or run →
    /// statistics.
    pub async fn infer(&self, call: Call) -> Result<Answer, Error> {
        let catalog = self.catalog();
        let picked = call
            .traffic
            .then(|| catalog.pick_by_traffic(&call.model, &call.version))
            .flatten();
        let version = picked.as_deref().unwrap_or(&call.version);
        let loaded = self.acquire(&catalog, &call.model, version).await?;
        let signature = loaded.model.signature();
        let inputs = match call.inputs {
            Inputs::Tensors(tensors) => tensors,
            Inputs::Json(text) => {
                let model = loaded.model.clone();
                run::off_runtime(text.text_len(), move || text.inputs(model.signature())).await?
            }
            Inputs::Value(value) => json::inputs(signature, &value)?,
        };
        let outputs = self.run(&loaded, inputs, call.outputs).await?;
        Ok(Answer {
            key: loaded.key.clone(),
            outputs,
        })
    }

    /// The instance a call for `version` of `m` is served with (for
    /// metadata, config and signatures), loaded if need be.
    pub async fn instance(&self, m: &ModelRef, version: &str) -> Result<Arc<Loaded>, Error> {
        self.acquire(&self.catalog(), m, version).await
    }

    /// The version's batching queue, made on first use when its API asks
    /// for batches and the model has a batch dimension.
    pub fn batcher<'a>(&self, loaded: &'a Loaded) -> Option<&'a Batcher> {
        loaded
            .batcher
            .get_or_init(|| {
                let api = self.catalog().apis.get(&loaded.key.api).cloned()?;
                Batcher::for_version(&api, loaded, self.stats.of(&loaded.key))
            })
            .as_ref()
    }

    /// Resolves and acquires: the first candidate that is published or
    /// loads. A newer version is loaded in the background meanwhile.
    async fn acquire(
        &self,
        catalog: &Catalog,
        m: &ModelRef,
        version: &str,
    ) -> Result<Arc<Loaded>, Error> {
        let loaded = match catalog.resolve(&*self.models, m, version)? {
            Resolved::Named(v) => self.published_or_load(v).await,
            Resolved::Held { version, newer } => {
                if let Some(newer) = newer {
                    self.models.load_in_background(newer);
                }
                self.published_or_load(version).await
            }
            Resolved::Load(candidates) => {
                let mut last = Error::NotFound("no version to serve".to_owned());
                let mut found = None;
                for v in candidates {
                    match self.models.load(v).await {
                        Ok(loaded) => {
                            found = Some(loaded);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                found.ok_or(last)
            }
            Resolved::Failing(v) => {
                let what = format!("{} version {}", m.protocol_name(), v.version);
                Err(match self.models.failure(&VersionKey::of(v)) {
                    Some(f) => failure_error(&f, what),
                    None => Error::LoadFailed {
                        what,
                        message: "failed".to_owned(),
                    },
                })
            }
        }?;
        self.models.touch(&loaded.key);
        Ok(loaded)
    }

    /// A resolved version's instance: the one published now (it serves as
    /// is, even if the version is removed a moment later: requests finish
    /// on what they found), or loaded.
    async fn published_or_load(&self, v: &ModelVersion) -> Result<Arc<Loaded>, Error> {
        match self.models.published(v) {
            Some(loaded) => Ok(loaded),
            None => self.models.load(v).await,
        }
    }

    /// Runs a model on inputs checked against its signature, off the async
    /// runtime where it may take long, and records statistics.
    async fn run(
        &self,
        loaded: &Arc<Loaded>,
        inputs: Vec<Tensor>,
        outputs: Vec<String>,
    ) -> Result<Vec<Tensor>, Error> {
        let stats = self.stats.of(&loaded.key);
        let start = Instant::now();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _done = InFlight(&self.in_flight);
        let signature = loaded.model.signature();
        let checked = signature
            .check_outputs(&outputs)
            .and_then(|()| signature.check_inputs(inputs));
        let checked_at = Instant::now();
        let result = match checked {
            Err(e) => Err(e),
            Ok(inputs) => match self
                .batcher(loaded)
                .and_then(|b| Some((b, b.rows(&inputs)?)))
            {
                Some((batcher, rows)) => {
                    let deadline = hotswap_common::context::deadline();
                    batcher.run(inputs, outputs, rows, deadline).await
                }
                None => run::run(&loaded.model, inputs, outputs, stats.runs_short()).await,
            },
        };
        match result {
            Ok((out, began, infer)) => {
                let phases = Phases {
                    input: checked_at.saturating_duration_since(start),
                    queue: began.saturating_duration_since(checked_at),
                    infer,
                    output: (began + infer).elapsed(),
                };
                stats.success(start.elapsed(), phases);
                Ok(out)
            }
            Err(e) => {
                stats.failure(start.elapsed());
                Err(e)
            }
        }
    }
}

/// Counts a request as running until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

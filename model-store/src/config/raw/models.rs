//! Validation of a models section (`predictor.models`, or a python
//! predictor's `multi_model_reloading`): where the models are, cache
//! limits, labels, traffic and version policies.

use std::collections::BTreeMap;
use std::path::Path;

use hotswap_storage::Location;

use super::super::{ModelSources, ModelsConfig, NamedModel, VersionPolicy};
use super::validation::{Invalid, check_model_name, check_positive, invalid};
use super::{PredictorType, RawModels};

impl RawModels {
    pub(super) fn validate(
        self,
        field: &str,
        ty: PredictorType,
        base: &Path,
    ) -> Result<ModelsConfig, Invalid> {
        let f = |name: &str| format!("{field}.{name}");
        for (name, set) in [
            ("version_labels", self.version_labels.is_some()),
            ("traffic", self.traffic.is_some()),
        ] {
            if self.paths.is_some() && set {
                return Err(invalid(
                    &f(name),
                    format!(
                        "with paths, set {name} on each paths entry (labels name one model's versions)"
                    ),
                ));
            }
        }
        let labels = version_labels(&f("version_labels"), self.version_labels)?;
        let split = traffic(&f("traffic"), self.traffic, &labels)?;
        // With `paths`, the default for entries that set none.
        let policy = VersionPolicy::parse(&f("version_policy"), self.version_policy)?;
        policy.check_labels(&f("version_labels"), &labels)?;
        let sources = match (self.path, self.paths, self.dir) {
            (Some(path), None, None) => ModelSources::Single(location(&f("path"), &path, base)?),
            (None, Some(paths), None) => {
                if paths.is_empty() {
                    return Err(invalid(&f("paths"), "lists no models"));
                }
                let mut named: Vec<NamedModel> = Vec::with_capacity(paths.len());
                for (i, entry) in paths.into_iter().enumerate() {
                    let at = f(&format!("paths[{i}]"));
                    check_model_name(&format!("{at}.name"), &entry.name)?;
                    if named.iter().any(|m| m.name == entry.name) {
                        return Err(invalid(
                            &format!("{at}.name"),
                            format!("model {:?} is listed twice", entry.name),
                        ));
                    }
                    if entry.signature_key.is_some() && ty != PredictorType::Tensorflow {
                        return Err(invalid(
                            &format!("{at}.signature_key"),
                            "only tensorflow predictors have signatures",
                        ));
                    }
                    named.push(NamedModel {
                        name: entry.name,
                        location: location(&format!("{at}.path"), &entry.path, base)?,
                        signature_key: entry.signature_key,
                        version_labels: version_labels(
                            &format!("{at}.version_labels"),
                            entry.version_labels,
                        )?,
                        traffic: BTreeMap::new(),
                        version_policy: match entry.version_policy {
                            Some(p) => {
                                VersionPolicy::parse(&format!("{at}.version_policy"), Some(p))?
                            }
                            None => policy.clone(),
                        },
                    });
                    let model = named.last_mut().expect("just pushed");
                    model.traffic = traffic(
                        &format!("{at}.traffic"),
                        entry.traffic,
                        &model.version_labels,
                    )?;
                    model
                        .version_policy
                        .check_labels(&format!("{at}.version_labels"), &model.version_labels)?;
                }
                ModelSources::Named(named)
            }
            (None, None, Some(dir)) => ModelSources::Dir(location(&f("dir"), &dir, base)?),
            (None, None, None) => {
                return Err(invalid(field, "set one of path, paths or dir"));
            }
            (path, paths, dir) => {
                let set: Vec<&str> = [
                    path.is_some().then_some("path"),
                    paths.is_some().then_some("paths"),
                    dir.is_some().then_some("dir"),
                ]
                .into_iter()
                .flatten()
                .collect();
                return Err(invalid(
                    field,
                    format!(
                        "set only one of path, paths or dir (found {})",
                        set.join(" and ")
                    ),
                ));
            }
        };
        check_positive(&f("cache_size"), self.cache_size)?;
        check_positive(&f("disk_cache_size"), self.disk_cache_size)?;
        if let (Some(mem), Some(disk)) = (self.cache_size, self.disk_cache_size)
            && mem > disk
        {
            return Err(invalid(
                &f("cache_size"),
                format!(
                    "must not exceed disk_cache_size ({mem} > {disk}): a model in memory is also on disk"
                ),
            ));
        }
        if self.signature_key.is_some() && ty != PredictorType::Tensorflow {
            return Err(invalid(
                &f("signature_key"),
                "only tensorflow predictors have signatures",
            ));
        }
        Ok(ModelsConfig {
            sources,
            cache_size: self.cache_size,
            disk_cache_size: self.disk_cache_size,
            signature_key: self.signature_key,
            version_labels: labels,
            traffic: split,
            version_policy: policy,
        })
    }
}

/// `traffic`: weights per label for calls that name no version. Every key
/// is a label of `version_labels`, and some weight is above 0.
fn traffic(
    field: &str,
    traffic: Option<BTreeMap<String, u32>>,
    labels: &BTreeMap<String, u64>,
) -> Result<BTreeMap<String, u32>, Invalid> {
    let traffic = traffic.unwrap_or_default();
    if let Some(unknown) = traffic.keys().find(|l| !labels.contains_key(*l)) {
        let known: Vec<&String> = labels.keys().collect();
        return Err(invalid(
            &format!("{field}.{unknown}"),
            format!(
                "not a label of version_labels (labels: {})",
                hotswap_common::list(&known)
            ),
        ));
    }
    if !traffic.is_empty() && traffic.values().all(|w| *w == 0) {
        return Err(invalid(field, "every weight is 0"));
    }
    Ok(traffic)
}

/// `version_labels`: names for version numbers. A label must not read as a
/// version itself (a number, or `latest`), so that what a call names is
/// never ambiguous; it need not name a version the bucket has (calls
/// naming it are refused until it does).
fn version_labels(
    field: &str,
    labels: Option<BTreeMap<String, u64>>,
) -> Result<BTreeMap<String, u64>, Invalid> {
    let labels = labels.unwrap_or_default();
    for (label, version) in &labels {
        let at = format!("{field}.{label}");
        let word = label
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !word || label.len() > 63 {
            return Err(invalid(
                &at,
                "a label starts with a letter and holds letters, digits, '-' and '_' (at most 63)",
            ));
        }
        if label == "latest" {
            return Err(invalid(&at, "`latest` already means the highest version"));
        }
        if *version == 0 {
            return Err(invalid(&at, "versions are numbered from 1"));
        }
    }
    Ok(labels)
}

fn location(field: &str, text: &str, base: &Path) -> Result<Location, Invalid> {
    Location::parse(text, base).map_err(|e| invalid(field, e.to_string()))
}

//! `version_policy`: which valid versions of a model are served, in TF
//! Serving's and Triton's three forms. Read from YAML by hand rather than by
//! serde's untagged enums, so a mistake gets a message saying which forms
//! exist instead of "did not match any variant".

use std::collections::BTreeMap;

use hotswap_proto::v1 as proto;
use serde_yaml::Value;

use super::raw::{Invalid, invalid};

/// `version_policy`: which of a model's valid versions are served.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionPolicy {
    /// Every valid version (Cortex's behaviour, hence the default).
    #[default]
    All,
    /// The this-many highest valid versions.
    Latest(u32),
    /// These versions, ascending and without repeats.
    Specific(Vec<u64>),
}

const FORMS: &str = "expected all, {latest: N} or {specific: [versions]}";

impl VersionPolicy {
    /// The policy written at `field`; `None` (not written) is `All`.
    pub(super) fn parse(field: &str, value: Option<Value>) -> Result<VersionPolicy, Invalid> {
        let Some(value) = value else {
            return Ok(VersionPolicy::All);
        };
        match value {
            Value::String(word) if word == "all" => Ok(VersionPolicy::All),
            Value::Mapping(map) if map.len() == 1 => {
                let (key, value) = map.into_iter().next().expect("one entry");
                let at = |k: &str| format!("{field}.{k}");
                match key.as_str() {
                    Some("all")
                        if value.is_null() || value.as_mapping().is_some_and(|m| m.is_empty()) =>
                    {
                        Ok(VersionPolicy::All)
                    }
                    Some("latest") => match value.as_u64() {
                        Some(n) if n >= 1 && n <= u64::from(u32::MAX) => {
                            Ok(VersionPolicy::Latest(n as u32))
                        }
                        _ => Err(invalid(
                            &at("latest"),
                            "the number of versions to serve, at least 1",
                        )),
                    },
                    Some("specific") => {
                        let bad = || {
                            invalid(
                                &at("specific"),
                                "a list of version numbers, each at least 1",
                            )
                        };
                        let list = value.as_sequence().ok_or_else(bad)?;
                        let mut versions = list
                            .iter()
                            .map(|v| v.as_u64().filter(|n| *n >= 1).ok_or_else(bad))
                            .collect::<Result<Vec<u64>, Invalid>>()?;
                        if versions.is_empty() {
                            return Err(invalid(&at("specific"), "lists no versions"));
                        }
                        versions.sort_unstable();
                        versions.dedup();
                        Ok(VersionPolicy::Specific(versions))
                    }
                    _ => Err(invalid(field, FORMS)),
                }
            }
            _ => Err(invalid(field, FORMS)),
        }
    }

    /// Refuses labels naming versions a `specific` policy leaves out: known
    /// at load, unlike a label naming a version not uploaded yet.
    pub(super) fn check_labels(
        &self,
        field: &str,
        labels: &BTreeMap<String, u64>,
    ) -> Result<(), Invalid> {
        let VersionPolicy::Specific(versions) = self else {
            return Ok(());
        };
        match labels.iter().find(|(_, n)| !versions.contains(n)) {
            Some((label, n)) => Err(invalid(
                &format!("{field}.{label}"),
                format!(
                    "names version {n}, which version_policy {} leaves out",
                    describe(&self.to_proto())
                ),
            )),
            None => Ok(()),
        }
    }

    /// The policy as subscribers receive it.
    pub fn to_proto(&self) -> proto::VersionPolicy {
        use proto::version_policy::Policy;
        proto::VersionPolicy {
            policy: match self {
                VersionPolicy::All => None,
                VersionPolicy::Latest(n) => Some(Policy::Latest(*n)),
                VersionPolicy::Specific(versions) => {
                    Some(Policy::Specific(proto::SpecificVersions {
                        versions: versions.clone(),
                    }))
                }
            },
        }
    }
}

/// The policy as the config writes it, for messages: `latest: 2`,
/// `specific: [1, 3]`, `all`.
pub fn describe(policy: &proto::VersionPolicy) -> String {
    use proto::version_policy::Policy;
    match &policy.policy {
        None => "all".to_owned(),
        Some(Policy::Latest(n)) => format!("latest: {n}"),
        Some(Policy::Specific(s)) => {
            let versions: Vec<String> = s.versions.iter().map(u64::to_string).collect();
            format!("specific: [{}]", versions.join(", "))
        }
    }
}

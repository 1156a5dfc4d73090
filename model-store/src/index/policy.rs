//! Each model's `version_policy`, applied to its settled versions: a valid
//! version the policy leaves out becomes EXCLUDED, with the reason, and
//! becomes VALID again when the policy takes it back (a newer version
//! removed). Applied to settled versions only, so an upload still in
//! progress never pushes the serving version out; invalid versions never
//! count, so neither does a broken one.

use std::collections::BTreeMap;

use hotswap_proto::v1::version_policy::Policy;
use hotswap_proto::v1::{ModelVersion, VersionPolicy, VersionState};

use crate::config::describe_policy;

/// The state and reason each of a model's `versions` (ascending) should
/// have under `policy`, for those that differ from what they have now.
pub(super) fn changes(
    policy: Option<&VersionPolicy>,
    versions: &[&ModelVersion],
) -> BTreeMap<u64, (VersionState, String)> {
    let counted: Vec<u64> = versions
        .iter()
        .filter(|v| v.versioned && eligible(v))
        .map(|v| v.version)
        .collect();
    let kept: Vec<u64> = match policy.and_then(|p| p.policy.as_ref()) {
        None => counted.clone(),
        Some(Policy::Latest(n)) => counted.iter().rev().take(*n as usize).copied().collect(),
        Some(Policy::Specific(s)) => counted
            .iter()
            .filter(|v| s.versions.contains(v))
            .copied()
            .collect(),
    };
    let reason = policy.map(|p| match &p.policy {
        Some(Policy::Latest(_)) => {
            let mut newest: Vec<String> = kept.iter().map(u64::to_string).collect();
            newest.reverse();
            format!(
                "outside version_policy {} (the versions served: {})",
                describe_policy(p),
                newest.join(", ")
            )
        }
        _ => format!("outside version_policy {}", describe_policy(p)),
    });
    versions
        .iter()
        .filter(|v| v.versioned && eligible(v))
        .filter_map(|v| {
            let wanted = if kept.contains(&v.version) {
                (VersionState::Valid, String::new())
            } else {
                (VersionState::Excluded, reason.clone().unwrap_or_default())
            };
            (v.state != wanted.0 as i32 || v.reason != wanted.1).then_some((v.version, wanted))
        })
        .collect()
}

/// Valid by its files (an excluded version is one).
fn eligible(v: &ModelVersion) -> bool {
    v.state == VersionState::Valid as i32 || v.state == VersionState::Excluded as i32
}

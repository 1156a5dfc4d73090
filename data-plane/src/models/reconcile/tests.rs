use std::collections::BTreeSet;

use hotswap_proto::v1::{ModelVersion, VersionState};

use super::*;

/// Versions published here, by number.
struct Held(BTreeSet<u64>);

impl Holdings for Held {
    fn held(&self, v: &ModelVersion) -> bool {
        self.0.contains(&v.version)
    }
}

fn catalog(versions: &[(u64, VersionState)]) -> Catalog {
    Catalog {
        complete: true,
        versions: versions
            .iter()
            .map(|&(n, state)| {
                let v = ModelVersion {
                    api: "a".into(),
                    model: "m".into(),
                    version: n,
                    state: state as i32,
                    ..Default::default()
                };
                (VersionKey::of(&v), v)
            })
            .collect(),
        ..Default::default()
    }
}

fn key(n: u64) -> VersionKey {
    VersionKey {
        api: "a".into(),
        model: "m".into(),
        version: n,
    }
}

use VersionState::{Excluded, Invalid, Valid};

#[test]
fn a_version_gone_from_the_index_leaves_and_is_forgotten() {
    let c = catalog(&[(2, Valid)]);
    let held = Held([1].into());
    assert_eq!(leaves(&held, &c, &key(1), true), Some(true));
    assert_eq!(leaves(&held, &c, &key(2), false), None, "valid: stays");
}

#[test]
fn a_version_outside_the_policy_is_unloaded_only_once_one_within_it_serves() {
    let c = catalog(&[(1, Valid), (2, Excluded)]);
    // Version 1 (within the policy) failed to load: 2 keeps serving.
    assert_eq!(leaves(&Held([2].into()), &c, &key(2), true), None);
    // Version 1 is published here now: 2 is unloaded for the policy.
    assert_eq!(leaves(&Held([1, 2].into()), &c, &key(2), true), Some(false));
    // Not published: nothing to hold.
    assert_eq!(leaves(&Held([].into()), &c, &key(2), false), Some(false));
}

#[test]
fn an_invalid_update_keeps_serving_its_last_good_content() {
    let c = catalog(&[(1, Invalid)]);
    assert_eq!(leaves(&Held([1].into()), &c, &key(1), true), None);
    assert_eq!(leaves(&Held([].into()), &c, &key(1), false), Some(false));
}

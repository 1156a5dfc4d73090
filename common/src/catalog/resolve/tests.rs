use std::collections::BTreeSet;

use hotswap_proto::v1::{Api, ModelSource, ModelVersion, VersionState};

use super::*;
use crate::catalog::VersionKey;

/// Versions held and failing, by number.
#[derive(Default)]
struct Seen {
    held: BTreeSet<u64>,
    failing: BTreeSet<u64>,
}

impl Holdings for Seen {
    fn held(&self, v: &ModelVersion) -> bool {
        self.held.contains(&v.version)
    }

    fn failing(&self, v: &ModelVersion) -> bool {
        self.failing.contains(&v.version)
    }
}

fn seen(held: &[u64], failing: &[u64]) -> Seen {
    Seen {
        held: held.iter().copied().collect(),
        failing: failing.iter().copied().collect(),
    }
}

/// API `a`, model `m`, with versions in the given states, label `stable`
/// naming version 1; `cache_size` > 0 loads on demand.
fn catalog(versions: &[(u64, VersionState)], cache_size: u32) -> Catalog {
    let source = ModelSource {
        name: "m".into(),
        version_labels: [("stable".to_owned(), 1)].into(),
        ..Default::default()
    };
    let api = Api {
        name: "a".into(),
        sources: vec![source],
        cache_size,
        ..Default::default()
    };
    Catalog {
        complete: true,
        apis: [("a".to_owned(), api)].into(),
        versions: versions
            .iter()
            .map(|&(n, state)| {
                let v = ModelVersion {
                    api: "a".into(),
                    model: "m".into(),
                    version: n,
                    state: state as i32,
                    reason: format!("reason {n}"),
                    ..Default::default()
                };
                (VersionKey::of(&v), v)
            })
            .collect(),
        ..Default::default()
    }
}

fn m() -> ModelRef {
    ModelRef {
        api: "a".into(),
        model: "m".into(),
    }
}

use VersionState::{Excluded, Invalid, Valid};

/// The version numbers a resolution names, in order.
fn numbers(r: &Resolved) -> (&'static str, Vec<u64>) {
    match r {
        Resolved::Named(v) => ("named", vec![v.version]),
        Resolved::Held { version, newer } => (
            "held",
            std::iter::once(version.version)
                .chain(newer.map(|n| n.version))
                .collect(),
        ),
        Resolved::Load(vs) => ("load", vs.iter().map(|v| v.version).collect()),
        Resolved::Failing(v) => ("failing", vec![v.version]),
    }
}

#[test]
fn latest_is_the_newest_version_held_with_a_newer_one_to_load() {
    let c = catalog(&[(1, Valid), (2, Valid), (3, Valid)], 0);
    let r = c.resolve(&seen(&[1, 2], &[]), &m(), "latest").unwrap();
    assert_eq!(numbers(&r), ("held", vec![2, 3]));
    // "" means latest too; nothing newer to load when the newest is held.
    let r = c.resolve(&seen(&[3], &[]), &m(), "").unwrap();
    assert_eq!(numbers(&r), ("held", vec![3]));
}

#[test]
fn latest_with_nothing_held_loads_the_newest_valid_first_skipping_failing_ones() {
    let c = catalog(&[(1, Valid), (2, Invalid), (3, Valid), (4, Valid)], 0);
    let r = c.resolve(&seen(&[], &[4]), &m(), "latest").unwrap();
    assert_eq!(numbers(&r), ("load", vec![3, 1]));
    // A failing newer version is not loaded beside what is held.
    let r = c.resolve(&seen(&[1], &[4]), &m(), "latest").unwrap();
    assert_eq!(numbers(&r), ("held", vec![1, 3]));
}

#[test]
fn latest_when_every_valid_version_fails_names_the_newest_failure() {
    let c = catalog(&[(1, Valid), (2, Valid), (3, Invalid)], 0);
    let r = c.resolve(&seen(&[], &[1, 2]), &m(), "latest").unwrap();
    assert_eq!(numbers(&r), ("failing", vec![2]));
}

#[test]
fn a_held_version_outside_the_policy_serves_latest_until_one_within_it_loads() {
    let c = catalog(&[(1, Valid), (2, Excluded)], 0);
    // Version 2 is held and excluded: version 1 is loaded beside it even
    // though it is older.
    let r = c.resolve(&seen(&[2], &[]), &m(), "latest").unwrap();
    assert_eq!(numbers(&r), ("held", vec![2, 1]));
    // Named by number it is not served.
    let e = c.resolve(&seen(&[2], &[]), &m(), "2").unwrap_err();
    assert!(
        matches!(&e, CatalogError::NotFound(s) if s.contains("is not served")),
        "{e}"
    );
}

#[test]
fn only_excluded_versions_are_not_found_with_the_policys_reason() {
    let c = catalog(&[(1, Excluded)], 0);
    let e = c.resolve(&seen(&[], &[]), &m(), "latest").unwrap_err();
    assert_eq!(
        e,
        CatalogError::NotFound("`a/m` has no version to serve: version 1 is reason 1".into())
    );
}

#[test]
fn numbers_and_labels_name_a_version_an_invalid_one_only_while_held() {
    let c = catalog(&[(1, Valid), (2, Invalid)], 0);
    let none = seen(&[], &[]);
    assert_eq!(
        numbers(&c.resolve(&none, &m(), "stable").unwrap()),
        ("named", vec![1])
    );
    assert_eq!(
        numbers(&c.resolve(&none, &m(), " 1 ").unwrap()),
        ("named", vec![1])
    );
    let e = c.resolve(&none, &m(), "2").unwrap_err();
    assert_eq!(
        e,
        CatalogError::Unservable("version 2 of `a/m` is invalid: reason 2".into())
    );
    // Held: its last good content serves.
    let r = c.resolve(&seen(&[2], &[]), &m(), "2").unwrap();
    assert_eq!(numbers(&r), ("named", vec![2]));
    assert!(matches!(
        c.resolve(&none, &m(), "7"),
        Err(CatalogError::NotFound(_))
    ));
}

#[test]
fn no_valid_version_and_no_versions_say_so() {
    let c = catalog(&[(1, Invalid), (2, Invalid)], 0);
    let e = c.resolve(&seen(&[], &[]), &m(), "").unwrap_err();
    assert_eq!(
        e,
        CatalogError::Unservable(
            "`a/m` has no valid version; version 2 is invalid: reason 2".into()
        )
    );
    let c = catalog(&[], 0);
    let e = c.resolve(&seen(&[], &[]), &m(), "").unwrap_err();
    assert_eq!(e, CatalogError::NotFound("`a/m` has no versions".into()));
    let incomplete = Catalog::default();
    assert_eq!(
        incomplete.resolve(&seen(&[], &[]), &m(), "1"),
        Err(CatalogError::NotReady)
    );
}

#[test]
fn a_model_is_ready_when_held_or_loadable_on_demand() {
    let eager = catalog(&[(1, Valid), (2, Valid)], 0);
    let on_demand = catalog(&[(1, Valid), (2, Valid)], 2);
    let ready = |c: &Catalog, s: &Seen, v: &str, can_load: bool| {
        c.model_ready(s, &m(), v, can_load).unwrap()
    };
    assert!(ready(&eager, &seen(&[1], &[]), "", true), "held");
    assert!(
        !ready(&eager, &seen(&[], &[]), "", true),
        "eager, not loaded"
    );
    assert!(ready(&on_demand, &seen(&[], &[]), "2", true), "on demand");
    assert!(
        !ready(&on_demand, &seen(&[], &[]), "2", false),
        "nowhere to load"
    );
    assert!(!ready(&on_demand, &seen(&[], &[2]), "2", true), "failing");
    assert!(
        !ready(&on_demand, &seen(&[], &[1, 2]), "", true),
        "all failing"
    );
    assert!(matches!(
        eager.model_ready(&seen(&[], &[]), &m(), "9", true),
        Err(CatalogError::NotFound(_))
    ));
}

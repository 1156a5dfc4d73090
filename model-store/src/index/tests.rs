use std::time::{Duration, Instant};

use hotswap_proto::v1::{Api, ModelVersion, VersionState};

use super::*;

const SETTLE: Duration = Duration::from_secs(1);

fn version(model: &str, version: u64, hash: &str) -> ModelVersion {
    ModelVersion {
        api: "api".into(),
        model: model.into(),
        version,
        content_hash: hash.into(),
        ..ModelVersion::default()
    }
}

fn index(history: usize) -> Index {
    let api = Api {
        name: "api".into(),
        ..Api::default()
    };
    Index::new(vec![api], history, 16)
}

/// (kind, model, version, hash) of each event.
fn kinds(events: &[Arc<WatchResponse>]) -> Vec<(EventKind, String, u64, String)> {
    events
        .iter()
        .map(|e| match &e.kind {
            Some(watch_response::Kind::Event(ev)) => {
                let v = ev.version.as_ref().unwrap();
                (
                    EventKind::try_from(ev.kind).unwrap(),
                    v.model.clone(),
                    v.version,
                    v.content_hash.clone(),
                )
            }
            other => panic!("not an event: {other:?}"),
        })
        .collect()
}

fn ev(kind: EventKind, model: &str, version: u64, hash: &str) -> (EventKind, String, u64, String) {
    (kind, model.into(), version, hash.into())
}

#[test]
fn a_version_is_published_once_unchanged_for_the_settle_interval() {
    let mut idx = index(100);
    let t0 = Instant::now();
    let scope = Scope::Api;
    assert!(
        idx.apply("api", scope, vec![version("m", 1, "a")], t0, SETTLE)
            .is_empty()
    );
    // Still uploading: the content changed, the clock restarts.
    let t1 = t0 + SETTLE;
    assert!(
        idx.apply("api", scope, vec![version("m", 1, "b")], t1, SETTLE)
            .is_empty()
    );
    assert!(
        idx.apply(
            "api",
            scope,
            vec![version("m", 1, "b")],
            t1 + SETTLE / 2,
            SETTLE
        )
        .is_empty()
    );
    let events = idx.apply(
        "api",
        scope,
        vec![version("m", 1, "b")],
        t1 + SETTLE,
        SETTLE,
    );
    assert_eq!(kinds(&events), [ev(EventKind::Added, "m", 1, "b")]);
    assert_eq!(events[0].revision, 1);
    // Seen again unchanged: nothing new.
    assert!(
        idx.apply(
            "api",
            scope,
            vec![version("m", 1, "b")],
            t1 + SETTLE * 2,
            SETTLE
        )
        .is_empty()
    );
    assert_eq!(idx.revision(), 1);
}

#[test]
fn updates_settle_and_removals_are_immediate() {
    let mut idx = index(100);
    let t = Instant::now();
    let scope = Scope::Api;
    idx.apply(
        "api",
        scope,
        vec![version("m", 1, "a"), version("m", 2, "x")],
        t,
        Duration::ZERO,
    );
    let events = idx.apply(
        "api",
        scope,
        vec![version("m", 1, "a2"), version("m", 2, "x")],
        t,
        SETTLE,
    );
    assert!(events.is_empty(), "an update waits for the settle interval");
    let events = idx.apply(
        "api",
        scope,
        vec![version("m", 1, "a2")],
        t + SETTLE,
        SETTLE,
    );
    assert_eq!(
        kinds(&events),
        [
            ev(EventKind::Updated, "m", 1, "a2"),
            ev(EventKind::Removed, "m", 2, "x")
        ]
    );
    let events = idx.apply("api", scope, vec![], t + SETTLE * 2, SETTLE);
    assert_eq!(kinds(&events), [ev(EventKind::Removed, "m", 1, "a2")]);
    assert_eq!(idx.revision(), 5);
}

#[test]
fn a_listing_only_speaks_for_its_scope() {
    let mut idx = index(100);
    let t = Instant::now();
    idx.apply(
        "api",
        Scope::Model("a"),
        vec![version("a", 1, "h")],
        t,
        Duration::ZERO,
    );
    idx.apply(
        "api",
        Scope::Model("b"),
        vec![version("b", 1, "h")],
        t,
        Duration::ZERO,
    );
    // b's listing says nothing about a.
    let events = idx.apply("api", Scope::Model("b"), vec![], t, Duration::ZERO);
    assert_eq!(kinds(&events), [ev(EventKind::Removed, "b", 1, "h")]);
    assert_eq!(idx.snapshot().versions.len(), 1);
    // A version disappearing while pending is forgotten, not published.
    idx.apply(
        "api",
        Scope::Model("c"),
        vec![version("c", 1, "h")],
        t,
        SETTLE,
    );
    idx.apply("api", Scope::Model("c"), vec![], t + SETTLE, SETTLE);
    let events = idx.apply(
        "api",
        Scope::Model("c"),
        vec![version("c", 1, "h")],
        t + SETTLE * 2,
        SETTLE,
    );
    assert!(events.is_empty(), "the settle clock restarted");
}

fn replay_revisions(start: Start) -> Option<Vec<u64>> {
    match start {
        Start::Replay(events) => Some(events.iter().map(|e| e.revision).collect()),
        Start::Snapshot(_) => None,
    }
}

#[test]
fn resuming_replays_exactly_what_was_missed() {
    let mut idx = index(100);
    let t = Instant::now();
    for v in 1..=5 {
        let all: Vec<_> = (1..=v).map(|n| version("m", n, "h")).collect();
        idx.apply("api", Scope::Api, all, t, Duration::ZERO);
    }
    let inc = idx.incarnation().to_owned();
    assert_eq!(
        replay_revisions(idx.subscribe(&inc, 2).0),
        Some(vec![3, 4, 5])
    );
    assert_eq!(replay_revisions(idx.subscribe(&inc, 5).0), Some(vec![]));
    // Unknown incarnation, a fresh client, or a revision from the future: snapshot.
    assert_eq!(replay_revisions(idx.subscribe("other", 2).0), None);
    assert_eq!(replay_revisions(idx.subscribe(&inc, 0).0), None);
    assert_eq!(replay_revisions(idx.subscribe(&inc, 6).0), None);
    match idx.subscribe(&inc, 0).0 {
        Start::Snapshot(s) => {
            assert_eq!(s.revision, 5);
            assert_eq!(s.versions.len(), 5);
        }
        Start::Replay(_) => unreachable!(),
    }
}

#[test]
fn an_expired_revision_gets_a_snapshot() {
    let mut idx = index(3);
    let t = Instant::now();
    for v in 1..=6 {
        idx.apply(
            "api",
            Scope::Api,
            vec![version("m", 1, &v.to_string())],
            t,
            Duration::ZERO,
        );
    }
    let inc = idx.incarnation().to_owned();
    // History holds revisions 4..=6: resuming after 3 still works, after 2 does not.
    assert_eq!(
        replay_revisions(idx.subscribe(&inc, 3).0),
        Some(vec![4, 5, 6])
    );
    assert_eq!(replay_revisions(idx.subscribe(&inc, 2).0), None);
}

#[test]
fn queries_name_what_exists() {
    let mut idx = index(10);
    let t = Instant::now();
    let mut invalid = version("m", 3, "i");
    invalid.state = VersionState::Invalid as i32;
    let mut valid = version("m", 2, "v");
    valid.state = VersionState::Valid as i32;
    idx.apply("api", Scope::Api, vec![valid, invalid], t, Duration::ZERO);
    let list = idx.list_models("").unwrap();
    assert_eq!(
        list.apis[0].models[0].latest,
        Some(2),
        "invalid versions are never latest"
    );
    assert_eq!(idx.get_model("api", "").unwrap().versions.len(), 2);
    let e = idx.get_model("nope", "m").unwrap_err().to_string();
    assert_eq!(e, "api `nope` not found; apis: api");
    let e = idx.get_model("api", "x").unwrap_err().to_string();
    assert_eq!(e, "model `x` not found in api `api`; models: m");
    assert!(idx.list_models("nope").is_err());
}

#[test]
fn sources_are_unknown_until_listed_and_said_so_once() {
    let api = Api {
        name: "api".into(),
        sources: vec![hotswap_proto::v1::ModelSource::default(); 2],
        ..Api::default()
    };
    let mut idx = Index::new(vec![api], 100, 16);
    let unknown =
        |idx: &Index| -> Vec<u32> { idx.snapshot().unknown.iter().map(|s| s.position).collect() };
    assert_eq!(unknown(&idx), vec![0, 1], "nothing listed yet");
    let event = idx.mark_listed("api", 1).expect("told once");
    let Some(watch_response::Kind::Event(e)) = &event.kind else {
        panic!("an event")
    };
    assert_eq!(EventKind::try_from(e.kind), Ok(EventKind::SourceListed));
    assert_eq!(e.source.as_ref().map(|s| s.position), Some(1));
    assert!(e.version.is_none());
    assert_eq!(unknown(&idx), vec![0]);
    assert!(idx.mark_listed("api", 1).is_none(), "only the first time");
    assert_eq!(idx.revision(), 1);
}

fn policy_index(policy: hotswap_proto::v1::version_policy::Policy) -> Index {
    let api = Api {
        name: "api".into(),
        sources: vec![hotswap_proto::v1::ModelSource {
            name: "m".into(),
            version_policy: Some(hotswap_proto::v1::VersionPolicy {
                policy: Some(policy),
            }),
            ..Default::default()
        }],
        ..Api::default()
    };
    Index::new(vec![api], 100, 16)
}

fn versioned(n: u64, state: VersionState) -> ModelVersion {
    ModelVersion {
        versioned: true,
        state: state as i32,
        ..version("m", n, &format!("h{n}"))
    }
}

/// (version, state, reason) of each event, in order.
fn states(events: &[Arc<WatchResponse>]) -> Vec<(u64, VersionState, String)> {
    events
        .iter()
        .map(|e| match &e.kind {
            Some(watch_response::Kind::Event(ev)) => {
                let v = ev.version.as_ref().unwrap();
                (v.version, v.state(), v.reason.clone())
            }
            other => panic!("not an event: {other:?}"),
        })
        .collect()
}

#[test]
fn latest_n_excludes_older_valid_versions_once_a_newer_one_settles() {
    use hotswap_proto::v1::version_policy::Policy;
    let mut idx = policy_index(Policy::Latest(1));
    let t0 = Instant::now();
    let scope = Scope::Model("m");
    let (valid, invalid) = (VersionState::Valid, VersionState::Invalid);
    idx.apply("api", scope, vec![versioned(1, valid)], t0, Duration::ZERO);
    // Version 2 still uploading: version 1 stays in.
    let listing = vec![versioned(1, valid), versioned(2, valid)];
    assert!(
        idx.apply("api", scope, listing.clone(), t0, SETTLE)
            .is_empty()
    );
    let events = idx.apply("api", scope, listing, t0 + SETTLE, SETTLE);
    let reason = "outside version_policy latest: 1 (the versions served: 2)".to_owned();
    assert_eq!(
        states(&events),
        vec![
            (1, VersionState::Excluded, reason),
            (2, VersionState::Valid, String::new())
        ]
    );
    // A broken version 3 does not count: version 2 stays in.
    let listing = vec![
        versioned(1, valid),
        versioned(2, valid),
        versioned(3, invalid),
    ];
    let events = idx.apply("api", scope, listing, t0 + SETTLE, Duration::ZERO);
    assert_eq!(states(&events), vec![(3, invalid, String::new())]);
    // Version 2 and 3 removed: version 1 is back.
    let events = idx.apply(
        "api",
        scope,
        vec![versioned(1, valid)],
        t0 + SETTLE,
        Duration::ZERO,
    );
    assert_eq!(
        states(&events),
        vec![
            (1, valid, String::new()),
            (2, valid, String::new()),
            (3, invalid, String::new())
        ]
    );
    assert_eq!(
        kinds(&events).iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![EventKind::Updated, EventKind::Removed, EventKind::Removed]
    );
}

#[test]
fn specific_versions_exclude_the_others_from_their_first_event() {
    use hotswap_proto::v1::version_policy::Policy;
    let mut idx = policy_index(Policy::Specific(hotswap_proto::v1::SpecificVersions {
        versions: vec![1, 3],
    }));
    let valid = VersionState::Valid;
    let listing = (1..=3).map(|n| versioned(n, valid)).collect();
    let events = idx.apply(
        "api",
        Scope::Model("m"),
        listing,
        Instant::now(),
        Duration::ZERO,
    );
    assert_eq!(
        states(&events),
        vec![
            (1, valid, String::new()),
            (
                2,
                VersionState::Excluded,
                "outside version_policy specific: [1, 3]".to_owned()
            ),
            (3, valid, String::new())
        ]
    );
    assert!(kinds(&events).iter().all(|e| e.0 == EventKind::Added));
}

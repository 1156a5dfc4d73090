//! The registry: a worker id belongs to its stream, caps on workers and
//! routes, silent workers dropped (tokio's paused clock), malformed reports
//! refused, the routing table kept in step.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotswap_proto::error::{Code, ServiceError};

use crate::registry::{PLACEMENT_GRACE, Registry, RegistryLimits, Route, SILENCE_LIMIT};
use crate::testing::{Answer, Cluster, Gone, Scripted, report, version_route};
use crate::worker::local::{LocalConnector, LocalWorker};

#[tokio::test]
async fn a_worker_id_belongs_to_its_stream_until_that_stream_ends() {
    let c = Cluster::new();
    c.worker("a1", &[]);
    c.worker("rogue", &[]);
    let owner = c.registry.session();
    let thief = c.registry.session();
    c.report(owner, "w", "a1", &[version_route(1)]);
    // Another stream naming the id, later or earlier, is refused: no
    // takeover, and the owner's entry is untouched.
    let refused = c
        .registry
        .report(thief, &report("w", "rogue", &[version_route(1)]))
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused}");
    let entry = c.registry.get("w").unwrap();
    assert_eq!(entry.address, "a1");
    c.registry.end(thief, "w");
    assert!(
        c.registry.get("w").is_some(),
        "the thief's end removed the owner"
    );
    for _ in 0..5 {
        assert_eq!(c.chosen(&version_route(1)), "w");
    }
    // Once the owner's stream ends, the id is free again.
    c.registry.end(owner, "w");
    assert!(c.registry.get("w").is_none());
    c.report(thief, "w", "a1", &[]);
    assert!(c.registry.get("w").is_some());
}

#[tokio::test]
async fn registrations_past_the_caps_are_refused() {
    let connector = Arc::new(LocalConnector::default());
    let registry = Registry::with_limits(
        connector.clone(),
        RegistryLimits {
            max_workers: 2,
            max_routes: 3,
        },
    );
    for id in ["a", "b", "c"] {
        connector.add(
            id,
            Arc::new(Gone {
                calls: AtomicUsize::new(0),
            }),
        );
    }
    let (a, b) = (registry.session(), registry.session());
    registry.report(a, &report("a", "a", &[])).unwrap();
    registry.report(b, &report("b", "b", &[])).unwrap();
    let full = registry
        .report(registry.session(), &report("c", "c", &[]))
        .unwrap_err();
    assert_eq!(full.code(), Code::ResourceExhausted, "{full}");
    let routes: Vec<Route> = (1..=4).map(version_route).collect();
    let too_many = registry.report(a, &report("a", "a", &routes)).unwrap_err();
    assert_eq!(too_many.code(), Code::ResourceExhausted, "{too_many}");
    // The registered workers report on; one leaving makes room.
    registry.report(a, &report("a", "a", &routes[..3])).unwrap();
    registry.end(b, "b");
    registry
        .report(registry.session(), &report("c", "c", &[]))
        .unwrap();
    assert_eq!(registry.all().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_silent_worker_is_dropped_and_a_reporting_one_kept() {
    let c = Cluster::new();
    let session = c.registry.session();
    c.connector.add(
        "w",
        Arc::new(LocalWorker(Arc::new(Scripted {
            name: "w".into(),
            calls: AtomicUsize::new(0),
            answer: Mutex::new(Answer::Ok),
        }))),
    );
    c.report(session, "w", "w", &[]);
    tokio::time::advance(SILENCE_LIMIT - Duration::from_millis(500)).await;
    c.registry.sweep();
    assert!(c.registry.get("w").is_some(), "not silent long enough");
    c.report(session, "w", "w", &[]);
    tokio::time::advance(SILENCE_LIMIT - Duration::from_millis(500)).await;
    c.registry.sweep();
    assert!(c.registry.get("w").is_some(), "its report reset the clock");
    tokio::time::advance(Duration::from_secs(1)).await;
    c.registry.sweep();
    assert!(c.registry.get("w").is_none(), "silent for too long");
}

#[tokio::test]
async fn reports_without_an_id_or_address_are_refused() {
    let c = Cluster::new();
    c.worker("a", &[]);
    for (id, address) in [("", "a"), ("w", "")] {
        let err = c
            .registry
            .report(c.registry.session(), &report(id, address, &[]))
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.to_string().contains("worker_id and address"), "{err}");
    }
    let unknown = c
        .registry
        .report(c.registry.session(), &report("w", "nowhere", &[]))
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(c.registry.all().len(), 1, "only the well-formed worker");
}

#[tokio::test(start_paused = true)]
async fn the_routing_table_follows_reports_placements_and_departures() {
    let c = Cluster::new();
    c.worker("a", &[version_route(1)]);
    c.worker("b", &[]);
    let session = c.registry.session();
    c.report(session, "w", "b", &[version_route(1), version_route(2)]);
    let holders = |route: &Route| -> Vec<String> {
        let table = c.registry.table();
        let mut ids: Vec<String> = table
            .holders(route)
            .map(|h| h.ids().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    };
    assert_eq!(holders(&version_route(1)), ["a", "w"]);
    assert_eq!(holders(&version_route(2)), ["w"]);
    assert!(c.registry.served_anywhere(&version_route(2)));

    // A heartbeat that says what the last one said keeps the snapshot.
    let before = Arc::clone(&c.registry.table());
    c.report(session, "w", "b", &[version_route(1), version_route(2)]);
    assert!(
        Arc::ptr_eq(&before, &c.registry.table()),
        "rebuilt for nothing"
    );
    c.report(session, "w", "b", &[version_route(2)]);
    assert_eq!(holders(&version_route(1)), ["a"]);

    // A placement counts at once, is not "served", and stops counting when
    // its grace runs out, before any report says so.
    let w = c.registry.get("w").unwrap();
    c.registry.place(&w, &version_route(3));
    assert_eq!(holders(&version_route(3)), ["w"]);
    assert!(!c.registry.served_anywhere(&version_route(3)));
    tokio::time::advance(PLACEMENT_GRACE + Duration::from_secs(1)).await;
    let table = c.registry.table();
    let expired = table.holders(&version_route(3)).unwrap();
    assert!(expired.pick(None, |_| 0).is_none(), "an expired placement");
    drop(table);
    // The worker's next report takes it out of the table.
    c.report(session, "w", "b", &[version_route(2)]);
    assert!(c.registry.table().holders(&version_route(3)).is_none());
    // A worker that leaves takes its routes with it.
    c.registry.end(session, "w");
    assert_eq!(holders(&version_route(2)), Vec::<String>::new());
    let ids: Vec<String> = c.registry.all().iter().map(|w| w.id.clone()).collect();
    assert_eq!(ids, ["a", "b"]);
}

use std::time::Duration;

use super::*;
use crate::testing::{Fake, rows};

fn version(api: &str, n: u64, hash: &str) -> ModelVersion {
    ModelVersion {
        api: api.into(),
        model: "m".into(),
        version: n,
        content_hash: hash.into(),
        ..Default::default()
    }
}

fn key(api: &str, n: u64) -> VersionKey {
    VersionKey {
        api: api.into(),
        model: "m".into(),
        version: n,
    }
}

fn guard(begin: Begin) -> LoadGuard {
    match begin {
        Begin::Load(guard) => guard,
        Begin::Published(_) => panic!("expected a load, found the content published"),
        Begin::Failing(f) => panic!("expected a load, found a failure: {}", f.message),
    }
}

/// Loads `v` (a fake model) and publishes it with `cache_size`.
async fn publish(table: &Table, v: &ModelVersion, cache_size: usize) -> Published {
    let guard = guard(table.begin_load(v).await);
    let loaded =
        Arc::new(table.instance(VersionKey::of(v), v.content_hash.clone(), Fake::doubling()));
    guard.publish(table, loaded, cache_size)
}

fn serving(table: &Table, key: &VersionKey) -> Option<String> {
    table.published(key).map(|l| l.content_hash.clone())
}

fn fail(guard: &LoadGuard, hash: &str, wait: Duration) -> Failure {
    guard.fail(hash, format!("{hash} is broken"), false, |_| wait)
}

#[tokio::test]
async fn a_swap_serves_new_calls_and_frees_the_old_instance_with_its_last_call() {
    let table = Table::default();
    let first = publish(&table, &version("a", 1, "old"), 0).await;
    assert!(!first.swap, "the model's first instance is no swap");
    let running = table.published(&key("a", 1)).unwrap();
    let second = publish(&table, &version("a", 1, "new"), 0).await;
    assert!(second.swap);
    assert_eq!(serving(&table, &key("a", 1)).as_deref(), Some("new"));
    // The call that found the old instance finishes on it.
    assert_eq!(running.content_hash, "old");
    assert!(running.model.infer(rows(0, 1), &[]).is_ok());
    assert_eq!(
        table.stats().live,
        2,
        "old instance alive while a call holds it"
    );
    drop(running);
    assert_eq!(table.stats().live, 1, "freed with its last call");
    assert_eq!(table.stats().loads, 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_load_keeps_the_old_instance_and_waits_out_its_backoff() {
    let table = Table::default();
    publish(&table, &version("a", 1, "good"), 0).await;
    let broken = version("a", 1, "bad");
    let load = guard(table.begin_load(&broken).await);
    let failure = fail(&load, "bad", Duration::from_secs(10));
    assert_eq!(failure.attempts, 1);
    drop(load);
    assert_eq!(serving(&table, &key("a", 1)).as_deref(), Some("good"));
    assert!(table.failing(&broken));
    assert!(
        !table.failing(&version("a", 1, "good")),
        "the failure is the bad content's only"
    );
    assert!(matches!(table.begin_load(&broken).await, Begin::Failing(_)));
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(!table.failing(&broken), "its retry time has come");
    let retry = guard(table.begin_load(&broken).await);
    assert_eq!(fail(&retry, "bad", Duration::from_secs(20)).attempts, 2);
    drop(retry);
    // Content repaired: it loads and the failure is forgotten.
    publish(&table, &version("a", 1, "fixed"), 0).await;
    assert!(table.failure(&key("a", 1)).is_none());
    assert_eq!(serving(&table, &key("a", 1)).as_deref(), Some("fixed"));
}

#[tokio::test]
async fn cache_size_evicts_the_least_recently_used_of_the_api_only() {
    let table = Table::default();
    publish(&table, &version("b", 1, "b1"), 0).await;
    publish(&table, &version("a", 1, "a1"), 2).await;
    publish(&table, &version("a", 2, "a2"), 2).await;
    table.touch(&key("a", 2));
    table.touch(&key("a", 1));
    let third = publish(&table, &version("a", 3, "a3"), 2).await;
    assert_eq!(third.evicted, vec![key("a", 2)]);
    let mut held = table.held();
    held.sort();
    assert_eq!(held, vec![key("a", 1), key("a", 3), key("b", 1)]);
    assert_eq!(table.stats().high_water.get("a"), Some(&2));
}

#[tokio::test]
async fn concurrent_loads_of_a_version_wait_for_the_one_running() {
    let table = Arc::new(Table::default());
    let v = version("a", 1, "h");
    let first = guard(table.begin_load(&v).await);
    let waiter = tokio::spawn({
        let (table, v) = (table.clone(), v.clone());
        async move { table.begin_load(&v).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "a second load waits for the first");
    let loaded = Arc::new(table.instance(key("a", 1), "h".into(), Fake::doubling()));
    first.publish(&table, loaded, 0);
    match waiter.await.unwrap() {
        Begin::Published(l) => assert_eq!(l.content_hash, "h"),
        _ => panic!("the waiter should find the content published"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_background_load_starts_once_and_not_during_a_backoff() {
    let table = Table::default();
    let v = version("a", 1, "h");
    let mark = table.begin_background(&v).expect("nothing running");
    assert!(table.begin_background(&v).is_none(), "already scheduled");
    assert!(table.status(&key("a", 1)).unwrap().loading);
    drop(mark);
    assert!(!table.status(&key("a", 1)).unwrap().loading);
    let load = guard(table.begin_load(&v).await);
    fail(&load, "h", Duration::from_secs(5));
    drop(load);
    assert!(table.begin_background(&v).is_none(), "in its backoff");
    tokio::time::advance(Duration::from_secs(6)).await;
    assert!(table.begin_background(&v).is_some());
}

#[tokio::test]
async fn removing_a_version_gives_up_its_folder_and_calls_finish_on_their_instance() {
    let table = Table::default();
    let v = version("a", 1, "h");
    let load = guard(table.begin_load(&v).await);
    assert_eq!(load.set_disk("/cache/a1".into(), "h"), None);
    let loaded = Arc::new(table.instance(key("a", 1), "h".into(), Fake::doubling()));
    load.publish(&table, loaded, 0);
    let running = table.published(&key("a", 1)).unwrap();
    let removed = table.remove(&key("a", 1)).unwrap();
    assert!(removed.published);
    assert_eq!(removed.disk, Some(PathBuf::from("/cache/a1")));
    assert!(table.published(&key("a", 1)).is_none());
    assert!(table.keys().is_empty());
    assert!(running.model.infer(rows(0, 1), &[]).is_ok());
    assert_eq!(table.stats().live, 1);
    drop(running);
    assert_eq!(table.stats().live, 0);
}

#[tokio::test]
async fn disk_eviction_spares_the_kept_version_and_folders_a_load_reads() {
    let table = Table::default();
    for (n, published) in [(1, false), (2, true), (3, false), (4, false)] {
        let v = version("a", n, "h");
        let load = guard(table.begin_load(&v).await);
        load.set_disk(format!("/cache/{n}").into(), "h");
        if published {
            let loaded = Arc::new(table.instance(key("a", n), "h".into(), Fake::doubling()));
            load.publish(&table, loaded, 0);
        }
    }
    // Version 3's folder is being read by a load.
    let reading = guard(table.begin_load(&version("a", 3, "h2")).await);
    assert_eq!(table.on_disk("a"), 4);
    assert_eq!(
        table.disk_victims(&key("a", 4)),
        vec![key("a", 1), key("a", 2)],
        "not in memory first; never the kept one or one being read"
    );
    assert_eq!(table.take_disk_if_idle(&key("a", 3)), None);
    drop(reading);
    assert_eq!(
        table.take_disk_if_idle(&key("a", 3)),
        Some(PathBuf::from("/cache/3"))
    );
    assert_eq!(table.on_disk("a"), 3);
}

#[tokio::test]
async fn a_version_settles_when_it_is_published_or_fails() {
    let table = Table::default();
    assert!(!table.settled(&key("a", 1)) && !table.pending(&key("a", 1)));
    let load = guard(table.begin_load(&version("a", 1, "h")).await);
    assert!(table.pending(&key("a", 1)) && !table.settled(&key("a", 1)));
    fail(&load, "h", Duration::from_secs(1));
    assert!(table.settled(&key("a", 1)) && !table.pending(&key("a", 1)));
    drop(load);
    publish(&table, &version("a", 2, "h"), 0).await;
    assert!(table.settled(&key("a", 2)));
}

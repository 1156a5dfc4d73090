//! What the scenarios put in their buckets, and how they compare events.

use std::collections::BTreeSet;

use hotswap_integration_tests::bucket::TestBucket;
use hotswap_proto::v1::{EventKind, ModelVersion};

pub const SAVED_MODEL: [&str; 3] = [
    "saved_model.pb",
    "variables/variables.index",
    "variables/variables.data-00000-of-00001",
];

pub fn contents(key: &str) -> String {
    format!("contents of {key}")
}

pub async fn put_all(bucket: &TestBucket, keys: &[&str]) {
    for key in keys {
        bucket.put(key, contents(key)).await;
    }
}

pub async fn put_saved_model(bucket: &TestBucket, folder: &str) {
    for file in SAVED_MODEL {
        let key = format!("{folder}/{file}");
        bucket.put(&key, contents(&key)).await;
    }
}

pub fn kinds(events: &[(EventKind, ModelVersion)]) -> BTreeSet<(EventKind, String, u64)> {
    events
        .iter()
        .map(|(k, v)| (*k, v.model.clone(), v.version))
        .collect()
}

pub const SAVED_MODEL_SORTED: [&str; 3] = [
    "saved_model.pb",
    "variables/variables.data-00000-of-00001",
    "variables/variables.index",
];

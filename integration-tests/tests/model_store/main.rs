//! The model-store scenario suite, once per storage backend: each scenario
//! runs against a local folder, moto (S3) and fake-gcs-server (GCS),
//! through a real gRPC Watch client.

mod changes;
mod layouts;
mod storage;
mod support;
mod watch;

use hotswap_integration_tests::bucket::Backend;

macro_rules! suite {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn seed_layouts() {
                layouts::seed_layouts($backend).await;
            }

            #[tokio::test]
            async fn changes() {
                changes::changes($backend).await;
            }

            #[tokio::test]
            async fn slow_upload_is_announced_once() {
                changes::slow_upload_is_announced_once($backend).await;
            }

            #[tokio::test]
            async fn invalid_layouts() {
                layouts::invalid_layouts($backend).await;
            }

            #[tokio::test]
            async fn resume() {
                watch::resume($backend).await;
            }

            #[tokio::test]
            async fn read_objects() {
                storage::read_objects($backend).await;
            }

            #[tokio::test]
            async fn bucket_trouble() {
                storage::bucket_trouble($backend).await;
            }
        }
    };
}

suite!(local, Backend::Local);
suite!(s3, Backend::S3);
suite!(gcs, Backend::Gcs);

#[tokio::test]
async fn s3_unsafe_keys_never_reach_subscribers() {
    watch::unsafe_keys_never_reach_subscribers(Backend::S3).await;
}

#[tokio::test]
async fn gcs_unsafe_keys_never_reach_subscribers() {
    watch::unsafe_keys_never_reach_subscribers(Backend::Gcs).await;
}

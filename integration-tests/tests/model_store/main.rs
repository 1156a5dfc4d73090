//! The model-store scenario suite, once per storage backend.

mod scenarios;

use hotswap_integration_tests::bucket::Backend;

macro_rules! suite {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn seed_layouts() {
                scenarios::seed_layouts($backend).await;
            }

            #[tokio::test]
            async fn changes() {
                scenarios::changes($backend).await;
            }

            #[tokio::test]
            async fn slow_upload_is_announced_once() {
                scenarios::slow_upload_is_announced_once($backend).await;
            }

            #[tokio::test]
            async fn invalid_layouts() {
                scenarios::invalid_layouts($backend).await;
            }

            #[tokio::test]
            async fn resume() {
                scenarios::resume($backend).await;
            }

            #[tokio::test]
            async fn read_objects() {
                scenarios::read_objects($backend).await;
            }

            #[tokio::test]
            async fn bucket_trouble() {
                scenarios::bucket_trouble($backend).await;
            }
        }
    };
}

suite!(local, Backend::Local);
suite!(s3, Backend::S3);
suite!(gcs, Backend::Gcs);

#[tokio::test]
async fn s3_unsafe_keys_never_reach_subscribers() {
    scenarios::unsafe_keys_never_reach_subscribers(Backend::S3).await;
}

#[tokio::test]
async fn gcs_unsafe_keys_never_reach_subscribers() {
    scenarios::unsafe_keys_never_reach_subscribers(Backend::Gcs).await;
}

//! Downloads go only where the API config points: a version whose location
//! is not inside one of its API's declared sources (another bucket, a
//! `file://` path outside the declared folders) is refused, not fetched. The
//! model-store never publishes such a version; this holds the line if
//! something else speaks for it.

use std::path::PathBuf;

use hotswap_proto::v1::ModelVersion;
use hotswap_storage::Location;

use super::Models;
use crate::Error;
use crate::cache::describe;

impl Models {
    /// `version`'s files in the disk cache, downloaded if needed, when its
    /// location is one its API declares.
    pub async fn fetch(&self, version: &ModelVersion) -> Result<PathBuf, Error> {
        let declared = self
            .catalog()
            .apis
            .get(&version.api)
            .map(|api| {
                api.sources
                    .iter()
                    .filter_map(|s| Location::parse(&s.location, std::path::Path::new("/")).ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let inside = Location::parse(&version.location, std::path::Path::new("/"))
            .is_ok_and(|at| declared.iter().any(|source| source.contains(&at)));
        if !inside {
            tracing::warn!(version = %describe(version), location = %version.location,
                "refusing a version outside its API's declared sources");
            return Err(Error::Undeclared {
                what: describe(version),
                location: hotswap_proto::error::shown(&version.location).into_owned(),
            });
        }
        self.cache.fetch(version).await
    }
}

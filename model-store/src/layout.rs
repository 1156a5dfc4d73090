//! From a listing to model versions: which folders are models, which are
//! versions, which files belong to each, and whether each version is valid.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use hotswap_proto::v1::{ModelFile, ModelVersion, VersionState};
use sha2::{Digest, Sha256};

use crate::config::{Layout, SourceConfig};
use crate::validate::validate;
use hotswap_storage::{Location, ObjectMeta};

/// The version an unversioned model folder is published as.
pub const UNVERSIONED: u64 = 1;

/// Every version found in one source's listing (keys already checked with
/// `storage::check_key`), sorted by model then version.
pub fn versions(
    api: &str,
    layout: Layout,
    source: &SourceConfig,
    listing: &[ObjectMeta],
) -> Vec<ModelVersion> {
    match &source.model {
        Some(model) => model_versions(
            api,
            layout,
            model,
            &source.location,
            listing.iter().collect(),
        ),
        None => {
            // A `dir`: one model per sub-folder. Files beside the sub-folders
            // belong to no model; hidden folders are tool droppings.
            let mut models: BTreeMap<&str, Vec<&ObjectMeta>> = BTreeMap::new();
            for object in listing {
                if let Some((model, _)) = object.key.split_once('/')
                    && !model.starts_with('.')
                {
                    models.entry(model).or_default().push(object);
                }
            }
            models
                .into_iter()
                .flat_map(|(model, objects)| {
                    let files: Vec<ObjectMeta> = objects
                        .into_iter()
                        .map(|o| strip(o, model.len() + 1))
                        .collect();
                    let location = source.location.child(model);
                    model_versions(api, layout, model, &location, files.iter().collect())
                })
                .collect()
        }
    }
}

/// The versions of one model folder. It is versioned when every top-level
/// entry (hidden ones aside) is an integer-named folder; otherwise the whole
/// folder is one model, published as version 1.
fn model_versions(
    api: &str,
    layout: Layout,
    model: &str,
    location: &Location,
    files: Vec<&ObjectMeta>,
) -> Vec<ModelVersion> {
    let mut by_version: BTreeMap<u64, Vec<ObjectMeta>> = BTreeMap::new();
    let mut others: BTreeSet<&str> = BTreeSet::new();
    for object in &files {
        let top = object.key.split_once('/');
        if object.key.starts_with('.') {
            continue;
        }
        match top.and_then(|(dir, _)| version_number(dir).map(|v| (dir, v))) {
            Some((dir, version)) => by_version
                .entry(version)
                .or_default()
                .push(strip(object, dir.len() + 1)),
            None => {
                others.insert(top.map_or(object.key.as_str(), |(dir, _)| dir));
            }
        }
    }
    if !by_version.is_empty() && others.is_empty() {
        return by_version
            .into_iter()
            .map(|(version, files)| {
                let at = location.child(&version.to_string());
                describe(api, layout, model, version, true, at, files, None)
            })
            .collect();
    }
    if files.is_empty() {
        return Vec::new();
    }
    // A mix of version folders and other entries is read as one unversioned
    // model (valid for python); say so in the reason, valid or not, since
    // it is usually an unfinished restructure or a stray upload, and a
    // request for one of the version numbers finds nothing.
    let note = (!by_version.is_empty()).then(|| {
        let others: Vec<&str> = others.into_iter().collect();
        let versions: Vec<String> = by_version.keys().map(u64::to_string).collect();
        format!(
            "read as one unversioned model because version folders ({}) sit beside other entries ({})",
            versions.join(", "),
            others.join(", ")
        )
    });
    let files = files.into_iter().cloned().collect();
    vec![describe(
        api,
        layout,
        model,
        UNVERSIONED,
        false,
        location.clone(),
        files,
        note,
    )]
}

/// Version folders are canonical decimal integers ("7", not "07" or "+7"),
/// so one version never has two folders.
fn version_number(name: &str) -> Option<u64> {
    if name.is_empty()
        || !name.bytes().all(|b| b.is_ascii_digit())
        || (name.len() > 1 && name.starts_with('0'))
    {
        return None;
    }
    name.parse().ok()
}

fn strip(object: &ObjectMeta, len: usize) -> ObjectMeta {
    ObjectMeta {
        key: object.key[len..].to_owned(),
        ..object.clone()
    }
}

#[allow(clippy::too_many_arguments)]
fn describe(
    api: &str,
    layout: Layout,
    model: &str,
    version: u64,
    versioned: bool,
    location: Location,
    mut files: Vec<ObjectMeta>,
    note: Option<String>,
) -> ModelVersion {
    files.sort_by(|a, b| a.key.cmp(&b.key));
    let (state, reason) = match validate(layout, files.iter().map(|f| f.key.as_str())) {
        // Valid, and still worth a word: how the folder was read.
        Ok(()) => (VersionState::Valid, note.unwrap_or_default()),
        Err(reason) => {
            let reason = match note {
                Some(note) => format!("{reason}; {note}"),
                None => reason.to_string(),
            };
            (VersionState::Invalid, reason)
        }
    };
    let location = location.to_string();
    let content_hash = content_hash(&location, &files);
    ModelVersion {
        api: api.to_owned(),
        model: model.to_owned(),
        version,
        versioned,
        state: state as i32,
        reason,
        location,
        files: files.into_iter().map(model_file).collect(),
        content_hash,
    }
}

/// Covers everything a subscriber acts on: where the files are and every
/// file's identity, so any rewrite, move, addition or removal changes it.
fn content_hash(location: &str, files: &[ObjectMeta]) -> String {
    let mut hash = Sha256::new();
    hash.update(location.as_bytes());
    for f in files {
        let modified = f.modified.map(unix_nanos).unwrap_or_default();
        hash.update(format!("\n{}\0{}\0{}\0{modified}", f.key, f.size, f.etag).as_bytes());
    }
    hex::encode(hash.finalize())
}

fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn model_file(f: ObjectMeta) -> ModelFile {
    ModelFile {
        path: f.key,
        size: f.size,
        etag: f.etag,
        modified: f.modified.map(prost_types::Timestamp::from),
    }
}

#[cfg(test)]
mod tests;

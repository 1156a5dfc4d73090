//! What a version folder must contain for each predictor type, as the
//! model-directory reference (the seed) describes it.

use crate::config::Layout;

/// Why a version's files do not make a model of its predictor type: the
/// reason published with an INVALID version. `files` lists the folder
/// (shortened for huge folders).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error(
        "onnx: expected exactly one *.onnx file at the top of the version folder, found none \
         (files: {files})"
    )]
    NoOnnx { files: String },

    #[error(
        "onnx: expected exactly one *.onnx file at the top of the version folder, found \
         {count} ({})", .names.join(", ")
    )]
    SeveralOnnx { count: usize, names: Vec<String> },

    #[error(
        "tensorflow: a SavedModel needs saved_model.pb, variables/variables.index and \
         variables/variables.data-*; missing {}{} (files: {files})",
        .missing.join(", "),
        if *.inferentia_layout {
            " (a saved_model.pb alone is the Inferentia layout: set compute.inf to serve it there)"
        } else {
            ""
        }
    )]
    SavedModel {
        missing: Vec<&'static str>,
        /// The files are the Inferentia layout (saved_model.pb alone).
        inferentia_layout: bool,
        files: String,
    },

    #[error(
        "tensorflow (Inferentia): expected saved_model.pb at the top of the version folder \
         (files: {files})"
    )]
    NoSavedModelPb { files: String },
}

/// Checks the files of one version (paths relative to the version folder).
pub fn validate<'a>(
    layout: Layout,
    paths: impl IntoIterator<Item = &'a str>,
) -> Result<(), Invalid> {
    let paths: Vec<&str> = paths.into_iter().collect();
    match layout {
        Layout::Python => Ok(()),
        Layout::Onnx => onnx(&paths),
        Layout::TensorFlow => tensorflow(&paths),
        Layout::Inferentia => inferentia(&paths),
    }
}

fn top_level<'a>(paths: &'a [&'a str]) -> impl Iterator<Item = &'a str> {
    paths.iter().copied().filter(|p| !p.contains('/'))
}

fn onnx(paths: &[&str]) -> Result<(), Invalid> {
    let onnx: Vec<&str> = top_level(paths).filter(|p| p.ends_with(".onnx")).collect();
    match onnx.len() {
        1 => Ok(()),
        0 => Err(Invalid::NoOnnx {
            files: listing(paths),
        }),
        count => Err(Invalid::SeveralOnnx {
            count,
            names: onnx.iter().map(|n| (*n).to_owned()).collect(),
        }),
    }
}

fn tensorflow(paths: &[&str]) -> Result<(), Invalid> {
    let mut missing = Vec::new();
    if !paths.contains(&"saved_model.pb") {
        missing.push("saved_model.pb");
    }
    if !paths.contains(&"variables/variables.index") {
        missing.push("variables/variables.index");
    }
    if !paths.iter().any(|p| {
        p.strip_prefix("variables/variables.data-")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    }) {
        missing.push("variables/variables.data-*");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Invalid::SavedModel {
        inferentia_layout: missing == ["variables/variables.index", "variables/variables.data-*"],
        missing,
        files: listing(paths),
    })
}

fn inferentia(paths: &[&str]) -> Result<(), Invalid> {
    if paths.contains(&"saved_model.pb") {
        Ok(())
    } else {
        Err(Invalid::NoSavedModelPb {
            files: listing(paths),
        })
    }
}

/// The folder's files for a reason message, shortened for huge folders.
fn listing(paths: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut out = paths
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        out.push_str(&format!(", and {} more", paths.len() - SHOWN));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED_MODEL: &[&str] = &[
        "saved_model.pb",
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
    ];

    #[test]
    fn python_accepts_anything() {
        assert!(validate(Layout::Python, ["model.pkl", "data/x.txt"]).is_ok());
    }

    #[test]
    fn onnx_needs_exactly_one_top_level_model() {
        assert!(validate(Layout::Onnx, ["model.onnx", "labels.txt"]).is_ok());
        let none = validate(Layout::Onnx, ["sub/model.onnx", "labels.txt"])
            .unwrap_err()
            .to_string();
        assert!(
            none.contains("found none") && none.contains("labels.txt"),
            "{none}"
        );
        let two = validate(Layout::Onnx, ["a.onnx", "b.onnx"])
            .unwrap_err()
            .to_string();
        assert!(
            two.contains("found 2") && two.contains("a.onnx, b.onnx"),
            "{two}"
        );
    }

    #[test]
    fn tensorflow_needs_a_saved_model_with_variables() {
        assert!(validate(Layout::TensorFlow, SAVED_MODEL.iter().copied()).is_ok());
        let pb_only = validate(Layout::TensorFlow, ["saved_model.pb"])
            .unwrap_err()
            .to_string();
        assert!(pb_only.contains("variables/variables.index"), "{pb_only}");
        assert!(pb_only.contains("compute.inf"), "{pb_only}");
        let no_data = validate(
            Layout::TensorFlow,
            ["saved_model.pb", "variables/variables.index"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            no_data.contains("missing variables/variables.data-*"),
            "{no_data}"
        );
        let no_pb = validate(
            Layout::TensorFlow,
            ["variables/variables.index", "variables/variables.data-0"],
        )
        .unwrap_err()
        .to_string();
        assert!(no_pb.contains("missing saved_model.pb"), "{no_pb}");
    }

    #[test]
    fn inferentia_needs_saved_model_pb() {
        assert!(validate(Layout::Inferentia, ["saved_model.pb"]).is_ok());
        assert!(validate(Layout::Inferentia, SAVED_MODEL.iter().copied()).is_ok());
        let err = validate(Layout::Inferentia, ["model.onnx"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("saved_model.pb"), "{err}");
    }
}

//! What a model takes and returns (the seed's "signatures"), and the checks
//! a request's tensors must pass before they reach a backend.

use std::collections::HashMap;

use crate::Error;
use crate::tensor::{DataType, Tensor};
use hotswap_common::list;

/// One input or output. A dimension of -1 is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The name requests use.
    pub name: String,
    /// Its element type.
    pub dtype: DataType,
    /// Its dimensions, -1 where any size is taken.
    pub shape: Vec<i64>,
}

/// What a model takes and returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// Its inputs, in the order the backend takes them.
    pub inputs: Vec<TensorSpec>,
    /// Its outputs.
    pub outputs: Vec<TensorSpec>,
}

impl Signature {
    /// The input named `name`.
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|s| s.name == name)
    }

    /// Checks a request's inputs: every model input present once, no unknown
    /// names, datatypes equal, shapes compatible. Returns them in the model's
    /// input order.
    pub fn check_inputs(&self, given: Vec<Tensor>) -> Result<Vec<Tensor>, Error> {
        let names = || {
            self.inputs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
        };
        let mut seen = HashMap::new();
        for (i, t) in given.iter().enumerate() {
            if self.input(&t.name).is_none() {
                return Err(Error::invalid(format!(
                    "unknown {}; the model's inputs: {}",
                    crate::tensor::input(&t.name),
                    list(&names())
                )));
            }
            if seen.insert(t.name.clone(), i).is_some() {
                return Err(Error::invalid(format!(
                    "{} is given twice",
                    crate::tensor::input(&t.name)
                )));
            }
        }
        let mut slots: Vec<Option<Tensor>> = given.into_iter().map(Some).collect();
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let Some(&i) = seen.get(&spec.name) else {
                return Err(Error::invalid(format!(
                    "missing input `{}` ({} {})",
                    spec.name,
                    spec.dtype.name(),
                    shape_text(&spec.shape)
                )));
            };
            let t = slots[i].take().expect("each index is taken once");
            check_one(spec, &t)?;
            ordered.push(t);
        }
        Ok(ordered)
    }

    /// Checks requested output names (empty: all) before the model runs.
    pub fn check_outputs(&self, wanted: &[String]) -> Result<(), Error> {
        let mut seen = std::collections::HashSet::new();
        for name in wanted {
            if !self.outputs.iter().any(|s| &s.name == name) {
                return Err(Error::invalid(format!(
                    "unknown output `{name_shown}`; the model's outputs: {}",
                    list(&self.output_names()),
                    name_shown = hotswap_proto::error::shown(name)
                )));
            }
            if !seen.insert(name) {
                return Err(Error::invalid(format!(
                    "output `{name_shown}` is requested twice",
                    name_shown = hotswap_proto::error::shown(name)
                )));
            }
        }
        Ok(())
    }

    /// The outputs' names, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|s| s.name.clone()).collect()
    }
}

fn check_one(spec: &TensorSpec, t: &Tensor) -> Result<(), Error> {
    if t.dtype() != spec.dtype {
        return Err(Error::invalid(format!(
            "input `{}`: datatype {} does not match the model's {}",
            spec.name,
            t.dtype().name(),
            spec.dtype.name()
        )));
    }
    let fits = t.shape.len() == spec.shape.len()
        && t.shape
            .iter()
            .zip(&spec.shape)
            .all(|(&got, &want)| want < 0 || got == want);
    if !fits {
        return Err(Error::invalid(format!(
            "input `{}`: shape {} does not match the model's {}",
            spec.name,
            shape_text(&t.shape),
            shape_text(&spec.shape)
        )));
    }
    Ok(())
}

/// "[-1, 4]" written the way users read it: "[batch?, 4]" is not standard,
/// so -1 stays -1. A request's shape can be long: cut like any echoed
/// string.
pub fn shape_text(shape: &[i64]) -> String {
    hotswap_proto::error::shown(&format!("{shape:?}")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorData;

    fn sig() -> Signature {
        Signature {
            inputs: vec![
                TensorSpec {
                    name: "a".into(),
                    dtype: DataType::F32,
                    shape: vec![-1, 3],
                },
                TensorSpec {
                    name: "b".into(),
                    dtype: DataType::I64,
                    shape: vec![-1],
                },
            ],
            outputs: vec![],
        }
    }

    fn t(name: &str, shape: Vec<i64>, data: TensorData) -> Tensor {
        Tensor::new(name, shape, data).unwrap()
    }

    #[test]
    fn inputs_are_checked_and_put_in_model_order() {
        let got = sig()
            .check_inputs(vec![
                t("b", vec![2], TensorData::I64(vec![1, 2])),
                t("a", vec![2, 3], TensorData::F32(vec![0.0; 6])),
            ])
            .unwrap();
        assert_eq!(got[0].name, "a");
        assert_eq!(got[1].name, "b");
    }

    #[test]
    fn every_mistake_names_the_input() {
        let a = || t("a", vec![1, 3], TensorData::F32(vec![0.0; 3]));
        let b = || t("b", vec![1], TensorData::I64(vec![1]));
        let cases = [
            (vec![a()], "missing input `b`"),
            (
                vec![a(), b(), t("c", vec![1], TensorData::I64(vec![1]))],
                "unknown input `c`",
            ),
            (
                vec![a(), t("b", vec![1], TensorData::I32(vec![1]))],
                "input `b`: datatype INT32",
            ),
            (
                vec![t("a", vec![1, 4], TensorData::F32(vec![0.0; 4])), b()],
                "input `a`: shape [1, 4]",
            ),
            (
                vec![t("a", vec![3], TensorData::F32(vec![0.0; 3])), b()],
                "input `a`: shape [3]",
            ),
            (vec![a(), a(), b()], "input `a` is given twice"),
        ];
        for (inputs, want) in cases {
            let err = sig().check_inputs(inputs).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }
}

//! The predictor contract by name, as Cortex matched it: the constructor,
//! `predict` and `post_predict` each receive, by name, whichever of the
//! parameters hotswap offers they declare (all of them through `**kwargs`).
//! A parameter hotswap cannot fill is an error when the API starts, not at
//! the first call.

use pyo3::exceptions::{PyAttributeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

const PREDICT: &[&str] = &["payload", "query_params", "headers"];
const POST_PREDICT: &[&str] = &["response", "payload", "query_params", "headers"];

/// How one predictor instance is called.
pub struct Contract {
    predict: Vec<&'static str>,
    /// None: the class defines no `post_predict`.
    post_predict: Option<Vec<&'static str>>,
}

/// One call's arguments, as Python objects.
pub struct Arguments<'py> {
    pub payload: Bound<'py, PyAny>,
    pub query_params: Bound<'py, PyAny>,
    pub headers: Bound<'py, PyAny>,
}

impl Contract {
    /// Reads what the instance's `predict` and `post_predict` declare.
    pub fn of(predictor: &Bound<'_, PyAny>, class_name: &str) -> PyResult<Contract> {
        let predict = predictor.getattr("predict").map_err(|_| {
            PyAttributeError::new_err(format!("{class_name} defines no predict method"))
        })?;
        let predict = declared(&predict, &format!("{class_name}.predict"), PREDICT)?;
        let post_predict = if predictor.hasattr("post_predict")? {
            let post = predictor.getattr("post_predict")?;
            Some(declared(
                &post,
                &format!("{class_name}.post_predict"),
                POST_PREDICT,
            )?)
        } else {
            None
        };
        Ok(Contract {
            predict,
            post_predict,
        })
    }

    pub fn predict<'py>(
        &self,
        predictor: &Bound<'py, PyAny>,
        args: &Arguments<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kwargs = keywords(predictor.py(), &self.predict, args, None)?;
        predictor.call_method("predict", (), Some(&kwargs))
    }

    pub fn has_post_predict(&self) -> bool {
        self.post_predict.is_some()
    }

    /// Runs `post_predict` with `response` (what `predict` returned), if
    /// the class defines it.
    pub fn post_predict<'py>(
        &self,
        predictor: &Bound<'py, PyAny>,
        args: &Arguments<'py>,
        response: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let Some(names) = &self.post_predict else {
            return Ok(());
        };
        let kwargs = keywords(predictor.py(), names, args, Some(response))?;
        predictor.call_method("post_predict", (), Some(&kwargs))?;
        Ok(())
    }
}

/// Builds a predictor class from the arguments it declares, offered by
/// name (`config` and the class's client).
pub fn construct<'py>(
    constructor: &Bound<'py, PyAny>,
    what: &str,
    offered: &[(&'static str, Bound<'py, PyAny>)],
    call: impl FnOnce(&Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let names: Vec<&'static str> = offered.iter().map(|(n, _)| *n).collect();
    let declared = declared(constructor, what, &names)?;
    let kwargs = PyDict::new(constructor.py());
    for (name, value) in offered {
        if declared.contains(name) {
            kwargs.set_item(*name, value)?;
        }
    }
    call(&kwargs)
}

fn keywords<'py>(
    py: Python<'py>,
    names: &[&'static str],
    args: &Arguments<'py>,
    response: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let kwargs = PyDict::new(py);
    for name in names {
        let value = match *name {
            "payload" => &args.payload,
            "query_params" => &args.query_params,
            "headers" => &args.headers,
            _ => match response {
                Some(r) => r,
                None => continue,
            },
        };
        kwargs.set_item(*name, value)?;
    }
    Ok(kwargs)
}

/// The names from `offered` that `callable` takes, in `offered`'s order;
/// all of them when it takes `**kwargs`. A parameter without a default that
/// is not offered (or can only be passed by position) is a TypeError
/// naming it.
fn declared(
    callable: &Bound<'_, PyAny>,
    what: &str,
    offered: &[&'static str],
) -> PyResult<Vec<&'static str>> {
    let py = callable.py();
    let inspect = py.import("inspect")?;
    let kinds = inspect.getattr("Parameter")?;
    let var_keyword = kinds.getattr("VAR_KEYWORD")?;
    let var_positional = kinds.getattr("VAR_POSITIONAL")?;
    let positional_only = kinds.getattr("POSITIONAL_ONLY")?;
    let empty = kinds.getattr("empty")?;
    let signature = inspect.call_method1("signature", (callable,))?;
    let mut taken = Vec::new();
    for parameter in signature
        .getattr("parameters")?
        .call_method0("values")?
        .try_iter()?
    {
        let parameter = parameter?;
        let kind = parameter.getattr("kind")?;
        if kind.eq(&var_keyword)? {
            return Ok(offered.to_vec());
        }
        if kind.eq(&var_positional)? {
            continue;
        }
        let name: String = parameter.getattr("name")?.extract()?;
        let by_name = !kind.eq(&positional_only)?;
        match offered.iter().find(|o| **o == name) {
            Some(known) if by_name => taken.push(*known),
            _ if parameter.getattr("default")?.as_ptr() != empty.as_ptr() => {}
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "{what} takes `{name}`, which hotswap does not pass: it passes \
                     by name whichever of {} a method declares",
                    offered.join(", ")
                )));
            }
        }
    }
    taken.sort_by_key(|n| offered.iter().position(|o| o == n));
    Ok(taken)
}

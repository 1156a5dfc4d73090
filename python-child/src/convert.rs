//! JSON values to Python objects and back. Python results may hold numpy
//! arrays and scalars: anything with `tolist()` is converted through it.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

pub fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(fields) => {
            let dict = PyDict::new(py);
            for (k, v) in fields {
                dict.set_item(k, to_python(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Nesting deeper than this is refused rather than risk the stack.
const MAX_DEPTH: usize = 256;

pub fn from_python(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    from_python_at(value, 0)
}

fn from_python_at(value: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "result is nested too deeply",
        ));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: in Python, bool is an int.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.cast::<PyInt>().is_ok() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Ok(Value::from(value.extract::<f64>()?));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(Number::from_f64(f.value()).map_or(Value::Null, Value::Number));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(d) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let key = match k.cast::<PyString>() {
                Ok(s) => s.to_str()?.to_owned(),
                Err(_) => k.str()?.to_str()?.to_owned(),
            };
            map.insert(key, from_python_at(&v, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = value.cast::<PyList>() {
        return l
            .iter()
            .map(|v| from_python_at(&v, depth + 1))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if let Ok(t) = value.cast::<PyTuple>() {
        return t
            .iter()
            .map(|v| from_python_at(&v, depth + 1))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    // numpy arrays and scalars, and anything else that knows how to become
    // plain Python values.
    if value.hasattr("tolist")? {
        return from_python_at(&value.call_method0("tolist")?, depth + 1);
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "cannot convert a {} to JSON",
        value.get_type().name()?
    )))
}

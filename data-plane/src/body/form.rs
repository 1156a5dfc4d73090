//! Forms (`application/x-www-form-urlencoded`, `multipart/form-data`) read
//! into fields for a predictor class, within caps. Every field becomes
//! Python objects in the predictor's process, so a small body of many tiny
//! fields costs it far more than its size (2M `a=b&` pairs, 8 MB, once
//! took a process 1.4 GB); a form over a cap is refused here, before
//! anything of it is sent to Python.

use hotswap_python::protocol::{FormField, FormValue};

use crate::Error;

/// Fields a form may have, at most: urlencoded pairs or multipart parts.
pub const MAX_FORM_FIELDS: usize = 1000;

/// Bytes of a form field's name, or of a multipart part's file name, at
/// most.
pub const MAX_FORM_NAME_BYTES: usize = 1024;

/// Bytes of one multipart part's headers, names and values together, at
/// most (a part's Content-Type reaches the predictor too).
pub const MAX_PART_HEADER_BYTES: usize = 8192;

/// The fields of a urlencoded body, in order.
pub(super) fn urlencoded(body: &[u8]) -> Result<Vec<FormField>, Error> {
    let mut fields = Vec::new();
    // Pairs are decoded one at a time and counted as they come: a body of
    // millions is refused at the first one over the cap, not collected.
    for (name, text) in form_urlencoded::parse(body) {
        if fields.len() == MAX_FORM_FIELDS {
            return Err(too_many_fields());
        }
        check_name("field name", &name)?;
        fields.push(FormField {
            name: name.into_owned(),
            value: FormValue::Text {
                text: text.into_owned(),
            },
        });
    }
    Ok(fields)
}

/// The parts of a multipart body (its boundary is in `content_type`), in
/// order: a part with a file name as a file, others as text.
pub(super) async fn multipart(body: Vec<u8>, content_type: &str) -> Result<Vec<FormField>, Error> {
    let bad = |e: multer::Error| Error::invalid(format!("the multipart body: {e}"));
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let chunk = futures::stream::once(async move {
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(body))
    });
    let mut form = multer::Multipart::new(chunk, boundary);
    let mut fields = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        if fields.len() == MAX_FORM_FIELDS {
            return Err(too_many_fields());
        }
        // multer's constraints bound a part's content and the whole body,
        // not a part's headers: those it has read are measured here,
        // before the part's content is.
        let header_bytes: usize = field
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if header_bytes > MAX_PART_HEADER_BYTES {
            return Err(Error::invalid(format!(
                "a multipart part's headers may be at most {MAX_PART_HEADER_BYTES} bytes \
                 (this one's are {header_bytes})"
            )));
        }
        let name = field.name().unwrap_or_default().to_owned();
        check_name("field name", &name)?;
        let value = match field.file_name() {
            None => FormValue::Text {
                text: field.text().await.map_err(bad)?,
            },
            Some(filename) => {
                check_name("file name", filename)?;
                FormValue::File {
                    filename: filename.to_owned(),
                    content_type: field.content_type().map(|m| m.to_string()),
                    data: field.bytes().await.map_err(bad)?.to_vec(),
                }
            }
        };
        fields.push(FormField { name, value });
    }
    Ok(fields)
}

fn too_many_fields() -> Error {
    Error::invalid(format!(
        "a form may have at most {MAX_FORM_FIELDS} fields (urlencoded pairs or multipart parts)"
    ))
}

/// A field or file name within [`MAX_FORM_NAME_BYTES`]; `what` names it.
fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.len() > MAX_FORM_NAME_BYTES {
        return Err(Error::invalid(format!(
            "a form {what} may be at most {MAX_FORM_NAME_BYTES} bytes (this one is {})",
            name.len()
        )));
    }
    Ok(())
}

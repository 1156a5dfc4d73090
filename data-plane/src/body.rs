//! A request body for a predictor class, read as Cortex read it by its
//! Content-Type: `application/json` parsed, `text/plain` as a string, forms
//! (`multipart/form-data`, `application/x-www-form-urlencoded`) as fields,
//! anything else as the bytes sent. And `predict`'s answer back into a
//! response: JSON, text, bytes, or what a response object chose.

use std::collections::HashMap;

use hotswap_proto::v1::{PredictResponse, predict_response};
use hotswap_python::protocol::{FormField, FormValue, Output, Payload};

use crate::Error;

/// The payload `predict` receives for `body` sent as `content_type`.
pub async fn payload(body: Vec<u8>, content_type: &str) -> Result<Payload, Error> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => serde_json::from_slice(&body)
            .map(Payload::Json)
            .map_err(|e| Error::invalid(format!("the body is not valid JSON: {e}"))),
        "text/plain" => String::from_utf8(body)
            .map(Payload::Text)
            .map_err(|_| Error::invalid("a text/plain body must be UTF-8")),
        "application/x-www-form-urlencoded" => Ok(Payload::Form(
            form_urlencoded::parse(&body)
                .map(|(name, text)| FormField {
                    name: name.into_owned(),
                    value: FormValue::Text {
                        text: text.into_owned(),
                    },
                })
                .collect(),
        )),
        "multipart/form-data" => multipart(body, content_type).await.map(Payload::Form),
        _ => Ok(Payload::Bytes(body)),
    }
}

async fn multipart(body: Vec<u8>, content_type: &str) -> Result<Vec<FormField>, Error> {
    let bad = |e: multer::Error| Error::invalid(format!("the multipart body: {e}"));
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let chunk = futures::stream::once(async move {
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(body))
    });
    let mut form = multer::Multipart::new(chunk, boundary);
    let mut fields = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        let value = match field.file_name() {
            None => FormValue::Text {
                text: field.text().await.map_err(bad)?,
            },
            Some(filename) => FormValue::File {
                filename: filename.to_owned(),
                content_type: field.content_type().map(|m| m.to_string()),
                data: field.bytes().await.map_err(bad)?.to_vec(),
            },
        };
        fields.push(FormField { name, value });
    }
    Ok(fields)
}

/// `predict`'s answer as the Predictor service returns it. The answer
/// names no model or version: the class chose.
pub fn response(api: String, output: Output) -> PredictResponse {
    let (output, content_type, status_code, headers) = match output {
        Output::Json { value } => (
            predict_response::Output::Json(value.to_string()),
            String::new(),
            0,
            HashMap::new(),
        ),
        Output::Text { text } => (
            predict_response::Output::Body(text.into_bytes()),
            "text/plain; charset=utf-8".to_owned(),
            0,
            HashMap::new(),
        ),
        Output::Bytes { data } => (
            predict_response::Output::Body(data),
            "application/octet-stream".to_owned(),
            0,
            HashMap::new(),
        ),
        Output::Response {
            status_code,
            media_type,
            mut headers,
            body,
        } => {
            let content_type = media_type
                .or_else(|| headers.get("content-type").cloned())
                .unwrap_or_default();
            // Both describe the body as it is sent here; the transport
            // sets them again.
            headers.remove("content-type");
            headers.remove("content-length");
            (
                predict_response::Output::Body(body),
                content_type,
                u32::from(status_code),
                headers.into_iter().collect(),
            )
        }
    };
    PredictResponse {
        api,
        model: String::new(),
        version: 0,
        output: Some(output),
        content_type,
        status_code,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_content_type_reads_as_cortex_read_it() {
        async fn read(body: &str, ty: &str) -> Result<Payload, Error> {
            payload(body.as_bytes().to_vec(), ty).await
        }
        assert_eq!(
            read(r#"{"a": [1, 2]}"#, "application/json; charset=utf-8")
                .await
                .unwrap(),
            Payload::Json(serde_json::json!({"a": [1, 2]}))
        );
        assert_eq!(
            read("héllo", "Text/Plain").await.unwrap(),
            Payload::Text("héllo".to_owned())
        );
        assert_eq!(
            read("\u{0}\u{1}", "image/png").await.unwrap(),
            Payload::Bytes(vec![0, 1])
        );
        assert_eq!(
            read("raw", "").await.unwrap(),
            Payload::Bytes(b"raw".to_vec())
        );
        let text = |name: &str, text: &str| FormField {
            name: name.to_owned(),
            value: FormValue::Text {
                text: text.to_owned(),
            },
        };
        assert_eq!(
            read("key=value&b=x+y%21", "application/x-www-form-urlencoded")
                .await
                .unwrap(),
            Payload::Form(vec![text("key", "value"), text("b", "x y!")])
        );
        let multipart = "--XB\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n\
             --XB\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n\u{0}\u{7}\r\n--XB--\r\n";
        assert_eq!(
            read(multipart, "multipart/form-data; boundary=XB")
                .await
                .unwrap(),
            Payload::Form(vec![
                text("note", "hi"),
                FormField {
                    name: "image".to_owned(),
                    value: FormValue::File {
                        filename: "a.bin".to_owned(),
                        content_type: Some("application/octet-stream".to_owned()),
                        data: vec![0, 7],
                    },
                },
            ])
        );
        for (body, ty, says) in [
            ("{", "application/json", "not valid JSON"),
            ("x", "multipart/form-data", "multipart"),
            (
                "--XB\r\nbroken",
                "multipart/form-data; boundary=XB",
                "multipart",
            ),
        ] {
            let err = read(body, ty).await.unwrap_err().to_string();
            assert!(err.contains(says), "{ty}: {err}");
        }
        let err = payload(vec![0xff, 0xfe], "text/plain").await.unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }
}

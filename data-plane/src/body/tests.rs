use hotswap_python::protocol::{FormField, FormValue};

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

/// The error for a form over a cap: INVALID_ARGUMENT naming `says`.
async fn refused(body: Vec<u8>, ty: &str, says: &str) {
    match payload(body, ty).await {
        Err(e @ Error::InvalidArgument(_)) => {
            let e = e.to_string();
            assert!(e.contains(says), "{ty}: {e}");
        }
        Err(e) => panic!("{ty}: not INVALID_ARGUMENT: {e}"),
        Ok(p) => panic!(
            "{ty}: accepted a form over its caps ({} fields)",
            fields(&p)
        ),
    }
}

fn fields(p: &Payload) -> usize {
    match p {
        Payload::Form(f) => f.len(),
        _ => 0,
    }
}

/// A multipart body of `parts` text parts named `name`, with
/// `filename` if given.
fn parts(parts: usize, name: &str, filename: Option<&str>) -> Vec<u8> {
    let file = filename
        .map(|f| format!("; filename=\"{f}\""))
        .unwrap_or_default();
    let mut body = String::new();
    for _ in 0..parts {
        body +=
            &format!("--XB\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\nv\r\n");
    }
    body += "--XB--\r\n";
    body.into_bytes()
}

const URLENCODED: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data; boundary=XB";

#[tokio::test]
async fn forms_up_to_the_caps_are_read() {
    let at_cap = "a=b&".repeat(1000);
    let read = payload(at_cap.into_bytes(), URLENCODED).await.unwrap();
    assert_eq!(fields(&read), 1000);
    let name = "n".repeat(1024);
    let read = payload(format!("{name}=v").into_bytes(), URLENCODED).await;
    assert_eq!(fields(&read.unwrap()), 1);
    let read = payload(parts(1000, "a", None), MULTIPART).await.unwrap();
    assert_eq!(fields(&read), 1000);
    let read = payload(parts(1, &name, Some(&name)), MULTIPART).await;
    assert_eq!(fields(&read.unwrap()), 1);
}

#[tokio::test]
async fn a_form_over_a_cap_is_refused_naming_the_cap() {
    // 2M pairs (8 MB) once cost a predictor process 1.4 GB.
    refused("a=b&".repeat(1001).into_bytes(), URLENCODED, "1000 fields").await;
    refused(parts(1001, "a", None), MULTIPART, "1000 fields").await;
    let long = "n".repeat(1025);
    refused(format!("{long}=v").into_bytes(), URLENCODED, "1024 bytes").await;
    refused(parts(1, &long, None), MULTIPART, "1024 bytes").await;
    // A 15 MB file name was accepted.
    refused(parts(1, "f", Some(&long)), MULTIPART, "1024 bytes").await;
    let header = format!(
        "--XB\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: {}\r\n\r\nv\r\n--XB--\r\n",
        "p".repeat(9000)
    );
    refused(header.into_bytes(), MULTIPART, "8192 bytes").await;
}

mod any_bytes {
    //! Any body under any content type a client may send gives a payload or
    //! INVALID_ARGUMENT, never a panic or another error (DESIGN.md §7).

    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    fn boundary() -> impl Strategy<Value = String> {
        // RFC 2046's boundary characters, and a few it does not allow.
        prop_oneof!["[A-Za-z0-9'()+_,./:=?-]{1,70}", "[ -~]{0,80}",]
    }

    fn content_type() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("application/json".to_owned()),
            Just("text/plain; charset=utf-8".to_owned()),
            Just(URLENCODED.to_owned()),
            Just("multipart/form-data".to_owned()),
            boundary().prop_map(|b| format!("multipart/form-data; boundary={b}")),
            boundary().prop_map(|b| format!("Multipart/Form-Data; boundary=\"{b}\"; x=y")),
            Just("application/octet-stream".to_owned()),
            "[a-zA-Z/;=\" -]{0,40}",
            any::<String>(),
        ]
    }

    /// One part: name, file name, Content-Type, an extra header line, and
    /// content; any of them may break the part.
    type Part = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Vec<u8>,
    );

    fn part() -> impl Strategy<Value = Part> {
        (
            "[ -~]{0,24}",
            proptest::option::of("[ -~]{0,24}"),
            proptest::option::of("[ -~]{0,24}"),
            proptest::option::weighted(
                0.3,
                prop_oneof![3 => "X-[a-z]{1,8}: [ -~]{0,30}", 1 => "[ -~]{0,40}"],
            ),
            vec(any::<u8>(), 0..64),
        )
    }

    /// A multipart body with `boundary` made of `parts`, cut at `cut`.
    fn multipart_body(boundary: &str, parts: Vec<Part>, cut: Option<Index>) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, filename, ty, extra, content) in parts {
            body.extend(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes(),
            );
            if let Some(f) = filename {
                body.extend(format!("; filename=\"{f}\"").bytes());
            }
            if let Some(ty) = ty {
                body.extend(format!("\r\nContent-Type: {ty}").bytes());
            }
            if let Some(line) = extra {
                body.extend(format!("\r\n{line}").bytes());
            }
            body.extend(b"\r\n\r\n");
            body.extend(content);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").bytes());
        if let Some(cut) = cut {
            body.truncate(cut.index(body.len() + 1));
        }
        body
    }

    /// A body and its content type: random bytes under any type, and
    /// bodies shaped like each type so that its reader gets past the first
    /// bytes.
    fn request() -> impl Strategy<Value = (Vec<u8>, String)> {
        prop_oneof![
            (vec(any::<u8>(), 0..256), content_type()),
            "[\\[\\]{}\",:0-9a-z .eE+-]{0,64}"
                .prop_map(|t| (t.into_bytes(), "application/json".to_owned())),
            "[a-z0-9=&%+.A-F]{0,128}".prop_map(|t| (t.into_bytes(), URLENCODED.to_owned())),
            (990usize..1010).prop_map(|n| ("a&".repeat(n).into_bytes(), URLENCODED.to_owned())),
            (
                "[A-Za-z0-9'()+_,./:=?-]{1,70}",
                vec(part(), 0..6),
                proptest::option::weighted(0.3, any::<Index>()),
            )
                .prop_map(|(b, parts, cut)| (
                    multipart_body(&b, parts, cut),
                    format!("multipart/form-data; boundary=\"{b}\""),
                )),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_body_is_read_or_refused_as_invalid((body, ty) in request()) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            match runtime.block_on(payload(body, &ty)) {
                Ok(_) | Err(Error::InvalidArgument(_)) => {}
                Err(e) => prop_assert!(false, "{ty:?}: {e}"),
            }
        }
    }
}

//! The request paths the memory benchmark measures: each one's payload of
//! about 16 MB, the call that sends it (gRPC or a bare HTTP/1.1 client that
//! holds nothing but the bytes), and the check of its tiny answer.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hotswap_integration_tests::http::{Answer, post};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::inference::{ModelInferRequest, model_infer_request::InferInputTensor};
use hotswap_proto::v1::predict_response;
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::{Channel, Endpoint};

/// Under the default 16 MiB request limit.
pub const REQUEST_BYTES: usize = 16_000_000;

/// How the numbers of a JSON payload are written: the same byte count
/// holds 1.7 million six-decimal floats or 6.4 million one-digit numbers,
/// and what a request costs in memory depends on how many numbers it holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    Decimals,
    Digits,
}

impl Numbers {
    fn label(self) -> &'static str {
        match self {
            Numbers::Decimals => "0.xxxxxx",
            Numbers::Digits => "one digit",
        }
    }
}

/// A way in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `ModelInfer` over gRPC, the tensor in `raw_input_contents`.
    GrpcRaw,
    /// `hotswap.v1.Predictor/Predict` with a JSON payload.
    GrpcJson(Numbers),
    /// The Open Inference Protocol's REST binding, JSON tensors.
    HttpJson,
    /// The same, with the binary-tensor extension.
    HttpBinary,
    /// Cortex's `POST /{api}` with a JSON body.
    CortexJson(Numbers),
    /// `POST /{api}` with a multipart form (one file) to a Python predictor.
    Multipart,
    /// `POST /{api}` with a urlencoded form to a Python predictor.
    Urlencoded,
    /// 32 MB of `0,0,0,…` as OIP JSON: 64 MB of FP32, over any worker's
    /// limit; refused (the row measures what refusing costs).
    HttpJsonZeros,
    /// ModelInfer with two million empty inputs: 4 MB on the wire, two
    /// bytes an input, each decoded into a struct of some 300 bytes before
    /// anything can look at it (`--hostile`).
    GrpcEmptyInputs,
}

impl Path {
    pub const ALL: [Path; 10] = [
        Path::GrpcRaw,
        Path::GrpcJson(Numbers::Decimals),
        Path::GrpcJson(Numbers::Digits),
        Path::HttpJson,
        Path::HttpBinary,
        Path::CortexJson(Numbers::Decimals),
        Path::CortexJson(Numbers::Digits),
        Path::Multipart,
        Path::Urlencoded,
        Path::HttpJsonZeros,
    ];

    /// Requests of many tiny items, which prost would decode to many times
    /// their size (`--hostile`).
    pub const HOSTILE: [Path; 1] = [Path::GrpcEmptyInputs];

    pub fn label(self) -> String {
        match self {
            Path::GrpcRaw => "gRPC ModelInfer, raw".to_owned(),
            Path::GrpcJson(n) => format!("gRPC Predict, JSON {}", n.label()),
            Path::HttpJson => "HTTP OIP, JSON 0.xxxxxx".to_owned(),
            Path::HttpBinary => "HTTP OIP, binary".to_owned(),
            Path::CortexJson(n) => format!("Cortex POST, JSON {}", n.label()),
            Path::Multipart => "Cortex POST, multipart (Python)".to_owned(),
            Path::Urlencoded => "Cortex POST, urlencoded (Python)".to_owned(),
            Path::HttpJsonZeros => "HTTP OIP, JSON 0,0,0… 32 MB (refused)".to_owned(),
            Path::GrpcEmptyInputs => {
                "gRPC ModelInfer, 2 million empty inputs, 4 MB (refused)".to_owned()
            }
        }
    }

    /// Whether the path runs a Python predictor (its process is measured
    /// too).
    pub fn python(self) -> bool {
        matches!(self, Path::Multipart | Path::Urlencoded)
    }
}

/// What a path sends, and what it must get back.
pub struct Payload {
    pub path: Path,
    /// The request's bytes (for gRPC, the payload field's).
    pub bytes: Bytes,
    /// The header length (binary extension) or content type.
    header: Option<(&'static str, String)>,
    expect: Expect,
}

#[derive(Clone, Copy)]
enum Expect {
    /// The model's sum, within 1%.
    Sum(f64),
    /// The predictor's count of the form's bytes.
    FormBytes(usize),
    /// A 4xx.
    Refused,
}

/// `n` numbers of the `total` model's input and their sum: six-decimal
/// floats or digits, as the JSON text writes them.
fn numbers(n: usize, style: Numbers) -> (Vec<f32>, f64) {
    let values: Vec<f32> = (0..n as u64)
        .map(|i| {
            let k = i * 7919;
            match style {
                Numbers::Decimals => (k % 1_000_000) as f32 / 1e6,
                Numbers::Digits => (k % 10) as f32,
            }
        })
        .collect();
    let sum = values.iter().map(|v| f64::from(*v)).sum();
    (values, sum)
}

/// The JSON text of `values`, as rows of four (`nested`) or flat.
fn json_numbers(values: &[f32], style: Numbers, nested: bool) -> String {
    let mut text = String::with_capacity(values.len() * 9 + 16);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        if nested && i % 4 == 0 {
            text.push('[');
        }
        match style {
            Numbers::Decimals => text.push_str(&format!("{v:.6}")),
            Numbers::Digits => text.push(char::from(b'0' + *v as u8)),
        }
        if nested && i % 4 == 3 {
            text.push(']');
        }
    }
    text
}

/// How many numbers (a multiple of 4) make about `bytes` of text.
fn count_for(bytes: usize, style: Numbers, nested: bool) -> usize {
    let per = match style {
        Numbers::Decimals => 9.0,
        Numbers::Digits => 2.0,
    } + if nested { 0.5 } else { 0.0 };
    (bytes as f64 / per) as usize / 4 * 4
}

fn oip_head(shape: usize, rest: &str) -> String {
    format!(
        r#"{{"inputs":[{{"name":"x","datatype":"FP32","shape":[{},4],{rest}}}]}}"#,
        shape / 4
    )
}

impl Payload {
    /// `path`'s payload of about `REQUEST_BYTES` (a small one when
    /// `small`: the warm-up call).
    pub fn new(path: Path, small: bool) -> Payload {
        let size = if small { 400 } else { REQUEST_BYTES };
        let text = |t: String| Bytes::from(t.into_bytes());
        match path {
            Path::GrpcRaw | Path::HttpBinary => {
                let n = size / 4 / 4 * 4;
                let (values, sum) = numbers(n, Numbers::Decimals);
                let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                if path == Path::GrpcRaw {
                    return Payload {
                        path,
                        bytes: Bytes::from(raw),
                        header: None,
                        expect: Expect::Sum(sum),
                    };
                }
                let head = oip_head(
                    n,
                    &format!(r#""parameters":{{"binary_data_size":{}}}"#, raw.len()),
                );
                let mut body = head.clone().into_bytes();
                body.extend_from_slice(&raw);
                Payload {
                    path,
                    bytes: Bytes::from(body),
                    header: Some(("inference-header-content-length", head.len().to_string())),
                    expect: Expect::Sum(sum),
                }
            }
            Path::GrpcJson(style) | Path::CortexJson(style) => {
                let n = count_for(size, style, true);
                let (values, sum) = numbers(n, style);
                Payload {
                    path,
                    bytes: text(format!("[{}]", json_numbers(&values, style, true))),
                    header: Some(("content-type", "application/json".to_owned())),
                    expect: Expect::Sum(sum),
                }
            }
            Path::HttpJson => {
                let n = count_for(size, Numbers::Decimals, false);
                let (values, sum) = numbers(n, Numbers::Decimals);
                let data = json_numbers(&values, Numbers::Decimals, false);
                Payload {
                    path,
                    bytes: text(oip_head(n, &format!(r#""data":[{data}]"#))),
                    header: Some(("content-type", "application/json".to_owned())),
                    expect: Expect::Sum(sum),
                }
            }
            Path::HttpJsonZeros => {
                let n = if small { 400 } else { 16_000_000 };
                let mut data = "0,".repeat(n);
                data.pop();
                Payload {
                    path,
                    bytes: text(oip_head(n, &format!(r#""data":[{data}]"#))),
                    header: Some(("content-type", "application/json".to_owned())),
                    expect: if small {
                        Expect::Sum(0.0)
                    } else {
                        Expect::Refused
                    },
                }
            }
            Path::GrpcEmptyInputs => Payload {
                path,
                // Two bytes an input on the wire: the field's tag, length 0.
                bytes: Bytes::from(vec![0u8; if small { 0 } else { 4_000_000 }]),
                header: None,
                expect: if small {
                    Expect::Sum(0.0)
                } else {
                    Expect::Refused
                },
            },
            Path::Multipart => {
                let file: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
                let mut body = Vec::with_capacity(size + 512);
                body.extend_from_slice(
                    b"--XBOUNDARY\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
                      --XBOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
                      Content-Type: application/octet-stream\r\n\r\n",
                );
                body.extend_from_slice(&file);
                body.extend_from_slice(b"\r\n--XBOUNDARY--\r\n");
                Payload {
                    path,
                    bytes: Bytes::from(body),
                    header: Some((
                        "content-type",
                        "multipart/form-data; boundary=XBOUNDARY".to_owned(),
                    )),
                    expect: Expect::FormBytes(size + 5),
                }
            }
            Path::Urlencoded => {
                // Letters need no escaping: the field is as long as sent.
                let value: String = (0..size)
                    .map(|i| char::from(b'a' + (i % 26) as u8))
                    .collect();
                Payload {
                    path,
                    bytes: text(format!("note=hello&text={value}")),
                    header: Some((
                        "content-type",
                        "application/x-www-form-urlencoded".to_owned(),
                    )),
                    expect: Expect::FormBytes(size + 5),
                }
            }
        }
    }

    /// Sends the payload to `addr` once and checks the answer.
    pub async fn call(&self, addr: SocketAddr) -> Result<(), String> {
        match self.path {
            Path::GrpcRaw => self.check_sum(self.model_infer(addr).await?),
            Path::GrpcEmptyInputs => match (self.expect, self.empty_inputs(addr).await) {
                (Expect::Refused, Err(_)) => Ok(()),
                (Expect::Refused, Ok(_)) => Err("not refused".to_owned()),
                // The warm-up: an ordinary small call.
                (_, _) => {
                    let small = Payload::new(Path::GrpcRaw, true);
                    small.check_sum(small.model_infer(addr).await?)
                }
            },
            Path::GrpcJson(_) => self.check_sum(self.predict(addr).await?),
            Path::HttpJson | Path::HttpBinary | Path::HttpJsonZeros => {
                let answer = self.post(addr, "/v2/models/total/infer").await?;
                self.check_answer(&answer, |v| v["outputs"][0]["data"][0].as_f64())
            }
            Path::CortexJson(_) => {
                let answer = self.post(addr, "/total").await?;
                self.check_answer(&answer, |v| v["total"].as_f64())
            }
            Path::Multipart | Path::Urlencoded => {
                let answer = self.post(addr, "/form").await?;
                self.check_answer(&answer, |v| v["bytes"].as_f64())
            }
        }
    }

    async fn post(&self, addr: SocketAddr, path: &str) -> Result<Answer, String> {
        let headers: Vec<(&str, &str)> =
            self.header.iter().map(|(n, v)| (*n, v.as_str())).collect();
        post(addr, path, &headers, self.bytes.clone())
            .await
            .map_err(|e| format!("POST {path}: {e}"))
    }

    fn check_answer(
        &self,
        answer: &Answer,
        number: impl Fn(&serde_json::Value) -> Option<f64>,
    ) -> Result<(), String> {
        if let Expect::Refused = self.expect {
            return if (400..500).contains(&answer.status) {
                Ok(())
            } else {
                Err(format!("not refused: {} {}", answer.status, answer.text()))
            };
        }
        if answer.status != 200 {
            return Err(format!("{} {}", answer.status, answer.text()));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|e| format!("{e}: {}", answer.text()))?;
        let got = number(&value).ok_or_else(|| format!("no number in {value}"))?;
        match self.expect {
            Expect::FormBytes(n) if got as usize == n => Ok(()),
            Expect::FormBytes(n) => Err(format!("the form came to {got} bytes, not {n}")),
            _ => self.check_sum(got),
        }
    }

    fn check_sum(&self, got: f64) -> Result<(), String> {
        match self.expect {
            Expect::Sum(sum) if (got - sum).abs() <= sum.abs() * 1e-2 + 1e-3 => Ok(()),
            Expect::Sum(sum) => Err(format!("summed to {got}, not {sum}")),
            _ => Err(format!("unexpected sum {got}")),
        }
    }

    async fn model_infer(&self, addr: SocketAddr) -> Result<f64, String> {
        let n = self.bytes.len() / 4;
        let request = ModelInferRequest {
            model_name: "total".to_owned(),
            inputs: vec![InferInputTensor {
                name: "x".to_owned(),
                datatype: "FP32".to_owned(),
                shape: vec![(n / 4) as i64, 4],
                ..Default::default()
            }],
            raw_input_contents: vec![self.bytes.clone()],
            ..Default::default()
        };
        let response = GrpcInferenceServiceClient::new(channel(addr).await?)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
            .model_infer(request)
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        let raw = response
            .raw_output_contents
            .first()
            .filter(|r| r.len() == 4)
            .ok_or("no output")?;
        Ok(f64::from(f32::from_le_bytes([
            raw[0], raw[1], raw[2], raw[3],
        ])))
    }

    /// ModelInfer with one empty input per two bytes of the payload.
    async fn empty_inputs(&self, addr: SocketAddr) -> Result<(), String> {
        if self.bytes.is_empty() {
            return Err("no inputs".to_owned());
        }
        let request = ModelInferRequest {
            model_name: "total".to_owned(),
            inputs: vec![InferInputTensor::default(); self.bytes.len() / 2],
            ..Default::default()
        };
        GrpcInferenceServiceClient::new(channel(addr).await?)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
            .model_infer(request)
            .await
            .map(|_| ())
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }

    async fn predict(&self, addr: SocketAddr) -> Result<f64, String> {
        let json = std::str::from_utf8(&self.bytes).map_err(|e| e.to_string())?;
        let request = hotswap_integration_tests::worker::request("total", json, &[]);
        let response = PredictorClient::new(channel(addr).await?)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
            .predict(request)
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        match response.output {
            Some(predict_response::Output::Json(text)) => {
                let answer: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| e.to_string())?;
                answer["total"].as_f64().ok_or(format!("answer {text}"))
            }
            other => Err(format!("unexpected output {other:?}")),
        }
    }
}

async fn channel(addr: SocketAddr) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("address")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .connect()
        .await
        .map_err(|e| e.to_string())
}

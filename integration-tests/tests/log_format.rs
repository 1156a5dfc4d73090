//! `--log-format json`: every line a service writes is one JSON object with
//! the same fields the text lines carry.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use hotswap_integration_tests::process::{
    ChildGuard, hotswap_binary, model_store_args, workspace_root,
};

#[test]
fn json_logs_are_one_object_per_line() {
    let config = workspace_root().join("examples/iris-onnx/hotswap.yaml");
    let mut command = Command::new(hotswap_binary());
    command
        .args(["--log-format", "json"])
        .args(model_store_args(&config, &["--poll-interval", "200ms"]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut store = ChildGuard::spawn("model-store", &mut command);
    let stderr = store.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    // Until the first version is published (bounded).
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let object: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let message = object["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        seen.push(object);
        if message == "published" {
            break;
        }
    }
    let listening = seen
        .iter()
        .find(|o| o["fields"]["message"] == "model-store listening")
        .unwrap_or_else(|| panic!("{seen:#?}"));
    assert!(
        listening["fields"]["addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(listening["level"], "INFO");
    let published = seen.last().unwrap();
    assert_eq!(published["fields"]["api"], "iris", "{published}");
    let _ = store.child.kill();
}

//! examples/cortex-migration as its README runs it: `hotswap up` on the
//! Cortex user's own `cortex.yaml`, then the README's `curl` commands as
//! written (only the port differs) and its `requests` client.

use std::process::Command;
use std::time::Duration;

use hotswap_integration_tests::process::{Hotswap, venv, workspace_root};

/// The lines of the README's `curl` block.
fn readme_curls(readme: &str) -> Vec<String> {
    let block = readme
        .split("Call it with `curl`:")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README's curl block");
    block.lines().map(str::to_owned).collect()
}

fn sh(command: &str) -> String {
    let output = Command::new("bash")
        .args(["-c", command])
        .current_dir(workspace_root())
        .output()
        .expect("run bash");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_cortex_users_files_and_clients_work_unchanged() {
    let example = workspace_root().join("examples/cortex-migration");
    let config = example.join("cortex.yaml");
    let up = Hotswap::up(&config);
    let addr = up.addr_of("control-plane").to_string();
    let url = format!("http://{addr}/sentiment");

    // Until the predictor has started, calls are UNAVAILABLE (503).
    let probe = format!(
        "curl -s -o /dev/null -w '%{{http_code}}' -X POST {url} -H 'Content-Type: application/json' -d '{{\"text\": \"ok\"}}'"
    );
    up.wait("the predictor answering 200")
        .every(Duration::from_millis(100))
        .until_blocking(|| (sh(&probe) == "200").then_some(()));

    let readme = std::fs::read_to_string(example.join("README.md")).unwrap();
    let curls = readme_curls(&readme);
    assert_eq!(curls.len(), 5, "{curls:?}");
    let answers: Vec<String> = curls
        .iter()
        .map(|c| sh(&c.replace("127.0.0.1:7000", &addr)))
        .collect();
    let expect = [
        vec![
            r#""label":"positive""#,
            r#""user":"ada""#,
            "hello from predictor.env",
        ],
        vec![r#""label":"negative""#, r#""words":["awful"]"#],
        vec!["positive"],
        vec![r#""sha256":"#, r#""bytes":"#],
        vec!["HTTP/1.1 422", "send {"],
    ];
    for ((curl, answer), wants) in curls.iter().zip(&answers).zip(expect) {
        for want in wants {
            assert!(
                answer.contains(want),
                "{curl}\n=> {answer}\n(wanted {want})"
            );
        }
    }
    assert_eq!(answers[2], "positive", "text/plain in, a str out");

    let client = Command::new(venv().join("bin/python"))
        .arg(example.join("client.py"))
        .arg(&url)
        .output()
        .expect("run client.py");
    let out = String::from_utf8_lossy(&client.stdout);
    assert!(
        client.status.success() && out.ends_with("ok\n"),
        "{out}\n{}",
        String::from_utf8_lossy(&client.stderr)
    );

    // post_predict ran after the answers; the foreign sections warned.
    let log = up.log().join("\n");
    assert!(log.contains("post_predict: served"), "{log}");
    for field in [
        "autoscaling",
        "update_strategy",
        "networking.endpoint",
        "predictor.image",
        "predictor.log_level",
        "compute.cpu/mem",
    ] {
        assert!(log.contains(&format!("config: {field}:")), "{field}: {log}");
    }
}

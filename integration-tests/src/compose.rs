//! The docker compose stack of the repository's docker-compose.yml, brought
//! up under a project name of its own on a free loopback port, over a
//! bucket folder the test owns, and torn down (containers, networks,
//! volumes) when dropped, whatever happened.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use crate::process::workspace_root;

/// The image the stack runs (built by `make image`, which `make test` runs
/// first).
pub const IMAGE: &str = "hotswap:latest";

/// A running compose stack, taken down on drop.
pub struct Compose {
    project: String,
    /// `docker compose` or `docker-compose`, whichever this machine has.
    program: Vec<String>,
    models: tempfile::TempDir,
    /// Holds the test's override file (outside the bucket folder).
    overrides: tempfile::TempDir,
    /// More compose files, from the workspace root (an overlay such as
    /// docker-compose.tls.yml), and the variables they read.
    options: ComposeOptions,
    /// The front door, as published.
    pub addr: SocketAddr,
    /// The control plane's internal listener (registration, ListWorkers),
    /// which the stack does not publish: the test's own override file does.
    pub internal: SocketAddr,
}

const OVERRIDE_FILE: &str = "compose.test.yaml";

/// Publishes the control plane's internal listener on a free loopback port,
/// for the test alone.
const TEST_OVERRIDE: &str =
    "services:\n  control-plane:\n    ports:\n      - \"127.0.0.1::7003\"\n";

/// How a stack is started beyond docker-compose.yml.
#[derive(Default, Clone)]
pub struct ComposeOptions {
    /// Compose files layered on top, relative to the workspace root.
    pub files: Vec<String>,
    /// Variables for compose (HOTSWAP_TLS, say).
    pub env: Vec<(String, String)>,
}

impl Compose {
    /// Copies `models` (a folder with `hotswap.yaml` and its models) into a
    /// fresh bucket folder, lets `prepare` change it, and starts the stack
    /// on it with one worker.
    pub fn up(models: &Path, prepare: impl FnOnce(&Path)) -> Compose {
        Compose::up_with(models, prepare, ComposeOptions::default())
    }

    /// As [`Compose::up`], with more compose files and variables.
    pub fn up_with(models: &Path, prepare: impl FnOnce(&Path), options: ComposeOptions) -> Compose {
        let image = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .expect("run docker");
        assert!(
            image.status.success(),
            "image {IMAGE} is missing: build it with `make image` (`make test` does)"
        );
        let dir = tempfile::tempdir().expect("bucket folder");
        copy_readable(models, dir.path());
        prepare(dir.path());
        let overrides = tempfile::tempdir().expect("override folder");
        std::fs::write(overrides.path().join(OVERRIDE_FILE), TEST_OVERRIDE).expect("override file");
        let program = if Command::new("docker")
            .args(["compose", "version"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            vec!["docker".to_owned(), "compose".to_owned()]
        } else {
            vec!["docker-compose".to_owned()]
        };
        let mut compose = Compose {
            project: format!("hotswap-test-{}", std::process::id()),
            program,
            models: dir,
            overrides,
            options,
            addr: "127.0.0.1:1".parse().unwrap(),
            internal: "127.0.0.1:1".parse().unwrap(),
        };
        // Dependencies come up healthy first (depends_on conditions); the
        // caller waits for workers to register.
        compose
            .run(&["up", "-d"])
            .unwrap_or_else(|e| panic!("docker compose up: {e}"));
        let published = |port| {
            compose
                .published("control-plane", 1, port)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let (addr, internal) = (published(7000), published(7003));
        compose.addr = addr;
        compose.internal = internal;
        compose
    }

    /// The bucket folder the stack serves models from.
    pub fn bucket(&self) -> &Path {
        self.models.path()
    }

    /// Runs a compose subcommand for this project; its stdout, or the
    /// failure with stderr.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let output = self.command(args).output().map_err(|e| e.to_string())?;
        result(output)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program[0]);
        command
            .args(&self.program[1..])
            .arg("--project-name")
            .arg(&self.project)
            .arg("--file")
            .arg(workspace_root().join("docker-compose.yml"))
            .args(
                self.options
                    .files
                    .iter()
                    .flat_map(|f| ["--file".into(), workspace_root().join(f).into_os_string()]),
            )
            .arg("--file")
            .arg(self.overrides.path().join(OVERRIDE_FILE))
            .args(args)
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .env("HOTSWAP_MODELS", self.models.path())
            .env("HOTSWAP_PUBLISH", "127.0.0.1:")
            .env("HOTSWAP_IMAGE", IMAGE);
        command
    }

    /// Ids of a service's running containers.
    pub fn containers(&self, service: &str) -> Vec<String> {
        self.running(service, None)
    }

    /// The id of a scaled service's container number `index` (from 1).
    pub fn container(&self, service: &str, index: usize) -> String {
        let ids = self.running(service, Some(index));
        assert_eq!(ids.len(), 1, "{service} #{index}: {ids:?}");
        ids[0].clone()
    }

    /// Ids of a service's running containers, or of its number `index`.
    fn running(&self, service: &str, index: Option<usize>) -> Vec<String> {
        let mut filters = vec![
            format!("label=com.docker.compose.project={}", self.project),
            format!("label=com.docker.compose.service={service}"),
        ];
        filters.extend(index.map(|i| format!("label=com.docker.compose.container-number={i}")));
        let mut args = vec!["ps", "--quiet", "--no-trunc"];
        for f in &filters {
            args.extend(["--filter", f]);
        }
        docker(&args)
            .unwrap_or_else(|e| panic!("docker ps: {e}"))
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Where container number `index` (from 1) of a service publishes
    /// `port` on the host; an error while that container is not running.
    pub fn published(&self, service: &str, index: usize, port: u16) -> Result<SocketAddr, String> {
        let addr = self
            .run(&[
                "port",
                "--index",
                &index.to_string(),
                service,
                &port.to_string(),
            ])
            .map_err(|e| format!("docker compose port: {e}"))?;
        addr.trim()
            .parse()
            .map_err(|e| format!("published address {addr:?}: {e}"))
    }

    /// The compose logs of every service, for a failing test's message.
    pub fn logs(&self) -> String {
        self.run(&["logs", "--no-color", "--tail", "200"])
            .unwrap_or_else(|e| e)
    }
}

/// `docker` with these arguments; its stdout or the failure.
pub fn docker(args: &[&str]) -> Result<String, String> {
    result(
        Command::new("docker")
            .args(args)
            .output()
            .map_err(|e| e.to_string())?,
    )
}

fn result(output: Output) -> Result<String, String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        // Bounded: containers get a few seconds to stop, then are killed.
        if let Err(e) = self.run(&["down", "--volumes", "--remove-orphans", "--timeout", "5"]) {
            eprintln!("docker compose down for {}: {e}", self.project);
        }
    }
}

/// Makes a folder tree readable by the image's unprivileged user.
pub fn make_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.expect("read the folder");
        let mode = if entry.file_type().is_dir() {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))
            .expect("make it readable");
    }
}

/// Copies the folder `from` into `to`, readable by everyone (the image runs
/// as an unprivileged user that reads the bucket).
pub fn copy_readable(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("read the models folder");
        let target = to.join(entry.path().strip_prefix(from).expect("inside the folder"));
        let mode = if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("create a folder");
            0o755
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
            0o644
        };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            .expect("make it readable");
    }
}

//! Child processes for tests: started so they die with the test, stopped by
//! PID on drop, and their listening port read from /proc rather than probed.

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::wait::{WAIT, Wait};

/// A child process killed (by its PID) and reaped when dropped.
pub struct ChildGuard {
    /// The process.
    pub child: Child,
    name: String,
}

impl ChildGuard {
    /// Spawns `command` so that it also dies if the test process dies first.
    pub fn spawn(name: &str, command: &mut Command) -> ChildGuard {
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        ChildGuard {
            child,
            name: name.to_owned(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for the process to listen on a TCP port and returns it.
    pub fn listening_port(&mut self, timeout: Duration) -> u16 {
        let pid = self.pid();
        let (name, child) = (&self.name, &mut self.child);
        Wait::new(format!("{name} to listen"))
            .within(timeout)
            .until_blocking(|| {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{name} exited before listening: {status}");
                }
                listening_port(pid)
            })
    }

    /// Sends SIGTERM and waits (bounded) for the exit status, letting the
    /// test's runtime run meanwhile (its clients must be able to hang up).
    pub async fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        // SAFETY: plain kill(2) on our own child's PID.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, libc::SIGTERM);
        }
        let child = &mut self.child;
        Wait::new(format!("{} to stop after SIGTERM", self.name))
            .within(timeout)
            .every(Duration::from_millis(20))
            .until(|| std::future::ready(child.try_wait().expect("wait")))
            .await
    }

    /// Waits (bounded, blocking) for the process to exit by itself; None
    /// when it still runs after `within`.
    pub fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let child = &mut self.child;
        Wait::new(format!("{} to exit", self.name))
            .within(within)
            .every(Duration::from_millis(20))
            .poll_blocking(|| child.try_wait().expect("wait"))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TCP port a process listens on, from its socket inodes and
/// /proc/<pid>/net/tcp. Emulators started with port 0 do not all print the
/// port they bound; the kernel knows.
pub fn listening_port(pid: u32) -> Option<u16> {
    let inodes: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.ok()?.path()).ok()?;
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is fields[1] ("0100007F:1F90"), st is fields[3]
            // (0A = LISTEN), inode is fields[9].
            if fields.len() > 9
                && fields[3] == "0A"
                && fields[9].parse().is_ok_and(|i: u64| inodes.contains(&i))
                && let Some((_, port)) = fields[1].split_once(':')
                && let Ok(port) = u16::from_str_radix(port, 16)
            {
                return Some(port);
            }
        }
    }
    None
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests sits in the workspace")
        .to_path_buf()
}

/// The project's Python virtualenv with the emulators (made by `.ci/setup`);
/// `HOTSWAP_VENV` points elsewhere.
#[allow(
    clippy::disallowed_methods,
    reason = "the tests find the virtualenv where CI and the Makefile put it"
)]
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("HOTSWAP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    assert!(
        venv.join("bin/python").exists(),
        "no Python virtualenv at {}: run `make test` (or .ci/setup), which creates it",
        venv.display()
    );
    venv
}

/// Where in-process workers find the runtime libraries: the project's
/// virtualenv, as the binary's own search does (TensorFlow's folder comes
/// from TENSORFLOW_DIR, which cargo sets for tests; see .ci/setup).
#[allow(
    clippy::disallowed_methods,
    reason = "the tests run with the environment cargo and CI give them"
)]
pub fn runtimes() -> hotswap_data_plane::RuntimeConfig {
    hotswap_data_plane::RuntimeConfig {
        venvs: vec![venv()],
        tensorflow_dir: std::env::var_os("TENSORFLOW_DIR").map(PathBuf::from),
        ..hotswap_data_plane::RuntimeConfig::default()
    }
}

/// How in-process workers start Python predictors: this build's `hotswap`
/// binary, with `venv` for the predictors' packages.
#[allow(
    clippy::disallowed_methods,
    reason = "predictor processes inherit from the test's environment, as from a worker's"
)]
pub fn python(venv: Option<PathBuf>) -> hotswap_data_plane::ProcessConfig {
    hotswap_data_plane::ProcessConfig {
        exe: Some(hotswap_binary()),
        venv,
        inherited_env: hotswap_python::inherited(std::env::vars()),
        ..hotswap_data_plane::ProcessConfig::default()
    }
}

/// The `hotswap` binary of this build (cargo builds it with the tests).
pub fn hotswap_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/hotswap
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary sits in target/<profile>/deps");
    let binary = profile_dir.join("hotswap");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build --bin hotswap` (the test command does)",
        binary.display()
    );
    binary
}

/// A running `hotswap` process whose log lines are collected.
pub struct Hotswap {
    /// The process.
    pub process: ChildGuard,
    /// The address it logged as bound first (a control plane's front door).
    pub addr: std::net::SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// The server name and address of a `<name> listening addr=<addr>` line.
fn listening(line: &str) -> Option<(&str, std::net::SocketAddr)> {
    let (before, after) = line.split_once(" listening addr=")?;
    let name = before.split_whitespace().last()?;
    let addr = after.split_whitespace().next()?.parse().ok()?;
    Some((name, addr))
}

impl Hotswap {
    /// Starts `hotswap ARGS` with extra environment and waits (bounded) for
    /// the line saying where it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Hotswap {
        Hotswap::start_binary(&hotswap_binary(), args, env)
    }

    /// `hotswap up CONFIG` with its front door and metrics on free loopback
    /// ports.
    pub fn up(config: &Path) -> Hotswap {
        let config = config.to_str().expect("a UTF-8 path");
        Hotswap::start(
            &[
                "up",
                config,
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ],
            &[],
        )
    }

    /// As [`Hotswap::start`], with another build of the binary (a benchmark
    /// comparing builds).
    pub fn start_binary(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Hotswap {
        let mut command = Command::new(binary);
        command
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut process = ChildGuard::spawn("hotswap", &mut command);
        let stderr = process.child.stderr.take().expect("piped stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        // Drains stderr for the process's whole life so it never blocks on
        // a full pipe.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                // The first address logged: what clients call (`hotswap up`
                // logs it before its services start listening); a metrics
                // listener's is not one.
                if let Some(addr) = line
                    .split("addr=")
                    .nth(1)
                    .filter(|_| !line.contains("metrics listening"))
                {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().expect("logged address"),
            Err(_) => panic!(
                "hotswap did not log its address: {:#?}",
                log.lock().unwrap()
            ),
        };
        Hotswap { process, addr, log }
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// A wait for `what` whose timeout shows this process's log.
    pub fn wait(&self, what: impl Into<String>) -> Wait<'_> {
        Wait::new(what).context(|| self.log().join("\n"))
    }

    /// The address the server called `name` logged as bound (a control
    /// plane's "control-plane-internal", say); waits for it (bounded).
    pub fn addr_of(&self, name: &str) -> std::net::SocketAddr {
        Wait::new(format!("a `{name} listening` line"))
            .every(Duration::from_millis(20))
            .context(|| format!("{:#?}", self.log()))
            .until_blocking(|| {
                self.log()
                    .iter()
                    .find_map(|l| listening(l).filter(|(n, _)| *n == name).map(|(_, a)| a))
            })
    }
}

/// The command line of a model-store serving `config` on a free loopback
/// port: `model-store --config CONFIG --listen 127.0.0.1:0`, then `more`
/// (`--poll-interval 200ms`, TLS flags, ...). The one place tests spell it.
pub fn model_store_args<'a, P>(config: &'a P, more: &[&'a str]) -> Vec<&'a str>
where
    P: AsRef<Path> + ?Sized,
{
    let config = config.as_ref().to_str().expect("a UTF-8 config path");
    let mut args = vec!["model-store", "--config", config, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(more);
    args
}

/// Runs `hotswap ARGS` to completion (bounded) and returns its exit code and
/// stderr.
pub fn run_hotswap(args: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(hotswap_binary());
    command
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut guard = ChildGuard::spawn("hotswap", &mut command);
    let status = guard
        .exit_within(WAIT)
        .unwrap_or_else(|| panic!("hotswap {args:?} did not exit"));
    let mut stderr = String::new();
    use std::io::Read;
    guard
        .child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.code(), stderr)
}

/// Runs `scripts/triton_client_check.py` (the unmodified `tritonclient`
/// against `addr`, answers compared with ONNX Runtime's Python API on
/// `model_file`), retrying (bounded) while the server is not ready yet.
/// Returns the script's output when it fails.
pub fn triton_check(
    addr: &str,
    name: &str,
    version: &str,
    model_file: &std::path::Path,
) -> Result<(), String> {
    triton_check_with(addr, name, version, model_file, &[])
}

/// As [`triton_check`], with the script's options (`--ca FILE`, `--token
/// TOKEN`).
pub fn triton_check_with(
    addr: &str,
    name: &str,
    version: &str,
    model_file: &std::path::Path,
    options: &[&str],
) -> Result<(), String> {
    run_check(
        "triton_client_check.py",
        addr,
        name,
        version,
        model_file,
        options,
    )
}

/// As [`triton_check_with`], over HTTP with `tritonclient.http`
/// (`scripts/triton_http_check.py`; options: `--token TOKEN`).
pub fn triton_http_check(
    addr: &str,
    name: &str,
    version: &str,
    model_file: &std::path::Path,
    options: &[&str],
) -> Result<(), String> {
    run_check(
        "triton_http_check.py",
        addr,
        name,
        version,
        model_file,
        options,
    )
}

fn run_check(
    script: &str,
    addr: &str,
    name: &str,
    version: &str,
    model_file: &std::path::Path,
    options: &[&str],
) -> Result<(), String> {
    let root = workspace_root();
    let mut last = String::new();
    // Until a worker has registered and loaded, the client sees not-ready;
    // any other failure ends the wait.
    let passed = Wait::new(format!("{script} against {addr}"))
        .within(Duration::from_secs(120))
        .every(Duration::from_millis(100))
        .poll_blocking(|| {
            let output = Command::new(venv().join("bin/python"))
                .arg(root.join("integration-tests/scripts").join(script))
                .args([addr, name, version])
                .arg(model_file)
                .args(options)
                .output()
                .expect("run the venv's python");
            last = format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            if output.status.success() && last.contains("ok") {
                return Some(true);
            }
            (!last.contains("not ready")).then_some(false)
        });
    match passed {
        Some(true) => Ok(()),
        _ => Err(last),
    }
}

/// The sum of the series of metric `name` whose labels contain `with` ("" for
/// any), scraped from the Prometheus listener at `metrics`; None when it has
/// no such series (yet).
pub fn metric(metrics: std::net::SocketAddr, name: &str, with: &str) -> Option<f64> {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            &format!("http://{metrics}/metrics"),
        ])
        .output()
        .expect("run curl");
    let values: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']) && rest.contains(with))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

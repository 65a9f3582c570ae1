//! Helpers shared by the CLI tests.

use std::path::Path;
use std::process::Command;

/// The `barman` binary under test.
pub(crate) const BARMAN: &str = env!("CARGO_BIN_EXE_barman");

/// Runs `barman -c CONF ARGS...`: (exit code, stdout, stderr).
pub(crate) fn barman(conf: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BARMAN)
        .arg("-c")
        .arg(conf)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

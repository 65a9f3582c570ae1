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

/// The command line running `barman -c CONF ARGS...` as the database server's OS user
/// (`postgres` when the tests run as root), the way a deployment runs every Barman
/// command as one user: the repository stays owned by the user `archive_command` runs as.
pub(crate) fn barman_as_server_cmd(conf: &Path, args: &[&str]) -> Command {
    let mut cmd = if barman_testkit::tools::is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", BARMAN]);
        c
    } else {
        Command::new(BARMAN)
    };
    cmd.arg("-c").arg(conf).args(args);
    cmd
}

/// Runs [`barman_as_server_cmd`]: (exit code, stdout, stderr).
pub(crate) fn barman_as_server(conf: &Path, args: &[&str]) -> (i32, String, String) {
    let out = barman_as_server_cmd(conf, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

//! A throwaway OpenSSH server on 127.0.0.1 for the tests: its own host key, a client
//! key generated here, a free port, killed on drop. As root it logs in the
//! unprivileged `postgres` user; as an ordinary user it can only log in that user.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::tools::{free_port, is_root, require, run, wait_for_port, which};

#[derive(Debug)]
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub user: String,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts sshd, or returns `None` (skip) when OpenSSH is not installed.
    pub fn start() -> Option<Sshd> {
        Sshd::start_with_env(&[])
    }

    /// [`Sshd::start`] whose sessions get these environment variables (sshd's
    /// `SetEnv`): `PATH` to find the programs a remote command names, for example.
    pub fn start_with_env(env: &[(&str, &str)]) -> Option<Sshd> {
        let present = which("/usr/sbin/sshd").is_some()
            && which("ssh").is_some()
            && which("ssh-keygen").is_some();
        if !require(
            "sshd, ssh and ssh-keygen (apt-get install openssh-server)",
            present,
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("barman-sshd.")
            .tempdir()
            .unwrap();
        let d = dir.path();
        // The server reads authorized_keys as the target user: let it traverse.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "barman-test", "-f"])
                .arg(d.join(key)));
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        std::fs::set_permissions(
            d.join("authorized_keys"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let user = if is_root() {
            // Privilege separation needs this directory.
            std::fs::create_dir_all("/run/sshd").unwrap();
            "postgres".to_owned()
        } else {
            run(Command::new("id").arg("-un")).trim().to_owned()
        };
        let port = free_port();
        let cfg = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nUsePAM {pam}\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin no\nAllowUsers {user}\nSubsystem sftp internal-sftp\nLogLevel DEBUG1\n",
            d = d.display(),
            pam = if is_root() { "yes" } else { "no" },
        );
        let mut cfg = cfg;
        // One SetEnv line: sshd keeps the first value of each keyword.
        if !env.is_empty() {
            let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            cfg.push_str(&format!("SetEnv {}\n", pairs.join(" ")));
        }
        std::fs::write(d.join("sshd_config"), cfg).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut s = Sshd {
            child,
            port,
            user,
            dir,
        };
        wait_for_port(port, "sshd", || s.child.try_wait().unwrap().is_none());
        Some(s)
    }

    /// The `ssh` program with the options that trust this server and use its client
    /// key, without port and destination.
    pub fn ssh_base(&self) -> String {
        format!(
            "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.dir.path().join("client_key").display()
        )
    }

    /// A Barman-style `ssh_command` that logs in to this server.
    pub fn ssh_command(&self) -> String {
        format!(
            "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p {} {}@127.0.0.1",
            self.dir.path().join("client_key").display(),
            self.port,
            self.user
        )
    }

    /// The server's log, for failure messages.
    #[allow(dead_code)]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Gives `path` (recursively) to the login user, so the remote side can write it.
    pub fn give(&self, path: &Path) {
        if is_root() {
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{}:", self.user))
                .arg(path));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory the login user can read (and, after `Sshd::give`, write).
pub fn shared_tempdir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("barman-remote.")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

//! Commands on a remote host over the system `ssh`.

use std::process::Stdio;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::{Error, Result};

/// Options of OpenSSH's `ssh` that take a value (so the destination is the first
/// argument that is neither an option nor such a value).
const OPTS_WITH_VALUE: &str = "BbcDEeFIiJLlmOoPpQRSWw";

/// How to reach a database host: Barman's `ssh_command` (for example
/// `ssh -p 2222 postgres@pg`), run with the system `ssh` in batch mode.
///
/// Remote commands are given as argument lists and each argument is quoted for the
/// remote POSIX shell, so no caller string is ever interpreted by it: `$HOME`,
/// backquotes, `;` and `*` arrive as written.
///
/// # Examples
///
/// ```
/// use barman_transport::SshCommand;
///
/// let ssh = SshCommand::new("ssh -p 2222 postgres@pg.example.com")?;
/// assert_eq!(ssh.destination(), "postgres@pg.example.com");
/// assert_eq!(
///     ssh.argv(&["ls", "-l", "/var/lib/postgresql/my data"])?,
///     ["ssh", "-o", "BatchMode=yes", "-p", "2222", "postgres@pg.example.com",
///      "ls -l '/var/lib/postgresql/my data'"],
/// );
/// # Ok::<(), barman_transport::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCommand {
    program: String,
    options: Vec<String>,
    destination: String,
}

/// The result of a remote command that ran to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteOutput {
    /// The exit code (`None` when `ssh` was killed by a signal). 255 means `ssh`
    /// itself failed (connection, authentication).
    pub code: Option<i32>,
    /// Everything the command wrote to its standard output.
    pub stdout: Bytes,
    /// Its standard error, lossily decoded.
    pub stderr: String,
}

impl RemoteOutput {
    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

fn config(value: &str, reason: &str) -> Error {
    Error::Config {
        what: "ssh_command",
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Quotes `args` for a POSIX shell and joins them with spaces.
///
/// ```
/// use barman_transport::quote_for_shell;
///
/// assert_eq!(quote_for_shell(&["echo", "$HOME", "a b", "it's"])?, r#"echo '$HOME' 'a b' "it's""#);
/// # Ok::<(), barman_transport::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] for an argument with a NUL byte, which no shell can pass.
pub fn quote_for_shell<S: AsRef<str>>(args: &[S]) -> Result<String> {
    let quoted = args
        .iter()
        .map(|a| {
            shlex::try_quote(a.as_ref())
                .map(|q| q.into_owned())
                .map_err(|_| config(a.as_ref(), "a command argument cannot contain a NUL byte"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(quoted.join(" "))
}

impl SshCommand {
    /// Parses an `ssh_command` as a POSIX shell would split it. The destination is its
    /// first argument that is not an option; anything after it is refused (a remote
    /// command belongs to [`SshCommand::run`]).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an empty or unbalanced command, or one without a
    /// destination.
    pub fn new(ssh_command: &str) -> Result<SshCommand> {
        let words =
            shlex::split(ssh_command).ok_or_else(|| config(ssh_command, "unbalanced quotes"))?;
        let mut words = words.into_iter();
        let program = words.next().ok_or_else(|| config(ssh_command, "empty"))?;
        let mut options = vec!["-o".to_owned(), "BatchMode=yes".to_owned()];
        let mut destination = None;
        while let Some(w) = words.next() {
            if w == "--" {
                destination = words.next();
                break;
            }
            if let Some(flags) = w.strip_prefix('-')
                && !flags.is_empty()
            {
                // `-p2222` carries its value; `-p 2222` takes the next word.
                let takes_value = flags
                    .char_indices()
                    .find(|(_, c)| OPTS_WITH_VALUE.contains(*c))
                    .map(|(i, _)| i + 1 == flags.len());
                options.push(w.clone());
                if takes_value == Some(true) {
                    let v = words
                        .next()
                        .ok_or_else(|| config(ssh_command, "an option lacks its value"))?;
                    options.push(v);
                }
                continue;
            }
            destination = Some(w);
            break;
        }
        let destination =
            destination.ok_or_else(|| config(ssh_command, "no destination (user@host)"))?;
        if words.next().is_some() {
            return Err(config(
                ssh_command,
                "words after the destination (a remote command) are not allowed",
            ));
        }
        Ok(SshCommand {
            program,
            options,
            destination,
        })
    }

    /// The `user@host` (or host alias) part.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The `ssh` program and its options, without the destination: what rsync's `-e`
    /// takes, as a list.
    pub fn transport_argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.options.iter().cloned())
            .collect()
    }

    /// The full argument vector that runs `remote` on the host.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an argument with a NUL byte.
    pub fn argv<S: AsRef<str>>(&self, remote: &[S]) -> Result<Vec<String>> {
        let mut v = self.transport_argv();
        v.push(self.destination.clone());
        v.push(quote_for_shell(remote)?);
        Ok(v)
    }

    fn command<S: AsRef<str>>(&self, remote: &[S]) -> Result<(tokio::process::Command, String)> {
        let argv = self.argv(remote)?;
        let shown = quote_for_shell(&argv)?;
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok((cmd, shown))
    }

    /// Runs `remote` on the host, feeding it `stdin` (or nothing), and returns its
    /// output whatever its exit code. Dropping the future kills `ssh`.
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] when `ssh` cannot be started; [`Error::Config`] for an
    /// argument with a NUL byte.
    pub async fn output<S: AsRef<str> + Sync>(
        &self,
        remote: &[S],
        stdin: Option<Bytes>,
    ) -> Result<RemoteOutput> {
        let (mut cmd, _) = self.command(remote)?;
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let feed = async {
            if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
                // A command that stops reading early is not an error here: its exit
                // status tells.
                let _ = pipe.write_all(&data).await;
                let _ = pipe.shutdown().await;
            }
        };
        feed.await;
        let out = child
            .wait_with_output()
            .await
            .map_err(|source| Error::Spawn {
                program: self.program.clone(),
                source,
            })?;
        Ok(RemoteOutput {
            code: out.status.code(),
            stdout: Bytes::from(out.stdout),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs `remote` on the host and returns its standard output.
    ///
    /// ```no_run
    /// # #[allow(dead_code)]
    /// # async fn f() -> Result<(), barman_transport::Error> {
    /// use barman_transport::SshCommand;
    ///
    /// let ssh = SshCommand::new("ssh postgres@pg")?;
    /// let version = ssh.run(&["cat", "/var/lib/postgresql/15/main/PG_VERSION"]).await?;
    /// assert_eq!(&version[..], b"15\n");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Command`] when it exits non-zero (retryable when `ssh` itself failed,
    /// exit code 255), and the errors of [`SshCommand::output`].
    pub async fn run<S: AsRef<str> + Sync>(&self, remote: &[S]) -> Result<Bytes> {
        let out = self.output(remote, None).await?;
        if out.success() {
            return Ok(out.stdout);
        }
        let (_, shown) = self.command(remote)?;
        Err(command_failed(
            shown,
            out.code,
            &out.stderr,
            out.code == Some(255),
        ))
    }
}

/// The error of a command that exited non-zero, with the end of its stderr.
pub(crate) fn command_failed(
    command: String,
    code: Option<i32>,
    stderr: &str,
    retryable: bool,
) -> Error {
    let stderr = stderr.trim();
    let tail = match stderr.char_indices().rev().nth(2000) {
        Some((i, _)) => &stderr[i..],
        None => stderr,
    };
    Error::Command {
        command,
        code,
        status: match code {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".to_owned(),
        },
        stderr: tail.to_owned(),
        retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let s = SshCommand::new(
            "ssh -i '/keys/my key' -o StrictHostKeyChecking=no -p2222 -4 barman@db",
        )
        .unwrap();
        assert_eq!(s.destination(), "barman@db");
        assert_eq!(
            s.transport_argv(),
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-i",
                "/keys/my key",
                "-o",
                "StrictHostKeyChecking=no",
                "-p2222",
                "-4"
            ]
        );
        assert_eq!(
            SshCommand::new("ssh -- host").unwrap().destination(),
            "host"
        );
        assert_eq!(
            SshCommand::new("/usr/bin/ssh -vp 22 h")
                .unwrap()
                .destination(),
            "h"
        );
        for bad in ["", "ssh", "ssh -p", "ssh 'unbalanced", "ssh host rm -rf /"] {
            assert!(
                matches!(SshCommand::new(bad), Err(Error::Config { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn quoting() {
        let s = SshCommand::new("ssh h").unwrap();
        let argv = s
            .argv(&["printf", "%s\\n", "$(id)", "`id`", "a;b", "*", "", "x'y"])
            .unwrap();
        let remote = argv.last().unwrap();
        assert_eq!(
            shlex::split(remote).unwrap(),
            ["printf", "%s\\n", "$(id)", "`id`", "a;b", "*", "", "x'y"]
        );
        assert!(s.argv(&["a\0b"]).is_err());
    }
}

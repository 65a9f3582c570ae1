//! Data streamed through a child process: gpg, or a `custom_compression_filter`.
//!
//! The child's standard input is fed by one thread while the caller reads its output
//! (or the caller writes while a thread drains the output), so neither side ever waits
//! on a full pipe. Its error output is kept (its last line names the failure). A child
//! that fails fails the whole, even when the caller has already read everything: a
//! decrypted or decompressed stream is never trusted unless the program said it was
//! complete and intact.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

use crate::{Error, Result};

/// Runs `body` with a writer into `cmd`'s standard input, whose output goes to `out`.
/// `name` (the program, for messages) and `doing` (what it does to `label`) make its
/// error messages.
///
/// # Errors
///
/// The program missing or failing (its last line of error output), `body`'s error,
/// errors writing `out` (which then holds part of the data).
pub(crate) fn write_through<W: Write + Send, T>(
    mut cmd: Command,
    name: &str,
    doing: &'static str,
    label: &Path,
    out: W,
    body: impl FnOnce(&mut (dyn Write + Send)) -> Result<T>,
) -> Result<T> {
    let mut child = spawn(&mut cmd, name)?;
    let (stdin, stdout, stderr) = pipes(&mut child);
    std::thread::scope(|s| {
        let errors = s.spawn(move || last_error_line(stderr));
        let pump = s.spawn(move || -> io::Result<()> {
            let (mut stdout, mut out) = (stdout, out);
            io::copy(&mut stdout, &mut out)?;
            out.flush()
        });
        let mut input = io::BufWriter::with_capacity(1 << 16, stdin);
        let written = body(&mut input);
        let closed = input.into_inner().map(drop).map_err(|e| e.into_error());
        if written.is_err() {
            let _ = child.kill();
        }
        let pumped = pump
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("panicked")));
        let status = child.wait();
        let detail = errors.join().unwrap_or_default();
        let value = match (written, failed(status, name, doing, label, detail)) {
            // The program's own error explains a broken pipe.
            (_, Some(e)) | (Err(e), None) => return Err(e),
            (Ok(v), None) => v,
        };
        closed.map_err(|e| Error::io(doing, label, e))?;
        pumped.map_err(|e| Error::io("writing", label, e))?;
        Ok(value)
    })
}

/// Runs `body` with a reader of `cmd`'s output, its standard input being `preamble`
/// (a passphrase line, or nothing) then `input`.
///
/// # Errors
///
/// The program missing or failing, even after `body` read everything (then `body`'s
/// result is dropped), errors reading `input`, and `body`'s.
pub(crate) fn read_through<R: Read + Send, T>(
    mut cmd: Command,
    name: &str,
    doing: &'static str,
    label: &Path,
    preamble: &[u8],
    mut input: R,
    body: impl FnOnce(&mut (dyn Read + Send)) -> Result<T>,
) -> Result<T> {
    let mut child = spawn(&mut cmd, name)?;
    let (stdin, stdout, stderr) = pipes(&mut child);
    std::thread::scope(|s| {
        let errors = s.spawn(move || last_error_line(stderr));
        let feeder = s.spawn(move || -> io::Result<()> {
            let mut stdin = stdin;
            stdin.write_all(preamble)?;
            io::copy(&mut input, &mut stdin).map(drop)
        });
        let mut output = EofSeen {
            inner: stdout,
            eof: false,
        };
        let read = body(&mut output);
        if read.is_err() || !output.eof {
            // Stopped early (or failed): the rest of the output is not wanted.
            let _ = child.kill();
        }
        drop(output.inner);
        let fed = feeder
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("panicked")));
        let status = child.wait();
        let detail = errors.join().unwrap_or_default();
        if let Some(e) = failed(status, name, doing, label, detail) {
            return Err(e);
        }
        let value = read?;
        if output.eof {
            // The program succeeded, so it read everything: a feeding error is the
            // input's.
            fed.map_err(|e| Error::io("reading", label, e))?;
        }
        Ok(value)
    })
}

fn spawn(cmd: &mut Command, name: &str) -> Result<Child> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("running", name, e))
}

/// A reader that remembers whether it reached its end.
struct EofSeen<R> {
    inner: R,
    eof: bool,
}

impl<R: Read> Read for EofSeen<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}

fn pipes(child: &mut Child) -> (ChildStdin, ChildStdout, ChildStderr) {
    // All three were asked for as pipes in `spawn`.
    #[allow(clippy::expect_used)]
    (
        child.stdin.take().expect("piped stdin"),
        child.stdout.take().expect("piped stdout"),
        child.stderr.take().expect("piped stderr"),
    )
}

/// The program's last meaningful line of error output (at most 64 KiB are kept).
fn last_error_line(stderr: ChildStderr) -> String {
    let mut text = Vec::new();
    let mut limited = stderr.take(64 << 10);
    let _ = limited.read_to_end(&mut text);
    // Drain the rest so that the program never blocks on a full pipe.
    let _ = io::copy(&mut limited.into_inner(), &mut io::sink());
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// The program's failure `doing` `label` as an error, `None` when it succeeded or was
/// stopped by us.
fn failed(
    status: io::Result<ExitStatus>,
    name: &str,
    doing: &'static str,
    label: &Path,
    detail: String,
) -> Option<Error> {
    match status {
        Ok(s) if s.success() => None,
        // Killed: the caller stopped early, its own result says why.
        Ok(s) if s.code().is_none() => None,
        Ok(s) => Some(Error::Program {
            program: name.to_owned(),
            status: s.to_string(),
            detail: format!(
                "{doing} {}: {}",
                label.display(),
                if detail.is_empty() {
                    "no error output"
                } else {
                    &detail
                }
            ),
        }),
        Err(e) => Some(Error::io("waiting for", name, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn output_is_trusted_only_when_the_program_succeeds() {
        let label = Path::new("input");
        let got = read_through(
            sh("cat"),
            "cat",
            "reading",
            label,
            b"pre:",
            &b"data"[..],
            |r| {
                let mut s = String::new();
                r.read_to_string(&mut s).unwrap();
                Ok(s)
            },
        )
        .unwrap();
        assert_eq!(got, "pre:data");
        // Everything read, then a failure: the whole fails, naming the program.
        let e = read_through(
            sh("cat; echo 'it was forged' >&2; exit 2"),
            "filter",
            "decoding",
            label,
            b"",
            &b"data"[..],
            |r| {
                let mut s = String::new();
                r.read_to_string(&mut s).unwrap();
                Ok(s)
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("filter failed") && e.contains("decoding input: it was forged"),
            "{e}"
        );
        // Stopping early is not a failure of the program.
        let first = read_through(sh("yes"), "yes", "reading", label, b"", io::empty(), |r| {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).unwrap();
            Ok(b)
        })
        .unwrap();
        assert_eq!(&first, b"y\n");
    }

    #[test]
    fn a_writer_gets_the_program_output_or_its_error() {
        let label = Path::new("out");
        let mut out = Vec::new();
        write_through(sh("tr a-z A-Z"), "tr", "encoding", label, &mut out, |w| {
            w.write_all(b"abc")
                .map_err(|e| Error::io("writing", "x", e))
        })
        .unwrap();
        assert_eq!(out, b"ABC");
        let e = write_through(
            sh("echo 'no such key' >&2; exit 2"),
            "gpg",
            "encrypting",
            label,
            io::sink(),
            |w| {
                // A big write hits the closed pipe: the program's error wins.
                w.write_all(&vec![0u8; 1 << 20])
                    .map_err(|e| Error::io("writing", "x", e))
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("gpg failed") && e.contains("encrypting out: no such key"),
            "{e}"
        );
    }
}

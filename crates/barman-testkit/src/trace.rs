//! Durability checked, not claimed: a command run under `strace`, and a check of what
//! it did to the files under some directories. A file put in place by a rename or a
//! link must have been fsynced before, and its directory fsynced after; a file written
//! in place must be fsynced after, and a new one's directory too; a directory or link
//! made must have its parent fsynced after.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::tools::{require, which};

/// One file system call, as traced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `open`/`openat`/`creat` that created or truncated the file (`new`: `O_EXCL` or
    /// `O_TRUNC`, a new file's content).
    Create { path: PathBuf, new: bool },
    /// `fsync`/`fdatasync`.
    Sync { path: PathBuf },
    /// `rename*`, `link*`: `from` put in place at `to`.
    Place { from: PathBuf, to: PathBuf },
    /// `unlink*`, `rmdir`.
    Remove { path: PathBuf },
    /// `mkdir*`, `symlink*`.
    Make { path: PathBuf },
}

/// The calls a command made, in order.
#[derive(Debug, Default)]
pub struct Trace {
    pub calls: Vec<Call>,
}

/// Runs `cmd` under `strace -f`; `None` (the test skipped, or a failure under
/// `BARMAN_REQUIRE_TOOLS=1`) without strace.
pub fn strace(cmd: &Command) -> Option<(Output, Trace)> {
    if !require("strace", which("strace").is_some()) {
        return None;
    }
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-y", "-qq", "-s", "4096", "-e", "signal=none", "-e"])
        .arg(
            "trace=open,openat,creat,fsync,fdatasync,rename,renameat,renameat2,link,linkat,\
             unlink,unlinkat,rmdir,mkdir,mkdirat,symlink,symlinkat",
        )
        .arg("-o")
        .arg(out_file.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => traced.env(k, v),
            None => traced.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        traced.current_dir(d);
    }
    let output = traced.output().unwrap();
    let text = std::fs::read_to_string(out_file.path()).unwrap();
    Some((output, Trace::parse(&text)))
}

/// strace's quoted string at the start of `s`: its value and what follows.
fn quoted(s: &str) -> Option<(String, &str)> {
    let rest = s.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &rest[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// The `</path>` strace -y writes after a file descriptor, at the start of `s`.
fn fd_path(s: &str) -> Option<(PathBuf, &str)> {
    let start = s.find("</")?;
    let rest = &s[start + 1..];
    let end = rest.find(">")?;
    Some((PathBuf::from(&rest[..end]), &rest[end + 1..]))
}

/// A path argument: a directory descriptor (`AT_FDCWD</cwd>` or `5</dir>`), then the
/// quoted name, resolved against it.
fn at_path(s: &str) -> Option<(PathBuf, &str)> {
    let (dir, rest) = fd_path(s)?;
    let rest = rest.trim_start().strip_prefix(',')?;
    let (name, rest) = quoted(rest)?;
    Some((dir.join(name), rest))
}

impl Trace {
    /// Parses strace's output (`-f -y`, unfinished calls joined with their resumption).
    pub fn parse(text: &str) -> Trace {
        let mut pending: std::collections::HashMap<String, String> = Default::default();
        let mut calls = Vec::new();
        for line in text.lines() {
            let (pid, rest) = line.split_once(char::is_whitespace).unwrap_or(("", line));
            let rest = rest.trim_start();
            let full = if let Some(head) = rest.strip_suffix("<unfinished ...>") {
                pending.insert(pid.to_owned(), head.to_owned());
                continue;
            } else if let Some(tail) = rest.strip_prefix("<... ") {
                let Some(head) = pending.remove(pid) else {
                    continue;
                };
                let tail = tail.split_once("resumed>").map_or("", |(_, t)| t);
                format!("{head}{tail}")
            } else {
                rest.to_owned()
            };
            if let Some(call) = Self::call(&full) {
                calls.push(call);
            }
        }
        Trace { calls }
    }

    fn call(line: &str) -> Option<Call> {
        let (name, args) = line.split_once('(')?;
        // The result: after the last `)`, then spaces (strace aligns them), then `= `.
        let close = line.rfind(')')?;
        let result = line[close + 1..].trim_start().strip_prefix("= ")?;
        // Failed calls did nothing.
        if result.starts_with('-') {
            return None;
        }
        match name {
            "open" | "openat" | "creat" => {
                let flags = line;
                let creates = name == "creat" || flags.contains("O_CREAT");
                if !creates || !flags.contains("O_WRONLY") && !flags.contains("O_RDWR") {
                    return None;
                }
                let (path, _) = fd_path(result)?;
                let new = name == "creat" || flags.contains("O_EXCL") || flags.contains("O_TRUNC");
                Some(Call::Create { path, new })
            }
            "fsync" | "fdatasync" => Some(Call::Sync {
                path: fd_path(args)?.0,
            }),
            "rename" | "link" => {
                let (from, rest) = quoted(args)?;
                let (to, _) = quoted(rest.trim_start().strip_prefix(',')?)?;
                Some(Call::Place {
                    from: from.into(),
                    to: to.into(),
                })
            }
            "renameat" | "renameat2" | "linkat" => {
                let (from, rest) = at_path(args)?;
                let (to, _) = at_path(rest.trim_start().strip_prefix(',')?)?;
                Some(Call::Place { from, to })
            }
            "unlink" | "rmdir" => Some(Call::Remove {
                path: quoted(args)?.0.into(),
            }),
            "unlinkat" => Some(Call::Remove {
                path: at_path(args)?.0,
            }),
            "mkdir" => Some(Call::Make {
                path: quoted(args)?.0.into(),
            }),
            "mkdirat" => Some(Call::Make {
                path: at_path(args)?.0,
            }),
            "symlink" => {
                let (_, rest) = quoted(args)?;
                Some(Call::Make {
                    path: quoted(rest.trim_start().strip_prefix(',')?)?.0.into(),
                })
            }
            "symlinkat" => {
                let (_, rest) = quoted(args)?;
                Some(Call::Make {
                    path: at_path(rest.trim_start().strip_prefix(',')?)?.0,
                })
            }
            _ => None,
        }
    }

    fn synced_between(&self, path: &Path, from: usize, to: usize) -> bool {
        self.calls[from..to]
            .iter()
            .any(|c| matches!(c, Call::Sync { path: p } if p == path))
    }

    /// What was not made durable under `roots` (paths for which `ignore` says yes left
    /// out), one line each; empty when all was.
    pub fn not_durable(&self, roots: &[&Path], ignore: impl Fn(&Path) -> bool) -> Vec<String> {
        let inside = |p: &Path| roots.iter().any(|r| p.starts_with(r)) && !ignore(p);
        let end = self.calls.len();
        let mut problems = Vec::new();
        for (i, call) in self.calls.iter().enumerate() {
            match call {
                Call::Place { from, to } if inside(to) => {
                    if !self.synced_between(from, 0, i) && !self.synced_between(to, 0, i) {
                        problems.push(format!("{} put in place unsynced", to.display()));
                    }
                    let dir = to.parent().unwrap_or(Path::new("/"));
                    if !self.synced_between(dir, i + 1, end) {
                        problems.push(format!(
                            "{} put in place, its directory not synced after",
                            to.display()
                        ));
                    }
                }
                Call::Create { path, new } if inside(path) => {
                    // A temporary file: the rename or link that puts it in place is
                    // what counts; a removed one does not matter.
                    let later_moved = self.calls[i + 1..].iter().any(|c| {
                        matches!(c, Call::Place { from, .. } if from == path)
                            || matches!(c, Call::Remove { path: p } if p == path)
                    });
                    if later_moved {
                        continue;
                    }
                    if !self.synced_between(path, i + 1, end) {
                        problems.push(format!("{} written, never synced", path.display()));
                    }
                    let dir = path.parent().unwrap_or(Path::new("/"));
                    if *new && !self.synced_between(dir, i + 1, end) {
                        problems.push(format!(
                            "{} created, its directory not synced after",
                            path.display()
                        ));
                    }
                }
                Call::Make { path } if inside(path) => {
                    let removed = self.calls[i + 1..]
                        .iter()
                        .any(|c| matches!(c, Call::Remove { path: p } if p == path));
                    let dir = path.parent().unwrap_or(Path::new("/"));
                    if !removed && !self.synced_between(dir, i + 1, end) {
                        problems.push(format!(
                            "{} made, its directory not synced after",
                            path.display()
                        ));
                    }
                }
                _ => {}
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_judges() {
        let text = r#"10 openat(AT_FDCWD</r>, "/r/d/.tmp", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 3</r/d/.tmp>
10 fsync(3</r/d/.tmp>) = 0
10 renameat2(AT_FDCWD</r>, "/r/d/.tmp", AT_FDCWD</r>, "d/f", RENAME_NOREPLACE) = 0
10 openat(AT_FDCWD</r>, "/r/d", O_RDONLY|O_CLOEXEC) = 4</r/d>
10 fsync(4</r/d>) = 0
10 openat(AT_FDCWD</r>, "/r/d/g", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 5</r/d/g>
11 mkdir("/r/e", 0700 <unfinished ...>
11 <... mkdir resumed>) = 0
10 rename("/r/x", "/r/y") = -1 ENOENT (No such file or directory)
"#;
        let t = Trace::parse(text);
        assert_eq!(t.calls.len(), 6, "{:?}", t.calls);
        assert_eq!(
            t.calls[2],
            Call::Place {
                from: "/r/d/.tmp".into(),
                to: "/r/d/f".into()
            }
        );
        let problems = t.not_durable(&[Path::new("/r")], |_| false);
        assert_eq!(
            problems,
            [
                "/r/d/g created, its directory not synced after",
                "/r/d/g written, never synced",
                "/r/e made, its directory not synced after",
            ]
        );
    }
}

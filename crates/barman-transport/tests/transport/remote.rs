//! `SshCommand` and `Rsync` against a real sshd on 127.0.0.1, and rsync locally.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use barman_transport::{Error, Rsync, RsyncPath, SshCommand};
use bytes::Bytes;

use crate::sshd::{Sshd, shared_tempdir};
use crate::support::{require, which};
use crate::trees::{make_source, tree, without};

#[tokio::test]
async fn remote_arguments_reach_the_command_unchanged() {
    let Some(sshd) = Sshd::start() else { return };
    let ssh = SshCommand::new(&sshd.ssh_command()).unwrap();
    let args = [
        "a b",
        "$HOME",
        "`id`",
        "$(id)",
        "'single'",
        "\"double\"",
        "semi;colon",
        "*",
        "&& true",
        "back\\slash",
        "new\nline",
        "",
        "-n",
        "ünï",
    ];
    let mut cmd = vec!["printf", "[%s]\\n"];
    cmd.extend(args);
    let out = ssh
        .run(&cmd)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    let expected: String = args.iter().map(|a| format!("[{a}]\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out), expected);
    let who = ssh.run(&["id", "-un"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&who).trim(), sshd.user);
}

#[tokio::test]
async fn exit_codes_stdin_and_connection_failures() {
    let Some(sshd) = Sshd::start() else { return };
    let ssh = SshCommand::new(&sshd.ssh_command()).unwrap();

    let err = ssh
        .run(&["sh", "-c", "echo oops >&2; exit 3"])
        .await
        .unwrap_err();
    match &err {
        Error::Command { code, stderr, .. } => {
            assert_eq!(*code, Some(3));
            assert_eq!(stderr, "oops");
        }
        e => panic!("{e:?}"),
    }
    assert!(!err.is_retryable());
    let out = ssh.output(&["sh", "-c", "exit 4"], None).await.unwrap();
    assert_eq!(out.code, Some(4));

    // Standard input, 1 MiB of it, comes back intact.
    let data: Bytes = (0..(1 << 20))
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let out = ssh.output(&["cat"], Some(data.clone())).await.unwrap();
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, data);

    // Nobody listens there: ssh fails with 255, which may be retried.
    let closed = crate::support::free_port();
    let bad = sshd
        .ssh_command()
        .replace(&format!("-p {}", sshd.port), &format!("-p {closed}"));
    let err = SshCommand::new(&bad)
        .unwrap()
        .run(&["true"])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Command {
                code: Some(255),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());

    // BatchMode: a key that is not authorised fails at once instead of prompting.
    let other = tempfile::tempdir().unwrap();
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(other.path().join("k"))
        .status()
        .unwrap();
    let wrong = format!(
        "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p {} {}@127.0.0.1",
        other.path().join("k").display(),
        sshd.port,
        sshd.user
    );
    let err = SshCommand::new(&wrong)
        .unwrap()
        .run(&["true"])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Command {
                code: Some(255),
                ..
            }
        ),
        "{err:?}"
    );
}

fn rsync_present() -> bool {
    require("rsync (apt-get install rsync)", which("rsync").is_some())
}

#[tokio::test]
async fn rsync_local_copies_with_one_and_several_workers() {
    if !rsync_present() {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    make_source(src.path());
    let expected = without(
        tree(src.path()),
        &["postmaster.pid", "pg_wal/000000010000000000000001"],
    );
    for workers in [1, 3] {
        let dst = tempfile::tempdir().unwrap();
        let dest = dst.path().join("copy");
        Rsync::new()
            .workers(workers)
            .exclude("/postmaster.pid")
            .exclude("/pg_wal/*")
            .copy_tree(
                &RsyncPath::Local(src.path().into()),
                &RsyncPath::Local(dest.clone()),
            )
            .await
            .unwrap();
        let got = tree(&dest);
        assert!(
            got.contains_key("pg_wal"),
            "only the excluded directory's content is excluded"
        );
        assert_eq!(got, expected, "workers = {workers}");
    }
}

#[tokio::test]
async fn rsync_over_ssh_backup_with_link_dest_and_recovery() {
    if !rsync_present() {
        return;
    }
    let Some(sshd) = Sshd::start() else { return };
    let ssh = SshCommand::new(&sshd.ssh_command()).unwrap();
    let pgdata = shared_tempdir();
    make_source(pgdata.path());
    let remote = RsyncPath::Remote(ssh.clone(), pgdata.path().display().to_string());
    let expected = without(tree(pgdata.path()), &["postmaster.pid"]);
    let backups = tempfile::tempdir().unwrap();

    // First backup, 2 workers, compressed and limited.
    let first = backups.path().join("20240101T000000/data");
    Rsync::new()
        .workers(2)
        .compress(true)
        .bwlimit_kib(100_000)
        .exclude("/postmaster.pid")
        .copy_tree(&remote, &RsyncPath::Local(first.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert_eq!(tree(&first), expected);

    // Change one file; the second backup hard-links the others to the first.
    std::fs::write(pgdata.path().join("base/1/16384"), b"changed").unwrap();
    let second = backups.path().join("20240102T000000/data");
    Rsync::new()
        .workers(3)
        .link_dest(&first)
        .exclude("/postmaster.pid")
        .copy_tree(&remote, &RsyncPath::Local(second.clone()))
        .await
        .unwrap();
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&first.join("base/5/big")),
        ino(&second.join("base/5/big")),
        "reused by a hard link"
    );
    assert_ne!(
        ino(&first.join("base/1/16384")),
        ino(&second.join("base/1/16384"))
    );
    assert_eq!(
        std::fs::read(second.join("base/1/16384")).unwrap(),
        b"changed"
    );

    // Recovery: from the backup to a directory on the remote host.
    let target = shared_tempdir();
    sshd.give(target.path());
    let restore = RsyncPath::Remote(
        ssh.clone(),
        target.path().join("pgdata").display().to_string(),
    );
    Rsync::new()
        .workers(2)
        .copy_tree(&RsyncPath::Local(second.clone()), &restore)
        .await
        .unwrap();
    let mut restored = tree(&target.path().join("pgdata"));
    let mut want = tree(&second);
    // Ownership and the top directory mode differ across users; content must not.
    restored.retain(|_, v| v.0 != "dir 700");
    want.retain(|_, v| v.0 != "dir 700");
    assert_eq!(restored, want);

    // A remote directory that does not exist: a clear error.
    let missing = RsyncPath::Remote(ssh, "/nonexistent/barman/test".into());
    let err = Rsync::new()
        .copy_tree(&missing, &RsyncPath::Local(backups.path().join("x")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Command { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/barman/test"),
        "{err}"
    );
}

//! Trust, point 14: every option of Barman's table works, is refused, or is warned
//! about. An option accepted and then ignored is a lie to the administrator.

use std::path::Path;

use barman_core::config::support::{Support, UNSUPPORTED, UNSUPPORTED_GLOBAL};
use barman_core::config::{Config, GLOBAL_OPTIONS, MemorySource, SERVER_OPTIONS};

/// The text of every source file of barman-core and barman-cli, but the option table
/// itself and the support table.
fn sources() -> String {
    let mut text = String::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut todo = vec![root.join("barman-core/src"), root.join("barman-cli/src")];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && !p.ends_with("config/options.rs")
                && !p.ends_with("config/support.rs")
            {
                text.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    text
}

/// Whether `code` reads the field `name` (of `ServerOptions`): `.name` not followed by
/// more of an identifier.
fn reads_field(code: &str, name: &str) -> bool {
    let field = format!(".{name}");
    code.match_indices(&field).any(|(at, _)| {
        !code[at + field.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn every_option_is_read_refused_or_warned() {
    let code = sources();
    let listed = |name: &str| {
        UNSUPPORTED.iter().any(|u| u.option == name)
            || UNSUPPORTED_GLOBAL.iter().any(|(o, _)| *o == name)
    };
    let mut missing = Vec::new();
    for name in SERVER_OPTIONS
        .iter()
        .map(|s| s.name)
        .chain(GLOBAL_OPTIONS.iter().copied())
    {
        if !listed(name) && !code.contains(&format!("\"{name}\"")) && !reads_field(&code, name) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "options neither read by barman-core/barman-cli nor listed in config::support: {missing:?}"
    );
    // And the table names real options only.
    for u in UNSUPPORTED {
        assert!(
            SERVER_OPTIONS.iter().any(|s| s.name == u.option),
            "{} is not a server option",
            u.option
        );
    }
}

fn load(server: &str) -> Result<Config, String> {
    let c = Config::load(
        "/etc/barman.conf",
        &format!("[barman]\nbarman_home = /srv/barman\n[other]\nconninfo = host=other\nbackup_method = postgres\nstreaming_conninfo = host=other\narchiver = on\n[pg]\nconninfo = host=pg\nbackup_method = postgres\nstreaming_conninfo = host=pg\narchiver = on\n{server}"),
        &MemorySource::default(),
    )
    .map_err(|e| e.to_string())?;
    // A refusal disables its server only: the other one goes on.
    assert!(c.server("other").unwrap().usable().is_ok());
    match c.server("pg").unwrap().disabled() {
        Some(reason) => Err(reason.to_owned()),
        None => Ok(c),
    }
}

/// A passive node (`primary_ssh_command`) is a server of its own: no connection string
/// is needed, it follows its primary.
#[test]
fn a_passive_node_is_accepted() {
    let c = load("primary_ssh_command = ssh barman@primary").unwrap();
    assert!(c.server("pg").unwrap().is_passive());
    assert!(c.unsupported().is_empty(), "{:?}", c.unsupported());
}

#[test]
fn what_would_lose_data_or_security_is_refused() {
    for (option, expected) in [
        (
            "wals_directory = s3://bucket/pg/wals",
            "wals_directory must be a path",
        ),
        (
            "basebackups_directory = s3://bucket/pg/base",
            "basebackups_directory must be a path",
        ),
    ] {
        let e = load(option).expect_err(option);
        assert!(e.contains(expected), "{option}: {e}");
        assert!(e.contains("[pg]"), "the error names the server: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // Each refusal in the table has a case above.
    let refused: Vec<&str> = UNSUPPORTED
        .iter()
        .filter(|u| matches!(u.support, Support::Refused(_)))
        .map(|u| u.option)
        .collect();
    assert_eq!(refused, ["wals_directory", "basebackups_directory"]);
}

#[test]
fn what_is_harmless_is_warned_about_once() {
    let c = load("streaming_archiver = on\nslot_name = barman\ncombine_mode = link\nparallel_jobs_start_batch_size = 4\nprimary_conninfo = host=primary\n").unwrap();
    let w = c.unsupported();
    // streaming_archiver is supported, with or without archiver: receive-wal, started
    // by cron.
    // primary_conninfo (backups from a standby) and the job batches are read.
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w.iter().all(|l| l.starts_with("server pg: ")), "{w:?}");
    assert!(!w.iter().any(|l| l.contains("streaming_archiver")), "{w:?}");
    assert!(
        w.iter().any(|l| l.contains("combine_mode is not used")),
        "{w:?}"
    );
    // Nothing set: nothing said.
    assert!(load("").unwrap().unsupported().is_empty());
    // A streaming-only server: nothing said either.
    let c = load("archiver = off\nstreaming_archiver = on\nslot_name = barman\n").unwrap();
    assert!(c.unsupported().is_empty(), "{:?}", c.unsupported());
}

/// Trust, point 13: types holding secrets must not print them through `Debug`.
#[test]
fn debug_never_shows_a_secret() {
    let c = load("streaming_conninfo = host=pg password=s3cretpw sslpassword=k3yphrase\nencryption_passphrase_command = echo passphr4se\n")
        .unwrap();
    let shown = format!("{c:?}");
    for secret in ["s3cretpw", "k3yphrase", "passphr4se"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("streaming_conninfo"), "{shown}");
}

/// `encryption = gpg` loads (it is built), and Barman's rules for it (a key, the
/// postgres method, compressed tar backups) are applied where Barman applies them: by
/// `check` and `backup`, with Barman's messages.
#[test]
fn gpg_encryption_follows_barmans_rules() {
    use barman_core::encryption::Gpg;
    for (settings, problem) in [
        ("encryption = gpg", Some("encryption_key_id is unset")),
        (
            "encryption = gpg\nencryption_key_id = k\nbackup_method = rsync\nssh_command = ssh pg",
            Some("backup_method != postgres"),
        ),
        (
            "encryption = gpg\nencryption_key_id = k",
            Some("backup_compression is unset"),
        ),
        (
            "encryption = gpg\nencryption_key_id = k\nbackup_compression = gzip\nbackup_compression_format = plain",
            Some("backup_compression_format != tar"),
        ),
        (
            "encryption = GPG\nencryption_key_id = k\nbackup_compression = gzip",
            None,
        ),
        ("encryption = none\nencryption_key_id = k", None),
    ] {
        let c = load(settings).unwrap_or_else(|e| panic!("{settings}: {e}"));
        assert!(c.unsupported().is_empty(), "{:?}", c.unsupported());
        let server = c.server("pg").unwrap();
        let gpg = Gpg::for_server(server);
        assert_eq!(
            gpg.encrypts(),
            settings.contains("= gpg") || settings.contains("= GPG")
        );
        match (gpg.validate(server), problem) {
            (Ok(()), None) => {}
            (Err(e), Some(p)) => {
                assert_eq!(e.to_string(), format!("Encryption is set as gpg, but {p}"))
            }
            (r, p) => panic!("{settings}: {r:?}, expected {p:?}"),
        }
    }
}

/// `compression = custom` loads with both filters, and is refused (its server only)
/// without one of them or with a magic that is not `0x` and hex digits.
#[test]
fn custom_compression_needs_both_filters_and_a_valid_magic() {
    use barman_core::compression::CustomCompression;
    let both = "compression = custom\ncustom_compression_filter = xz -c\ncustom_decompression_filter = xz -dc\n";
    let c = load(both).unwrap();
    assert!(c.unsupported().is_empty(), "{:?}", c.unsupported());
    let custom = CustomCompression::for_server(c.server("pg").unwrap()).unwrap();
    assert_eq!(custom.magic_len(), 0);
    let c = load(&format!(
        "{both}custom_compression_magic = 0xfd377a585a00\n"
    ))
    .unwrap();
    let custom = CustomCompression::for_server(c.server("pg").unwrap()).unwrap();
    assert_eq!(custom.magic_len(), 6);
    assert!(custom.identifies(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1], false));
    for (settings, expected) in [
        (
            "compression = custom\ncustom_decompression_filter = xz -dc\n",
            "compression = custom needs custom_compression_filter",
        ),
        (
            "compression = custom\ncustom_compression_filter = xz -c\n",
            "compression = custom needs custom_decompression_filter",
        ),
        (
            &format!("{both}custom_compression_magic = fd377a\n"),
            "custom_compression_magic must be 0x followed by an even number of hex digits, not 'fd377a'",
        ),
    ] {
        let e = load(settings).expect_err(settings);
        assert!(
            e.contains(expected) && e.contains("[pg]"),
            "{settings}: {e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // Without compression = custom the filters do nothing, as in Barman.
    let c = load("compression = gzip\ncustom_compression_filter = xz -c\n").unwrap();
    assert!(CustomCompression::for_server(c.server("pg").unwrap()).is_none());
}

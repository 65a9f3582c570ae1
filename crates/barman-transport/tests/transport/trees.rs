//! Directory trees for the copy tests: a small PGDATA-like source and a comparable
//! listing of a tree.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A short fingerprint of some bytes (length and FNV-1a), for readable diffs.
fn digest(b: &[u8]) -> String {
    let h = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{} bytes, {h:016x}", b.len())
}

/// Relative path → (kind and mode, fingerprint of the content or link target).
pub(crate) fn tree(root: &Path) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                out.insert(
                    rel,
                    (
                        "link".into(),
                        std::fs::read_link(&p).unwrap().display().to_string(),
                    ),
                );
            } else if m.is_dir() {
                out.insert(rel, (format!("dir {mode:o}"), String::new()));
                stack.push(p);
            } else {
                out.insert(
                    rel,
                    (
                        format!("file {mode:o}"),
                        digest(&std::fs::read(&p).unwrap()),
                    ),
                );
            }
        }
    }
    out
}

/// A small PGDATA-like tree with odd names, modes, a symlink and an empty directory.
pub(crate) fn make_source(root: &Path) {
    let w = |rel: &str, data: &[u8], mode: u32| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    w("PG_VERSION", b"15\n", 0o644);
    w("postmaster.pid", b"123\n", 0o644);
    w(
        "pg_wal/000000010000000000000001",
        &vec![1u8; 100_000],
        0o644,
    );
    for i in 0..40 {
        w(
            &format!("base/1/{}", 16384 + i),
            &vec![i as u8; 1000 * (i + 1)],
            0o600,
        );
    }
    w("base/5/big", &vec![9u8; 3 << 20], 0o600);
    w("odd names/with space ü #?*$", b"odd", 0o640);
    w("odd names/'quote\"", b"q", 0o644);
    std::fs::create_dir_all(root.join("pg_tblspc")).unwrap();
    std::fs::create_dir_all(root.join("empty/dir")).unwrap();
    std::os::unix::fs::symlink("/srv/tablespace", root.join("pg_tblspc/16400")).unwrap();
    // Readable by the login user of sshd.
    for (p, _) in tree(root) {
        let p = root.join(p);
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        } else if m.is_file() {
            let mode = m.permissions().mode() | 0o444;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

pub(crate) fn without(
    mut t: BTreeMap<String, (String, String)>,
    excluded: &[&str],
) -> BTreeMap<String, (String, String)> {
    t.retain(|k, _| {
        !excluded
            .iter()
            .any(|e| k == e || k.starts_with(&format!("{e}/")))
    });
    t
}

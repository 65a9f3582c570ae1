//! TLS over TCP against a real PostgreSQL that accepts TCP clients only over TLS
//! (`hostssl` in pg_hba.conf), with certificates made by the openssl tool: libpq's
//! `sslmode` rules, the root certificate check and the host name check.

use std::path::Path;
use std::process::Command;

use barman_core::postgres::{ConnInfo, PgServer};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for `localhost` only, and an unrelated CA.
fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "barman-rs test CA"), ("other", "another CA")] {
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        let (key, crt, subj) = (
            format!("{name}.key"),
            format!("{name}.crt"),
            format!("/CN={cn}"),
        );
        args.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
        openssl(dir, &args);
    }
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sslmode_rules_against_a_tls_only_server() {
    let Some(bin) = barman_testkit::require() else {
        return;
    };
    if !barman_testkit::tools::require("openssl", barman_testkit::tools::which("openssl").is_some())
    {
        return;
    }
    let mut pg = barman_testkit::PgCluster::start(&bin, &[], &[]).expect("start PostgreSQL");
    let certs = pg.dir().join("certs");
    std::fs::create_dir(&certs).unwrap();
    make_certificates(&certs);
    let data = pg.data();
    std::fs::copy(certs.join("server.crt"), data.join("server.crt")).unwrap();
    std::fs::copy(certs.join("server.key"), data.join("server.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        data.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    pg.give_to_server_user(&data).unwrap();
    let port = pg.listen_on_tcp(&["ssl = on"]).unwrap();

    let ca = certs.join("ca.crt").display().to_string();
    let other = certs.join("other.crt").display().to_string();
    let connect = |extra: &str| -> Result<bool, String> {
        let text = format!(
            "host=localhost hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres application_name=tls_probe {extra}"
        );
        let ci = ConnInfo::parse(&text).map_err(|e| e.to_string())?;
        rt().block_on(async {
            let s = PgServer::connect(&ci, "").await.map_err(|e| e.to_string())?;
            let ssl = pg
                .sql("SELECT ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE application_name = 'tls_probe'")
                .unwrap();
            drop(s);
            Ok(ssl == "t")
        })
    };

    // No TLS: pg_hba refuses the connection, and the error says who refused what.
    let e = connect("sslmode=disable").unwrap_err();
    assert!(e.contains("127.0.0.1") || e.contains("localhost"), "{e}");
    assert!(e.contains("no encryption") || e.contains("pg_hba"), "{e}");
    // prefer and require encrypt; without a root certificate nothing is checked.
    assert_eq!(connect("sslmode=prefer sslrootcert=/nonexistent"), Ok(true));
    assert_eq!(
        connect("sslmode=require sslrootcert=/nonexistent"),
        Ok(true)
    );
    // The right CA: verify-ca and verify-full pass (the certificate is for localhost).
    assert_eq!(
        connect(&format!("sslmode=verify-ca sslrootcert={ca}")),
        Ok(true)
    );
    assert_eq!(
        connect(&format!("sslmode=verify-full sslrootcert={ca}")),
        Ok(true)
    );
    // Another CA: refused, even by require (libpq checks the chain when the file exists).
    for mode in ["require", "verify-ca", "verify-full"] {
        let e = connect(&format!("sslmode={mode} sslrootcert={other}")).unwrap_err();
        assert!(e.to_lowercase().contains("certificate"), "{mode}: {e}");
    }
    // verify-full checks the name; verify-ca does not.
    let by_ip = |mode: &str| {
        let text = format!(
            "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode={mode} sslrootcert={ca}"
        );
        let ci = ConnInfo::parse(&text).unwrap();
        rt().block_on(async {
            PgServer::connect(&ci, "x")
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    };
    assert_eq!(by_ip("verify-ca"), Ok(()));
    let e = by_ip("verify-full").unwrap_err();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // verify-ca with no root certificate anywhere: a clear error before connecting.
    let e = connect("sslmode=verify-ca sslrootcert=/nonexistent/root.crt").unwrap_err();
    assert!(
        e.contains("sslrootcert") && e.contains("/nonexistent/root.crt"),
        "{e}"
    );
}

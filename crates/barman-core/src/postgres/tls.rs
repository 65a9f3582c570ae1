//! TLS for connections over TCP, with libpq's `sslmode` rules, on rustls.
//!
//! | `sslmode` | encryption | server certificate |
//! |---|---|---|
//! | `disable`, `allow` | never | - |
//! | `prefer` | when the server offers it | as `require` |
//! | `require` | always | checked against the root certificate when that file exists (libpq's rule), else not checked |
//! | `verify-ca` | always | signed by a CA of `sslrootcert` |
//! | `verify-full` | always | as `verify-ca`, and issued for the host connected to |
//!
//! `sslrootcert` defaults to `~/.postgresql/root.crt`; `system` means the system's
//! bundle (`SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`) and implies
//! `verify-full`, as in libpq 16. A client certificate is sent when `sslcert` (default
//! `~/.postgresql/postgresql.crt`) exists, with the key of `sslkey` (default
//! `~/.postgresql/postgresql.key`). `sslcrl` is not read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgError;
use super::conninfo::ConnInfo;

/// How the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verify {
    Nothing,
    Ca,
    Full,
}

fn invalid(key: &str, value: &Path, reason: impl Into<String>) -> PgError {
    PgError::InvalidValue {
        key: key.to_owned(),
        value: value.display().to_string(),
        reason: reason.into(),
    }
}

fn home_file(name: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql").join(name))
}

/// The file of `key`, else `~/.postgresql/<default>`.
fn file_of(ci: &ConnInfo, key: &str, default: &str) -> Option<PathBuf> {
    match ci.get(key) {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => home_file(default),
    }
}

fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, PgError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(key, path, format!("cannot read the certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(key, path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The rustls connector for `ci`, `None` when the connection must not use TLS
/// (`sslmode` `disable` or `allow`).
pub(crate) fn connector(ci: &ConnInfo) -> Result<Option<MakeRustlsConnect>, PgError> {
    Ok(client_config(ci)?.map(MakeRustlsConnect::new))
}

/// The rustls configuration for `ci` (the same rules, for a connection made here
/// rather than by tokio-postgres), `None` when the connection must not use TLS.
pub(crate) fn client_config(ci: &ConnInfo) -> Result<Option<ClientConfig>, PgError> {
    let mode = ci.get("sslmode").unwrap_or("prefer");
    let mut verify = match mode {
        "disable" | "allow" => return Ok(None),
        "verify-ca" => Verify::Ca,
        "verify-full" => Verify::Full,
        _ => Verify::Nothing,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let root_setting = ci.get("sslrootcert").filter(|v| !v.is_empty());
    let root_file = if root_setting == Some("system") {
        verify = Verify::Full;
        Some(std::env::var_os("SSL_CERT_FILE").map_or_else(
            || "/etc/ssl/certs/ca-certificates.crt".into(),
            PathBuf::from,
        ))
    } else {
        file_of(ci, "sslrootcert", "root.crt")
    };
    let roots = match root_file {
        Some(f) if f.is_file() => {
            let mut store = RootCertStore::empty();
            for c in read_certs("sslrootcert", &f)? {
                store
                    .add(c)
                    .map_err(|e| invalid("sslrootcert", &f, e.to_string()))?;
            }
            if verify == Verify::Nothing {
                // libpq: with a root certificate file, `require` checks the chain.
                verify = Verify::Ca;
            }
            Some(store)
        }
        other => {
            if verify != Verify::Nothing {
                let shown = other.unwrap_or_else(|| PathBuf::from("~/.postgresql/root.crt"));
                return Err(invalid(
                    "sslrootcert",
                    &shown,
                    format!(
                        "the root certificate file does not exist: it is needed to verify the server certificate (sslmode={mode})"
                    ),
                ));
            }
            None
        }
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (verify, roots) {
        (Verify::Nothing, _) | (_, None) => Arc::new(NoVerify(provider.clone())),
        (v, Some(store)) => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| PgError::InvalidValue {
                        key: "sslrootcert".into(),
                        value: root_setting.unwrap_or("~/.postgresql/root.crt").into(),
                        reason: e.to_string(),
                    })?;
            Arc::new(Checked {
                inner: webpki,
                check_name: v == Verify::Full,
            })
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::InvalidValue {
            key: "sslmode".into(),
            value: mode.into(),
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let cert_file = file_of(ci, "sslcert", "postgresql.crt").filter(|f| f.is_file());
    let config = match cert_file {
        None => builder.with_no_client_auth(),
        Some(cert) => {
            let chain = read_certs("sslcert", &cert)?;
            let key_file = file_of(ci, "sslkey", "postgresql.key")
                .ok_or_else(|| invalid("sslkey", Path::new(""), "no key file for sslcert"))?;
            let key = PrivateKeyDer::from_pem_file(&key_file)
                .map_err(|e| invalid("sslkey", &key_file, format!("cannot read the key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid("sslcert", &cert, e.to_string()))?
        }
    };
    Ok(Some(config))
}

/// `verify-ca` and `verify-full`: the chain must lead to a root of `sslrootcert`; the
/// name is checked only for `verify-full`.
#[derive(Debug)]
struct Checked {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `require` without a root certificate: encrypted, the certificate not checked (the
/// handshake signatures still are).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

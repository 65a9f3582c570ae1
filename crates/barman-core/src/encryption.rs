//! Encryption at rest with GnuPG, as Barman 3.x does it (`encryption = gpg`).
//!
//! - WAL files are encrypted after compression and keep their own name in `wals/`;
//!   xlog.db says `gpg` in its fifth column.
//! - The tars of a `postgres`-method backup (`backup_compression_format = tar`) become
//!   `<name>.gpg` once the backup is copied, and `backup.info` says `encryption=gpg`.
//!
//! Encrypting needs only the public key of `encryption_key_id`, in the keyring of the
//! user running barman (`GNUPGHOME`). Decrypting needs the private key: the output of
//! `encryption_passphrase_command` (run once per process, its output never logged) goes
//! to gpg on its standard input, never on a command line. gpg's arguments are Barman's:
//! `--yes --batch --pinentry-mode loopback`, then `--compress-level 0 --recipient KEY
//! --encrypt` or `--passphrase-fd 0 --decrypt`, so files written by either tool are read
//! by the other.
//!
//! Everything streams through gpg as a child process (`filter.rs`); nothing
//! decrypted is written to disk on the way.
//! An encrypted file is told by its first bytes (an OpenPGP public-key encrypted
//! session key packet), whatever its name.

use std::fmt;
use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::config::ServerConfig;
use crate::filter;
use crate::{Error, Refusal, Result};

/// The name Barman records for GnuPG encryption (`backup.info`, xlog.db).
pub const GPG: &str = "gpg";

/// How many first bytes [`is_encrypted`] needs.
pub const MAGIC_LEN: usize = 8;

/// Whether `prefix` (the first bytes of a file) starts an OpenPGP message encrypted to a
/// public key: a public-key encrypted session key packet (tag 1, version 3 or 6), in
/// the old or the new packet format (RFC 4880 and 9580, section 4.2).
///
/// ```
/// use barman_core::encryption::is_encrypted;
/// assert!(is_encrypted(&[0x85, 0x01, 0x8c, 0x03])); // RSA, old format
/// assert!(is_encrypted(&[0x84, 0x5e, 0x03])); // ECDH, old format
/// assert!(!is_encrypted(&[0x1f, 0x8b, 0x08])); // gzip
/// assert!(!is_encrypted(b"1\t0/3000000\tno recovery target specified\n"));
/// ```
pub fn is_encrypted(prefix: &[u8]) -> bool {
    let Some((&first, rest)) = prefix.split_first() else {
        return false;
    };
    let (tag, length_bytes) = if first & 0xC0 == 0xC0 {
        // New format: the length's first octet says how many follow; partial lengths
        // (224-254) are not allowed for this packet.
        let len = match rest.first() {
            Some(0..=191) => 1,
            Some(192..=223) => 2,
            Some(255) => 5,
            _ => return false,
        };
        (first & 0x3F, len)
    } else if first & 0x80 != 0 {
        // Old format: the length type is in the low two bits (3: indeterminate).
        let len = match first & 0x03 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => return false,
        };
        ((first >> 2) & 0x0F, len)
    } else {
        return false;
    };
    tag == 1 && matches!(rest.get(length_bytes), Some(3 | 6))
}

/// A server's GnuPG settings: what encrypts its new files and decrypts its stored ones.
///
/// Cloning shares the passphrase once read.
#[derive(Clone, Default)]
pub struct Gpg {
    server: String,
    /// `encryption = gpg`: new WAL files and backups are encrypted.
    encrypts: bool,
    key_id: Option<String>,
    passphrase_command: Option<String>,
    path_prefix: Option<String>,
    passphrase: Arc<Mutex<Option<Arc<Vec<u8>>>>>,
}

impl fmt::Debug for Gpg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpg")
            .field("server", &self.server)
            .field("encrypts", &self.encrypts)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Gpg {
    /// The settings of `server`: `encryption`, `encryption_key_id`,
    /// `encryption_passphrase_command`, and `path_prefix` to find `gpg`.
    pub fn for_server(server: &ServerConfig) -> Gpg {
        let o = server.options();
        Gpg {
            server: server.name().to_owned(),
            encrypts: o.encryption.as_deref() == Some(GPG),
            key_id: o.encryption_key_id.clone().filter(|k| !k.is_empty()),
            passphrase_command: o
                .encryption_passphrase_command
                .clone()
                .filter(|c| !c.trim().is_empty()),
            path_prefix: o.path_prefix.clone(),
            passphrase: Arc::default(),
        }
    }

    /// Whether new files are encrypted (`encryption = gpg`).
    pub fn encrypts(&self) -> bool {
        self.encrypts
    }

    /// What xlog.db and `backup.info` record for a file written now.
    pub fn name(&self) -> Option<&'static str> {
        self.encrypts.then_some(GPG)
    }

    /// Barman's rules for `encryption = gpg` (its `EncryptionManager._validate_gpg`),
    /// with its messages: a key, the `postgres` method, and compressed tar backups.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] with Barman's message.
    pub fn validate(&self, server: &ServerConfig) -> Result<()> {
        if !self.encrypts {
            return Ok(());
        }
        let o = server.options();
        let problem = if self.key_id.is_none() {
            Some("encryption_key_id is unset")
        } else if o.backup_method != "postgres" {
            Some("backup_method != postgres")
        } else if o.backup_compression.is_none() {
            Some("backup_compression is unset")
        } else if o.backup_compression_format.as_deref().unwrap_or("tar") != "tar" {
            Some("backup_compression_format != tar")
        } else {
            None
        };
        match problem {
            Some(p) => Err(Error::Refused {
                kind: Refusal::InvalidRequest,
                reason: format!("Encryption is set as gpg, but {p}"),
            }),
            None => Ok(()),
        }
    }

    fn program(&self) -> Result<PathBuf> {
        crate::fsutil::find_program("gpg", self.path_prefix.as_deref())
    }

    fn command(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(self.program()?);
        cmd.args(["--yes", "--batch", "--pinentry-mode", "loopback"])
            .args(args);
        Ok(cmd)
    }

    /// The passphrase: the first line `encryption_passphrase_command` prints, read once.
    fn passphrase(&self, what: &dyn fmt::Display) -> Result<Arc<Vec<u8>>> {
        let mut cached = self.passphrase.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cached.as_ref() {
            return Ok(p.clone());
        }
        let Some(command) = &self.passphrase_command else {
            return Err(Error::Refused {
                kind: Refusal::InvalidRequest,
                reason: format!(
                    "{what} is encrypted, but server '{}' has no encryption_passphrase_command: set it to a command printing the passphrase of the private key",
                    self.server
                ),
            });
        };
        // Its error output is not shown either: it may echo the secret.
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| Error::io("running", "encryption_passphrase_command", e))?;
        if !out.status.success() {
            return Err(Error::Program {
                program: "encryption_passphrase_command".into(),
                status: out.status.to_string(),
                detail: format!("server '{}'", self.server),
            });
        }
        let line = out.stdout.split(|b| *b == b'\n').next().unwrap_or_default();
        if line.is_empty() {
            return Err(Error::Refused {
                kind: Refusal::InvalidRequest,
                reason: format!(
                    "encryption_passphrase_command of server '{}' printed an empty passphrase",
                    self.server
                ),
            });
        }
        let p = Arc::new(line.to_vec());
        *cached = Some(p.clone());
        Ok(p)
    }

    /// Runs `body` with a writer whose bytes are encrypted for `encryption_key_id` into
    /// `out`. `label` names what is written, in messages.
    ///
    /// # Errors
    ///
    /// No key configured, gpg missing or failing (its last line of error output),
    /// `body`'s own error, errors writing `out`. `out` then holds part of the data.
    pub(crate) fn encrypt_stream<W: Write + Send, T>(
        &self,
        out: W,
        label: &Path,
        body: impl FnOnce(&mut (dyn Write + Send)) -> Result<T>,
    ) -> Result<T> {
        let Some(key) = &self.key_id else {
            return Err(Error::Refused {
                kind: Refusal::InvalidRequest,
                reason: format!(
                    "server '{}': Encryption is set as gpg, but encryption_key_id is unset",
                    self.server
                ),
            });
        };
        let cmd = self.command(&["--compress-level", "0", "--recipient", key, "--encrypt"])?;
        filter::write_through(cmd, "gpg", "encrypting", label, out, body)
    }

    /// Runs `body` with `input` as plain data: decrypted when its first bytes say it is
    /// encrypted ([`is_encrypted`]), as it is otherwise. `label` names `input` in
    /// messages. A decryption that fails, even after `body` read everything, fails the
    /// whole: `body`'s result is never returned over a truncated or forged plaintext.
    ///
    /// # Errors
    ///
    /// An encrypted `input` with no passphrase configured, gpg failing (a wrong
    /// passphrase, another key, damaged data), errors reading `input`, and `body`'s.
    pub(crate) fn with_plain<R: Read + Send, T>(
        &self,
        mut input: R,
        label: &Path,
        body: impl FnOnce(&mut (dyn Read + Send)) -> Result<T>,
    ) -> Result<T> {
        let mut prefix = Vec::with_capacity(MAGIC_LEN);
        (&mut input)
            .take(MAGIC_LEN as u64)
            .read_to_end(&mut prefix)
            .map_err(|e| Error::io("reading", label, e))?;
        let encrypted = is_encrypted(&prefix);
        let mut whole = Cursor::new(prefix).chain(input);
        if !encrypted {
            return body(&mut whole);
        }
        let passphrase = self.passphrase(&label.display())?;
        let mut preamble = passphrase.to_vec();
        preamble.push(b'\n');
        let cmd = self.command(&["--passphrase-fd", "0", "--decrypt"])?;
        filter::read_through(cmd, "gpg", "decrypting", label, &preamble, whole, body)
    }

    /// Encrypts the file at `src` into a new file `dest` (created, mode 0600, synced).
    ///
    /// # Errors
    ///
    /// Those of [`Gpg::encrypt_stream`], and I/O errors on either file.
    #[cfg(feature = "postgres")]
    pub(crate) fn encrypt_file(&self, src: &Path, dest: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut input = std::fs::File::open(src).map_err(|e| Error::io("opening", src, e))?;
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(|e| Error::io("creating", dest, e))?;
        let mut w = io::BufWriter::with_capacity(1 << 16, &out);
        self.encrypt_stream(&mut w, dest, |enc| {
            io::copy(&mut input, enc)
                .map(drop)
                .map_err(|e| Error::io("reading", src, e))
        })?;
        w.flush().map_err(|e| Error::io("writing", dest, e))?;
        drop(w);
        out.sync_all().map_err(|e| Error::io("syncing", dest, e))
    }

    /// Barman's `encryption` check: the configuration rules, then a test message
    /// encrypted for the key.
    ///
    /// # Errors
    ///
    /// Those of [`Gpg::validate`], and gpg failing to encrypt for the key.
    pub fn test_encryption(&self, server: &ServerConfig) -> Result<()> {
        self.validate(server)?;
        self.encrypt_stream(io::sink(), Path::new("the encryption test"), |w| {
            w.write_all(b"I am a secret message. Encrypt me!")
                .map_err(|e| Error::io("encrypting", "the encryption test", e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packets_other_than_a_public_key_session_key_are_not_encryption() {
        // Symmetric-key session key (tag 3), literal data (tag 11), compressed (tag 8).
        assert!(!is_encrypted(&[0x8c, 0x0d, 0x04]));
        assert!(!is_encrypted(&[0xcb, 0x10, b'b']));
        assert!(!is_encrypted(&[0xa3, 0x01]));
        // New-format tag 1, one-octet length, version 3.
        assert!(is_encrypted(&[0xc1, 0x5e, 0x03]));
        // Indeterminate old-format length, unknown version, cut short.
        assert!(!is_encrypted(&[0x87, 0x03]));
        assert!(!is_encrypted(&[0x85, 0x01, 0x8c, 0x04]));
        assert!(!is_encrypted(&[0x85, 0x01]));
        assert!(!is_encrypted(&[]));
    }

    proptest! {
        #[test]
        fn never_panics_and_compressed_or_plain_wal_is_not_encryption(
            prefix in proptest::collection::vec(any::<u8>(), 0..12)
        ) {
            let _ = is_encrypted(&prefix);
            for magic in [&[0x1f, 0x8b][..], b"BZh", &[0xfd, b'7', b'z', b'X'], &[0x28, 0xb5, 0x2f, 0xfd], &[0x04, 0x22, 0x4d, 0x18], &[0xff, 0x06, 0x00]] {
                let mut p = magic.to_vec();
                p.extend_from_slice(&prefix);
                prop_assert!(!is_encrypted(&p));
            }
            // A WAL page starts with its magic, 0xD1xx little-endian.
            let mut page = vec![0x10, 0xd1];
            page.extend_from_slice(&prefix);
            prop_assert!(!is_encrypted(&page));
        }
    }
}

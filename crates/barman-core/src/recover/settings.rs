//! Step 4, the configuration of the restored cluster: recovery settings, quoting for the shell and for PostgreSQL, options commented out or to review.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Options a restored configuration must not keep: `archive_command` is forced off,
/// earlier recovery targets are commented out (Barman's `OPTIONS_TO_MANGLE`).
pub(super) const MANGLED: [(&str, Option<&str>); 9] = [
    ("archive_command", Some("false")),
    ("recovery_target", None),
    ("recovery_target_name", None),
    ("recovery_target_time", None),
    ("recovery_target_xid", None),
    ("recovery_target_lsn", None),
    ("recovery_target_inclusive", None),
    ("recovery_target_timeline", None),
    ("recovery_target_action", None),
];

/// Options pointing outside the data directory, which the user must review.
pub(super) const DANGEROUS: [&str; 15] = [
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
    "ssl_crl_file",
    "ssl_crl_dir",
    "unix_socket_directory",
    "unix_socket_directories",
    "include",
    "include_dir",
    "include_if_exists",
];

pub(super) const CONFIG_FILES: [&str; 2] = ["postgresql.conf", "postgresql.auto.conf"];

/// The lines appended to the recovery configuration file (Barman's
/// `_generate_recovery_conf`).
pub(super) fn recovery_lines(
    global: &GlobalConfig,
    server: &ServerConfig,
    options: &RecoverOptions,
    p: &Prepared,
) -> Result<Vec<String>> {
    let name = command_word(server.name())?;
    let mut lines = Vec::new();
    if p.get_wal {
        let partial = if options.standby_mode { "" } else { " -P" };
        if let Some(custom) = &options.restore_command {
            if custom.contains(['\n', '\r', '\0']) {
                return Err(Error::refused(
                    Refusal::InvalidRequest,
                    "--restore-command cannot hold a line break".to_owned(),
                ));
            }
            lines.push(format!("restore_command = {}", conf_quote(custom)));
        } else if p.ssh.is_some() {
            lines.push(
                "# The 'barman-wal-restore' command is provided in the 'barman-cli' package"
                    .to_owned(),
            );
            let port = options
                .recovery_option_port
                .map(|p| format!(" --port {p}"))
                .unwrap_or_default();
            let mut cmd = format!(
                "barman-wal-restore{partial} -U {}{port} {} {name} %f %p",
                command_word(&global.barman_user)?,
                command_word(&options.barman_host)?
            );
            let jobs = server.options().parallel_jobs;
            if jobs > 1 {
                cmd.push_str(&format!(" -p {jobs}"));
            }
            lines.push(format!("restore_command = {}", conf_quote(&cmd)));
        } else {
            lines.push(format!(
                "# The 'barman get-wal' command must run as '{}' user",
                global.barman_user.replace(['\n', '\r'], " ")
            ));
            let barman = options
                .barman_command
                .iter()
                .map(|w| command_word(w))
                .collect::<Result<Vec<_>>>()?
                .join(" ");
            let cmd = format!("{barman} get-wal{partial} {name} %f > %p");
            lines.push(format!("restore_command = {}", conf_quote(&cmd)));
        }
    } else if !options.standby_mode {
        // PostgreSQL runs both commands in the data directory: the default staging
        // directory (`barman_wal` inside it) is named relative to it, any other one
        // by its absolute path; either way quoted for the shell.
        let dir = match p.wal_dest.strip_prefix(&options.destination) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel,
            _ => p.wal_dest.as_path(),
        };
        let dir = command_word(&dir.to_string_lossy())?;
        lines.push(format!(
            "restore_command = {}",
            conf_quote(&format!("cp {dir}/%f %p"))
        ));
        lines.push(format!(
            "recovery_end_command = {}",
            conf_quote(&format!("rm -fr -- {dir}"))
        ));
    }
    let inclusive_target = matches!(
        options.target,
        Some(RecoveryTarget::Time(_) | RecoveryTarget::Xid(_) | RecoveryTarget::Lsn(_))
    );
    match &options.target {
        Some(RecoveryTarget::Time(t)) => lines.push(format!(
            "recovery_target_time = '{}'",
            aware(t, &options.local_tz)?
        )),
        Some(RecoveryTarget::Xid(x)) => lines.push(format!("recovery_target_xid = '{x}'")),
        Some(RecoveryTarget::Lsn(l)) => lines.push(format!("recovery_target_lsn = '{l}'")),
        Some(RecoveryTarget::Name(n)) => {
            lines.push(format!("recovery_target_name = {}", conf_quote(n)))
        }
        Some(RecoveryTarget::Immediate) => lines.push("recovery_target = 'immediate'".to_owned()),
        None => {}
    }
    if inclusive_target && options.exclusive {
        lines.push("recovery_target_inclusive = 'False'".to_owned());
    }
    if options.target_tli.is_some() {
        lines.push(format!(
            "recovery_target_timeline = {}",
            p.plan.target_timeline
        ));
    }
    if let Some(a) = options.target_action {
        // Other actions were refused before anything was written.
        if p.backup.version.is_some_and(|v| v < 90500) {
            lines.push("pause_at_recovery_target = 'on'".to_owned());
        } else {
            lines.push(format!("recovery_target_action = '{a}'"));
        }
    }
    Ok(lines)
}

/// `s` as a quoted value of a PostgreSQL configuration file: single quotes doubled,
/// backslashes escaped (the parser reads `\` escapes in quoted values), line breaks
/// as `\n`/`\r` (a value is one line).
pub(super) fn conf_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// One word of a command PostgreSQL runs (`restore_command`, `recovery_end_command`):
/// quoted for the shell, and with `%` doubled so that PostgreSQL's `%f`/`%p`/`%r`
/// substitution leaves it alone.
///
/// # Errors
///
/// [`Error::Refused`] for a word with a NUL byte, which no shell word can hold.
pub(super) fn command_word(word: &str) -> Result<String> {
    let quoted = shlex::try_quote(word).map_err(|_| {
        Error::refused(
            Refusal::InvalidRequest,
            format!("{word:?} cannot be written into a command: it holds a NUL byte"),
        )
    })?;
    Ok(quoted.replace('%', "%%"))
}

/// The option a configuration line sets (Barman's `^\s*([^\s=]+)\s*=?\s*(.*)$`).
pub(super) fn setting(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    let end = t.find(|c: char| c.is_whitespace() || c == '=')?;
    if end == 0 {
        return None;
    }
    let key = &t[..end];
    let rest = t[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    Some((key, rest))
}

/// Comments out the options recovery must not keep and appends `append`; returns the
/// new text and the changes (Barman's `ConfigurationFileMangeler`).
pub(super) fn mangle(
    file: &str,
    text: &str,
    append: Option<&[String]>,
) -> (String, Vec<ConfigLine>) {
    let mut out = String::with_capacity(text.len() + 256);
    let mut changes = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if let Some((key, _)) = setting(line.trim_end_matches(['\n', '\r']))
            && let Some((_, value)) = MANGLED.iter().find(|(k, _)| *k == key)
        {
            out.push_str("#BARMAN#");
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push('\n');
            }
            if let Some(v) = value {
                out.push_str(&format!("{key} = {v}\n"));
            }
            changes.push(ConfigLine {
                file: file.to_owned(),
                line: n,
                key: key.to_owned(),
                value: value.map(str::to_owned),
            });
            continue;
        }
        out.push_str(line);
    }
    if let Some(lines) = append
        && !lines.is_empty()
    {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&lines.join("\n"));
        out.push('\n');
    }
    (out, changes)
}

/// The settings of `text` that point outside the data directory.
pub(super) fn dangerous(file: &str, text: &str) -> Vec<ConfigLine> {
    text.lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let (key, value) = setting(line)?;
            DANGEROUS.contains(&key).then(|| ConfigLine {
                file: file.to_owned(),
                line: n,
                key: key.to_owned(),
                value: Some(value.to_owned()),
            })
        })
        .collect()
}

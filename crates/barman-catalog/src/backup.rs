//! Backups: ids, statuses, types and Barman's `backup.info` format.

use std::fmt;
use std::str::FromStr;

use barman_wal::{Lsn, SegmentName, TimelineId, WalSegSize};

use crate::{Error, PyDateTime, PyValue, Result};

/// A backup id, `YYYYMMDDTHHMMSS` (the local start time of the backup). Ids order like
/// their text, which is the catalogue's order.
///
/// ```
/// use barman_catalog::BackupId;
///
/// let id: BackupId = "20261125T184314".parse()?;
/// assert_eq!(id.to_string(), "20261125T184314");
/// assert!(id < "20261125T184315".parse()?);
/// assert!("2026-11-25".parse::<BackupId>().is_err());
/// # Ok::<(), barman_catalog::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupId([u8; 15]);

impl BackupId {
    /// The id of a backup started at this local wall-clock time.
    ///
    /// ```
    /// let dt = jiff::civil::date(2026, 11, 25).at(18, 43, 14, 0);
    /// assert_eq!(barman_catalog::BackupId::from_datetime(dt).to_string(), "20261125T184314");
    /// ```
    pub fn from_datetime(dt: jiff::civil::DateTime) -> BackupId {
        let s = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}",
            dt.year().clamp(0, 9999),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        let mut b = [0u8; 15];
        b.copy_from_slice(&s.as_bytes()[..15]);
        BackupId(b)
    }

    /// The id as text.
    ///
    /// ```
    /// let id: barman_catalog::BackupId = "20261125T184314".parse()?;
    /// assert_eq!(id.as_str(), "20261125T184314");
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and 'T' are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// Whether `s` has the form of a backup id.
    ///
    /// ```
    /// assert!(barman_catalog::BackupId::is_backup_id("20261125T184314"));
    /// assert!(!barman_catalog::BackupId::is_backup_id("latest"));
    /// ```
    pub fn is_backup_id(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 15
            && b[8] == b'T'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 8 || c.is_ascii_digit())
    }
}

impl FromStr for BackupId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if !Self::is_backup_id(s) {
            return Err(Error::InvalidBackupId {
                input: s.to_owned(),
            });
        }
        let mut b = [0u8; 15];
        b.copy_from_slice(s.as_bytes());
        Ok(BackupId(b))
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackupId({})", self.as_str())
    }
}

/// The state of a backup in the catalogue.
///
/// ```
/// use barman_catalog::BackupStatus;
/// let s: BackupStatus = "WAITING_FOR_WALS".parse()?;
/// assert!(s.is_copy_done());
/// assert_eq!(s.to_string(), "WAITING_FOR_WALS");
/// # Ok::<(), barman_catalog::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub enum BackupStatus {
    /// Metadata only: the copy has not started.
    #[default]
    Empty,
    /// The backup started (`pg_backup_start` done).
    Started,
    /// The copy is done; not every WAL file it needs is archived yet.
    WaitingForWals,
    /// Complete and restorable.
    Done,
    /// Failed; `error` says why.
    Failed,
    /// Being copied from a primary Barman by a passive node.
    Syncing,
}

impl BackupStatus {
    /// Every status.
    pub const ALL: [BackupStatus; 6] = [
        BackupStatus::Empty,
        BackupStatus::Started,
        BackupStatus::WaitingForWals,
        BackupStatus::Done,
        BackupStatus::Failed,
        BackupStatus::Syncing,
    ];

    /// The name Barman writes.
    ///
    /// ```
    /// assert_eq!(barman_catalog::BackupStatus::Done.name(), "DONE");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            BackupStatus::Empty => "EMPTY",
            BackupStatus::Started => "STARTED",
            BackupStatus::WaitingForWals => "WAITING_FOR_WALS",
            BackupStatus::Done => "DONE",
            BackupStatus::Failed => "FAILED",
            BackupStatus::Syncing => "SYNCING",
        }
    }

    /// Barman's `STATUS_COPY_DONE`: WAITING_FOR_WALS or DONE, the backups that can be
    /// restored (and the default set for shortcuts like `latest`).
    ///
    /// ```
    /// assert!(barman_catalog::BackupStatus::Done.is_copy_done());
    /// ```
    pub const fn is_copy_done(self) -> bool {
        matches!(self, BackupStatus::WaitingForWals | BackupStatus::Done)
    }

    /// Barman's `STATUS_ARCHIVING`: STARTED, WAITING_FOR_WALS, DONE or SYNCING, the
    /// backups whose timelines keep their WAL.
    ///
    /// ```
    /// assert!(!barman_catalog::BackupStatus::Failed.is_archiving());
    /// ```
    pub const fn is_archiving(self) -> bool {
        matches!(
            self,
            BackupStatus::Started
                | BackupStatus::WaitingForWals
                | BackupStatus::Done
                | BackupStatus::Syncing
        )
    }
}

impl FromStr for BackupStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BackupStatus::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| Error::InvalidValue {
                file: String::new(),
                line: 0,
                key: "status".to_owned(),
                value: s.to_owned(),
                reason: "expected EMPTY, STARTED, WAITING_FOR_WALS, DONE, FAILED or SYNCING"
                    .to_owned(),
            })
    }
}

impl fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of a backup, as `list-backups` shows it with one letter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BackupType {
    /// `F`: a full backup taken by the postgres method.
    Full,
    /// `I`: a PostgreSQL 17 incremental backup (it has a parent).
    Incremental,
    /// `R`: an rsync or local-rsync backup.
    Rsync,
    /// `S`: a snapshot backup.
    Snapshot,
}

impl BackupType {
    /// The letter `list-backups` prints.
    ///
    /// ```
    /// assert_eq!(barman_catalog::BackupType::Rsync.letter(), 'R');
    /// ```
    pub const fn letter(self) -> char {
        match self {
            BackupType::Full => 'F',
            BackupType::Incremental => 'I',
            BackupType::Rsync => 'R',
            BackupType::Snapshot => 'S',
        }
    }

    /// The name Barman uses (`full`, `incremental`, `rsync`, `snapshot`).
    ///
    /// ```
    /// assert_eq!(barman_catalog::BackupType::Full.name(), "full");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Incremental => "incremental",
            BackupType::Rsync => "rsync",
            BackupType::Snapshot => "snapshot",
        }
    }
}

/// A tablespace of a backup: `(name, oid, location)` in `backup.info`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tablespace {
    /// The tablespace name.
    pub name: String,
    /// Its OID (the link name under `pg_tblspc/`).
    pub oid: u32,
    /// Where it lived on the database host.
    pub location: String,
}

/// The metadata of one backup: Barman's `backup.info`.
///
/// Every key Barman 3 writes is a field; values keep their meaning and type. Parsing is
/// strict (an unknown key or a malformed value is an error naming the file, the line, the
/// key and the value); writing produces the text Barman writes for the same values: keys
/// sorted, `None` for missing values, `backup_name` and `snapshots_info` left out when
/// missing, Python `repr` for the structured values.
///
/// # Examples
///
/// ```
/// use barman_catalog::{BackupInfo, BackupStatus};
///
/// let text = "begin_wal=000000010000000000000004\nend_xlog=0/40000B8\nstatus=DONE\ntimeline=1\n";
/// let info = BackupInfo::parse("meta/20141222T092522-backup.info", text)?;
/// assert_eq!(info.id.to_string(), "20141222T092522");
/// assert_eq!(info.status, BackupStatus::Done);
/// assert_eq!(info.end_xlog.unwrap().to_string(), "0/40000B8");
/// let written = info.to_string();
/// assert!(written.starts_with("backup_label=None\nbegin_offset=None\n"));
/// assert_eq!(BackupInfo::parse("meta/20141222T092522-backup.info", &written)?, info);
/// # Ok::<(), barman_catalog::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BackupInfo {
    /// The backup id (from the file name, not a key).
    pub id: BackupId,
    /// `backup_label`: the label text PostgreSQL returned (a Python string literal).
    pub backup_label: Option<PyValue>,
    /// `backup_name`: the name given with `--name`.
    pub backup_name: Option<String>,
    /// `begin_offset`: offset of `begin_xlog` in `begin_wal`.
    pub begin_offset: Option<i64>,
    /// `begin_time`.
    pub begin_time: Option<PyDateTime>,
    /// `begin_wal`: the first WAL segment the backup needs.
    pub begin_wal: Option<SegmentName>,
    /// `begin_xlog`: the backup's start LSN.
    pub begin_xlog: Option<Lsn>,
    /// `children_backup_ids`: incremental backups taken on top of this one.
    pub children_backup_ids: Option<Vec<BackupId>>,
    /// `cluster_size`: estimated size of the cluster at backup time.
    pub cluster_size: Option<i64>,
    /// `compression`: backup compression (postgres method).
    pub compression: Option<String>,
    /// `config_file`.
    pub config_file: Option<String>,
    /// `copy_stats`: a Python dict of timings.
    pub copy_stats: Option<PyValue>,
    /// `data_checksums`: `on` or `off`.
    pub data_checksums: Option<String>,
    /// `deduplicated_size`.
    pub deduplicated_size: Option<i64>,
    /// `encryption`.
    pub encryption: Option<String>,
    /// `end_offset`.
    pub end_offset: Option<i64>,
    /// `end_time`.
    pub end_time: Option<PyDateTime>,
    /// `end_wal`: the last WAL segment the backup needs.
    pub end_wal: Option<SegmentName>,
    /// `end_xlog`: the backup's end LSN (consistency point).
    pub end_xlog: Option<Lsn>,
    /// `error`: why the backup failed.
    pub error: Option<String>,
    /// `hba_file`.
    pub hba_file: Option<String>,
    /// `ident_file`.
    pub ident_file: Option<String>,
    /// `included_files`: a Python list of configuration files.
    pub included_files: Option<PyValue>,
    /// `mode`: `<method>[-<strategy>]`, such as `rsync-concurrent` or `postgres`.
    pub mode: Option<String>,
    /// `parent_backup_id`: the parent of an incremental backup.
    pub parent_backup_id: Option<BackupId>,
    /// `pgdata`.
    pub pgdata: Option<String>,
    /// `server_name`.
    pub server_name: Option<String>,
    /// `size`.
    pub size: Option<i64>,
    /// `snapshots_info`: a Python dict describing snapshot backups.
    pub snapshots_info: Option<PyValue>,
    /// `status`.
    pub status: BackupStatus,
    /// `summarize_wal`: `on` or `off`.
    pub summarize_wal: Option<String>,
    /// `systemid`: the cluster's system identifier (text).
    pub systemid: Option<String>,
    /// `tablespaces`.
    pub tablespaces: Option<Vec<Tablespace>>,
    /// `timeline`: the timeline the backup started on.
    pub timeline: Option<TimelineId>,
    /// `version`: PostgreSQL's `server_version_num`.
    pub version: Option<i64>,
    /// `xlog_segment_size` (16 MiB when absent).
    pub xlog_segment_size: WalSegSize,
}

/// How a `backup.info` value is read, cleared (`None`) and written, by the type of its
/// field; `Err` holds the reason a value is refused.
trait InfoField: Sized {
    fn read(value: &str) -> std::result::Result<Self, String>;
    fn none() -> Self;
    fn text(&self) -> Option<String>;
}

fn py_int(value: &str) -> std::result::Result<i64, String> {
    parse_py_int(value).ok_or_else(|| "expected an integer".to_owned())
}

impl InfoField for Option<String> {
    fn read(value: &str) -> std::result::Result<Self, String> {
        Ok(Some(value.to_owned()))
    }
    fn none() -> Self {
        None
    }
    fn text(&self) -> Option<String> {
        self.clone()
    }
}

/// `Option`s of values written with `Display` and read with their own parser.
macro_rules! displayed_field {
    ($ty:ty, |$v:ident| $read:expr) => {
        impl InfoField for Option<$ty> {
            fn read($v: &str) -> std::result::Result<Self, String> {
                $read.map(Some)
            }
            fn none() -> Self {
                None
            }
            fn text(&self) -> Option<String> {
                self.as_ref().map(ToString::to_string)
            }
        }
    };
}

displayed_field!(i64, |v| py_int(v));
displayed_field!(PyDateTime, |v| v
    .parse::<PyDateTime>()
    .map_err(|e| e.to_string()));
displayed_field!(SegmentName, |v| v
    .parse::<SegmentName>()
    .map_err(|_| "expected a WAL segment name".to_owned()));
displayed_field!(Lsn, |v| v
    .parse::<Lsn>()
    .map_err(|_| "expected an LSN such as 0/4000028".to_owned()));
displayed_field!(BackupId, |v| v
    .parse::<BackupId>()
    .map_err(|_| "expected a backup id".to_owned()));
displayed_field!(TimelineId, |v| py_int(v).and_then(|n| {
    u32::try_from(n)
        .ok()
        .filter(|t| *t > 0)
        .map(TimelineId::new)
        .ok_or_else(|| "expected a timeline from 1 to 4294967295".to_owned())
}));

/// A Python literal (`backup_label`, `copy_stats`, ...): an empty one is written `None`.
impl InfoField for Option<PyValue> {
    fn read(value: &str) -> std::result::Result<Self, String> {
        PyValue::parse(value)
            .map(Some)
            .map_err(|e| format!("not a Python literal: {e}"))
    }
    fn none() -> Self {
        None
    }
    fn text(&self) -> Option<String> {
        self.as_ref()
            .filter(|v| v.is_truthy())
            .map(PyValue::to_string)
    }
}

/// `children_backup_ids`: comma-separated ids; none is written `None`.
impl InfoField for Option<Vec<BackupId>> {
    fn read(value: &str) -> std::result::Result<Self, String> {
        value
            .split(',')
            .map(|s| s.parse::<BackupId>())
            .collect::<Result<Vec<_>>>()
            .map(Some)
            .map_err(|_| "expected comma-separated backup ids".to_owned())
    }
    fn none() -> Self {
        None
    }
    fn text(&self) -> Option<String> {
        self.as_ref().filter(|v| !v.is_empty()).map(|v| {
            v.iter()
                .map(BackupId::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
    }
}

/// `tablespaces`: Barman's list of `(name, oid, location)` tuples.
impl InfoField for Option<Vec<Tablespace>> {
    fn read(value: &str) -> std::result::Result<Self, String> {
        parse_tablespaces(value)
    }
    fn none() -> Self {
        None
    }
    fn text(&self) -> Option<String> {
        self.as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| tablespaces_repr(t))
    }
}

/// `status`: Barman keeps `None`; the catalogue treats it as EMPTY.
impl InfoField for BackupStatus {
    fn read(value: &str) -> std::result::Result<Self, String> {
        value.parse().map_err(|_| {
            "expected EMPTY, STARTED, WAITING_FOR_WALS, DONE, FAILED or SYNCING".to_owned()
        })
    }
    fn none() -> Self {
        BackupStatus::Empty
    }
    fn text(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// `xlog_segment_size`: `None` means Barman's default.
impl InfoField for WalSegSize {
    fn read(value: &str) -> std::result::Result<Self, String> {
        py_int(value).and_then(|v| {
            u64::try_from(v)
                .ok()
                .and_then(|v| WalSegSize::new(v).ok())
                .ok_or_else(|| "expected a power of two from 1 MiB to 1 GiB".to_owned())
        })
    }
    fn none() -> Self {
        WalSegSize::DEFAULT
    }
    fn text(&self) -> Option<String> {
        Some(self.bytes().to_string())
    }
}

/// Generates `BACKUP_INFO_KEYS` and `BackupInfo`'s reading, clearing and writing of each
/// key from one list of keys (each the name of its field).
macro_rules! backup_info_keys {
    ($($key:ident,)*) => {
        /// Every key of `backup.info`, in the sorted order Barman writes them.
        pub const BACKUP_INFO_KEYS: [&str; [$(stringify!($key)),*].len()] = [$(stringify!($key)),*];

        impl BackupInfo {
            /// Reads `value` into the field of `key`; `None` for an unknown key.
            fn set_value(&mut self, key: &str, value: &str) -> Option<std::result::Result<(), String>> {
                match key {
                    $(stringify!($key) => Some(InfoField::read(value).map(|v| self.$key = v)),)*
                    _ => None,
                }
            }

            /// Clears the field of `key` (the value `None`).
            fn set_none(&mut self, key: &str) {
                match key {
                    $(stringify!($key) => self.$key = InfoField::none(),)*
                    _ => {}
                }
            }

            /// The text of `key`'s value, `None` when it is written `None`.
            fn value_text(&self, key: &str) -> Option<String> {
                match key {
                    $(stringify!($key) => InfoField::text(&self.$key),)*
                    _ => None,
                }
            }
        }
    };
}

// Every key of `backup.info`, in the sorted order Barman writes them. Each is a field of
// `BackupInfo` of the same name; the field's type says how it is read and written
// (`InfoField`). `BACKUP_INFO_KEYS` and the reading, clearing and writing of each key
// are generated from this one list.
backup_info_keys! {
    backup_label,
    backup_name,
    begin_offset,
    begin_time,
    begin_wal,
    begin_xlog,
    children_backup_ids,
    cluster_size,
    compression,
    config_file,
    copy_stats,
    data_checksums,
    deduplicated_size,
    encryption,
    end_offset,
    end_time,
    end_wal,
    end_xlog,
    error,
    hba_file,
    ident_file,
    included_files,
    mode,
    parent_backup_id,
    pgdata,
    server_name,
    size,
    snapshots_info,
    status,
    summarize_wal,
    systemid,
    tablespaces,
    timeline,
    version,
    xlog_segment_size,
}

impl BackupInfo {
    /// Metadata of a new backup: status EMPTY, 16 MiB segments, nothing else known.
    ///
    /// ```
    /// let info = barman_catalog::BackupInfo::new("20261125T184314".parse()?);
    /// assert_eq!(info.status, barman_catalog::BackupStatus::Empty);
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn new(id: BackupId) -> BackupInfo {
        BackupInfo {
            id,
            backup_label: None,
            backup_name: None,
            begin_offset: None,
            begin_time: None,
            begin_wal: None,
            begin_xlog: None,
            children_backup_ids: None,
            cluster_size: None,
            compression: None,
            config_file: None,
            copy_stats: None,
            data_checksums: None,
            deduplicated_size: None,
            encryption: None,
            end_offset: None,
            end_time: None,
            end_wal: None,
            end_xlog: None,
            error: None,
            hba_file: None,
            ident_file: None,
            included_files: None,
            mode: None,
            parent_backup_id: None,
            pgdata: None,
            server_name: None,
            size: None,
            snapshots_info: None,
            status: BackupStatus::Empty,
            summarize_wal: None,
            systemid: None,
            tablespaces: None,
            timeline: None,
            version: None,
            xlog_segment_size: WalSegSize::DEFAULT,
        }
    }

    /// The backup id a `backup.info` path names: `.../<id>-backup.info` (the `meta/`
    /// layout) or `.../<id>/backup.info` (the older `base/` layout).
    ///
    /// ```
    /// use barman_catalog::BackupInfo;
    /// assert_eq!(BackupInfo::id_from_path("/b/srv/base/20261125T184314/backup.info")?.to_string(), "20261125T184314");
    /// assert_eq!(BackupInfo::id_from_path("meta/20261125T184314-backup.info")?.to_string(), "20261125T184314");
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn id_from_path(path: &str) -> Result<BackupId> {
        let mut parts = path.rsplit('/');
        let file = parts.next().unwrap_or("");
        let candidate = match file.strip_suffix("-backup.info") {
            Some(id) => id,
            None if file == "backup.info" => parts.next().unwrap_or(""),
            None => file,
        };
        candidate.parse()
    }

    /// Parses the text of the `backup.info` at `path` (the path gives the backup id and
    /// names the file in errors).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBackupId`] if the path names no backup id; [`Error::InvalidLine`],
    /// [`Error::UnknownKey`] or [`Error::InvalidValue`] with the line number.
    ///
    /// ```
    /// let err = barman_catalog::BackupInfo::parse("20261125T184314-backup.info", "colour=blue\n").unwrap_err();
    /// assert!(err.to_string().contains("line 1: unknown key \"colour\""));
    /// ```
    pub fn parse(path: &str, text: &str) -> Result<BackupInfo> {
        let mut info = BackupInfo::new(Self::id_from_path(path)?);
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            if raw.trim().is_empty() || raw.trim_end().starts_with('#') {
                continue;
            }
            let (key, value) = raw.split_once('=').ok_or_else(|| Error::InvalidLine {
                file: path.to_owned(),
                line: line_no,
                text: raw.to_owned(),
            })?;
            let (key, value) = (key.trim(), value.trim());
            let invalid = |reason: &str| Error::InvalidValue {
                file: path.to_owned(),
                line: line_no,
                key: key.to_owned(),
                value: value.to_owned(),
                reason: reason.to_owned(),
            };
            if !BACKUP_INFO_KEYS.contains(&key) {
                return Err(Error::UnknownKey {
                    file: path.to_owned(),
                    line: line_no,
                    key: key.to_owned(),
                });
            }
            if value == "None" {
                info.set_none(key);
                continue;
            }
            match info.set_value(key, value) {
                Some(Ok(())) => {}
                Some(Err(reason)) => return Err(invalid(&reason)),
                None => {
                    return Err(Error::UnknownKey {
                        file: path.to_owned(),
                        line: line_no,
                        key: key.to_owned(),
                    });
                }
            }
        }
        Ok(info)
    }

    /// The backup's kind (the letter of `list-backups`).
    ///
    /// ```
    /// let mut info = barman_catalog::BackupInfo::new("20261125T184314".parse()?);
    /// info.mode = Some("rsync-concurrent".into());
    /// assert_eq!(info.backup_type().letter(), 'R');
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn backup_type(&self) -> BackupType {
        let mode = self.mode.as_deref().unwrap_or("");
        if mode.starts_with("snapshot") {
            BackupType::Snapshot
        } else if mode.starts_with("rsync") {
            BackupType::Rsync
        } else if self.parent_backup_id.is_some() {
            BackupType::Incremental
        } else {
            BackupType::Full
        }
    }

    /// Whether the backup is an incremental one (it has a parent).
    ///
    /// ```
    /// let info = barman_catalog::BackupInfo::new("20261125T184314".parse()?);
    /// assert!(!info.is_incremental());
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn is_incremental(&self) -> bool {
        self.parent_backup_id.is_some()
    }

    /// The timeline of the backup: `timeline`, else that of `begin_wal`.
    ///
    /// ```
    /// let mut info = barman_catalog::BackupInfo::new("20261125T184314".parse()?);
    /// info.begin_wal = Some("000000030000000000000004".parse()?);
    /// assert_eq!(info.begin_timeline().map(u32::from), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn begin_timeline(&self) -> Option<TimelineId> {
        self.timeline.or(self.begin_wal.map(SegmentName::timeline))
    }
}

/// Python's `int()` of a stripped string: optional sign, digits, single underscores
/// between digits.
fn parse_py_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    v.replace('_', "").parse().ok()
}

fn parse_tablespaces(value: &str) -> std::result::Result<Option<Vec<Tablespace>>, String> {
    let v = PyValue::parse(value).map_err(|e| format!("not a Python literal: {e}"))?;
    if !v.is_truthy() {
        return Ok(None);
    }
    let items = v
        .as_seq()
        .ok_or("expected a list of (name, oid, location) tuples")?;
    items
        .iter()
        .map(|item| match item.as_seq() {
            Some([name, oid, location]) => {
                let oid = oid
                    .as_int()
                    .and_then(|o| u32::try_from(o).ok())
                    .ok_or("a tablespace oid must be an integer")?;
                Ok(Tablespace {
                    name: name
                        .as_str()
                        .ok_or("a tablespace name must be a string")?
                        .to_owned(),
                    oid,
                    location: location
                        .as_str()
                        .ok_or("a tablespace location must be a string")?
                        .to_owned(),
                })
            }
            _ => Err("expected a list of (name, oid, location) tuples".to_owned()),
        })
        .collect::<std::result::Result<Vec<_>, String>>()
        .map(Some)
}

fn tablespaces_repr(t: &[Tablespace]) -> String {
    PyValue::List(
        t.iter()
            .map(|t| {
                PyValue::Tuple(vec![
                    PyValue::Str(t.name.clone()),
                    PyValue::Int(i64::from(t.oid)),
                    PyValue::Str(t.location.clone()),
                ])
            })
            .collect(),
    )
    .to_string()
}

impl BackupInfo {
    /// Every key of `backup.info`, in order, with the text its value is written as
    /// there (`None` when it is written `None`).
    pub fn field_texts(&self) -> Vec<(&'static str, Option<String>)> {
        BACKUP_INFO_KEYS
            .iter()
            .map(|k| (*k, self.value_text(k)))
            .collect()
    }
}

impl fmt::Display for BackupInfo {
    /// The `backup.info` text Barman writes for these values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for key in BACKUP_INFO_KEYS {
            let value = self.value_text(key);
            if value.is_none() && matches!(key, "backup_name" | "snapshots_info") {
                continue;
            }
            // A line break would end the line early and corrupt the file: Barman writes
            // such a value as is, barman-rs writes it on one line.
            let value = value.map(|v| {
                if v.contains(['\n', '\r']) {
                    v.replace(['\n', '\r'], " ")
                } else {
                    v
                }
            });
            writeln!(f, "{key}={}", value.as_deref().unwrap_or("None"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    const PATH: &str = "meta/20141222T092522-backup.info";

    /// The sample of Barman's `tests/test_infofile.py`, with every key set or `None`,
    /// written as Barman writes it.
    const SAMPLE: &str = "backup_label=\"START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\\nLABEL: it's\\n\"
begin_offset=40
begin_time=2014-12-22 09:25:22.561207+01:00
begin_wal=000000010000000000000004
begin_xlog=0/4000028
children_backup_ids=20141223T092522,20141224T092522
cluster_size=None
compression=None
config_file=/fakepath/postgresql.conf
copy_stats={'copy_time': 1.5, 'total_time': 1e-05, 'number_of_workers': 2}
data_checksums=on
deduplicated_size=None
encryption=None
end_offset=184
end_time=2014-12-22 09:25:27.410470+01:00
end_wal=000000010000000000000004
end_xlog=0/40000B8
error=None
hba_file=/fakepath/pg_hba.conf
ident_file=/fakepath/pg_ident.conf
included_files=['/etc/postgresql/15/main/conf.d/a.conf']
mode=rsync-concurrent
parent_backup_id=20141221T092522
pgdata=/fakepath/data
server_name=fake-9.4-server
size=20935690
snapshots_info={'provider': 'gcp', 'snapshots': [{'name': 'a', 'mount': ('/opt', 'x')}]}
status=DONE
summarize_wal=None
systemid=7712020257735954489
tablespaces=[('fake_tbs', 16384, '/fake_tmp/tbs'), (\"it's\", 16390, \"/srv/o'brien\")]
timeline=1
version=90400
xlog_segment_size=16777216
";

    /// Issue "Trust", point 11: a `begin_time` or `end_time` with an offset right after
    /// the date crashed the reader of backup.info (through the timestamp parser).
    #[test]
    fn time_with_an_offset_right_after_the_date_is_an_error_not_a_panic() {
        for bad in [
            "begin_time=2026-11-20 +01:00\n",
            "end_time=2026-11-25-01:00\n",
            "end_time=2026-11-20      Z\n",
        ] {
            let err = BackupInfo::parse(PATH, bad).unwrap_err();
            assert!(matches!(err, Error::InvalidValue { line: 1, .. }), "{err}");
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z/._-]{1,20}",
            "\\PC{1,20}".prop_filter("a value as read back", |s| {
                s.trim() == s && !s.is_empty() && s != "None"
            }),
        ]
    }

    fn time() -> impl Strategy<Value = PyDateTime> {
        (
            0i64..4_000_000_000,
            prop_oneof![Just(0i64), 0i64..1_000_000],
            prop_oneof![
                Just(0i32),
                Just(3600),
                Just(-18000),
                Just(19800),
                -86_399i32..86_399
            ],
        )
            .prop_map(|(secs, micros, off)| {
                let ts = jiff::Timestamp::from_microsecond(secs * 1_000_000 + micros).unwrap();
                PyDateTime::from_timestamp(ts, off)
            })
    }

    fn segment() -> impl Strategy<Value = SegmentName> {
        (1u32..5, any::<u32>(), 0u32..4096)
            .prop_map(|(t, l, s)| SegmentName::new(TimelineId::new(t), l, s).unwrap())
    }

    fn id() -> impl Strategy<Value = BackupId> {
        "20[0-9]{6}T[0-9]{6}".prop_map(|s| s.parse().unwrap())
    }

    /// Truthy Python literals without NaN or infinities (which `repr` writes as words
    /// `ast.literal_eval` cannot read back).
    fn literal() -> impl Strategy<Value = PyValue> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(PyValue::Int),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(PyValue::Float),
            "\\PC{0,12}".prop_map(PyValue::Str),
            Just(PyValue::None),
        ];
        prop_oneof![
            "\\PC{1,40}".prop_map(PyValue::Str),
            proptest::collection::vec(("[a-z_]{1,8}".prop_map(PyValue::Str), leaf.clone()), 1..4)
                .prop_map(PyValue::Dict),
            proptest::collection::vec(leaf, 1..4).prop_map(PyValue::List),
        ]
    }

    fn tablespaces() -> impl Strategy<Value = Vec<Tablespace>> {
        proptest::collection::vec(
            ("\\PC{0,10}", any::<u32>(), "\\PC{1,20}").prop_map(|(name, oid, location)| {
                Tablespace {
                    name,
                    oid,
                    location,
                }
            }),
            1..3,
        )
    }

    /// Random metadata, every key possibly set, with values as a read gives them back.
    fn info() -> impl Strategy<Value = BackupInfo> {
        use proptest::option::of;
        (
            (
                of(literal()),
                of(text()),
                of(any::<i64>()),
                of(time()),
                of(segment()),
                of(any::<u64>()),
            ),
            (
                of(proptest::collection::vec(id(), 1..3)),
                of(any::<i64>()),
                of(text()),
                of(text()),
                of(literal()),
                of(text()),
            ),
            (
                of(any::<i64>()),
                of(text()),
                of(any::<i64>()),
                of(time()),
                of(segment()),
                of(any::<u64>()),
            ),
            (
                of(text()),
                of(text()),
                of(text()),
                of(literal()),
                of(text()),
                of(id()),
            ),
            (
                of(text()),
                of(text()),
                of(any::<i64>()),
                of(literal()),
                proptest::sample::select(BackupStatus::ALL.to_vec()),
                of(text()),
            ),
            (
                of(text()),
                of(tablespaces()),
                of(1u32..),
                of(any::<i64>()),
                20u32..=30,
            ),
        )
            .prop_map(|(a, b, c, d, e, f)| {
                let mut i = BackupInfo::new("20141222T092522".parse().unwrap());
                (
                    i.backup_label,
                    i.backup_name,
                    i.begin_offset,
                    i.begin_time,
                    i.begin_wal,
                ) = (a.0, a.1, a.2, a.3, a.4);
                i.begin_xlog = a.5.map(Lsn::new);
                (
                    i.children_backup_ids,
                    i.cluster_size,
                    i.compression,
                    i.config_file,
                    i.copy_stats,
                    i.data_checksums,
                ) = b;
                (
                    i.deduplicated_size,
                    i.encryption,
                    i.end_offset,
                    i.end_time,
                    i.end_wal,
                ) = (c.0, c.1, c.2, c.3, c.4);
                i.end_xlog = c.5.map(Lsn::new);
                (
                    i.error,
                    i.hba_file,
                    i.ident_file,
                    i.included_files,
                    i.mode,
                    i.parent_backup_id,
                ) = d;
                (
                    i.pgdata,
                    i.server_name,
                    i.size,
                    i.snapshots_info,
                    i.status,
                    i.summarize_wal,
                ) = e;
                i.systemid = f.0;
                i.tablespaces = f.1;
                i.timeline = f.2.map(TimelineId::new);
                i.version = f.3;
                i.xlog_segment_size = WalSegSize::new(1 << f.4).unwrap();
                i
            })
    }

    /// Whether the literals of `info` can be written so that they read back.
    fn writable(info: &BackupInfo) -> bool {
        [
            &info.backup_label,
            &info.copy_stats,
            &info.included_files,
            &info.snapshots_info,
        ]
        .into_iter()
        .flatten()
        .all(PyValue::is_finite)
    }

    proptest! {
        #[test]
        fn written_text_reads_back(info in info()) {
            let text = info.to_string();
            prop_assert_eq!(BackupInfo::parse(PATH, &text).unwrap(), info);
        }
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// A whole backup.info (random, or Barman's sample) with one mutation (a line
        /// dropped or duplicated, a value replaced by a boundary value, a character
        /// inserted, ...): an error, or metadata whose text reads back and is then
        /// written the same (Barman's `None` for empty values is the only change).
        #[test]
        fn near_valid_files_parse_or_fail_cleanly(
            s in near_valid(prop_oneof![info().prop_map(|i| i.to_string()), Just(SAMPLE.to_owned())])
        ) {
            if let Ok(info) = BackupInfo::parse(PATH, &s) {
                let written = info.to_string();
                match BackupInfo::parse(PATH, &written) {
                    Ok(back) => prop_assert_eq!(back.to_string(), written),
                    Err(e) => prop_assert!(!writable(&info), "{e}: {written}"),
                }
            }
        }
    }

    #[test]
    fn sample_reads() {
        let info = BackupInfo::parse(PATH, SAMPLE).unwrap();
        assert_eq!(info.to_string(), SAMPLE);
    }
}

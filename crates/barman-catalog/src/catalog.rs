//! A server's backups: look-ups, shortcuts and keep annotations.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::{BackupId, BackupInfo, BackupStatus, BackupType, Error, Result};

/// What a `keep` annotation protects (the content of `meta/<id>-keep`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum KeepTarget {
    /// The backup and every WAL file after it: point-in-time recovery from it to now.
    Full,
    /// The backup and only the WAL needed to make it consistent (begin..end).
    Standalone,
}

impl KeepTarget {
    /// The annotation text.
    ///
    /// ```
    /// assert_eq!(barman_catalog::KeepTarget::Standalone.name(), "standalone");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            KeepTarget::Full => "full",
            KeepTarget::Standalone => "standalone",
        }
    }
}

impl FromStr for KeepTarget {
    type Err = Error;

    /// `standalone` is standalone; any other non-empty annotation is treated as `full`,
    /// as Barman does for safety.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "" => Err(Error::InvalidValue {
                file: "keep annotation".to_owned(),
                line: 1,
                key: "keep".to_owned(),
                value: s.to_owned(),
                reason: "empty".to_owned(),
            }),
            "standalone" => Ok(KeepTarget::Standalone),
            _ => Ok(KeepTarget::Full),
        }
    }
}

impl fmt::Display for KeepTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Words that cannot be backup names, because they are shortcuts.
pub const RESERVED_BACKUP_IDS: [&str; 8] = [
    "latest",
    "last",
    "oldest",
    "first",
    "last-failed",
    "latest-full",
    "last-full",
    "auto",
];

/// Checks a name given with `backup --name`.
///
/// # Errors
///
/// [`Error::InvalidBackupName`] for an empty name, a backup id or a reserved word.
///
/// ```
/// assert!(barman_catalog::check_backup_name("before-upgrade").is_ok());
/// assert!(barman_catalog::check_backup_name("latest").is_err());
/// assert!(barman_catalog::check_backup_name("20261125T184314").is_err());
/// ```
pub fn check_backup_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "a backup name cannot be empty"
    } else if BackupId::is_backup_id(name) {
        "a backup name cannot be a backup id"
    } else if RESERVED_BACKUP_IDS.contains(&name) {
        "a backup name cannot be a reserved word"
    } else {
        return Ok(());
    };
    Err(Error::InvalidBackupName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    })
}

/// The backups of one server, in id order, with their keep annotations.
///
/// # Examples
///
/// ```
/// use barman_catalog::{BackupInfo, BackupStatus, Catalogue};
///
/// let mut cat = Catalogue::new("pg");
/// for (id, status) in [("20261123T010000", BackupStatus::Done), ("20261124T010000", BackupStatus::Done), ("20261125T010000", BackupStatus::Failed)] {
///     let mut b = BackupInfo::new(id.parse()?);
///     b.status = status;
///     b.mode = Some("postgres".into());
///     cat.insert(b);
/// }
/// assert_eq!(cat.resolve("latest")?.id.to_string(), "20261124T010000");
/// assert_eq!(cat.resolve("oldest")?.id.to_string(), "20261123T010000");
/// assert_eq!(cat.resolve("last-failed")?.id.to_string(), "20261125T010000");
/// assert!(cat.resolve("20261122T010000").is_err());
/// # Ok::<(), barman_catalog::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    server: String,
    backups: BTreeMap<BackupId, BackupInfo>,
    keeps: BTreeMap<BackupId, KeepTarget>,
}

impl Catalogue {
    /// An empty catalogue for `server`.
    ///
    /// ```
    /// assert!(barman_catalog::Catalogue::new("pg").is_empty());
    /// ```
    pub fn new(server: &str) -> Catalogue {
        Catalogue {
            server: server.to_owned(),
            ..Catalogue::default()
        }
    }

    /// The server's name.
    ///
    /// ```
    /// assert_eq!(barman_catalog::Catalogue::new("pg").server(), "pg");
    /// ```
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Adds or replaces a backup.
    ///
    /// ```
    /// let mut cat = barman_catalog::Catalogue::new("pg");
    /// cat.insert(barman_catalog::BackupInfo::new("20261125T010000".parse()?));
    /// assert_eq!(cat.len(), 1);
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn insert(&mut self, info: BackupInfo) {
        self.backups.insert(info.id, info);
    }

    /// Removes a backup (and its keep annotation).
    ///
    /// ```
    /// let mut cat = barman_catalog::Catalogue::new("pg");
    /// let id = "20261125T010000".parse()?;
    /// cat.insert(barman_catalog::BackupInfo::new(id));
    /// assert!(cat.remove(id).is_some());
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn remove(&mut self, id: BackupId) -> Option<BackupInfo> {
        self.keeps.remove(&id);
        self.backups.remove(&id)
    }

    /// Sets or clears the keep annotation of a backup.
    ///
    /// ```
    /// use barman_catalog::{Catalogue, KeepTarget};
    /// let mut cat = Catalogue::new("pg");
    /// let id = "20261125T010000".parse()?;
    /// cat.set_keep(id, Some(KeepTarget::Full));
    /// assert_eq!(cat.keep(id), Some(KeepTarget::Full));
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn set_keep(&mut self, id: BackupId, keep: Option<KeepTarget>) {
        match keep {
            Some(k) => self.keeps.insert(id, k),
            None => self.keeps.remove(&id),
        };
    }

    /// The keep annotation of a backup.
    ///
    /// ```
    /// let cat = barman_catalog::Catalogue::new("pg");
    /// assert_eq!(cat.keep("20261125T010000".parse()?), None);
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn keep(&self, id: BackupId) -> Option<KeepTarget> {
        self.keeps.get(&id).copied()
    }

    /// Number of backups.
    ///
    /// ```
    /// assert_eq!(barman_catalog::Catalogue::new("pg").len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.backups.len()
    }

    /// Whether there is no backup.
    ///
    /// ```
    /// assert!(barman_catalog::Catalogue::new("pg").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.backups.is_empty()
    }

    /// The backup with this id.
    ///
    /// ```
    /// let cat = barman_catalog::Catalogue::new("pg");
    /// assert!(cat.get("20261125T010000".parse()?).is_none());
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn get(&self, id: BackupId) -> Option<&BackupInfo> {
        self.backups.get(&id)
    }

    /// Every backup, oldest first.
    ///
    /// ```
    /// assert_eq!(barman_catalog::Catalogue::new("pg").iter().count(), 0);
    /// ```
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &BackupInfo> {
        self.backups.values()
    }

    /// The backups with a status in `statuses`, oldest first.
    ///
    /// ```
    /// use barman_catalog::BackupStatus;
    /// let cat = barman_catalog::Catalogue::new("pg");
    /// assert_eq!(cat.with_status(&[BackupStatus::Done]).count(), 0);
    /// ```
    pub fn with_status<'a>(
        &'a self,
        statuses: &'a [BackupStatus],
    ) -> impl DoubleEndedIterator<Item = &'a BackupInfo> + 'a {
        self.backups
            .values()
            .filter(move |b| statuses.contains(&b.status))
    }

    /// The backups that can be restored (WAITING_FOR_WALS or DONE), oldest first.
    ///
    /// ```
    /// assert_eq!(barman_catalog::Catalogue::new("pg").available().count(), 0);
    /// ```
    pub fn available(&self) -> impl DoubleEndedIterator<Item = &BackupInfo> {
        self.backups.values().filter(|b| b.status.is_copy_done())
    }

    /// The restorable backup before `id`.
    ///
    /// ```
    /// let cat = barman_catalog::Catalogue::new("pg");
    /// assert!(cat.previous("20261125T010000".parse()?).is_none());
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn previous(&self, id: BackupId) -> Option<&BackupInfo> {
        self.backups
            .range(..id)
            .rev()
            .map(|(_, b)| b)
            .find(|b| b.status.is_copy_done())
    }

    /// The restorable backup after `id`.
    ///
    /// ```
    /// let cat = barman_catalog::Catalogue::new("pg");
    /// assert!(cat.next("20261125T010000".parse()?).is_none());
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn next(&self, id: BackupId) -> Option<&BackupInfo> {
        use std::ops::Bound;
        self.backups
            .range((Bound::Excluded(id), Bound::Unbounded))
            .map(|(_, b)| b)
            .find(|b| b.status.is_copy_done())
    }

    /// The incremental descendants of `id` (children first, then theirs), from
    /// `children_backup_ids`.
    ///
    /// ```
    /// let cat = barman_catalog::Catalogue::new("pg");
    /// assert!(cat.descendants("20261125T010000".parse()?).is_empty());
    /// # Ok::<(), barman_catalog::Error>(())
    /// ```
    pub fn descendants(&self, id: BackupId) -> Vec<BackupId> {
        let mut out = Vec::new();
        let mut todo = vec![id];
        while let Some(cur) = todo.pop() {
            let Some(b) = self.backups.get(&cur) else {
                continue;
            };
            for child in b.children_backup_ids.iter().flatten() {
                if !out.contains(child) && *child != id {
                    out.push(*child);
                    todo.push(*child);
                }
            }
        }
        out
    }

    /// Resolves what a user typed for a backup: an id, a shortcut (`latest`/`last`,
    /// `oldest`/`first`, `last-failed`, `latest-full`/`last-full`) or a backup name.
    /// Shortcuts and names consider restorable backups (WAITING_FOR_WALS or DONE), except
    /// `last-failed`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownBackup`] when nothing matches; [`Error::AmbiguousBackupName`] when
    /// a name matches several backups.
    ///
    /// ```
    /// let cat = barman_catalog::Catalogue::new("pg");
    /// let err = cat.resolve("latest").unwrap_err();
    /// assert_eq!(err.to_string(), "unknown backup \"latest\" in server \"pg\"");
    /// ```
    pub fn resolve(&self, wanted: &str) -> Result<&BackupInfo> {
        let unknown = || Error::UnknownBackup {
            wanted: wanted.to_owned(),
            server: self.server.clone(),
        };
        let found = match wanted {
            "latest" | "last" => self.available().next_back(),
            "oldest" | "first" => self.available().next(),
            "last-failed" => self.with_status(&[BackupStatus::Failed]).next_back(),
            "latest-full" | "last-full" => self.available().rev().find(|b| {
                !matches!(
                    b.backup_type(),
                    BackupType::Incremental | BackupType::Snapshot
                )
            }),
            id if BackupId::is_backup_id(id) => self.backups.get(&id.parse::<BackupId>()?),
            name => {
                let matching: Vec<&BackupInfo> = self
                    .available()
                    .filter(|b| b.backup_name.as_deref() == Some(name))
                    .collect();
                if matching.len() > 1 {
                    return Err(Error::AmbiguousBackupName {
                        name: name.to_owned(),
                        server: self.server.clone(),
                        ids: matching
                            .iter()
                            .map(|b| b.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
                matching.into_iter().next()
            }
        };
        found.ok_or_else(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    fn cat() -> Catalogue {
        let mut cat = Catalogue::new("pg");
        for (id, status, mode, name, parent) in [
            (
                "20261101T000000",
                BackupStatus::Done,
                "postgres",
                Some("monthly"),
                None,
            ),
            (
                "20261102T000000",
                BackupStatus::Done,
                "postgres",
                None,
                Some("20261101T000000"),
            ),
            (
                "20261103T000000",
                BackupStatus::WaitingForWals,
                "rsync-concurrent",
                Some("dup"),
                None,
            ),
            (
                "20261104T000000",
                BackupStatus::Done,
                "postgres",
                Some("dup"),
                None,
            ),
            (
                "20261105T000000",
                BackupStatus::Failed,
                "postgres",
                Some("broken"),
                None,
            ),
            (
                "20261106T000000",
                BackupStatus::Done,
                "postgres",
                None,
                Some("20261104T000000"),
            ),
        ] {
            let mut b = BackupInfo::new(id.parse().unwrap());
            b.status = status;
            b.mode = Some(mode.into());
            b.backup_name = name.map(str::to_owned);
            b.parent_backup_id = parent.map(|p| p.parse().unwrap());
            cat.insert(b);
        }
        cat
    }

    #[test]
    fn shortcuts_and_names() {
        let cat = cat();
        let r = |w: &str| cat.resolve(w).map(|b| b.id.to_string());
        assert_eq!(r("latest").unwrap(), "20261106T000000");
        assert_eq!(r("last").unwrap(), "20261106T000000");
        assert_eq!(r("first").unwrap(), "20261101T000000");
        assert_eq!(r("latest-full").unwrap(), "20261104T000000");
        assert_eq!(r("last-full").unwrap(), "20261104T000000");
        assert_eq!(r("last-failed").unwrap(), "20261105T000000");
        assert_eq!(r("monthly").unwrap(), "20261101T000000");
        assert_eq!(r("20261105T000000").unwrap(), "20261105T000000");
        // A failed backup's name is not resolved (names consider restorable backups).
        assert!(matches!(
            cat.resolve("broken"),
            Err(Error::UnknownBackup { .. })
        ));
        match cat.resolve("dup") {
            Err(Error::AmbiguousBackupName { ids, .. }) => {
                assert_eq!(ids, "20261103T000000, 20261104T000000")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cat.resolve("nope"),
            Err(Error::UnknownBackup { .. })
        ));
        assert!(matches!(
            cat.resolve("20261199T000000"),
            Err(Error::UnknownBackup { .. })
        ));
    }

    #[test]
    fn neighbours_and_trees() {
        let mut cat = cat();
        let id = |s: &str| s.parse::<BackupId>().unwrap();
        assert_eq!(
            cat.previous(id("20261106T000000")).unwrap().id,
            id("20261104T000000")
        );
        assert_eq!(
            cat.next(id("20261104T000000")).unwrap().id,
            id("20261106T000000")
        );
        let mut root = cat.get(id("20261101T000000")).unwrap().clone();
        root.children_backup_ids = Some(vec![id("20261102T000000")]);
        cat.insert(root);
        let mut child = cat.get(id("20261102T000000")).unwrap().clone();
        child.children_backup_ids = Some(vec![id("20261106T000000")]);
        cat.insert(child);
        assert_eq!(
            cat.descendants(id("20261101T000000")),
            [id("20261102T000000"), id("20261106T000000")]
        );
        cat.set_keep(id("20261104T000000"), Some(KeepTarget::Standalone));
        assert!(cat.remove(id("20261104T000000")).is_some());
        assert_eq!(cat.keep(id("20261104T000000")), None);
        assert_eq!("weird".parse::<KeepTarget>().unwrap(), KeepTarget::Full);
        assert!("".parse::<KeepTarget>().is_err());
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// A backup id with one mutation: an error, or an id whose text is the input.
        #[test]
        fn near_valid_ids_parse_or_fail_cleanly(s in near_valid("20[0-9]{6}T[0-9]{6}")) {
            if let Ok(id) = s.parse::<BackupId>() {
                prop_assert_eq!(id.to_string(), s);
            }
        }

        /// What a user types for a backup (an id, a shortcut, a name) with one mutation:
        /// the backup it names or an error, and a backup found by id or name is the one
        /// with that id or name; a name a backup cannot have is refused.
        #[test]
        fn near_valid_backup_references_resolve_or_fail_cleanly(
            s in near_valid(prop_oneof![
                proptest::sample::select(RESERVED_BACKUP_IDS.to_vec()).prop_map(str::to_owned),
                Just("20261104T000000".to_owned()),
                Just("20261105T000000".to_owned()),
                Just("monthly".to_owned()),
                Just("dup".to_owned()),
            ])
        ) {
            let cat = cat();
            match cat.resolve(&s) {
                Ok(b) if BackupId::is_backup_id(&s) => prop_assert_eq!(b.id.to_string(), s.clone()),
                Ok(b) if !RESERVED_BACKUP_IDS.contains(&s.as_str()) => {
                    prop_assert_eq!(b.backup_name.as_deref(), Some(s.as_str()));
                }
                _ => {}
            }
            if check_backup_name(&s).is_ok() {
                prop_assert!(!s.is_empty() && !BackupId::is_backup_id(&s));
            }
            let _ = s.parse::<KeepTarget>();
        }
    }
}

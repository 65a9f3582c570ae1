//! The catalogue's objects under `meta/`: `<id>-backup.info`, `<id>-keep` and the
//! delete marker `<id>-delete_this`.

use std::path::{Path, PathBuf};

use barman_catalog::{BackupId, BackupInfo, BackupStatus, Catalogue, KeepTarget};
use barman_transport::{Location, PutMode};
use futures::TryStreamExt;

use super::Repository;
use crate::Result;
use crate::repo::{DELETE_MARKER, UnreadableBackup};

impl Repository {
    pub(super) fn meta_label(&self, rel: &str) -> PathBuf {
        Path::new(&format!("{:?}", self.home)).join(rel)
    }

    fn info_rel(id: BackupId) -> String {
        format!("meta/{id}-backup.info")
    }

    fn keep_rel(id: BackupId) -> String {
        format!("meta/{id}-keep")
    }

    fn marker_rel(id: BackupId) -> String {
        format!("meta/{id}-{DELETE_MARKER}")
    }

    /// The `backup.info` of one backup, `None` when there is none.
    ///
    /// # Errors
    ///
    /// Storage errors; a file that cannot be read as a `backup.info` (the error names it).
    pub async fn read_info(&self, id: BackupId) -> Result<Option<BackupInfo>> {
        let rel = Self::info_rel(id);
        match self.home.read(&rel).await? {
            None => Ok(None),
            Some(b) => {
                let label = self.meta_label(&rel).display().to_string();
                Ok(Some(BackupInfo::parse(
                    &label,
                    &String::from_utf8_lossy(&b),
                )?))
            }
        }
    }

    /// Writes `info` as `meta/<id>-backup.info`, replacing the previous one whole.
    ///
    /// # Errors
    ///
    /// Storage errors; the previous object stays as it was.
    pub async fn write_info(&self, info: &BackupInfo) -> Result<()> {
        self.home
            .write(
                &Self::info_rel(info.id),
                info.to_string(),
                PutMode::Overwrite,
            )
            .await?;
        Ok(())
    }

    /// The keep annotation of a backup (`meta/<id>-keep`).
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn read_keep(&self, id: BackupId) -> Result<Option<KeepTarget>> {
        Ok(self
            .home
            .read(&Self::keep_rel(id))
            .await?
            .and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok()))
    }

    /// Sets (or with `None` removes) the keep annotation of a backup.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn write_keep(&self, id: BackupId, keep: Option<KeepTarget>) -> Result<()> {
        match keep {
            Some(k) => {
                self.home
                    .write(&Self::keep_rel(id), k.name().to_owned(), PutMode::Overwrite)
                    .await?;
                Ok(())
            }
            None => self.home.remove(&Self::keep_rel(id)).await,
        }
    }

    /// Removes the delete marker of a backup (a delete finished or was called off).
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn clear_deleting(&self, id: BackupId) -> Result<()> {
        self.home.remove(&Self::marker_rel(id)).await
    }

    /// Removes `backup.info` and the keep annotation of a backup.
    pub(crate) async fn remove_meta(&self, id: BackupId) -> Result<()> {
        self.home.remove(&Self::keep_rel(id)).await?;
        self.home.remove(&Self::info_rel(id)).await
    }

    /// Writes the delete marker of a backup: a delete started. Written first by a
    /// delete, removed last, so that a delete cut short is seen and finished.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn mark_deleting(&self, id: BackupId) -> Result<()> {
        self.home
            .write(&Self::marker_rel(id), "delete", PutMode::Overwrite)
            .await?;
        Ok(())
    }

    /// Whether a delete of this backup started and has not finished.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn is_deleting(&self, id: BackupId) -> Result<bool> {
        self.home.exists(&Self::marker_rel(id)).await
    }

    /// Removes a backup's objects: everything under `base/<id>/` in the storage, its
    /// keep annotation and `backup.info`, the delete marker (written first) last. A
    /// delete cut short leaves the marker, and the backup reads as FAILED until a
    /// retry finishes it.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn remove_backup(&self, id: BackupId) -> Result<()> {
        self.mark_deleting(id).await?;
        if let Some(storage) = self.home.open_existing().await? {
            let prefix = self.home.location(&format!("base/{id}"))?;
            let objects: Vec<Location> = storage
                .list(&prefix)
                .map_ok(|m| m.location)
                .try_collect()
                .await?;
            for o in objects {
                match storage.delete(&o).await {
                    Ok(()) | Err(barman_transport::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.remove_meta(id).await?;
        self.clear_deleting(id).await
    }

    /// The catalogue as stored under `meta/`: every backup with its keep annotation. A
    /// backup whose delete started reads as FAILED (it is never restored). Entries that
    /// cannot be read are returned beside it, never counted as absent by the caller's
    /// deletes.
    ///
    /// A STARTED backup is reported as stored: whether its process still runs is known
    /// to the local side only ([`crate::repo::BackupRepo::load`] tells).
    ///
    /// # Errors
    ///
    /// Storage errors listing `meta/`.
    pub async fn catalogue(&self) -> Result<(Catalogue, Vec<UnreadableBackup>)> {
        let mut catalogue = Catalogue::new(&self.server);
        let mut unreadable = Vec::new();
        for id in self.meta_ids(&mut unreadable).await? {
            let mut info = match self.read_info(id).await {
                Ok(Some(info)) => info,
                Ok(None) => continue,
                Err(e) => {
                    unreadable.push(UnreadableBackup {
                        name: id.to_string(),
                        path: self.meta_label(&Self::info_rel(id)),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if self.is_deleting(id).await? {
                info.status = BackupStatus::Failed;
                info.error = Some(format!(
                    "a delete of this backup started and did not finish ({}): cron finishes it",
                    self.meta_label(&Self::marker_rel(id)).display()
                ));
            }
            let keep = self.read_keep(id).await?;
            catalogue.insert(info);
            catalogue.set_keep(id, keep);
        }
        unreadable.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((catalogue, unreadable))
    }

    /// The backup ids of `meta/<id>-backup.info`, sorted; names that are not backup ids
    /// go to `unreadable`.
    pub(crate) async fn meta_ids(
        &self,
        unreadable: &mut Vec<UnreadableBackup>,
    ) -> Result<Vec<BackupId>> {
        let Some(storage) = self.home.open_existing().await? else {
            return Ok(Vec::new());
        };
        let meta = self.home.location("meta")?;
        let listing = match storage.list_with_delimiter(&meta).await {
            Ok(l) => l,
            Err(barman_transport::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut ids = Vec::new();
        for o in listing.objects {
            let Some(id) = o
                .location
                .file_name()
                .and_then(|n| n.strip_suffix("-backup.info"))
            else {
                continue;
            };
            match id.parse::<BackupId>() {
                Ok(id) => ids.push(id),
                Err(e) => unreadable.push(UnreadableBackup {
                    name: id.to_owned(),
                    path: self.meta_label(
                        o.location
                            .strip_prefix(&self.home.prefix)
                            .unwrap_or(o.location.as_str()),
                    ),
                    reason: format!("not a backup id: {e}"),
                }),
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

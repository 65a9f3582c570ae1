//! The object-store backend: S3 and S3-compatible services, GCS, Azure, in memory.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutOptions, WriteMultipart};

use crate::storage::resolve_range;
use crate::{
    Error, GetResult, ListResult, Location, ObjectMeta, ObjectStream, PutMode, PutPayload, Result,
    Storage,
};

/// Options for [`ObjectStoreStorage::from_url`]: endpoint, profile, credentials and
/// other settings, and the environment to take defaults from.
///
/// The library never reads the process environment itself: pass it with
/// [`CloudOptions::env`] (typically `std::env::vars()`), and it is used as the
/// `object_store` builders' `from_env` would (`AWS_*`, `GOOGLE_*`, `AZURE_*`), plus
/// `AWS_PROFILE` and the shared `~/.aws/credentials` and `~/.aws/config` files.
/// Explicit [`CloudOptions::option`]s win over the environment, which wins over the
/// profile.
///
/// # Examples
///
/// ```
/// use barman_transport::CloudOptions;
/// use std::time::Duration;
///
/// let opts = CloudOptions::new()
///     .endpoint_url("http://127.0.0.1:9000")      // Barman's --endpoint-url
///     .profile("barman")                          // Barman's --profile
///     .option("aws_region", "eu-west-1")
///     .retries(5, Duration::from_secs(60))
///     .env([("HOME".to_string(), "/var/lib/barman".to_string())]);
/// # let _ = opts;
/// ```
#[derive(Clone, Default)]
pub struct CloudOptions {
    endpoint_url: Option<String>,
    profile: Option<String>,
    options: Vec<(String, String)>,
    env: HashMap<String, String>,
    retry: Option<(usize, Duration)>,
}

/// Whether a configuration key or environment variable holds a secret (an access key,
/// a secret key, a token, a password, a SAS or a service account's key).
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "key",
        "token",
        "password",
        "sas",
        "credential",
        "service_account",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Never prints a secret: the values of secret options are masked, and of the
/// environment only the names are shown.
impl fmt::Debug for CloudOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: Vec<(&str, &str)> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_key(k) {
                    "********"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        let mut env: Vec<&str> = self.env.keys().map(String::as_str).collect();
        env.sort_unstable();
        f.debug_struct("CloudOptions")
            .field("endpoint_url", &self.endpoint_url)
            .field("profile", &self.profile)
            .field("options", &options)
            .field("env (names only)", &env)
            .field("retry", &self.retry)
            .finish()
    }
}

impl CloudOptions {
    /// No options: the service's defaults.
    pub fn new() -> CloudOptions {
        CloudOptions::default()
    }

    /// The endpoint of an S3-compatible service (or of an Azure emulator); plain
    /// `http://` endpoints are allowed.
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// The AWS profile whose credentials and region to use (instead of `AWS_PROFILE`,
    /// or `default`).
    pub fn profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// An `object_store` configuration key and value, for example `aws_region`,
    /// `aws_access_key_id`, `google_service_account`, `azure_storage_account_name`
    /// (the keys of `AmazonS3ConfigKey`, `GoogleConfigKey` and `AzureConfigKey`).
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }

    /// The environment variables to take credentials and settings from.
    pub fn env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    /// At most `max_retries` retries of a failed request, with exponential backoff,
    /// within `timeout` (the default is 10 retries within 3 minutes).
    pub fn retries(mut self, max_retries: usize, timeout: Duration) -> Self {
        self.retry = Some((max_retries, timeout));
        self
    }

    fn retry_config(&self) -> object_store::RetryConfig {
        let mut rc = object_store::RetryConfig::default();
        if let Some((n, t)) = self.retry {
            rc.max_retries = n;
            rc.retry_timeout = t;
        }
        rc
    }

    /// Settings from the AWS shared files for the chosen profile, as
    /// `object_store` keys.
    fn aws_profile_settings(&self) -> Vec<(String, String)> {
        let profile = self
            .profile
            .clone()
            .or_else(|| self.env.get("AWS_PROFILE").cloned());
        let explicit = profile.is_some();
        let profile = profile.unwrap_or_else(|| "default".to_owned());
        let home = self.env.get("HOME").map(PathBuf::from);
        let file = |var: &str, default: &str| {
            self.env
                .get(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(default)))
        };
        let mut out = Vec::new();
        // Credentials from the environment win over the files, unless a profile was
        // asked for by name.
        let env_keys = self.env.contains_key("AWS_ACCESS_KEY_ID");
        if let Some(p) = file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")
            && (explicit || !env_keys)
            && let Ok(text) = std::fs::read_to_string(p)
        {
            for (k, v) in ini_section(&text, &profile) {
                match k.as_str() {
                    "aws_access_key_id" | "aws_secret_access_key" | "aws_session_token" => {
                        out.push((k, v));
                    }
                    _ => {}
                }
            }
        }
        if let Some(p) = file("AWS_CONFIG_FILE", ".aws/config")
            && let Ok(text) = std::fs::read_to_string(p)
        {
            let section = if profile == "default" {
                profile.clone()
            } else {
                format!("profile {profile}")
            };
            for (k, v) in ini_section(&text, &section) {
                match k.as_str() {
                    "region" => out.push(("aws_region".into(), v)),
                    "endpoint_url" => out.push(("aws_endpoint".into(), v)),
                    "aws_access_key_id" | "aws_secret_access_key" | "aws_session_token"
                        if explicit || !env_keys =>
                    {
                        out.push((k, v));
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

/// The `key = value` lines of section `[name]` of an INI text (AWS shared files).
fn ini_section(text: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = s.trim() == name;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    out
}

fn config_error(what: &'static str, value: &str, reason: impl ToString) -> Error {
    Error::Config {
        what,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

/// A [`Storage`] over an [`ObjectStore`]: S3 (and S3-compatible services), Google
/// Cloud Storage, Azure Blob Storage, or `object_store`'s in-memory store.
///
/// - **Atomic puts**: a small object is one PUT; a large streamed one is a multipart
///   upload of [`part size`](Self::with_part_size) parts, at most
///   [`max_concurrency`](Self::with_max_concurrency) in flight, so memory stays below
///   `part_size × (max_concurrency + 1)`. The object appears only when the upload
///   completes; a failed or dropped upload is aborted or left incomplete (invisible).
/// - **Put if absent** is the service's conditional PUT (`If-None-Match: *`). It is a
///   single request, so a streamed payload is buffered up to
///   [`create_buffer_limit`](Self::with_create_buffer_limit) (64 MiB by default, several
///   WAL segments); a larger one fails with [`Error::Unsupported`].
/// - **Retries** with exponential backoff are done by `object_store` for every request
///   (see [`CloudOptions::retries`]).
/// - Names are stored as they are (no percent-encoding): a location `a b/c%d` is the
///   key `a b/c%d`.
///
/// # Examples
///
/// ```no_run
/// use barman_transport::{CloudOptions, Location, ObjectStoreStorage, StorageExt};
///
/// # #[allow(dead_code)]
/// # async fn f() -> Result<(), barman_transport::Error> {
/// let opts = CloudOptions::new().env(std::env::vars());
/// let bucket = ObjectStoreStorage::from_url("s3://backups/pg-main", &opts)?;
/// bucket.put(&Location::new("wals/0000000100000000/000000010000000000000001")?, vec![0; 16]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ObjectStoreStorage {
    store: Arc<dyn ObjectStore>,
    transport: &'static str,
    part_size: usize,
    max_concurrency: usize,
    create_buffer_limit: usize,
}

/// The store is shown by its `Display` (the service and the bucket): its `Debug` can
/// hold the credentials.
impl fmt::Debug for ObjectStoreStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreStorage")
            .field("store", &format_args!("{}", self.store))
            .field("transport", &self.transport)
            .field("part_size", &self.part_size)
            .field("max_concurrency", &self.max_concurrency)
            .field("create_buffer_limit", &self.create_buffer_limit)
            .finish()
    }
}

impl ObjectStoreStorage {
    /// Wraps an existing store.
    ///
    /// ```
    /// use barman_transport::ObjectStoreStorage;
    /// use std::sync::Arc;
    ///
    /// let s = ObjectStoreStorage::new(Arc::new(object_store::memory::InMemory::new()));
    /// # let _ = s;
    /// ```
    pub fn new(store: Arc<dyn ObjectStore>) -> ObjectStoreStorage {
        ObjectStoreStorage {
            store,
            transport: "object_store",
            part_size: 8 << 20,
            max_concurrency: 4,
            create_buffer_limit: 64 << 20,
        }
    }

    /// A store from a Barman-style URL: `s3://bucket[/prefix]` (also `s3a://`),
    /// `gs://bucket[/prefix]`, `azure://container[/prefix]` (also `az://`; the account
    /// comes from the options or `AZURE_STORAGE_ACCOUNT_NAME`),
    /// `https://ACCOUNT.blob.core.windows.net/container[/prefix]`, or
    /// `memory://[prefix]`. Locations are relative to the prefix.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unknown scheme, a missing bucket, an unknown option
    /// key, or settings the builder refuses.
    ///
    /// ```
    /// use barman_transport::{CloudOptions, ObjectStoreStorage};
    ///
    /// assert!(ObjectStoreStorage::from_url("memory://scratch", &CloudOptions::new()).is_ok());
    /// assert!(ObjectStoreStorage::from_url("ftp://host/dir", &CloudOptions::new()).is_err());
    /// ```
    pub fn from_url(url: &str, options: &CloudOptions) -> Result<ObjectStoreStorage> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| config_error("storage URL", url, "expected SCHEME://BUCKET[/PREFIX]"))?;
        let (mut bucket, mut prefix) = match rest.split_once('/') {
            Some((b, p)) => (b.to_owned(), p.trim_matches('/').to_owned()),
            None => (rest.to_owned(), String::new()),
        };
        let rc = options.retry_config();
        let (store, transport): (Arc<dyn ObjectStore>, &'static str) = match scheme {
            "memory" => {
                prefix = rest.trim_matches('/').to_owned();
                (Arc::new(InMemory::new()), "memory")
            }
            "s3" | "s3a" => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&bucket)
                    .with_retry(rc);
                let mut settings = options.aws_profile_settings();
                settings.extend(env_settings(&options.env, "AWS_"));
                if let Some(e) = &options.endpoint_url {
                    settings.push(("aws_endpoint".into(), e.clone()));
                }
                settings.extend(options.options.iter().cloned());
                for (k, v) in settings {
                    if k == "aws_endpoint" && v.starts_with("http://") {
                        b = b.with_allow_http(true);
                    }
                    let key: AmazonS3ConfigKey =
                        k.parse().map_err(|e| config_error("S3 option", &k, e))?;
                    b = b.with_config(key, v);
                }
                (
                    Arc::new(b.build().map_err(|e| config_error("storage URL", url, e))?),
                    "s3",
                )
            }
            "gs" => {
                let mut b = GoogleCloudStorageBuilder::new()
                    .with_bucket_name(&bucket)
                    .with_retry(rc);
                let mut settings = env_settings(&options.env, "GOOGLE_");
                settings.extend(options.options.iter().cloned());
                for (k, v) in settings {
                    let key: GoogleConfigKey =
                        k.parse().map_err(|e| config_error("GCS option", &k, e))?;
                    b = b.with_config(key, v);
                }
                (
                    Arc::new(b.build().map_err(|e| config_error("storage URL", url, e))?),
                    "gcs",
                )
            }
            "azure" | "az" | "https" => {
                let mut b = MicrosoftAzureBuilder::new().with_retry(rc);
                if scheme == "https" {
                    let host = bucket.clone();
                    let account = host
                        .strip_suffix(".blob.core.windows.net")
                        .ok_or_else(|| config_error("storage URL", url, "not an Azure blob URL"))?;
                    b = b.with_account(account);
                    let (c, p) = match prefix.split_once('/') {
                        Some((c, p)) => (c.to_owned(), p.to_owned()),
                        None => (prefix.clone(), String::new()),
                    };
                    bucket = c;
                    prefix = p;
                }
                b = b.with_container_name(&bucket);
                let mut settings = env_settings(&options.env, "AZURE_");
                if let Some(e) = &options.endpoint_url {
                    b = b
                        .with_endpoint(e.clone())
                        .with_allow_http(e.starts_with("http://"));
                }
                settings.extend(options.options.iter().cloned());
                for (k, v) in settings {
                    let key: AzureConfigKey =
                        k.parse().map_err(|e| config_error("Azure option", &k, e))?;
                    b = b.with_config(key, v);
                }
                (
                    Arc::new(b.build().map_err(|e| config_error("storage URL", url, e))?),
                    "azure",
                )
            }
            _ => {
                return Err(config_error(
                    "storage URL",
                    url,
                    "unknown scheme (s3, gs, azure, memory)",
                ));
            }
        };
        if bucket.is_empty() && scheme != "memory" {
            return Err(config_error("storage URL", url, "no bucket or container"));
        }
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            let p = Path::parse(&prefix).map_err(|e| config_error("storage URL", url, e))?;
            Arc::new(PrefixStore::new(store, p))
        };
        let mut s = ObjectStoreStorage::new(store);
        s.transport = transport;
        Ok(s)
    }

    /// The size of the parts of multipart uploads (default 8 MiB; S3 needs at least
    /// 5 MiB), which is also the size above which a streamed put goes multipart.
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    /// How many parts of one upload are sent at once (default 4).
    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// The largest streamed object a [`PutMode::Create`] put buffers (default 64 MiB).
    pub fn with_create_buffer_limit(mut self, bytes: usize) -> Self {
        self.create_buffer_limit = bytes;
        self
    }

    /// [`err`](Self::err) for a write: there, "not found" is the bucket or container,
    /// not the object, and the service's own words say which.
    fn put_err(&self, location: &Location, mode: PutMode, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Error::Backend {
                transport: self.transport,
                location: location.to_string(),
                retryable: false,
                source: Box::new(e),
            },
            e => self.err(location, mode, e),
        }
    }

    fn err(&self, location: &Location, mode: PutMode, e: object_store::Error) -> Error {
        let location = location.to_string();
        match e {
            object_store::Error::NotFound { .. } => Error::NotFound { location },
            object_store::Error::AlreadyExists { .. } => Error::AlreadyExists { location },
            object_store::Error::Precondition { .. } if mode == PutMode::Create => {
                Error::AlreadyExists { location }
            }
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Error::PermissionDenied {
                location,
                source: Box::new(e),
            },
            object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. } => Error::Unsupported {
                operation: if mode == PutMode::Create {
                    "put if absent"
                } else {
                    "this operation"
                },
                transport: self.transport,
            },
            object_store::Error::InvalidPath { .. } => Error::InvalidLocation {
                location,
                reason: "refused by the object store",
            },
            e => {
                let retryable = matches!(e, object_store::Error::Generic { .. });
                Error::Backend {
                    transport: self.transport,
                    location,
                    retryable,
                    source: Box::new(e),
                }
            }
        }
    }
}

fn env_settings(env: &HashMap<String, String>, prefix: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(prefix) && *k != "AWS_PROFILE")
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    v.sort();
    // Unknown variables (AWS_PAGER, …) are not settings: keep only the known keys.
    v.retain(|(k, _)| match prefix {
        "AWS_" => k.parse::<AmazonS3ConfigKey>().is_ok(),
        "GOOGLE_" => k.parse::<GoogleConfigKey>().is_ok(),
        _ => k.parse::<AzureConfigKey>().is_ok(),
    });
    v
}

fn path_of(location: &Location) -> Result<Path> {
    Path::parse(location.as_str()).map_err(|_| Error::InvalidLocation {
        location: location.to_string(),
        reason: "not a valid object name",
    })
}

fn meta_of(m: object_store::ObjectMeta) -> Result<ObjectMeta> {
    let location = Location::new(m.location.as_ref())?;
    let mut meta =
        ObjectMeta::new(location, m.size).with_last_modified(SystemTime::from(m.last_modified));
    meta.e_tag = m.e_tag;
    Ok(meta)
}

#[async_trait]
impl Storage for ObjectStoreStorage {
    async fn put_opts(
        &self,
        location: &Location,
        payload: PutPayload,
        mode: PutMode,
    ) -> Result<ObjectMeta> {
        if location.is_root() {
            return Err(Error::InvalidLocation {
                location: String::new(),
                reason: "the root is not an object",
            });
        }
        let path = path_of(location)?;
        let payload_err = |source| Error::Payload {
            location: location.to_string(),
            source,
        };
        let path_ref = &path;
        let single = |parts: Vec<Bytes>| async move {
            let size: usize = parts.iter().map(Bytes::len).sum();
            let opts = PutOptions {
                mode: match mode {
                    PutMode::Create => object_store::PutMode::Create,
                    _ => object_store::PutMode::Overwrite,
                },
                ..Default::default()
            };
            let r = self
                .store
                .put_opts(path_ref, parts.into_iter().collect(), opts)
                .await
                .map_err(|e| self.put_err(location, mode, e))?;
            let mut meta = ObjectMeta::new(location.clone(), size as u64)
                .with_last_modified(SystemTime::now());
            meta.e_tag = r.e_tag;
            Ok(meta)
        };

        let limit = match mode {
            PutMode::Create => self.create_buffer_limit.max(self.part_size),
            _ => self.part_size,
        };
        // Buffer up to one part: small objects are a single PUT.
        let mut stream = payload.into_stream();
        let mut parts = Vec::new();
        let mut buffered = 0usize;
        while buffered <= limit {
            match stream.next().await {
                None => return single(parts).await,
                Some(chunk) => {
                    let chunk = chunk.map_err(payload_err)?;
                    buffered += chunk.len();
                    parts.push(chunk);
                }
            }
        }
        if mode == PutMode::Create {
            return Err(Error::Unsupported {
                operation: "put if absent of an object larger than the create buffer limit",
                transport: self.transport,
            });
        }

        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.put_err(location, mode, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        for p in parts {
            w.put(p);
        }
        let mut size = buffered as u64;
        loop {
            let next = stream.next().await;
            match next {
                None => break,
                Some(Err(e)) => {
                    let _ = w.abort().await;
                    return Err(payload_err(e));
                }
                Some(Ok(chunk)) => {
                    if let Err(e) = w.wait_for_capacity(self.max_concurrency).await {
                        let _ = w.abort().await;
                        return Err(self.put_err(location, mode, e));
                    }
                    size += chunk.len() as u64;
                    w.put(chunk);
                }
            }
        }
        let r = w
            .finish()
            .await
            .map_err(|e| self.put_err(location, mode, e))?;
        let mut meta =
            ObjectMeta::new(location.clone(), size).with_last_modified(SystemTime::now());
        meta.e_tag = r.e_tag;
        Ok(meta)
    }

    async fn get_opts(&self, location: &Location, range: Option<Range<u64>>) -> Result<GetResult> {
        let path = path_of(location)?;
        let m = PutMode::Overwrite;
        let opts = match &range {
            None => GetOptions::default(),
            Some(r) if r.start >= r.end => {
                // Empty or backwards ranges: object stores refuse them; answer from
                // the metadata.
                let meta = self.head(location).await?;
                let r = resolve_range(location, range, meta.size)?;
                return Ok(GetResult::new(meta, r, Box::pin(futures::stream::empty())));
            }
            Some(r) => GetOptions {
                range: Some(GetRange::Bounded(r.clone())),
                ..Default::default()
            },
        };
        match self.store.get_opts(&path, opts).await {
            Ok(r) => {
                let got = r.range.clone();
                let meta = meta_of(r.meta.clone())?;
                let this = self.clone();
                let loc = location.clone();
                let stream = r
                    .into_stream()
                    .map_err(move |e| this.err(&loc, PutMode::Overwrite, e));
                Ok(GetResult::new(meta, got, Box::pin(stream)))
            }
            Err(object_store::Error::NotFound { .. }) => Err(Error::NotFound {
                location: location.to_string(),
            }),
            Err(e) => {
                // A range starting at or past the end: refused by the service, but
                // ours to judge (at the end: empty; past it: invalid).
                if range.is_some()
                    && let Ok(meta) = self.head(location).await
                {
                    let r = resolve_range(location, range, meta.size)?;
                    if r.is_empty() {
                        return Ok(GetResult::new(meta, r, Box::pin(futures::stream::empty())));
                    }
                }
                Err(self.err(location, m, e))
            }
        }
    }

    async fn head(&self, location: &Location) -> Result<ObjectMeta> {
        let path = path_of(location)?;
        let m = self
            .store
            .head(&path)
            .await
            .map_err(|e| self.err(location, PutMode::Overwrite, e))?;
        meta_of(m)
    }

    fn list(&self, prefix: &Location) -> ObjectStream<ObjectMeta> {
        let path = match path_of(prefix) {
            Ok(p) => p,
            Err(e) => return Box::pin(futures::stream::once(async move { Err(e) })),
        };
        let this = self.clone();
        let loc = prefix.clone();
        let p = (!prefix.is_root()).then_some(path);
        Box::pin(self.store.list(p.as_ref()).map(move |r| {
            r.map_err(|e| this.err(&loc, PutMode::Overwrite, e))
                .and_then(meta_of)
        }))
    }

    async fn list_with_delimiter(&self, prefix: &Location) -> Result<ListResult> {
        let path = path_of(prefix)?;
        let p = (!prefix.is_root()).then_some(path);
        let r = self
            .store
            .list_with_delimiter(p.as_ref())
            .await
            .map_err(|e| self.err(prefix, PutMode::Overwrite, e))?;
        let mut prefixes = r
            .common_prefixes
            .iter()
            .map(|p| Location::new(p.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        prefixes.sort();
        let mut objects = r
            .objects
            .into_iter()
            .map(meta_of)
            .collect::<Result<Vec<_>>>()?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(ListResult::new(prefixes, objects))
    }

    async fn delete(&self, location: &Location) -> Result<()> {
        let path = path_of(location)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(location, PutMode::Overwrite, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{self, Capabilities};

    /// Trust, point 13: `Debug` printed the options and the environment, secrets and
    /// all, and the store's own `Debug` can hold its credentials.
    #[test]
    fn debug_never_prints_a_secret() {
        let opts = CloudOptions::new()
            .endpoint_url("http://127.0.0.1:9")
            .option("aws_region", "eu-west-1")
            .option("aws_access_key_id", "AKIDSECRETID")
            .option("aws_secret_access_key", "TOPSECRETKEY")
            .option("azure_storage_sas_key", "SASSECRET")
            .env([("AWS_SESSION_TOKEN".to_owned(), "TOKENSECRET".to_owned())]);
        let shown = format!("{opts:?}");
        for secret in ["AKIDSECRETID", "TOPSECRETKEY", "SASSECRET", "TOKENSECRET"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("eu-west-1") && shown.contains("AWS_SESSION_TOKEN"),
            "{shown}"
        );
        let s3 = CloudOptions::new()
            .endpoint_url("http://127.0.0.1:9")
            .option("aws_region", "eu-west-1")
            .option("aws_access_key_id", "AKIDSECRETID")
            .option("aws_secret_access_key", "TOPSECRETKEY")
            .option("aws_session_token", "TOKENSECRET");
        let store = ObjectStoreStorage::from_url("s3://bucket/prefix", &s3).unwrap();
        let shown = format!("{store:?}");
        for secret in ["AKIDSECRETID", "TOPSECRETKEY", "TOKENSECRET"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("s3"), "{shown}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_over_in_memory() {
        let s = ObjectStoreStorage::from_url("memory://", &CloudOptions::new())
            .unwrap()
            .with_part_size(1 << 20);
        conformance::run_all(
            &s,
            &Location::new("suite").unwrap(),
            Capabilities::default().with_large_object_size(5 << 20),
        )
        .await;
        let s = ObjectStoreStorage::from_url("memory://some/prefix", &CloudOptions::new())
            .unwrap()
            .with_part_size(1 << 20)
            .with_create_buffer_limit(2 << 20);
        conformance::run_all(
            &s,
            &Location::ROOT,
            Capabilities::default().with_large_object_size(3 << 20),
        )
        .await;
        // Over the create buffer: unsupported, and nothing written.
        let loc = Location::new("big").unwrap();
        let chunks = (0..3).map(|_| Ok(Bytes::from(vec![0u8; 1 << 20])));
        let r = s
            .put_opts(
                &loc,
                PutPayload::from_stream(futures::stream::iter(chunks)),
                PutMode::Create,
            )
            .await;
        assert!(matches!(r, Err(Error::Unsupported { .. })), "{r:?}");
        assert!(matches!(s.head(&loc).await, Err(Error::NotFound { .. })));
    }

    #[test]
    fn urls() {
        let o = CloudOptions::new()
            .option("aws_region", "us-east-1")
            .option("aws_access_key_id", "k")
            .option("aws_secret_access_key", "s");
        let s = ObjectStoreStorage::from_url("s3://bucket/some/prefix", &o).unwrap();
        assert_eq!(s.transport, "s3");
        assert!(ObjectStoreStorage::from_url("s3://", &o).is_err());
        assert!(
            ObjectStoreStorage::from_url("s3://b", &o.clone().option("no_such_key", "1")).is_err()
        );
        assert!(ObjectStoreStorage::from_url("nope", &o).is_err());
        let az = CloudOptions::new().option("azure_storage_account_key", "a2V5");
        let s =
            ObjectStoreStorage::from_url("https://acct.blob.core.windows.net/container/pfx", &az)
                .unwrap();
        assert_eq!(s.transport, "azure");
    }

    #[test]
    fn aws_profiles() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n[barman]\naws_access_key_id=B\naws_secret_access_key=BS\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".aws/config"),
            "[default]\nregion = eu-west-1\n[profile barman]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:1\n",
        )
        .unwrap();
        let home = ("HOME".to_string(), dir.path().display().to_string());
        let o = CloudOptions::new().env([home.clone()]);
        let s = o.aws_profile_settings();
        assert!(s.contains(&("aws_access_key_id".into(), "D".into())));
        assert!(s.contains(&("aws_region".into(), "eu-west-1".into())));
        let o = CloudOptions::new().env([home.clone(), ("AWS_PROFILE".into(), "barman".into())]);
        let s = o.aws_profile_settings();
        assert!(s.contains(&("aws_access_key_id".into(), "B".into())));
        assert!(s.contains(&("aws_endpoint".into(), "http://127.0.0.1:1".into())));
        // Keys in the environment win over the default profile.
        let o = CloudOptions::new().env([
            home,
            ("AWS_ACCESS_KEY_ID".into(), "E".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "ES".into()),
        ]);
        assert!(
            !o.aws_profile_settings()
                .iter()
                .any(|(k, _)| k == "aws_access_key_id")
        );
        assert!(ObjectStoreStorage::from_url("s3://b", &o).is_ok());
    }
}

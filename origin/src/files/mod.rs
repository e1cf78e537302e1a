//! Uploaded files: where their bytes live ([`FileStore`], with [`local::LocalFiles`] under
//! `DATA_DIR/files` and [`s3::S3Files`] on S3-compatible storage such as R2), and the upload rules
//! shared with the edge worker (`confab_shared::files`).
//!
//! Every file is written once under an unguessable key (128 random bits, also the attachment
//! id) and never changed, so it can be cached for a year: [`FileStore::create`] refuses a key
//! that exists. Bytes are streamed from the request into the store with bounded memory (local
//! disk: one chunk at a time; S3: one multipart part at a time). The database's `uploads` table says
//! which room and uploader a key belongs to; the bytes' store keeps the detected content type,
//! size and name beside them, which is how the origin completes an upload that went to the edge.

pub mod local;
pub mod s3;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;

/// A shared handle to the file store in use.
pub type DynFiles = Arc<dyn FileStore>;

/// What is kept beside a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The type detected from the bytes.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// The cleaned file name.
    pub name: String,
}

/// A file read back, whole or in part.
#[derive(Debug, Clone)]
pub struct FileBody {
    /// What is kept beside it.
    pub meta: FileMeta,
    /// The bytes asked for (the whole file, or the requested range).
    pub bytes: Bytes,
}

/// File-store failures.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The backend failed.
    #[error("file storage failed: {0}")]
    Backend(String),
    /// Reading or writing local files failed.
    #[error("file storage failed")]
    Io(#[from] std::io::Error),
    /// A file is already stored under the key (files are never replaced).
    #[error("a file is already stored under this key")]
    Exists,
    /// The bytes being stored did not come: the body was cut, too slow, or over its limit.
    #[error(transparent)]
    Incoming(#[from] IncomingError),
}

/// Why the bytes of an upload stopped coming.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncomingError {
    /// More bytes than allowed.
    #[error("the file is over the {0}-byte limit")]
    TooLarge(u64),
    /// The request body did not arrive in time.
    #[error("the request body did not arrive in time")]
    Timeout,
    /// The request body broke off or was malformed.
    #[error("the request body could not be read")]
    Broken,
}

/// The bytes of a file being stored, as they arrive.
pub type ByteStream<'a> = Pin<Box<dyn Stream<Item = Result<Bytes, IncomingError>> + Send + 'a>>;

/// Where uploaded bytes live. Keys are already validated (`confab_shared::files::is_valid_key`).
#[async_trait]
pub trait FileStore: Send + Sync + 'static {
    /// Stores a new file under `key` from `body`, with `meta.size` ignored (it is what gets
    /// counted); returns its size. Never replaces a stored file: [`FilesError::Exists`]. On any
    /// failure nothing is left under the key.
    async fn create(
        &self,
        key: &str,
        meta: &FileMeta,
        body: ByteStream<'_>,
    ) -> Result<u64, FilesError>;
    /// What is kept beside a file, or `None` when there is no such file.
    async fn head(&self, key: &str) -> Result<Option<FileMeta>, FilesError>;
    /// A file's bytes `start..=end` (or all of them), or `None` when there is no such file.
    async fn get(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<Option<FileBody>, FilesError>;
    /// Which backend, for logs.
    fn describe(&self) -> String;
}

/// A new unguessable storage key: 128 random bits as 32 lowercase hex digits.
pub fn new_key() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Settings for uploads, file storage and link previews (part of `confab serve`'s flags).
#[derive(Debug, Clone, clap::Args)]
pub struct FilesConfig {
    /// Largest upload in bytes; larger ones get 413.
    #[arg(long, env = "CONFAB_MAX_UPLOAD_BYTES", default_value_t = confab_shared::files::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,

    /// Store files in this S3-compatible bucket (R2 in production) instead of DATA_DIR/files.
    #[arg(long, env = "CONFAB_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// The S3 endpoint, e.g. https://ACCOUNT.r2.cloudflarestorage.com (default: AWS).
    #[arg(long, env = "CONFAB_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// The S3 region (R2: `auto`).
    #[arg(long, env = "CONFAB_S3_REGION", default_value = "auto")]
    pub s3_region: String,

    /// The S3 access key id.
    #[arg(long, env = "CONFAB_S3_ACCESS_KEY_ID", default_value = "")]
    pub s3_access_key_id: String,

    /// The S3 secret access key.
    #[arg(
        long,
        env = "CONFAB_S3_SECRET_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub s3_secret_access_key: String,

    /// The edge worker's URL: the public URL when the edge is the front door (README,
    /// "Deploying"). When set, upload tickets send the bytes there and attachment links point
    /// there (`/files/{key}`, from the bucket the origin shares with it); otherwise the origin
    /// serves both. Empty: unset.
    #[arg(long, env = "CONFAB_EDGE_URL")]
    pub edge_url: Option<String>,

    /// `host:port` pairs the link-preview fetcher may reach despite the address blocklist,
    /// comma-separated. For tests against local fixture pages only.
    #[arg(long, env = "CONFAB_PREVIEW_ALLOWLIST", default_value = "")]
    pub preview_allowlist: String,

    /// Uploads one user may have in progress at once; a further one gets 429.
    #[arg(long, env = "CONFAB_MAX_UPLOADS_PER_USER", default_value_t = 2)]
    pub max_uploads_per_user: usize,

    /// Uploads in progress at once on this server; a further one gets 503. Each holds at most
    /// one chunk in memory (local disk) or one 5 MiB part (S3).
    #[arg(long, env = "CONFAB_MAX_UPLOADS", default_value_t = 16)]
    pub max_uploads: usize,

    /// Link previews one user may have being fetched at once (below the 32 of the server); a
    /// further one gets 429.
    #[arg(long, env = "CONFAB_PREVIEWS_PER_USER", default_value_t = 4)]
    pub previews_per_user: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: confab_shared::files::DEFAULT_MAX_UPLOAD_BYTES,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "auto".to_owned(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            edge_url: None,
            preview_allowlist: String::new(),
            max_uploads_per_user: 2,
            max_uploads: 16,
            previews_per_user: 4,
        }
    }
}

impl FilesConfig {
    /// The edge worker's URL, when one is set (an empty value is none: docker-compose passes
    /// `${CONFAB_EDGE_URL:-}`).
    pub fn edge_url(&self) -> Option<&str> {
        self.edge_url.as_deref().filter(|u| !u.is_empty())
    }
}

/// Opens the file store the settings name: S3 when a bucket is set, else `data_dir/files`.
pub async fn open(config: &FilesConfig, data_dir: &std::path::Path) -> anyhow::Result<DynFiles> {
    use anyhow::Context;
    match &config.s3_bucket {
        Some(bucket) => {
            let files = s3::S3Files::new(&s3::S3Settings {
                bucket: bucket.clone(),
                endpoint: config.s3_endpoint.clone(),
                region: config.s3_region.clone(),
                access_key_id: config.s3_access_key_id.clone(),
                secret_access_key: config.s3_secret_access_key.clone(),
            });
            files
                .ensure_bucket()
                .await
                .with_context(|| format!("opening the S3 bucket {bucket}"))?;
            Ok(Arc::new(files))
        }
        None => {
            let dir = data_dir.join("files");
            let files = local::LocalFiles::open(&dir)
                .with_context(|| format!("creating the file directory {}", dir.display()))?;
            Ok(Arc::new(files))
        }
    }
}

/// Uploads as the rest of the server sees them: the file store, the limits, and where links
/// point. One per server, in `AppState::uploads`.
pub struct Uploads {
    /// Where the bytes live.
    pub files: DynFiles,
    /// The link-preview fetcher (it shares this home because both belong to the edge contract).
    pub previews: crate::preview::PreviewFetcher,
    /// Largest upload in bytes.
    pub max_bytes: u64,
    /// Base of this server's links (`CONFAB_PUBLIC_URL`).
    pub public_url: String,
    /// The edge worker's base URL, when one is deployed.
    pub edge_url: Option<String>,
    /// Uploads in progress per user.
    pub per_user: crate::limits::KeyedLimit<confab_shared::ids::UserId>,
    /// Uploads in progress on this server.
    pub in_progress: Arc<tokio::sync::Semaphore>,
}

/// The places an upload in progress holds, given back when it ends.
#[derive(Debug)]
pub struct UploadSlots {
    _user: crate::limits::Slot<confab_shared::ids::UserId>,
    _server: tokio::sync::OwnedSemaphorePermit,
}

/// Why an upload or an attachment was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Incoming(#[from] IncomingError),
    #[error(transparent)]
    Refused(#[from] confab_shared::files::FileError),
    #[error("unknown attachment: upload the file first")]
    Unknown,
    #[error("the attachment's upload has not finished")]
    Unfinished,
    #[error("this ticket has already been used")]
    Used,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Files(FilesError),
}

impl From<FilesError> for UploadError {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::Incoming(e) => Self::Incoming(e),
            FilesError::Exists => Self::Used,
            e => Self::Files(e),
        }
    }
}

impl From<UploadError> for crate::error::ApiError {
    fn from(e: UploadError) -> Self {
        use crate::error::ApiError;
        match e {
            UploadError::Incoming(IncomingError::TooLarge(_)) => {
                ApiError::PayloadTooLarge(e.to_string())
            }
            UploadError::Incoming(_) => ApiError::BadRequest(e.to_string()),
            UploadError::Refused(_) | UploadError::Unknown | UploadError::Unfinished => {
                ApiError::Validation(e.to_string())
            }
            UploadError::Used => ApiError::Conflict("this ticket has already been used"),
            UploadError::Store(e) => e.into(),
            UploadError::Files(e) => ApiError::Internal(anyhow::Error::new(e)),
        }
    }
}

/// Bytes read before storing anything, to decide the type (more than `sniff` looks at).
const HEAD_BYTES: usize = 512;

impl Uploads {
    /// The link to a stored file: on the edge when one is deployed (it reads the same bucket),
    /// else on this server.
    pub fn url_of(&self, key: &str) -> String {
        match &self.edge_url {
            Some(edge) => format!("{}/files/{key}", edge.trim_end_matches('/')),
            None => format!("{}/api/files/{key}", self.public_url.trim_end_matches('/')),
        }
    }

    /// Places for one more upload by `user`, or the refusal: 429 when the user has
    /// `CONFAB_MAX_UPLOADS_PER_USER` in progress, 503 when the server has `CONFAB_MAX_UPLOADS`.
    pub fn admit(
        &self,
        user: confab_shared::ids::UserId,
    ) -> Result<UploadSlots, crate::error::ApiError> {
        use crate::error::ApiError;
        let user_slot = self.per_user.try_acquire(user).ok_or_else(|| {
            ApiError::TooMany(format!(
                "too many uploads in progress for this user (at most {})",
                self.per_user.max()
            ))
        })?;
        let server = self
            .in_progress
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Unavailable("too many uploads in progress: retry"))?;
        Ok(UploadSlots {
            _user: user_slot,
            _server: server,
        })
    }

    /// Checks and stores the bytes of an upload whose row (`record`) is already allowed (and,
    /// for a ticket, claimed), streaming at most `max` bytes from `body` into the file store,
    /// then completes the row (`new_row`: inserts it). `declared` is the content type the
    /// client claimed, if any.
    pub async fn receive(
        &self,
        store: &crate::store::DynStore,
        record: &crate::store::UploadRecord,
        declared: Option<&str>,
        mut body: ByteStream<'_>,
        max: u64,
        new_row: bool,
    ) -> Result<confab_shared::protocol::Attachment, UploadError> {
        use confab_shared::files::{check_claim, sniff, FileError};
        use futures::StreamExt;
        // The type is decided by the first bytes, before anything is stored.
        let mut head = Vec::new();
        let mut ended = false;
        while head.len() < HEAD_BYTES {
            match body.next().await {
                Some(chunk) => head.extend_from_slice(&chunk?),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if head.is_empty() {
            return Err(FileError::Empty.into());
        }
        if head.len() as u64 > max {
            return Err(IncomingError::TooLarge(max).into());
        }
        let detected = sniff(&head[..head.len().min(HEAD_BYTES)]);
        check_claim(&record.name, declared, detected)?;
        let rest: ByteStream<'_> = if ended {
            Box::pin(futures::stream::empty())
        } else {
            body
        };
        let mut counted = 0u64;
        let whole = futures::stream::once(async move { Ok(Bytes::from(head)) })
            .chain(rest)
            .map(move |chunk| {
                let chunk = chunk?;
                counted += chunk.len() as u64;
                if counted > max {
                    Err(IncomingError::TooLarge(max))
                } else {
                    Ok(chunk)
                }
            });
        let meta = FileMeta {
            content_type: detected.to_owned(),
            size: 0,
            name: record.name.clone(),
        };
        let size = self
            .files
            .create(&record.key, &meta, Box::pin(whole))
            .await? as i64;
        if new_row {
            let mut row = record.clone();
            row.content_type = Some(detected.to_owned());
            row.size = Some(size);
            store.insert_upload(&row).await?;
        } else {
            store.complete_upload(&record.key, detected, size).await?;
        }
        Ok(self.attachment(&record.key, &record.name, detected, size))
    }

    fn attachment(
        &self,
        key: &str,
        name: &str,
        content_type: &str,
        size: i64,
    ) -> confab_shared::protocol::Attachment {
        confab_shared::protocol::Attachment {
            id: confab_shared::protocol::AttachmentRef(key.to_owned()),
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            size,
            url: self.url_of(key),
            inline: confab_shared::files::is_inline(content_type),
        }
    }

    /// The attachment a `send` cites, if `user` uploaded it into `room`. An upload that went
    /// through a ticket to the edge is completed here from what the file store holds.
    pub async fn resolve(
        &self,
        store: &crate::store::DynStore,
        user: confab_shared::ids::UserId,
        room: confab_shared::ids::RoomId,
        reference: &str,
    ) -> Result<confab_shared::protocol::Attachment, UploadError> {
        if !confab_shared::files::is_valid_key(reference) {
            return Err(UploadError::Unknown);
        }
        let Some(row) = store.upload(reference).await? else {
            return Err(UploadError::Unknown);
        };
        // Someone else's upload, or one for another room, is "unknown" to this sender: the
        // answer does not reveal that the key exists.
        if row.uploader != user || row.room != room {
            return Err(UploadError::Unknown);
        }
        let (content_type, size) = match (row.content_type, row.size) {
            (Some(ct), Some(size)) => (ct, size),
            _ => {
                let meta = self
                    .files
                    .head(&row.key)
                    .await?
                    .ok_or(UploadError::Unfinished)?;
                let size = meta.size as i64;
                store
                    .complete_upload(&row.key, &meta.content_type, size)
                    .await?;
                (meta.content_type, size)
            }
        };
        Ok(self.attachment(&row.key, &row.name, &content_type, size))
    }
}

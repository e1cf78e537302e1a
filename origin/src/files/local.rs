//! Files on local disk: `DIR/{key}` holds the bytes, `DIR/{key}.json` what is kept beside them.
//! A file is streamed into a temporary name of its own and then hard-linked to its key, which
//! fails when the key exists: a reader never sees half of a file, and a stored file is never
//! replaced (two writers racing for one key: the second gets `Exists`).

use super::{ByteStream, FileBody, FileMeta, FileStore, FilesError};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Files under one directory.
#[derive(Debug, Clone)]
pub struct LocalFiles {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct MetaFile {
    content_type: String,
    size: u64,
    name: String,
}

impl LocalFiles {
    /// Uses `dir`, creating it when missing.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }
}

#[async_trait]
impl FileStore for LocalFiles {
    async fn create(
        &self,
        key: &str,
        meta: &FileMeta,
        mut body: ByteStream<'_>,
    ) -> Result<u64, FilesError> {
        let unique = uuid::Uuid::new_v4().simple();
        let tmp = self.dir.join(format!("{key}.{unique}.part"));
        let tmp_meta = self.dir.join(format!("{key}.{unique}.json.part"));
        let written = async {
            let mut f = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .await?;
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                f.write_all(&chunk).await?;
            }
            f.sync_all().await?;
            let meta_json = serde_json::to_vec(&MetaFile {
                content_type: meta.content_type.clone(),
                size,
                name: meta.name.clone(),
            })
            .map_err(|e| FilesError::Backend(e.to_string()))?;
            tokio::fs::write(&tmp_meta, meta_json).await?;
            link_new(&tmp, &self.dir.join(key)).await?;
            link_new(&tmp_meta, &self.dir.join(format!("{key}.json"))).await?;
            Ok::<u64, FilesError>(size)
        }
        .await;
        for leftover in [&tmp, &tmp_meta] {
            if let Err(e) = tokio::fs::remove_file(leftover).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, path = %leftover.display(), "a temporary file was left");
                }
            }
        }
        written
    }

    async fn head(&self, key: &str) -> Result<Option<FileMeta>, FilesError> {
        let raw = match tokio::fs::read(self.dir.join(format!("{key}.json"))).await {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let m: MetaFile =
            serde_json::from_slice(&raw).map_err(|e| FilesError::Backend(e.to_string()))?;
        Ok(Some(FileMeta {
            content_type: m.content_type,
            size: m.size,
            name: m.name,
        }))
    }

    async fn get(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<Option<FileBody>, FilesError> {
        let Some(meta) = self.head(key).await? else {
            return Ok(None);
        };
        let mut f = match tokio::fs::File::open(self.dir.join(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let (start, end) = range.unwrap_or((0, meta.size.saturating_sub(1)));
        let len = if meta.size == 0 { 0 } else { end - start + 1 };
        f.seek(SeekFrom::Start(start)).await?;
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        f.take(len).read_to_end(&mut buf).await?;
        Ok(Some(FileBody {
            meta,
            bytes: Bytes::from(buf),
        }))
    }

    fn describe(&self) -> String {
        format!("local disk at {}", self.dir.display())
    }
}

/// Gives `from` the name `to` as well, failing with `Exists` when `to` exists.
async fn link_new(from: &Path, to: &Path) -> Result<(), FilesError> {
    match tokio::fs::hard_link(from, to).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(FilesError::Exists),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::IncomingError;

    fn body(parts: Vec<Result<Bytes, IncomingError>>) -> ByteStream<'static> {
        Box::pin(futures::stream::iter(parts))
    }

    #[tokio::test]
    async fn a_stored_file_is_never_replaced_and_failures_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let files = LocalFiles::open(dir.path()).unwrap();
        let meta = FileMeta {
            content_type: "text/plain".into(),
            size: 0,
            name: "a.txt".into(),
        };
        let key = "0123456789abcdef0123456789abcdef";
        let size = files
            .create(
                key,
                &meta,
                body(vec![Ok(Bytes::from("one ")), Ok(Bytes::from("two"))]),
            )
            .await
            .unwrap();
        assert_eq!(size, 7);
        let again = files
            .create(key, &meta, body(vec![Ok(Bytes::from("other bytes"))]))
            .await;
        assert!(matches!(again, Err(FilesError::Exists)), "{again:?}");
        let stored = files.get(key, None).await.unwrap().unwrap();
        assert_eq!(&stored.bytes[..], b"one two");
        assert_eq!(stored.meta.size, 7);

        let other = "fedcba9876543210fedcba9876543210";
        let cut = files
            .create(
                other,
                &meta,
                body(vec![Ok(Bytes::from("x")), Err(IncomingError::Broken)]),
            )
            .await;
        assert!(cut.is_err());
        assert!(files.head(other).await.unwrap().is_none());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "only the stored file and its meta: {names:?}"
        );
    }
}

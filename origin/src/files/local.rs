//! Files on local disk: `DIR/{key}` holds the bytes, `DIR/{key}.json` what is kept beside them.
//! A file is written to a temporary name and renamed, so a reader never sees half of it.

use super::{FileBody, FileMeta, FileStore, FilesError};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::SeekFrom;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

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
    async fn put(&self, key: &str, bytes: Bytes, meta: &FileMeta) -> Result<(), FilesError> {
        let meta_json = serde_json::to_vec(&MetaFile {
            content_type: meta.content_type.clone(),
            size: meta.size,
            name: meta.name.clone(),
        })
        .map_err(|e| FilesError::Backend(e.to_string()))?;
        let tmp = self.dir.join(format!("{key}.part"));
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, self.dir.join(key)).await?;
        let tmp = self.dir.join(format!("{key}.json.part"));
        tokio::fs::write(&tmp, meta_json).await?;
        tokio::fs::rename(&tmp, self.dir.join(format!("{key}.json"))).await?;
        Ok(())
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

//! Files on S3-compatible storage (Cloudflare R2 in production, moto in tests) through
//! `aws-sdk-s3`. The detected content type is the object's `Content-Type`; the size and the
//! percent-encoded name are user metadata (`x-amz-meta-size`, `x-amz-meta-name`), the same
//! fields the edge worker writes through its R2 binding, so either tier reads the other's files.

use super::{FileBody, FileMeta, FileStore, FilesError};
use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;

/// Where the bucket is and how to sign in.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// `None` for AWS itself; R2 is `https://ACCOUNT.r2.cloudflarestorage.com`.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// One bucket.
#[derive(Clone)]
pub struct S3Files {
    client: Client,
    bucket: String,
    endpoint: String,
}

impl S3Files {
    /// A client for the bucket (path-style addressing, which R2, MinIO and moto all accept).
    pub fn new(s: &S3Settings) -> Self {
        let creds = Credentials::new(
            &s.access_key_id,
            &s.secret_access_key,
            None,
            None,
            "confab-config",
        );
        let mut conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(s.region.clone()))
            .credentials_provider(creds)
            .force_path_style(true);
        if let Some(e) = &s.endpoint {
            conf = conf.endpoint_url(e);
        }
        Self {
            client: Client::from_conf(conf.build()),
            bucket: s.bucket.clone(),
            endpoint: s.endpoint.clone().unwrap_or_else(|| "aws".to_owned()),
        }
    }

    /// Creates the bucket when it does not exist (R2 buckets are made by `wrangler r2 bucket
    /// create`; this is for local S3 servers).
    pub async fn ensure_bucket(&self) -> Result<(), FilesError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| backend(&e))?;
        Ok(())
    }
}

fn backend(e: &dyn std::error::Error) -> FilesError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    FilesError::Backend(text)
}

fn encode_name(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

fn decode_name(raw: &str) -> String {
    url::form_urlencoded::parse(format!("n={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn meta_from(
    content_type: Option<&str>,
    metadata: Option<&std::collections::HashMap<String, String>>,
    fallback_size: u64,
) -> FileMeta {
    let size = metadata
        .and_then(|m| m.get("size"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(fallback_size);
    let name = metadata
        .and_then(|m| m.get("name"))
        .map(|n| decode_name(n))
        .unwrap_or_else(|| "file".to_owned());
    FileMeta {
        content_type: content_type
            .unwrap_or("application/octet-stream")
            .to_owned(),
        size,
        name,
    }
}

#[async_trait]
impl FileStore for S3Files {
    async fn put(&self, key: &str, bytes: Bytes, meta: &FileMeta) -> Result<(), FilesError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&meta.content_type)
            .metadata("size", meta.size.to_string())
            .metadata("name", encode_name(&meta.name))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| backend(&e))?;
        Ok(())
    }

    async fn head(&self, key: &str) -> Result<Option<FileMeta>, FilesError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(meta_from(
                out.content_type(),
                out.metadata(),
                out.content_length().unwrap_or(0).max(0) as u64,
            ))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(backend(&e)),
        }
    }

    async fn get(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<Option<FileBody>, FilesError> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some((start, end)) = range {
            req = req.range(format!("bytes={start}-{end}"));
        }
        match req.send().await {
            Ok(out) => {
                let meta = meta_from(
                    out.content_type(),
                    out.metadata(),
                    out.content_length().unwrap_or(0).max(0) as u64,
                );
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| backend(&e))?
                    .into_bytes();
                Ok(Some(FileBody { meta, bytes }))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(backend(&e)),
        }
    }

    fn describe(&self) -> String {
        format!("S3 bucket {} at {}", self.bucket, self.endpoint)
    }
}

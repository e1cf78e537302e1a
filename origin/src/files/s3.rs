//! Files on S3-compatible storage (Cloudflare R2 in production, moto in tests) through
//! `aws-sdk-s3`. The detected content type is the object's `Content-Type`; the size and the
//! percent-encoded name are user metadata (`x-amz-meta-size`, `x-amz-meta-name`), the same
//! fields the edge worker writes through its R2 binding, so either tier reads the other's files.
//!
//! A file up to [`PART_BYTES`] is one `PutObject`; a larger one is a multipart upload of parts
//! of that size, so an upload holds at most one part in memory. Both are conditional
//! (`If-None-Match: *`): a stored object is never replaced. A multipart file's size is not
//! known when it starts, so it has no `size` metadata; readers use the object's length.

use super::{ByteStream as Incoming, FileBody, FileMeta, FileStore, FilesError};
use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls;
use bytes::BytesMut;
use futures::StreamExt;

/// The part size of multipart uploads (S3's smallest but for the last part).
pub const PART_BYTES: usize = 5 * 1024 * 1024;

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
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(https)
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

/// Reads up to [`PART_BYTES`] from the body (less only at its end).
async fn fill_part(body: &mut Incoming<'_>) -> Result<BytesMut, FilesError> {
    let mut part = BytesMut::new();
    while part.len() < PART_BYTES {
        match body.next().await {
            Some(chunk) => part.extend_from_slice(&chunk?),
            None => break,
        }
    }
    Ok(part)
}

fn is_precondition_failed(raw: Option<&aws_sdk_s3::config::http::HttpResponse>) -> bool {
    raw.is_some_and(|r| r.status().as_u16() == 412)
}

impl S3Files {
    /// Uploads the parts of a multipart upload, the first already read, then completes it
    /// (only if no object exists under the key); returns the size.
    async fn send_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: BytesMut,
        body: &mut Incoming<'_>,
    ) -> Result<u64, FilesError> {
        let mut parts = Vec::new();
        let mut size = 0u64;
        let mut next = first;
        while !next.is_empty() {
            let number = parts.len() as i32 + 1;
            size += next.len() as u64;
            let sent = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(next.freeze()))
                .send()
                .await
                .map_err(|e| backend(&e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(sent.e_tag().map(str::to_owned))
                    .build(),
            );
            next = fill_part(body).await?;
        }
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => Ok(size),
            Err(e) if is_precondition_failed(e.raw_response()) => Err(FilesError::Exists),
            Err(e) => Err(backend(&e)),
        }
    }
}

#[async_trait]
impl FileStore for S3Files {
    async fn create(
        &self,
        key: &str,
        meta: &FileMeta,
        mut body: Incoming<'_>,
    ) -> Result<u64, FilesError> {
        let first = fill_part(&mut body).await?;
        if first.len() < PART_BYTES {
            let size = first.len() as u64;
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type(&meta.content_type)
                .metadata("size", size.to_string())
                .metadata("name", encode_name(&meta.name))
                .body(ByteStream::from(first.freeze()))
                .send()
                .await;
            return match put {
                Ok(_) => Ok(size),
                Err(e) if is_precondition_failed(e.raw_response()) => Err(FilesError::Exists),
                Err(e) => Err(backend(&e)),
            };
        }
        let started = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&meta.content_type)
            .metadata("name", encode_name(&meta.name))
            .send()
            .await
            .map_err(|e| backend(&e))?;
        let upload_id = started
            .upload_id()
            .ok_or_else(|| FilesError::Backend("no multipart upload id".into()))?
            .to_owned();
        let done = self.send_parts(key, &upload_id, first, &mut body).await;
        if done.is_err() {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(error = %backend(&e), key, "aborting a multipart upload failed");
            }
        }
        done
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

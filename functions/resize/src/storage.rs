//! The S3 adapter: reading uploads, writing renditions.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use std::future::Future;

#[cfg(test)]
pub mod memory;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The object is gone (deleted after its notification was sent): nothing to do.
    #[error("s3://{bucket}/{key} does not exist (deleted after upload?)")]
    Missing { bucket: String, key: String },
    /// The object was overwritten after this notification: its ETag is no longer the one
    /// announced. The newer upload has a notification of its own.
    #[error("s3://{bucket}/{key} is no longer the version {etag} its notification announced")]
    Replaced {
        bucket: String,
        key: String,
        etag: String,
    },
    #[error("s3://{bucket}/{key}: {detail}; redelivered (throttling and 5xx clear)")]
    Unavailable {
        bucket: String,
        key: String,
        detail: String,
    },
    /// The bucket does not exist or refuses this function (403): its configuration, not the
    /// moment nor the upload, is wrong.
    #[error(
        "s3://{bucket}/{key}: {detail}; the bucket is missing or refuses resize: check RENDITIONS_BUCKET, the uploads trigger and the role's s3 grants in template.yaml (the upload is redelivered until then)"
    )]
    Refused {
        bucket: String,
        key: String,
        detail: String,
    },
}

/// The error of an S3 call on `bucket`/`key`: refused (a missing bucket, a 403) or unavailable.
fn s3_error<E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static, R>(
    bucket: &str,
    key: &str,
    error: aws_sdk_s3::error::SdkError<E, R>,
    status: impl Fn(&R) -> u16,
) -> StorageError
where
    R: std::fmt::Debug,
{
    let refused = error.raw_response().map(&status) == Some(403)
        || matches!(
            error.as_service_error().and_then(|e| e.code()),
            Some("NoSuchBucket" | "AccessDenied" | "InvalidAccessKeyId")
        );
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    let detail = aws_sdk_s3::error::DisplayErrorContext(error).to_string();
    if refused {
        StorageError::Refused {
            bucket,
            key,
            detail,
        }
    } else {
        StorageError::Unavailable {
            bucket,
            key,
            detail,
        }
    }
}

/// A request the SDK would not build: a bug here, never load.
fn s3_build_error(bucket: &str, key: &str, error: aws_sdk_s3::error::BuildError) -> StorageError {
    StorageError::Refused {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        detail: error.to_string(),
    }
}

/// An upload's bytes and what its uploader attached.
pub struct Upload {
    pub bytes: Vec<u8>,
    /// `x-amz-meta-correlation-id`, set by the client that uploaded, if any.
    pub correlation_id: Option<String>,
}

/// What a pinned read found.
pub enum Fetched {
    Upload(Upload),
    /// The object is over the size a render accepts; its body was not read.
    TooLarge {
        bytes: u64,
    },
}

/// Where uploads are read and renditions written. [`S3Objects`] is S3; tests use the in-memory
/// twin in `memory`.
pub trait ObjectStore {
    /// The upload's bytes, of the version `etag` names only: [`StorageError::Replaced`] once it
    /// was overwritten, [`StorageError::Missing`] when there is no such object, and
    /// [`Fetched::TooLarge`] without reading the body when the object is over `max_bytes`.
    fn get(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Fetched, StorageError>>;

    /// Tags an upload whose image was rejected ([`REJECTED_TAG`]): the uploads bucket's
    /// lifecycle rule expires it. An object that is gone already needs nothing.
    fn tag_rejected(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StorageError>>;

    /// Writes one rendition, replacing any object under that key.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StorageError>>;

    /// Deletes a rendition this processing wrote for an image taken back meanwhile. An object
    /// that is gone already needs nothing.
    fn delete(&self, bucket: &str, key: &str) -> impl Future<Output = Result<(), StorageError>>;
}

/// The tag (key, value) template.yaml's `ExpireRejectedUploads` rule expires uploads by.
pub const REJECTED_TAG: (&str, &str) = ("snapglow-fate", "rejected");

#[derive(Clone)]
pub struct S3Objects {
    s3: aws_sdk_s3::Client,
}

impl S3Objects {
    pub fn new(s3: aws_sdk_s3::Client) -> Self {
        Self { s3 }
    }
}

impl ObjectStore for S3Objects {
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        max_bytes: u64,
    ) -> Result<Fetched, StorageError> {
        let unavailable = |detail: String| StorageError::Unavailable {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            detail,
        };
        // HAZARD: without If-Match, an object overwritten after its notification would be
        // rendered under the first version's event (its ETag, its event id). Notifications
        // carry the ETag unquoted; If-Match takes the quoted form.
        let pinned = format!("\"{}\"", etag.trim_matches('"'));
        let result = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .if_match(pinned)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(StorageError::Missing {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                });
            }
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(412) => {
                return Err(StorageError::Replaced {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    etag: etag.to_owned(),
                });
            }
            Err(e) => return Err(s3_error(bucket, key, e, |r| r.status().as_u16())),
        };
        let length = output.content_length().unwrap_or(0).max(0) as u64;
        if length > max_bytes {
            return Ok(Fetched::TooLarge { bytes: length });
        }
        let correlation_id = output
            .metadata()
            .and_then(|m| m.get("correlation-id"))
            .cloned();
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .into_bytes()
            .to_vec();
        if bytes.len() as u64 > max_bytes {
            return Ok(Fetched::TooLarge {
                bytes: bytes.len() as u64,
            });
        }
        Ok(Fetched::Upload(Upload {
            bytes,
            correlation_id,
        }))
    }

    /// One PutObjectTagging; it replaces the object's tags (uploads carry none of their own).
    async fn tag_rejected(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        let (name, value) = REJECTED_TAG;
        let tag = Tag::builder().key(name).value(value).build();
        let tagging = Tagging::builder().tag_set(tag.map_err(|e| s3_build_error(bucket, key, e))?);
        let tagged = (self.s3.put_object_tagging())
            .bucket(bucket)
            .key(key)
            .tagging(
                tagging
                    .build()
                    .map_err(|e| s3_build_error(bucket, key, e))?,
            )
            .send()
            .await;
        match tagged {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchKey") => Ok(()),
            Err(e) => Err(s3_error(bucket, key, e, |r| r.status().as_u16())),
        }
    }

    /// Writes one rendition. Rendition keys name the upload's version, so what is under one
    /// never changes: browsers and CDNs cache it for a year.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .cache_control("public, max-age=31536000, immutable")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error(bucket, key, e, |r| r.status().as_u16()))?;
        Ok(())
    }

    /// One DeleteObject (a key that is not there answers 204 too).
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        (self.s3.delete_object().bucket(bucket).key(key).send().await)
            .map_err(|e| s3_error(bucket, key, e, |r| r.status().as_u16()))?;
        Ok(())
    }
}

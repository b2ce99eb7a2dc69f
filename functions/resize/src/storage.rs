//! The S3 adapter: reading uploads, writing renditions.

use aws_sdk_s3::primitives::ByteStream;
use std::future::Future;

#[cfg(test)]
pub mod memory;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The object is gone (deleted after its notification was sent): nothing to do.
    #[error("s3://{bucket}/{key} does not exist (deleted after upload?)")]
    Missing { bucket: String, key: String },
    #[error(
        "s3://{bucket}/{key}: {detail}; redelivered (throttling and 5xx clear; a missing bucket means RENDITIONS_BUCKET or the trigger is wrong)"
    )]
    Unavailable {
        bucket: String,
        key: String,
        detail: String,
    },
}

/// An upload's bytes and what its uploader attached.
pub struct Upload {
    pub bytes: Vec<u8>,
    /// `x-amz-meta-correlation-id`, set by the client that uploaded, if any.
    pub correlation_id: Option<String>,
}

/// Where uploads are read and renditions written. [`S3Objects`] is S3; tests use the in-memory
/// twin in `memory`.
pub trait ObjectStore {
    /// An upload's bytes; [`StorageError::Missing`] when there is no such object.
    fn get(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Upload, StorageError>>;

    /// Writes one rendition, replacing any object under that key.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StorageError>>;
}

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
    async fn get(&self, bucket: &str, key: &str) -> Result<Upload, StorageError> {
        let unavailable = |detail: String| StorageError::Unavailable {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            detail,
        };
        let output = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(StorageError::Missing {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                });
            }
            Err(e) => {
                return Err(unavailable(
                    aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                ));
            }
        };
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
        Ok(Upload {
            bytes,
            correlation_id,
        })
    }

    /// Writes one rendition. Renditions never change for a given upload, so they are cached
    /// for a year by browsers and CDNs.
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
            .map_err(|e| StorageError::Unavailable {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                detail: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            })?;
        Ok(())
    }
}

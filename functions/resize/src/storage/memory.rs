//! The buckets in memory, for tests of whole batches without S3: a missing object is
//! [`StorageError::Missing`] as S3's NoSuchKey is, a put replaces the object, and a test can make
//! every read of one object fail the way an S3 outage (5xx, throttling) does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use super::{Fetched, ObjectStore, StorageError, Upload};

#[derive(Default)]
pub struct MemoryObjects {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By (bucket, key).
    objects: BTreeMap<(String, String), Object>,
    unreadable: BTreeSet<(String, String)>,
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// `x-amz-meta-correlation-id`.
    pub correlation_id: Option<String>,
    /// The object's tags, as PutObjectTagging leaves them.
    pub tags: BTreeMap<String, String>,
    /// Unquoted, as notifications carry it.
    pub etag: String,
}

fn address(bucket: &str, key: &str) -> (String, String) {
    (bucket.to_owned(), key.to_owned())
}

impl MemoryObjects {
    /// An upload as a client puts it, with its correlation id metadata if it sends one.
    pub fn upload(&self, bucket: &str, key: &str, bytes: Vec<u8>, correlation_id: Option<&str>) {
        let object = Object {
            bytes,
            content_type: None,
            correlation_id: correlation_id.map(str::to_owned),
            tags: BTreeMap::new(),
            etag: format!("etag-{key}"),
        };
        self.lock().objects.insert(address(bucket, key), object);
    }

    /// Puts a new version over an upload: its ETag changes, as S3's does.
    pub fn overwrite(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        let mut inner = self.lock();
        let object = inner
            .objects
            .get_mut(&address(bucket, key))
            .expect("an upload to overwrite");
        object.bytes = bytes;
        object.etag = format!("{}-next", object.etag);
    }

    /// Every read of this object fails as it does while S3 answers 503.
    pub fn fail_reads_of(&self, bucket: &str, key: &str) {
        self.lock().unreadable.insert(address(bucket, key));
    }

    /// The keys in a bucket, in order.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.lock()
            .objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, key)| key.clone())
            .collect()
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<Object> {
        self.lock().objects.get(&address(bucket, key)).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("buckets lock")
    }
}

impl ObjectStore for MemoryObjects {
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        max_bytes: u64,
    ) -> Result<Fetched, StorageError> {
        let inner = self.lock();
        if inner.unreadable.contains(&address(bucket, key)) {
            return Err(StorageError::Unavailable {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                detail: "service error: 503 Service Unavailable (SlowDown)".into(),
            });
        }
        let object =
            inner
                .objects
                .get(&address(bucket, key))
                .ok_or_else(|| StorageError::Missing {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                })?;
        if object.etag != etag.trim_matches('"') {
            return Err(StorageError::Replaced {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                etag: etag.to_owned(),
            });
        }
        if object.bytes.len() as u64 > max_bytes {
            return Ok(Fetched::TooLarge {
                bytes: object.bytes.len() as u64,
            });
        }
        Ok(Fetched::Upload(Upload {
            bytes: object.bytes.clone(),
            correlation_id: object.correlation_id.clone(),
        }))
    }

    async fn tag_rejected(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        let (name, value) = super::REJECTED_TAG;
        if let Some(object) = self.lock().objects.get_mut(&address(bucket, key)) {
            object.tags = BTreeMap::from([(name.to_owned(), value.to_owned())]);
        }
        Ok(())
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let object = Object {
            bytes,
            content_type: Some(content_type.to_owned()),
            correlation_id: None,
            tags: BTreeMap::new(),
            etag: format!("etag-{key}"),
        };
        self.lock().objects.insert(address(bucket, key), object);
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        self.lock().objects.remove(&address(bucket, key));
        Ok(())
    }
}

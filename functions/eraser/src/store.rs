//! What the eraser needs of S3 and the images table ([`Erasure`]), and the AWS adapter
//! ([`AwsErasure`]). Requests per deletion: one GetItem, one DeleteObjects per bucket, and a
//! Query and BatchWriteItems (25 items each) per page of like items.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use snapglow::batch::Deadline;
use snapglow::table::{Cause, Deletes, Selection, TableError, delete_all, image_pk, s};
use std::future::Future;

#[cfg(test)]
pub mod memory;

/// The two buckets the eraser deletes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bucket {
    Uploads,
    Renditions,
}

/// What the images table says of an image now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Its tombstone: it was deleted.
    Deleted,
    /// No item: its tombstone expired (or it never existed): nothing of it can be shown.
    Absent,
    /// Still there with this status: an `ImageDeleted` for it did not come from the API.
    Live(String),
}

/// HAZARD: the messages repeat their cause's whole chain, since log lines and quarantine
/// entries print an error alone; `source` still hands the cause to code that inspects it.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(
        "deleting {keys} key(s) from s3://{bucket}: {}; redelivered (throttling and 5xx clear)",
        DisplayErrorContext(.source.as_ref())
    )]
    Unavailable {
        bucket: String,
        keys: usize,
        #[source]
        source: Cause,
    },
    /// The bucket is missing or refuses the eraser: its configuration, not the record.
    #[error(
        "s3://{bucket} refuses the eraser: {}; check UPLOADS_BUCKET / RENDITIONS_BUCKET and EraserRole's s3:DeleteObject grants in template.yaml (the record is redelivered until then)",
        DisplayErrorContext(.source.as_ref())
    )]
    Refused {
        bucket: String,
        #[source]
        source: Cause,
    },
}

/// The keys a DeleteObjects did not delete, with S3's code and message for each.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|(key, code, message)| format!("{key}: {code} {message}")).collect::<Vec<_>>().join("; "))]
pub struct KeysNotDeleted(pub Vec<(String, String, String)>);

impl KeysNotDeleted {
    /// Whether S3 refused a key to this caller (a grant missing for it).
    fn refused(&self) -> bool {
        self.0.iter().any(|(_, code, _)| code == "AccessDenied")
    }
}

impl FilesError {
    /// A failure sorted by what it says: refused (a missing bucket, a 403, a key S3 refuses
    /// this caller) or unavailable.
    pub fn of(bucket: &str, keys: usize, refused: bool, source: Cause) -> FilesError {
        let bucket = bucket.to_owned();
        if refused {
            FilesError::Refused { bucket, source }
        } else {
            FilesError::Unavailable {
                bucket,
                keys,
                source,
            }
        }
    }
}

/// An S3 call's failure: refused (a missing bucket, a 403) or unavailable.
fn files_error<E>(bucket: &str, keys: usize, error: SdkError<E, HttpResponse>) -> FilesError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let refused =
        status == Some(403) || matches!(error.code(), Some("NoSuchBucket" | "AccessDenied"));
    FilesError::of(bucket, keys, refused, Box::new(error))
}

/// An object's key in its bucket.
pub type ObjectKey = String;

pub trait Erasure {
    /// The image's item as the API last wrote it, read strongly consistent.
    fn recorded(&self, image_id: &str) -> impl Future<Output = Result<Recorded, TableError>>;
    /// Every key under `renditions/{image_id}/` in the renditions bucket: also renditions its
    /// event could not name (rendered for an upload whose item was then refused, say).
    fn renditions_of(
        &self,
        image_id: &str,
    ) -> impl Future<Output = Result<Vec<ObjectKey>, FilesError>>;
    /// Deletes `keys` from `bucket`; keys that are already gone are no error.
    fn delete_objects(
        &self,
        bucket: Bucket,
        keys: &[String],
    ) -> impl Future<Output = Result<(), FilesError>>;
    /// Deletes the image's like items (`IMAGE#{id}` / `LIKE#…`); answers how many.
    fn delete_like_items(
        &self,
        image_id: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<usize, TableError>>;
}

pub struct AwsErasure {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub images_table: String,
    pub uploads_bucket: String,
    pub renditions_bucket: String,
}

impl Erasure for AwsErasure {
    async fn recorded(&self, image_id: &str) -> Result<Recorded, TableError> {
        let output = (self.dynamodb.get_item())
            .table_name(&self.images_table)
            .key("pk", s(image_pk(image_id)))
            .key("sk", s("IMAGE"))
            .projection_expression("#status")
            .expression_attribute_names("#status", "status")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        let status = (output.item.as_ref())
            .and_then(|item| item.get("status"))
            .and_then(|v| v.as_s().ok());
        Ok(match status {
            None if output.item.is_none() => Recorded::Absent,
            Some(status) if status == "deleted" => Recorded::Deleted,
            other => Recorded::Live(other.cloned().unwrap_or_default()),
        })
    }

    /// One ListObjectsV2 per 1,000 keys (an image has a few).
    async fn renditions_of(&self, image_id: &str) -> Result<Vec<ObjectKey>, FilesError> {
        let bucket = &self.renditions_bucket;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let listed = (self.s3.list_objects_v2())
                .bucket(bucket)
                .prefix(format!("renditions/{image_id}/"))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| files_error(bucket, 0, e))?;
            keys.extend(
                (listed.contents().iter()).filter_map(|object| object.key().map(str::to_owned)),
            );
            match listed.next_continuation_token() {
                Some(next) if listed.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    /// One DeleteObjects (up to 1,000 keys; an image has a few), in quiet mode: the answer
    /// lists only the keys S3 could not delete.
    ///
    /// HAZARD: DeleteObjects answers 200 when some or all of its deletes failed, naming them
    /// in `Errors`: a 200 is not success until that list is empty.
    async fn delete_objects(&self, bucket: Bucket, keys: &[String]) -> Result<(), FilesError> {
        if keys.is_empty() {
            return Ok(());
        }
        let name = match bucket {
            Bucket::Uploads => &self.uploads_bucket,
            Bucket::Renditions => &self.renditions_bucket,
        };
        // A request the SDK would not build: a bug here, never load.
        let unbuilt =
            |e: aws_sdk_s3::error::BuildError| FilesError::of(name, keys.len(), true, Box::new(e));
        let objects = keys
            .iter()
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(unbuilt)?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(unbuilt)?;
        let output = (self
            .s3
            .delete_objects()
            .bucket(name)
            .delete(delete)
            .send()
            .await)
            .map_err(|e| files_error(name, keys.len(), e))?;
        let failed = output.errors();
        if failed.is_empty() {
            return Ok(());
        }
        let not_deleted = KeysNotDeleted(
            (failed.iter())
                .map(|e| {
                    let text = |v: Option<&str>| v.unwrap_or("?").to_owned();
                    (text(e.key()), text(e.code()), text(e.message()))
                })
                .collect(),
        );
        let refused = not_deleted.refused();
        Err(FilesError::of(
            name,
            failed.len(),
            refused,
            Box::new(not_deleted),
        ))
    }

    async fn delete_like_items(
        &self,
        image_id: &str,
        deadline: &Deadline,
    ) -> Result<usize, TableError> {
        let likes = Selection {
            table: &self.images_table,
            pk: image_pk(image_id),
            sk_prefix: Some("LIKE#"),
            only: None,
        };
        delete_all(&self.dynamodb, &likes, Deletes::Singly, deadline, || {}).await
    }
}

//! What the API needs of its table, of the read models it reads, and of S3: the [`Store`]
//! trait, its AWS adapter ([`AwsStore`]), and the plain data both speak.
//!
//! The images table (one owner: this API; resize may only flip a pending image's status):
//! - `IMAGE#{id}` / `IMAGE`: the image (`owner_id`, `owner_name`, `status`, `content_type`,
//!   `upload_key`, `correlation_id`, `created_at`; once published, renditions and `feed` /
//!   `published_at`, the keys of the `by-publication` index; `expires_at` while pending);
//! - `IMAGE#{id}` / `LIKE#{user}`: who likes what, the source of truth (`liked`, `revision`,
//!   `occurred_at`), with the change's `event` and `event_id` for the relay;
//! - `QUOTA#{user}` / `HOUR#{start}`: uploads issued to the user in that hour.
//!
//! An item's `event` is the envelope its latest change emits, exactly as it goes on the
//! stream: written by the same conditional write as the change, published by the relay from
//! the table's stream. There is no second write that could fail on its own.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use snapglow::batch::Deadline;
use snapglow::contracts::RenditionV1;
use snapglow::table::{TableError, batch_get_tables};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A table's failure, sorted (transient, rejected, corrupt item) as every function of the
    /// project sorts them.
    #[error(transparent)]
    Table(#[from] TableError),
    /// S3 would not presign (a bad key or expiry): a bug, not load.
    #[error("presigning {what}")]
    Presign {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether DynamoDB refused the request as invalid: with a client's cursor as the start
    /// key, the cursor (ours are DynamoDB's own keys, which it always takes back).
    pub fn is_start_key_refusal(&self) -> bool {
        matches!(self, StoreError::Table(TableError::Rejected { .. }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Published,
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Published => "published",
            Status::Rejected => "rejected",
        }
    }
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "pending" => Some(Status::Pending),
            "published" => Some(Status::Published),
            "rejected" => Some(Status::Rejected),
            _ => None,
        }
    }
}

/// An image as the images table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub image_id: String,
    pub owner_id: String,
    /// The owner's username when the upload was issued (the token's `username` claim).
    pub owner_name: Option<String>,
    pub published_at_ms: Option<i64>,
    pub status: Status,
    pub content_type: String,
    pub created_at_ms: i64,
    pub correlation_id: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub renditions: Vec<RenditionV1>,
}

/// A new pending image, issued with its upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    pub image_id: String,
    pub owner_id: String,
    pub owner_name: Option<String>,
    pub content_type: String,
    pub content_length: u64,
    pub upload_key: String,
    pub correlation_id: String,
    pub created_at_ms: i64,
    /// A pending image whose upload never came is forgotten (TTL, epoch seconds).
    pub expires_at_s: i64,
}

/// One user's like state of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikeState {
    pub liked: bool,
    pub revision: u64,
    pub occurred_at_ms: i64,
}

/// A like state change and the event it emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikeChange {
    pub image_id: String,
    pub user_id: String,
    /// The state this change replaces (`None`: there was none); the write applies only over it.
    pub previous: Option<LikeState>,
    pub next: LikeState,
    pub event_id: String,
    pub event_json: String,
}

/// The key attributes of the tables and indexes the API lists (template.yaml's
/// `AttributeDefinitions` of ImagesTable and NotificationsTable).
const CURSOR_ATTRIBUTES: [&str; 7] = [
    "pk",
    "sk",
    "owner_id",
    "created_at",
    "feed",
    "published_at",
    "updated_at",
];
/// DynamoDB's largest sort key value (a partition key may have 2048 bytes; no key of ours
/// comes near either).
const MAX_SORT_KEY_BYTES: usize = 1024;

/// Where a page of a listing ends: DynamoDB's LastEvaluatedKey, opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub BTreeMap<String, CursorValue>);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CursorValue {
    S(String),
    N(String),
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(&self.0).expect("a cursor serializes");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// `None` for anything this API did not hand out.
    ///
    /// HAZARD: a cursor becomes DynamoDB's `ExclusiveStartKey`. One it could never have
    /// answered (another attribute, a key longer than a key can be) is refused by DynamoDB as
    /// a `ValidationException`: a 500 for the client's mistake. So a cursor holds only the key
    /// attributes of the tables and indexes listed, each within DynamoDB's key sizes; one
    /// whose attributes do not fit the listing is refused by the caller (see
    /// [`StoreError::is_start_key_refusal`]).
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let cursor: BTreeMap<String, CursorValue> = serde_json::from_slice(&bytes).ok()?;
        let fits = cursor.len() <= 4
            && cursor.iter().all(|(name, value)| {
                CURSOR_ATTRIBUTES.contains(&name.as_str())
                    && match value {
                        CursorValue::S(s) => (1..=MAX_SORT_KEY_BYTES).contains(&s.len()),
                        CursorValue::N(n) => n.len() <= 40 && n.parse::<f64>().is_ok(),
                    }
            });
        fits.then_some(Cursor(cursor))
    }

    fn from_item(item: HashMap<String, AttributeValue>) -> Option<Cursor> {
        item.into_iter()
            .map(|(k, v)| match v {
                AttributeValue::S(s) => Some((k, CursorValue::S(s))),
                AttributeValue::N(n) => Some((k, CursorValue::N(n))),
                _ => None,
            })
            .collect::<Option<_>>()
            .map(Cursor)
    }

    fn into_item(self) -> HashMap<String, AttributeValue> {
        self.0
            .into_iter()
            .map(|(k, v)| match v {
                CursorValue::S(s) => (k, AttributeValue::S(s)),
                CursorValue::N(n) => (k, AttributeValue::N(n)),
            })
            .collect()
    }
}

/// A presigned request: what the client must send, exactly.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Presigned {
    pub method: String,
    pub url: String,
    /// Headers that are part of the signature: sent with other values, the URL is refused.
    pub headers: BTreeMap<String, String>,
}

/// One notification as the API shows it.
pub use notifier::inbox::Notification;

pub trait Store {
    /// Takes one of the user's upload slots for the hour starting at `hour_start_ms`; false
    /// when the hour's `limit` is spent.
    fn take_upload_slot(
        &self,
        user_id: &str,
        hour_start_ms: i64,
        limit: u64,
    ) -> impl Future<Output = Result<bool, StoreError>>;
    fn create_image(&self, image: &NewImage) -> impl Future<Output = Result<(), StoreError>>;
    fn image(
        &self,
        image_id: &str,
    ) -> impl Future<Output = Result<Option<ImageRecord>, StoreError>>;
    fn like_state(
        &self,
        image_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<LikeState>, StoreError>>;
    /// Writes the change if the stored state is still `change.previous`; false otherwise.
    fn write_like(&self, change: &LikeChange) -> impl Future<Output = Result<bool, StoreError>>;
    fn my_images(
        &self,
        user_id: &str,
        limit: i32,
        after: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<ImageRecord>, Option<Cursor>), StoreError>>;
    /// like-counter's count (its read model lags the likes recorded here by the pipeline).
    fn like_count(&self, image_id: &str) -> impl Future<Output = Result<i64, StoreError>>;
    /// Published images of everyone, newest first.
    fn feed(
        &self,
        limit: i32,
        after: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<ImageRecord>, Option<Cursor>), StoreError>>;
    /// Per image: its like count and whether `user_id` likes it, in one read for the page.
    fn likes_of(
        &self,
        image_ids: &[String],
        user_id: &str,
    ) -> impl Future<Output = Result<HashMap<String, (i64, bool)>, StoreError>>;
    fn inbox(
        &self,
        user_id: &str,
        limit: i32,
        after: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<Notification>, Option<Cursor>), StoreError>>;
    fn mark_read(&self, user_id: &str, key: &str)
    -> impl Future<Output = Result<bool, StoreError>>;
    fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
    ) -> impl Future<Output = Result<Presigned, StoreError>>;
    fn rendition_url(&self, key: &str) -> impl Future<Output = Result<String, StoreError>>;
}

/// The AWS adapter: the images table, like-counter's and notifier's tables, S3 presigning.
pub struct AwsStore {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub images_table: String,
    pub likes: like_counter::table::LikesTable,
    pub notifications: notifier::table::NotificationsTable,
    pub uploads_bucket: String,
    pub renditions_bucket: String,
    pub upload_url_ttl: Duration,
    pub rendition_url_ttl: Duration,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The `feed` of every published image: the partition key of the `by-publication` index.
/// Hazard: one partition for all of them (a GSI partition takes 1,000 writes and 3,000 reads
/// per second): far above the publishing rate, but a feed read by very many clients at once
/// needs a cache in front.
pub const FEED: &str = "published";

/// How long a page's batch read may keep asking for the keys DynamoDB leaves unprocessed
/// before the request answers 503: half the function's 10 s timeout, which also bounds the
/// page's other reads.
const READ_BUDGET: Duration = Duration::from_secs(5);

pub fn image_pk(image_id: &str) -> String {
    format!("IMAGE#{image_id}")
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    error: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

fn read_image(
    table: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<ImageRecord, StoreError> {
    let corrupt = |detail: &str| {
        TableError::corrupt_item(
            table,
            format!("{detail} in image item {:?}", item.get("pk")),
        )
    };
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let renditions = match text("renditions") {
        Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("unreadable renditions"))?,
        None => Vec::new(),
    };
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
    };
    Ok(ImageRecord {
        image_id: text("image_id").ok_or_else(|| corrupt("no image_id"))?,
        owner_id: text("owner_id").ok_or_else(|| corrupt("no owner_id"))?,
        owner_name: text("owner_name"),
        published_at_ms: number("published_at"),
        status: text("status")
            .as_deref()
            .and_then(Status::parse)
            .ok_or_else(|| corrupt("no valid status"))?,
        content_type: text("content_type").unwrap_or_default(),
        created_at_ms: number("created_at").unwrap_or(0),
        correlation_id: text("correlation_id").unwrap_or_default(),
        reason: text("reason"),
        message: text("message"),
        renditions,
    })
}

/// Records a pending image, as `POST /uploads` does (tests and tools issue uploads with it).
pub async fn create_pending(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    image: &NewImage,
) -> Result<(), StoreError> {
    let mut item = HashMap::from([
        ("pk".to_owned(), s(image_pk(&image.image_id))),
        ("sk".to_owned(), s("IMAGE")),
        ("image_id".to_owned(), s(&image.image_id)),
        ("owner_id".to_owned(), s(&image.owner_id)),
        ("status".to_owned(), s(Status::Pending.as_str())),
        ("content_type".to_owned(), s(&image.content_type)),
        ("content_length".to_owned(), n(image.content_length)),
        ("upload_key".to_owned(), s(&image.upload_key)),
        ("correlation_id".to_owned(), s(&image.correlation_id)),
        ("created_at".to_owned(), n(image.created_at_ms)),
        ("expires_at".to_owned(), n(image.expires_at_s)),
    ]);
    if let Some(name) = &image.owner_name {
        item.insert("owner_name".to_owned(), s(name));
    }
    dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        // A fresh v4 id never collides; the condition makes sure of it.
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(|e| TableError::from_sdk(table, e))?;
    Ok(())
}

impl AwsStore {
    /// A page of image items of one index partition, newest first (both indexes sort by time).
    async fn newest_first(
        &self,
        index: &str,
        key: &str,
        value: &str,
        limit: i32,
        after: Option<Cursor>,
    ) -> Result<(Vec<ImageRecord>, Option<Cursor>), StoreError> {
        let output = self
            .dynamodb
            .query()
            .table_name(&self.images_table)
            .index_name(index)
            .key_condition_expression("#key = :value")
            .expression_attribute_names("#key", key)
            .expression_attribute_values(":value", s(value))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(after.map(Cursor::into_item))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        let images = output
            .items()
            .iter()
            .map(|item| read_image(&self.images_table, item))
            .collect::<Result<_, _>>()?;
        Ok((
            images,
            output.last_evaluated_key.and_then(Cursor::from_item),
        ))
    }
}

impl Store for AwsStore {
    async fn take_upload_slot(
        &self,
        user_id: &str,
        hour_start_ms: i64,
        limit: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .dynamodb
            .update_item()
            .table_name(&self.images_table)
            .key("pk", s(format!("QUOTA#{user_id}")))
            .key("sk", s(format!("HOUR#{hour_start_ms}")))
            .update_expression("ADD issued :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(issued) OR issued < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            // Kept a day past its hour, then TTL removes it.
            .expression_attribute_values(":expires", n(hour_start_ms / 1000 + 86_400))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(TableError::from_sdk(&self.images_table, e).into()),
        }
    }

    async fn create_image(&self, image: &NewImage) -> Result<(), StoreError> {
        create_pending(&self.dynamodb, &self.images_table, image).await
    }
    async fn image(&self, image_id: &str) -> Result<Option<ImageRecord>, StoreError> {
        let output = self
            .dynamodb
            .get_item()
            .table_name(&self.images_table)
            .key("pk", s(image_pk(image_id)))
            .key("sk", s("IMAGE"))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        output
            .item
            .map(|item| read_image(&self.images_table, &item))
            .transpose()
    }

    async fn like_state(
        &self,
        image_id: &str,
        user_id: &str,
    ) -> Result<Option<LikeState>, StoreError> {
        let output = self
            .dynamodb
            .get_item()
            .table_name(&self.images_table)
            .key("pk", s(image_pk(image_id)))
            .key("sk", s(format!("LIKE#{user_id}")))
            // A user reads back what they just did: the next change is conditional on it.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let corrupt = || {
            TableError::corrupt_item(
                &self.images_table,
                format!("like item of {user_id} on {image_id}"),
            )
        };
        Ok(Some(LikeState {
            liked: *item
                .get("liked")
                .and_then(|v| v.as_bool().ok())
                .ok_or_else(corrupt)?,
            revision: number("revision").ok_or_else(corrupt)? as u64,
            occurred_at_ms: number("occurred_at").ok_or_else(corrupt)?,
        }))
    }

    async fn write_like(&self, change: &LikeChange) -> Result<bool, StoreError> {
        let mut request = self
            .dynamodb
            .update_item()
            .table_name(&self.images_table)
            .key("pk", s(image_pk(&change.image_id)))
            .key("sk", s(format!("LIKE#{}", change.user_id)))
            .update_expression(
                "SET image_id = :image, user_id = :user, liked = :liked, revision = :revision, occurred_at = :at, event = :event, event_id = :event_id",
            )
            .expression_attribute_values(":image", s(&change.image_id))
            .expression_attribute_values(":user", s(&change.user_id))
            .expression_attribute_values(":liked", AttributeValue::Bool(change.next.liked))
            .expression_attribute_values(":revision", n(change.next.revision))
            .expression_attribute_values(":at", n(change.next.occurred_at_ms))
            .expression_attribute_values(":event", s(&change.event_json))
            .expression_attribute_values(":event_id", s(&change.event_id));
        request = match &change.previous {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => request
                .condition_expression("revision = :previous")
                .expression_attribute_values(":previous", n(previous.revision)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(TableError::from_sdk(&self.images_table, e).into()),
        }
    }

    async fn my_images(
        &self,
        user_id: &str,
        limit: i32,
        after: Option<Cursor>,
    ) -> Result<(Vec<ImageRecord>, Option<Cursor>), StoreError> {
        self.newest_first("by-owner", "owner_id", user_id, limit, after)
            .await
    }

    async fn like_count(&self, image_id: &str) -> Result<i64, StoreError> {
        self.likes.count(image_id).await.map_err(StoreError::from)
    }

    async fn feed(
        &self,
        limit: i32,
        after: Option<Cursor>,
    ) -> Result<(Vec<ImageRecord>, Option<Cursor>), StoreError> {
        self.newest_first("by-publication", "feed", FEED, limit, after)
            .await
    }

    async fn likes_of(
        &self,
        image_ids: &[String],
        user_id: &str,
    ) -> Result<HashMap<String, (i64, bool)>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut likes: HashMap<String, (i64, bool)> = image_ids
            .iter()
            .map(|id| (id.clone(), (0, false)))
            .collect();
        if image_ids.is_empty() {
            return Ok(likes);
        }
        let keys = |sk: &dyn Fn(&str) -> String| {
            image_ids
                .iter()
                .map(|id| {
                    HashMap::from([
                        ("pk".to_owned(), s(image_pk(id))),
                        ("sk".to_owned(), s(sk(id))),
                    ])
                })
                .collect::<Vec<_>>()
        };
        let table = |keys| {
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .expect("keys are set")
        };
        // One BatchGetItem for the page: the counts and the caller's like states (2 keys per
        // image; BatchGetItem takes 100, so a feed page is at most 50 images). Keys DynamoDB
        // leaves unprocessed are asked again after a pause, within the read's budget.
        let request = HashMap::from([
            (
                self.likes.table_name().to_owned(),
                table(keys(&|_| "COUNT".to_owned())),
            ),
            (
                self.images_table.clone(),
                table(keys(&|_| format!("LIKE#{user_id}"))),
            ),
        ]);
        let read = batch_get_tables(
            &self.dynamodb,
            request,
            &Deadline::after(READ_BUDGET),
            || {},
        )
        .await?;
        for (table_name, items) in read {
            for item in items {
                let image_id = item
                    .get("pk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|pk| pk.strip_prefix("IMAGE#"))
                    .unwrap_or_default()
                    .to_owned();
                let Some(entry) = likes.get_mut(&image_id) else {
                    continue;
                };
                if table_name == self.images_table {
                    entry.1 = item.get("liked").and_then(|v| v.as_bool().ok()) == Some(&true);
                } else {
                    entry.0 = item
                        .get("likes")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                }
            }
        }
        Ok(likes)
    }

    async fn inbox(
        &self,
        user_id: &str,
        limit: i32,
        after: Option<Cursor>,
    ) -> Result<(Vec<Notification>, Option<Cursor>), StoreError> {
        let (notifications, next) = self
            .notifications
            .inbox_page(user_id, limit, after.map(Cursor::into_item))
            .await
            .map_err(StoreError::from)?;
        Ok((notifications, next.and_then(Cursor::from_item)))
    }

    async fn mark_read(&self, user_id: &str, key: &str) -> Result<bool, StoreError> {
        self.notifications
            .mark_read(user_id, key)
            .await
            .map_err(StoreError::from)
    }

    async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
    ) -> Result<Presigned, StoreError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(self.upload_url_ttl)
            .map_err(|e| StoreError::Presign {
                what: "the upload URL's expiry".into(),
                source: Box::new(e),
            })?;
        // Content-Type and Content-Length are set before signing, so they are signed headers:
        // S3 refuses the PUT unless the client sends exactly the declared type and length.
        let presigned = self
            .s3
            .put_object()
            .bucket(&self.uploads_bucket)
            .key(key)
            .content_type(content_type)
            .content_length(content_length as i64)
            .presigned(config)
            .await
            .map_err(|e| StoreError::Presign {
                what: format!("presigning the upload of {key}"),
                source: Box::new(e),
            })?;
        // Only the signed headers are the client's to send (the SDK also lists its trace header).
        let signed = presigned
            .uri()
            .split("X-Amz-SignedHeaders=")
            .nth(1)
            .map(|s| s.split('&').next().unwrap_or_default().replace("%3B", ";"))
            .unwrap_or_default();
        let signed: Vec<&str> = signed.split(';').collect();
        Ok(Presigned {
            method: presigned.method().to_owned(),
            url: presigned.uri().to_owned(),
            headers: presigned
                .headers()
                .filter(|(k, _)| {
                    signed.contains(&k.to_ascii_lowercase().as_str())
                        && !k.eq_ignore_ascii_case("host")
                })
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    async fn rendition_url(&self, key: &str) -> Result<String, StoreError> {
        // Signed over an hour-aligned window: every request of the same hour gets the same URL,
        // so browsers cache a thumbnail instead of fetching it again on every page. The URL
        // stays valid at least `rendition_url_ttl` from now.
        let config = aws_sdk_s3::presigning::PresigningConfig::builder()
            .start_time(hour_aligned(std::time::SystemTime::now()))
            .expires_in(self.rendition_url_ttl + Duration::from_secs(3600))
            .build()
            .map_err(|e| StoreError::Presign {
                what: "the rendition URL's expiry".into(),
                source: Box::new(e),
            })?;
        let presigned = self
            .s3
            .get_object()
            .bucket(&self.renditions_bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| StoreError::Presign {
                what: format!("presigning {key}"),
                source: Box::new(e),
            })?;
        Ok(presigned.uri().to_owned())
    }
}

/// The start of the hour `time` falls in.
fn hour_aligned(time: std::time::SystemTime) -> std::time::SystemTime {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    std::time::UNIX_EPOCH + Duration::from_secs(since - since % 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_urls_of_one_hour_share_their_signing_window() {
        let at = |s: u64| std::time::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(hour_aligned(at(7_200)), at(7_200));
        assert_eq!(hour_aligned(at(7_201)), at(7_200));
        assert_eq!(hour_aligned(at(10_799)), at(7_200));
        assert_eq!(hour_aligned(at(10_800)), at(10_800));
    }

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let cursor = Cursor(BTreeMap::from([
            ("pk".to_owned(), CursorValue::S("IMAGE#a".into())),
            ("created_at".to_owned(), CursorValue::N("17".into())),
        ]));
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("not a cursor"), None);
        let forged = |json: &str| {
            Cursor::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
        };
        assert_eq!(forged(r#"{"pk":{"S":"USER#a"},"extra":{"S":"x"}}"#), None);
        assert_eq!(
            forged(&format!(r#"{{"pk":{{"S":"{}"}}}}"#, "x".repeat(2000))),
            None
        );
        assert_eq!(forged(r#"{"created_at":{"N":"soon"}}"#), None);
        assert!(forged(r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"}}"#).is_some());
        assert_eq!(
            Cursor::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"[1]")),
            None
        );
    }
}

//! The AWS adapter's tables: the images table (images, like states, the upload quota),
//! like-counter's counts and notifier's inbox, read through their own functions' adapters.
//! One request per method unless its comment says otherwise.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use snapglow::batch::Deadline;
use snapglow::contracts::RenditionV1;
use snapglow::table::{
    Applied, TableError, batch_get_tables, image_of_pk, image_pk, is_condition_failure, n, s,
    transact,
};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::{
    Cursor, GivenLike, ImageDeletion, ImageRecord, Images, Inbox, LikeChange, LikeState, LikedBy,
    Likes, NewImage, Notification, PhotoDetails, RequestCounter, Status, StoreError, Taken,
    UploadQuota, UserPool,
};

/// The AWS adapter: the images table, like-counter's and notifier's tables, S3 presigning.
pub struct AwsStore {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub images_table: String,
    /// The per-user request counters (in the images table, with a client of their own).
    pub requests: RequestCounter,
    pub likes: like_counter::table::LikeCounts,
    pub notifications: notifier::table::InboxReader,
    /// The user pool erased accounts' users are deleted from (`None`: another issuer's).
    pub pool: Option<UserPool>,
    /// Live push's connections table, where tickets are issued (`None`: no live push).
    pub connections_table: Option<String>,
    pub uploads_bucket: String,
    pub renditions_bucket: String,
    pub upload_url_ttl: Duration,
    pub rendition_url_ttl: Duration,
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
        published_at_ms: number("published_at"),
        status: text("status")
            .as_deref()
            .and_then(Status::parse)
            .ok_or_else(|| corrupt("no valid status"))?,
        content_type: text("content_type").unwrap_or_default(),
        upload_key: text("upload_key").unwrap_or_default(),
        created_at_ms: number("created_at").unwrap_or(0),
        correlation_id: text("correlation_id").unwrap_or_default(),
        reason: text("reason"),
        message: text("message"),
        renditions,
        details: PhotoDetails {
            placeholder: text("placeholder"),
            taken_at: text("taken_at"),
            camera_make: text("camera_make"),
            camera_model: text("camera_model"),
            lens: text("lens"),
        },
    })
}

/// The like state a like item holds.
fn like_state_of(
    table: &str,
    item: &HashMap<String, AttributeValue>,
    image_id: &str,
    user_id: &str,
) -> Result<LikeState, StoreError> {
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let corrupt =
        || TableError::corrupt_item(table, format!("like item of {user_id} on {image_id}"));
    Ok(LikeState {
        liked: *item
            .get("liked")
            .and_then(|v| v.as_bool().ok())
            .ok_or_else(corrupt)?,
        revision: number("revision").ok_or_else(corrupt)? as u64,
        occurred_at_ms: number("occurred_at").ok_or_else(corrupt)?,
    })
}

/// Records a pending image, as `POST /uploads` does (tests and tools issue uploads with it).
pub async fn create_pending(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    image: &NewImage,
) -> Result<(), StoreError> {
    // No name: others see the owner's profile, resolved when read (images issued before
    // profiles existed still hold an `owner_name`, the sign-in username, which no read shows).
    let item = HashMap::from([
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
    let put = (dynamodb.put_item())
        .table_name(table)
        .set_item(Some(item))
        // A fresh v4 id never collides; the condition makes sure of it.
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    match put {
        Ok(_) => Ok(()),
        // HAZARD: the SDK sends a PutItem again when its answer was lost (a 5xx or a timeout
        // after it landed), and the copy fails the condition on the item the first one wrote.
        // An item naming this very upload is this request's own: success, not a collision.
        Err(e) if is_condition_failure(&e) => {
            let stored = (dynamodb.get_item())
                .table_name(table)
                .key("pk", s(image_pk(&image.image_id)))
                .key("sk", s("IMAGE"))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| TableError::from_sdk(table, e))?;
            let text = |item: &HashMap<String, AttributeValue>, name: &str| {
                item.get(name).and_then(|v| v.as_s().ok()).cloned()
            };
            let ours = stored.item.is_some_and(|item| {
                text(&item, "upload_key").as_ref() == Some(&image.upload_key)
                    && text(&item, "correlation_id").as_ref() == Some(&image.correlation_id)
            });
            if ours {
                Ok(())
            } else {
                let detail = format!("image {} exists and is another upload", image.image_id);
                Err(TableError::rejected(table, detail).into())
            }
        }
        Err(e) => Err(TableError::from_sdk(table, e).into()),
    }
}

impl AwsStore {
    /// The items of `keys` in the images table, `projection` only (`names` for its reserved
    /// words): one eventually consistent BatchGetItem per 100 distinct keys (half a read unit
    /// each), the keys DynamoDB leaves unprocessed asked again within [`READ_BUDGET`].
    pub(super) async fn read_images_table(
        &self,
        keys: impl Iterator<Item = (String, String)>,
        projection: &str,
        names: &[(&str, &str)],
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let keys: Vec<HashMap<String, AttributeValue>> = (keys.collect::<BTreeSet<_>>())
            .into_iter()
            .map(|(pk, sk)| HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))]))
            .collect();
        let deadline = Deadline::after(READ_BUDGET);
        let mut items = Vec::new();
        for chunk in keys.chunks(snapglow::table::MAX_BATCH_GET_KEYS) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .projection_expression(projection);
            for (name, attribute) in names {
                request = request.expression_attribute_names(*name, *attribute);
            }
            let request = request.build().expect("keys are set");
            let table = self.images_table.clone();
            let mut read = batch_get_tables(
                &self.dynamodb,
                HashMap::from([(table.clone(), request)]),
                &deadline,
                || {},
            )
            .await?;
            items.extend(read.remove(&table).unwrap_or_default());
        }
        Ok(items)
    }

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

impl Images for AwsStore {
    /// One TransactWriteItems of the hour's and the day's quota items (two write units per
    /// item and KB: the hour's item holds up to 100 ids, about 4 KB); one consistent GetItem
    /// more when a condition stops it.
    async fn take_upload_quota(
        &self,
        user_id: &str,
        quota: &UploadQuota,
        image_id: &str,
        bytes: u64,
        deadline: &Deadline,
    ) -> Result<Taken, StoreError> {
        let table = &self.images_table;
        let Some(room) = quota.bytes_per_day.checked_sub(bytes) else {
            return Ok(Taken::DaySpent);
        };
        let key = |sk: String| {
            HashMap::from([
                ("pk".to_owned(), s(format!("QUOTA#{user_id}"))),
                ("sk".to_owned(), s(sk)),
            ])
        };
        let hour_key = key(format!("HOUR#{}", quota.hour_start_ms));
        let built = |what: &str, e: aws_sdk_dynamodb::error::BuildError| {
            TableError::rejected(table, format!("the {what} quota's update: {e}"))
        };
        let hour = Update::builder()
            .table_name(table)
            .set_key(Some(hour_key.clone()))
            // The slot remembers the image it was taken for: a copy of this request sent
            // after a lost answer (with a new transaction token) is then told apart from a
            // spent hour (below), and counts nothing twice, in the hour or the day.
            .update_expression("ADD issued :one, images :image SET expires_at = :expires")
            .condition_expression(
                "(attribute_not_exists(issued) OR issued < :limit) AND NOT contains(images, :id)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":image", AttributeValue::Ss(vec![image_id.to_owned()]))
            .expression_attribute_values(":id", s(image_id))
            .expression_attribute_values(":limit", n(quota.uploads_per_hour))
            // Kept a day past its hour, then TTL removes it.
            .expression_attribute_values(":expires", n(quota.hour_start_ms / 1000 + 86_400))
            .build()
            .map_err(|e| built("hour", e))?;
        let day = Update::builder()
            .table_name(table)
            .set_key(Some(key(format!("DAY#{}", quota.day_start_ms))))
            .update_expression("ADD issued_bytes :bytes SET expires_at = :expires")
            .condition_expression("attribute_not_exists(issued_bytes) OR issued_bytes <= :room")
            .expression_attribute_values(":bytes", n(bytes))
            .expression_attribute_values(":room", n(room))
            .expression_attribute_values(":expires", n(quota.day_start_ms / 1000 + 2 * 86_400))
            .build()
            .map_err(|e| built("day", e))?;
        let actions = [
            TransactWriteItem::builder().update(hour).build(),
            TransactWriteItem::builder().update(day).build(),
        ];
        if transact(&self.dynamodb, table, &actions, deadline, || {}).await? == Applied::Committed {
            return Ok(Taken::Yes);
        }
        // A condition failed: the hour is spent, the day's bytes are, or this very request's
        // quota was taken by an earlier copy of it whose answer was lost. The hour's item
        // tells which.
        let stored = (self.dynamodb.get_item())
            .table_name(table)
            .set_key(Some(hour_key))
            .projection_expression("issued, images")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(table, e))?;
        let item = stored.item.unwrap_or_default();
        let issued: u64 = (item.get("issued").and_then(|v| v.as_n().ok()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let ours = (item.get("images").and_then(|v| v.as_ss().ok()))
            .is_some_and(|images| images.iter().any(|i| i == image_id));
        Ok(if ours {
            Taken::Yes
        } else if issued >= quota.uploads_per_hour {
            Taken::HourSpent
        } else {
            Taken::DaySpent
        })
    }

    async fn create_image(&self, image: &NewImage) -> Result<(), StoreError> {
        create_pending(&self.dynamodb, &self.images_table, image).await
    }
    /// One conditional UpdateItem. Removing `created_at`, `feed` and `published_at` takes the
    /// item out of both indexes (they are sparse), so the feed and the owner's listing stop
    /// showing it once the indexes catch up; the handlers also skip tombstones they still see.
    async fn delete_image(&self, deletion: &ImageDeletion) -> Result<bool, StoreError> {
        let write = self
            .dynamodb
            .update_item()
            .table_name(&self.images_table)
            .key("pk", s(image_pk(&deletion.image_id)))
            .key("sk", s("IMAGE"))
            .update_expression(
                "SET #status = :deleted, deleted_at = :at, expires_at = :expires, event = :event, event_id = :event_id \
                 REMOVE created_at, feed, published_at, renditions, owner_name, reason, message, \
                 placeholder, taken_at, camera_make, camera_model, lens",
            )
            .condition_expression("#status = :was")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":deleted", s(Status::Deleted.as_str()))
            .expression_attribute_values(":was", s(deletion.was.as_str()))
            .expression_attribute_values(":at", n(deletion.deleted_at_ms))
            .expression_attribute_values(":expires", n(deletion.expires_at_s))
            .expression_attribute_values(":event", s(&deletion.event_json))
            .expression_attribute_values(":event_id", s(&deletion.event_id))
            .send()
            .await;
        match write {
            Ok(_) => Ok(true),
            // Another request changed the status first (resize finished, or a concurrent
            // DELETE): the handler reads again and decides on what is there now. A copy of
            // this very write re-sent after a lost answer lands here too, and reads as deleted.
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(TableError::from_sdk(&self.images_table, e).into()),
        }
    }

    async fn image(&self, image_id: &str) -> Result<Option<ImageRecord>, StoreError> {
        let output = self
            .dynamodb
            .get_item()
            .table_name(&self.images_table)
            .key("pk", s(image_pk(image_id)))
            .key("sk", s("IMAGE"))
            // A deleted image is gone from the next read, and a DELETE decides on the latest
            // status: one read unit instead of half.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        output
            .item
            .map(|item| read_image(&self.images_table, &item))
            .transpose()
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

    /// One BatchGetItem per 100 images (eventually consistent: a thumbnail lags its photo's
    /// publication by a moment at most), the renditions only.
    async fn thumbnails(
        &self,
        image_ids: &[String],
    ) -> Result<HashMap<String, RenditionV1>, StoreError> {
        let mut found = HashMap::new();
        let keys = image_ids
            .iter()
            .map(|id| (image_pk(id), "IMAGE".to_owned()));
        let items = (self.read_images_table(
            keys,
            "image_id, #status, renditions",
            &[("#status", "status")],
        ))
        .await?;
        for item in &items {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
            if text("status").map(String::as_str) != Some(Status::Published.as_str()) {
                continue;
            }
            let renditions: Vec<RenditionV1> = text("renditions")
                .and_then(|json| serde_json::from_str(json).ok())
                .unwrap_or_default();
            if let (Some(id), Some(smallest)) = (
                text("image_id"),
                renditions.into_iter().min_by_key(|r| r.width),
            ) {
                found.insert(id.clone(), smallest);
            }
        }
        Ok(found)
    }

    async fn feed(
        &self,
        limit: i32,
        after: Option<Cursor>,
    ) -> Result<(Vec<ImageRecord>, Option<Cursor>), StoreError> {
        self.newest_first("by-publication", "feed", FEED, limit, after)
            .await
    }
}

impl Likes for AwsStore {
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
        output
            .item
            .map(|item| like_state_of(&self.images_table, &item, image_id, user_id))
            .transpose()
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

    /// One Query of the image's partition from its first like item (`LIKE#` sorts after
    /// `IMAGE`): `limit` like items read, about 200 bytes each (a page of 50 is about 2.5
    /// read units, eventually consistent), the taken-back ones filtered out after the read.
    async fn likers(
        &self,
        image_id: &str,
        limit: i32,
        after: Option<Cursor>,
    ) -> Result<(Vec<LikedBy>, Option<Cursor>), StoreError> {
        let output = (self.dynamodb.query())
            .table_name(&self.images_table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :like)")
            .filter_expression("liked = :yes")
            .projection_expression("sk, occurred_at")
            .expression_attribute_values(":pk", s(image_pk(image_id)))
            .expression_attribute_values(":like", s("LIKE#"))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .limit(limit)
            .set_exclusive_start_key(after.map(Cursor::into_item))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        let likers = (output.items().iter())
            .map(|item| {
                let user = (item.get("sk").and_then(|v| v.as_s().ok()))
                    .and_then(|sk| sk.strip_prefix("LIKE#"));
                let at = (item.get("occurred_at").and_then(|v| v.as_n().ok()))
                    .and_then(|v| v.parse().ok());
                match (user, at) {
                    (Some(user), Some(at)) => Ok(LikedBy {
                        user_id: user.to_owned(),
                        occurred_at_ms: at,
                    }),
                    _ => Err(TableError::corrupt_item(
                        &self.images_table,
                        format!("a like item of image {image_id}: {:?}", item.get("sk")),
                    )
                    .into()),
                }
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((
            likers,
            output.last_evaluated_key.and_then(Cursor::from_item),
        ))
    }

    /// One Query of the `by-liker` index (its items are about 200 bytes: a page of 25 reads
    /// about 2.5 read units).
    async fn likes_given(&self, user_id: &str, limit: i32) -> Result<Vec<GivenLike>, StoreError> {
        let output = (self.dynamodb.query())
            .table_name(&self.images_table)
            .index_name("by-liker")
            .key_condition_expression("user_id = :user")
            .expression_attribute_values(":user", s(user_id))
            .limit(limit)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.images_table, e))?;
        output
            .items()
            .iter()
            .map(|item| {
                let image_id = (item.get("image_id").and_then(|v| v.as_s().ok()))
                    .cloned()
                    .ok_or_else(|| {
                        TableError::corrupt_item(
                            &self.images_table,
                            format!("a like item of {user_id} without image_id"),
                        )
                    })?;
                Ok(GivenLike {
                    state: like_state_of(&self.images_table, item, &image_id, user_id)?,
                    image_id,
                })
            })
            .collect()
    }

    /// One conditional UpdateItem.
    async fn retire_like(
        &self,
        image_id: &str,
        user_id: &str,
        revision: u64,
        unlike: Option<&LikeChange>,
        expires_at_s: i64,
    ) -> Result<bool, StoreError> {
        let mut request = (self.dynamodb.update_item())
            .table_name(&self.images_table)
            .key("pk", s(image_pk(image_id)))
            .key("sk", s(format!("LIKE#{user_id}")))
            .condition_expression("revision = :previous")
            .expression_attribute_values(":previous", n(revision))
            .expression_attribute_values(":expires", n(expires_at_s));
        request = match unlike {
            // The event goes with the unlike, in this write: the relay publishes it, and
            // like-counter and notifier take the like back from their counts and names.
            Some(change) => request
                .update_expression(
                    "SET liked = :liked, revision = :revision, occurred_at = :at, event = :event, event_id = :event_id, expires_at = :expires REMOVE user_id",
                )
                .expression_attribute_values(":liked", AttributeValue::Bool(change.next.liked))
                .expression_attribute_values(":revision", n(change.next.revision))
                .expression_attribute_values(":at", n(change.next.occurred_at_ms))
                .expression_attribute_values(":event", s(&change.event_json))
                .expression_attribute_values(":event_id", s(&change.event_id)),
            None => request.update_expression("SET expires_at = :expires REMOVE user_id"),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(TableError::from_sdk(&self.images_table, e).into()),
        }
    }

    async fn like_count(&self, image_id: &str) -> Result<i64, StoreError> {
        self.likes.count(image_id).await.map_err(StoreError::from)
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
                    .and_then(|pk| image_of_pk(pk))
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
}

impl Inbox for AwsStore {
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

    async fn mark_read(
        &self,
        user_id: &str,
        keys: &[String],
        deadline: &Deadline,
    ) -> Result<usize, StoreError> {
        self.notifications
            .mark_read(user_id, keys, deadline)
            .await
            .map_err(StoreError::from)
    }
}

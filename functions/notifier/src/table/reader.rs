//! The inbox's read side, which the API uses: a user's notifications, newest activity first,
//! and marking one read. A reader writes no event's effect, so it takes no retention.

use aws_sdk_dynamodb::types::AttributeValue;
use snapglow::batch::Deadline;
use snapglow::dedup::expires_at;
use snapglow::table::{Item, TableError, batch_get, image_pk, s, write_item};
use std::time::Duration;

use super::EarlyLike;
use super::items::{key, read_early, read_notification};
use crate::inbox::{Notification, user_pk};

/// The notifications table as the API reads it.
pub struct InboxReader {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// One page of an inbox and where the next one starts (DynamoDB's LastEvaluatedKey).
pub type InboxPage = (Vec<Notification>, Option<Item>);

impl InboxReader {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// A user's inbox, most recent activity first. Expired entries (TTL deletion lags by up to two days) and
    /// likes notifications whose every like was undone are left out.
    pub async fn inbox(&self, user_id: &str) -> Result<Vec<Notification>, TableError> {
        let mut notifications = Vec::new();
        let mut start = None;
        loop {
            // DynamoDB's own page size (1 MB) bounds each query.
            let (page, next) = self.inbox_page(user_id, i32::MAX, start).await?;
            notifications.extend(page);
            start = next;
            if start.is_none() {
                return Ok(notifications);
            }
        }
    }

    /// Up to `limit` items of a user's inbox, most recent activity first, from `start` (a
    /// previous page's end). A page may hold fewer notifications than `limit`: expired
    /// items and likes notifications whose every like was undone are left out after reading.
    pub async fn inbox_page(
        &self,
        user_id: &str,
        limit: i32,
        start: Option<Item>,
    ) -> Result<InboxPage, TableError> {
        let now_s = expires_at(Duration::ZERO);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("by-activity")
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(user_pk(user_id)))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.table, e))?;
        let notifications = output
            .items()
            .iter()
            .filter_map(|item| read_notification(item, now_s))
            .collect();
        Ok((notifications, output.last_evaluated_key))
    }

    /// Marks the notifications of `user_id` named by `keys` (sort keys, at most 100) read,
    /// and answers how many were unread. One BatchGetItem finds which exist and are unread;
    /// only those are written, each by its own conditional UpdateItem, all at once: a key no
    /// notification has costs one read unit (the read is strongly consistent) and no write. Only `unread` changes: the
    /// notifier owns everything else in the item. A likes transaction of the notifier
    /// holding a notification, or throttling, is retried within `deadline`.
    ///
    /// Single writes rather than one transaction: a transaction takes two write units per item
    /// and is cancelled whole when the notifier holds any one of them.
    pub async fn mark_read(
        &self,
        user_id: &str,
        keys: &[String],
        deadline: &Deadline,
    ) -> Result<usize, TableError> {
        let wanted: Vec<Item> = keys.iter().map(|sk| key(user_pk(user_id), sk)).collect();
        let found = batch_get(
            &self.client,
            &self.table,
            wanted,
            Some("pk, sk, unread"),
            deadline,
            || {},
        )
        .await?;
        let unread = found
            .iter()
            .filter(|item| item.get("unread") == Some(&AttributeValue::Bool(true)))
            .filter_map(|item| item.get("sk")?.as_s().ok());
        let writes = unread.map(|sk| {
            write_item(&self.table, deadline, move || {
                (self.client.update_item())
                    .table_name(&self.table)
                    .key("pk", s(user_pk(user_id)))
                    .key("sk", s(sk))
                    .update_expression("SET unread = :read")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":read", AttributeValue::Bool(false))
                    .send()
            })
        });
        let mut marked = 0;
        for written in futures_util::future::join_all(writes).await {
            marked += usize::from(written?.is_some());
        }
        Ok(marked)
    }
}

impl InboxReader {
    /// The likes kept for an image whose owner the notifier does not know yet (a drill's check
    /// that none is left behind).
    pub async fn kept_likes(&self, image_id: &str) -> Result<Vec<EarlyLike>, TableError> {
        kept_likes(&self.client, &self.table, image_id, || {}).await
    }
}

/// Every like kept under an image, read strongly consistent, page by page (`on_request`: once
/// per Query sent).
pub(super) async fn kept_likes(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    image_id: &str,
    on_request: impl Fn(),
) -> Result<Vec<EarlyLike>, TableError> {
    let mut early = Vec::new();
    let mut start = None;
    loop {
        on_request();
        let output = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :early)")
            .expression_attribute_values(":pk", s(image_pk(image_id)))
            .expression_attribute_values(":early", s("EARLY#"))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(table, e))?;
        for item in output.items() {
            early.push(read_early(item).ok_or_else(|| {
                TableError::corrupt_item(table, format!("an early like {item:?}"))
            })?);
        }
        start = output.last_evaluated_key;
        if start.is_none() {
            return Ok(early);
        }
    }
}

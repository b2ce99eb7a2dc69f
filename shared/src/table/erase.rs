//! Deleting every item of one partition that a selection names: how the consumers erase what
//! they keep of a deleted image (a like-counter's states, a notifier's inbox entries, the API's
//! like items). Pages of a strongly consistent Query, each deleted with BatchWriteItem.

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use std::collections::HashMap;

use super::{ATTEMPTS, Item, TableError, s};
use crate::batch::Deadline;
use crate::retry::{pause, with_backoff};

/// BatchWriteItem takes at most 25 requests.
pub const MAX_BATCH_WRITE_ITEMS: usize = 25;

/// How the items are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletes {
    /// BatchWriteItem, 25 at a time: for a function's own table. Its grant also allows puts.
    Batched,
    /// DeleteItem, a few at once: for another's table, where the grant must allow deleting
    /// and nothing else (a put on the images table could carry an event the relay publishes).
    Singly,
}

/// DeleteItems sent at once by [`Deletes::Singly`].
const SINGLE_DELETES_AT_ONCE: usize = 8;

/// The items of one partition to delete.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    pub table: &'a str,
    pub pk: String,
    /// Only sort keys starting with this.
    pub sk_prefix: Option<&'a str>,
    /// Only items whose attribute (name, string value) is this: the Query still reads the
    /// others (and bills their read units), but nothing is written for them.
    pub only: Option<(&'a str, &'a str)>,
}

/// Deletes every item `selection` names, page by page, until none is left; answers how many
/// were deleted. Deletes are idempotent: an erasure cut short (the deadline, a crash) is
/// finished by running it again, and items deleted by someone else meanwhile cost nothing.
///
/// HAZARD: BatchWriteItem "succeeds" with the deletes it could not do in `UnprocessedItems`
/// (throttling); they are sent again after a growing pause, never past the deadline, and the
/// erasure fails as transient rather than answer done with items left.
pub async fn delete_all(
    client: &aws_sdk_dynamodb::Client,
    selection: &Selection<'_>,
    deletes: Deletes,
    deadline: &Deadline,
    on_request: impl Fn(),
) -> Result<usize, TableError> {
    let table = selection.table;
    let mut deleted = 0;
    let mut start: Option<Item> = None;
    loop {
        let page = with_backoff(deadline, ATTEMPTS, |_| {
            let mut query = client
                .query()
                .table_name(table)
                .consistent_read(true)
                .projection_expression("pk, sk")
                .expression_attribute_values(":pk", s(&selection.pk))
                .set_exclusive_start_key(start.clone());
            query = match selection.sk_prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("pk = :pk"),
            };
            if let Some((name, value)) = selection.only {
                query = query
                    .filter_expression("#only = :only")
                    .expression_attribute_names("#only", name)
                    .expression_attribute_values(":only", s(value));
            }
            on_request();
            async move {
                query
                    .send()
                    .await
                    .map_err(|e| TableError::classify(table, e))
            }
        })
        .await?;
        let keys: Vec<Item> = page
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                item.into_iter()
                    .filter(|(name, _)| name == "pk" || name == "sk")
                    .collect()
            })
            .collect();
        match deletes {
            Deletes::Batched => {
                for chunk in keys.chunks(MAX_BATCH_WRITE_ITEMS) {
                    delete_batch(client, table, chunk, deadline, &on_request).await?;
                }
            }
            Deletes::Singly => delete_each(client, table, &keys, deadline, &on_request).await?,
        }
        deleted += keys.len();
        start = page.last_evaluated_key.filter(|key| !key.is_empty());
        if start.is_none() {
            return Ok(deleted);
        }
    }
}

/// One BatchWriteItem of at most 25 deletes, with what it leaves unprocessed sent again.
async fn delete_batch(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: &[Item],
    deadline: &Deadline,
    on_request: &impl Fn(),
) -> Result<(), TableError> {
    let mut pending: Vec<WriteRequest> = keys
        .iter()
        .map(|key| {
            let delete = DeleteRequest::builder()
                .set_key(Some(key.clone()))
                .build()
                .expect("the key is set");
            WriteRequest::builder().delete_request(delete).build()
        })
        .collect();
    let mut rounds = 0u32;
    while !pending.is_empty() {
        let asked = std::mem::take(&mut pending);
        let output = with_backoff(deadline, ATTEMPTS, |_| {
            let request = client
                .batch_write_item()
                .request_items(table, asked.clone());
            on_request();
            async move {
                request
                    .send()
                    .await
                    .map_err(|e| TableError::classify(table, e))
            }
        })
        .await?;
        let mut left: HashMap<String, Vec<WriteRequest>> =
            output.unprocessed_items.unwrap_or_default();
        pending = left.remove(table).unwrap_or_default();
        if !pending.is_empty() {
            rounds += 1;
            if !pause(deadline, rounds).await {
                return Err(TableError::transient(
                    table,
                    "BatchWriteItem kept answering UnprocessedItems (throttled) until the deadline; the erasure resumes on redelivery",
                ));
            }
        }
    }
    Ok(())
}

/// DeleteItem of each key, a few at once, each re-sent while DynamoDB answers it busy (as
/// [`super::write_item`] does); the first error ends it.
async fn delete_each(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: &[Item],
    deadline: &Deadline,
    on_request: &impl Fn(),
) -> Result<(), TableError> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    stream::iter(keys)
        .map(|key| async move {
            super::write_item(table, deadline, || {
                on_request();
                (client.delete_item())
                    .table_name(table)
                    .set_key(Some(key.clone()))
                    .send()
            })
            .await
            .map(drop)
        })
        .buffer_unordered(SINGLE_DELETES_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

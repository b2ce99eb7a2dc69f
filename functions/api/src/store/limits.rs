//! Per-user request limits: one counter item per user and minute in the images table, taken by
//! one conditional write per request.

use snapglow::table::{TableError, is_condition_failure, n, s};

use super::{AwsStore, Limits, StoreError};

/// The request counters (`RATE#{user}` / `MINUTE#{start}` in the images table).
///
/// A client of its own, apart from the store's: the counter's write comes before every
/// request's own calls, and tests that put faults on those calls must not meet it first.
pub struct RequestCounter {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl RequestCounter {
    pub fn new(dynamodb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            dynamodb,
            table: table.into(),
        }
    }

    /// One UpdateItem: one write unit (the item is far below 1 KB), also when its condition
    /// fails. HAZARD: an answer lost after the ADD landed makes the SDK send it again, and the
    /// copy counts the request twice; a limit on abuse may err that way, a bill could not.
    pub async fn take(
        &self,
        user_id: &str,
        minute_start_ms: i64,
        limit: u64,
    ) -> Result<bool, StoreError> {
        let counted = (self.dynamodb.update_item())
            .table_name(&self.table)
            .key("pk", s(format!("RATE#{user_id}")))
            .key("sk", s(format!("MINUTE#{minute_start_ms}")))
            .update_expression("ADD requests :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(requests) OR requests < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            // TTL removes the counter (within days); nothing reads a past minute.
            .expression_attribute_values(":expires", n(minute_start_ms / 1000 + 120))
            .send()
            .await;
        match counted {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(TableError::from_sdk(&self.table, e).into()),
        }
    }
}

impl Limits for AwsStore {
    async fn take_request(
        &self,
        user_id: &str,
        minute_start_ms: i64,
        limit: u64,
    ) -> Result<bool, StoreError> {
        self.requests.take(user_id, minute_start_ms, limit).await
    }
}

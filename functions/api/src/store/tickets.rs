//! Live push's tickets: what `POST /me/live-ticket` stores for the WebSocket API's authorizer
//! to take back once.

use snapglow::table::{TableError, n, s};

use super::{AwsStore, StoreError, Tickets};

impl Tickets for AwsStore {
    /// One PutItem (one write unit). Its key is the ticket's SHA-256, fresh each time: no
    /// condition is needed, and a re-sent put writes the same item again.
    async fn issue_ticket(
        &self,
        key: &str,
        user_id: &str,
        expires_at_s: i64,
    ) -> Result<(), StoreError> {
        let Some(table) = &self.connections_table else {
            return Err(
                TableError::rejected("CONNECTIONS_TABLE", "live push is not configured").into(),
            );
        };
        (self.dynamodb.put_item())
            .table_name(table)
            .item("pk", s(key))
            .item("sk", s("TICKET"))
            .item("user_id", s(user_id))
            .item("expires_at", n(expires_at_s))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(table, e))?;
        Ok(())
    }
}

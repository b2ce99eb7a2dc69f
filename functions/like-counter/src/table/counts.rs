//! The counts' read side, for readers (the API, tools, tests): the counter writes them, a
//! reader only reads, so it takes no retention and has no write to make.

use snapglow::table::{TableError, image_pk, s};

/// The likes table as readers see it: one count per image.
pub struct LikeCounts {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl LikeCounts {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name (readers batch their reads of it with other tables').
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The like count of an image (0 when nobody ever liked it), read strongly consistent.
    pub async fn count(&self, image_id: &str) -> Result<i64, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(image_pk(image_id)))
            .key("sk", s("COUNT"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.table, e))?;
        Ok(output
            .item
            .and_then(|item| {
                item.get("likes")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0))
    }
}

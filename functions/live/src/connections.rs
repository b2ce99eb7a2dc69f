//! The connections table (its layout is in `snapglow::live`): tickets taken back once, open
//! connections kept per user, and the AWS adapter and in-memory twin of both.

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use snapglow::live::{connection_key, ticket_key, user_connection_key, user_pk};
use snapglow::table::{TableError, is_condition_failure, n, s};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

/// A user's id: their token's `sub`.
pub type UserId = String;
/// API Gateway's id of a WebSocket connection (base64, with `=`).
pub type ConnectionId = String;

/// What the WebSocket API's routes and the pusher need of the connections table.
pub trait Connections {
    /// Takes `ticket` back: its user when it was issued, unused and unexpired at `now_s`;
    /// `None` otherwise. A ticket is taken once: a second use finds nothing.
    fn take_ticket(
        &self,
        ticket: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<Option<UserId>, TableError>>;
    /// Records `connection_id` as `user`'s until `expires_at_s`.
    fn open(
        &self,
        user: &str,
        connection_id: &str,
        connected_at_ms: i64,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<(), TableError>>;
    /// Forgets `connection_id`; answers whose it was (`None`: unknown, or forgotten before).
    fn close(
        &self,
        connection_id: &str,
    ) -> impl Future<Output = Result<Option<UserId>, TableError>>;
    /// `user`'s connections that have not expired at `now_s`.
    fn of_user(
        &self,
        user: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<Vec<ConnectionId>, TableError>>;
    /// Forgets `user`'s `connection_id` (API Gateway answered 410: it is gone).
    fn forget(
        &self,
        user: &str,
        connection_id: &str,
    ) -> impl Future<Output = Result<(), TableError>>;
}

/// The connections table on DynamoDB.
pub struct AwsConnections {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".into(), s(pk.into())), ("sk".into(), s(sk.into()))])
}

impl Connections for AwsConnections {
    /// One DeleteItem (one write unit) that answers the old item, conditioned on the ticket
    /// being there and unexpired (TTL deletes lazily): used, expired and forged tickets all
    /// fail the condition.
    async fn take_ticket(&self, ticket: &str, now_s: i64) -> Result<Option<UserId>, TableError> {
        let (pk, sk) = ticket_key(ticket);
        let taken = (self.dynamodb.delete_item())
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression("attribute_exists(pk) AND expires_at > :now")
            .expression_attribute_values(":now", n(now_s))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match taken {
            Ok(output) => Ok((output.attributes.as_ref())
                .and_then(|a| a.get("user_id"))
                .and_then(|v| v.as_s().ok())
                .cloned()),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(TableError::from_sdk(&self.table, e)),
        }
    }

    /// One TransactWriteItems of the connection's two items (four write units): a
    /// connection is never half-recorded.
    async fn open(
        &self,
        user: &str,
        connection_id: &str,
        connected_at_ms: i64,
        expires_at_s: i64,
    ) -> Result<(), TableError> {
        let (upk, usk) = user_connection_key(user, connection_id);
        let (cpk, csk) = connection_key(connection_id);
        let put = |mut item: HashMap<String, AttributeValue>| {
            item.insert("expires_at".into(), n(expires_at_s));
            item.insert("connected_at".into(), n(connected_at_ms));
            item.insert("connection_id".into(), s(connection_id));
            item.insert("user_id".into(), s(user));
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .build()
                        .expect("table and item are set"),
                )
                .build()
        };
        (self.dynamodb.transact_write_items())
            .transact_items(put(key(upk, usk)))
            .transact_items(put(key(cpk, csk)))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.table, e))?;
        Ok(())
    }

    /// One DeleteItem answering the connection's item (its user), then one DeleteItem of the
    /// user's item. Both are idempotent: a repeated `$disconnect` finds nothing.
    async fn close(&self, connection_id: &str) -> Result<Option<UserId>, TableError> {
        let (pk, sk) = connection_key(connection_id);
        let output = (self.dynamodb.delete_item())
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.table, e))?;
        let user = (output.attributes.as_ref())
            .and_then(|a| a.get("user_id"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        if let Some(user) = &user {
            self.delete_user_item(user, connection_id).await?;
        }
        Ok(user)
    }

    /// One Query of the user's partition (a handful of connections: one per open tab), the
    /// expired ones filtered out.
    async fn of_user(&self, user: &str, now_s: i64) -> Result<Vec<ConnectionId>, TableError> {
        let output = (self.dynamodb.query())
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :conn)")
            .filter_expression("expires_at > :now")
            .projection_expression("connection_id")
            .expression_attribute_values(":pk", s(user_pk(user)))
            .expression_attribute_values(":conn", s("CONN#"))
            .expression_attribute_values(":now", n(now_s))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.table, e))?;
        Ok((output.items().iter())
            .filter_map(|i| i.get("connection_id")?.as_s().ok().cloned())
            .collect())
    }

    /// Two DeleteItems (the pusher knows the user already).
    async fn forget(&self, user: &str, connection_id: &str) -> Result<(), TableError> {
        let (pk, sk) = connection_key(connection_id);
        (self.dynamodb.delete_item())
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.table, e))?;
        self.delete_user_item(user, connection_id).await
    }
}

impl AwsConnections {
    /// One DeleteItem: `user`'s item of `connection_id` (the second half of `close` and
    /// `forget`).
    pub async fn delete_user_item(
        &self,
        user: &str,
        connection_id: &str,
    ) -> Result<(), TableError> {
        let (pk, sk) = user_connection_key(user, connection_id);
        (self.dynamodb.delete_item())
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(|e| TableError::from_sdk(&self.table, e))?;
        Ok(())
    }
}

/// The table in memory, for unit tests: tickets good once and until their expiry.
#[derive(Default)]
pub struct MemoryConnections {
    /// ticket → (user, expires at).
    pub tickets: Mutex<BTreeMap<String, (String, i64)>>,
    /// connection → (user, expires at).
    pub open: Mutex<BTreeMap<String, (String, i64)>>,
}

impl Connections for MemoryConnections {
    async fn take_ticket(&self, ticket: &str, now_s: i64) -> Result<Option<UserId>, TableError> {
        let taken = self.tickets.lock().unwrap().remove(ticket);
        Ok(taken
            .filter(|(_, expires)| *expires > now_s)
            .map(|(user, _)| user))
    }

    async fn open(&self, user: &str, id: &str, _: i64, expires: i64) -> Result<(), TableError> {
        (self.open.lock().unwrap()).insert(id.to_owned(), (user.to_owned(), expires));
        Ok(())
    }

    async fn close(&self, id: &str) -> Result<Option<UserId>, TableError> {
        Ok(self.open.lock().unwrap().remove(id).map(|(user, _)| user))
    }

    async fn of_user(&self, user: &str, now_s: i64) -> Result<Vec<ConnectionId>, TableError> {
        Ok((self.open.lock().unwrap().iter())
            .filter(|(_, (u, expires))| u == user && *expires > now_s)
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn forget(&self, _: &str, id: &str) -> Result<(), TableError> {
        self.open.lock().unwrap().remove(id);
        Ok(())
    }
}

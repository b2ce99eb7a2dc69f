//! The pusher: each change of an inbox (the notifications table's stream) sent to its user's
//! open connections, as `GET /me/notifications` would show it.
//!
//! A push is a courtesy, the inbox is the truth: a client refetches its inbox on every
//! (re)connect and keeps a slow poll, so a push that cannot be delivered is counted and
//! dropped, never retried into a blocked shard. A connection that answers `410 Gone` is
//! forgotten. Only reading what to send (names, thumbnails, the user's connections) fails the
//! batch when DynamoDB is unavailable: the mapping retries it a bounded number of times.

use api::views::NotificationView;
use aws_lambda_events::event::dynamodb::EventRecord;
use notifier::inbox::Notification;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;

use crate::connections::Connections;

/// API Gateway's largest WebSocket message is 128 KB; a push stays under it with room for the
/// envelope.
pub const MAX_MESSAGE_BYTES: usize = 120 * 1024;

/// One inbox item's change, from the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The notification as it now is.
    Now(Notification),
    /// The notification left the inbox (deleted, expired, or all its likes taken back): its
    /// key.
    Gone(String),
}

/// What one push message says: the notifications that are new or changed, and the keys of
/// those that left.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub items: &'a [NotificationView],
    pub removed: &'a [String],
}

/// One user's changes in a batch, and where they start in it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UserChanges {
    /// The sequence number of the user's first record.
    pub first: String,
    pub changes: Vec<Change>,
}

/// The inbox changes in `records`, by user; records of other items (owners, early likes,
/// receipts) are none.
pub fn changes(records: &[EventRecord], now_s: i64) -> BTreeMap<String, UserChanges> {
    let mut by_user: BTreeMap<String, UserChanges> = BTreeMap::new();
    for record in records {
        let keys = &record.change.keys;
        let text = |item: &serde_dynamo::Item, name: &str| match item.get(name) {
            Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        };
        let (Some(pk), Some(sk)) = (text(keys, "pk"), text(keys, "sk")) else {
            continue;
        };
        let Some(user) = pk.strip_prefix("USER#") else {
            continue;
        };
        if !notifier::inbox::is_notification_sk(&sk) {
            continue;
        }
        let now = (record.event_name != "REMOVE")
            .then(|| notifier::table::read_notification(&sdk_item(&record.change.new_image), now_s))
            .flatten();
        let change = match now {
            Some(notification) => Change::Now(notification),
            None => Change::Gone(sk),
        };
        let entry = by_user
            .entry(user.to_owned())
            .or_insert_with(|| UserChanges {
                first: record.change.sequence_number.clone().unwrap_or_default(),
                changes: Vec::new(),
            });
        // The latest change of a notification in the batch is what the inbox shows.
        entry.changes.retain(|c| key_of(c) != key_of(&change));
        entry.changes.push(change);
    }
    by_user
}

fn key_of(change: &Change) -> &str {
    match change {
        Change::Now(n) => &n.key,
        Change::Gone(key) => key,
    }
}

/// A stream image as the SDK's items (what the notifier's item readers take).
fn sdk_item(
    item: &serde_dynamo::Item,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    item.iter()
        .map(|(k, v)| (k.clone(), sdk_value(v)))
        .collect()
}

fn sdk_value(value: &serde_dynamo::AttributeValue) -> aws_sdk_dynamodb::types::AttributeValue {
    use aws_sdk_dynamodb::types::AttributeValue as Sdk;
    use serde_dynamo::AttributeValue as Stream;
    match value {
        Stream::N(n) => Sdk::N(n.clone()),
        Stream::S(s) => Sdk::S(s.clone()),
        Stream::Bool(b) => Sdk::Bool(*b),
        Stream::B(b) => Sdk::B(b.clone().into()),
        Stream::Null(n) => Sdk::Null(*n),
        Stream::M(m) => Sdk::M(m.iter().map(|(k, v)| (k.clone(), sdk_value(v))).collect()),
        Stream::L(l) => Sdk::L(l.iter().map(sdk_value).collect()),
        Stream::Ss(s) => Sdk::Ss(s.clone()),
        Stream::Ns(n) => Sdk::Ns(n.clone()),
        Stream::Bs(b) => Sdk::Bs(b.iter().map(|b| b.clone().into()).collect()),
    }
}

/// The push messages for one user's changes, each under [`MAX_MESSAGE_BYTES`].
pub fn messages(items: &[NotificationView], removed: &[String]) -> Vec<Vec<u8>> {
    let encode = |items: &[NotificationView], removed: &[String]| {
        serde_json::to_vec(&Message {
            kind: "notifications",
            items,
            removed,
        })
        .expect("views serialize")
    };
    // Each item's JSON once: a message is its items, commas, and a small envelope.
    let envelope = encode(&[], &[]).len();
    let sizes: Vec<usize> = (items.iter())
        .map(|item| serde_json::to_vec(item).expect("views serialize").len() + 1)
        .collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < items.len() {
        // One item always goes: a view is about 1 KB.
        let (mut end, mut size) = (start + 1, envelope + sizes[start]);
        while end < items.len() && size + sizes[end] <= MAX_MESSAGE_BYTES {
            size += sizes[end];
            end += 1;
        }
        out.push(encode(&items[start..end], &[]));
        start = end;
    }
    for chunk in removed.chunks(1000) {
        out.push(encode(&[], chunk));
    }
    out
}

/// What posting one message to a connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Delivered,
    /// `410 GoneException`: the connection is closed, or was never established.
    Gone,
}

/// A post that failed otherwise (throttling past the SDK's retries, a 5xx, a refusal).
#[derive(Debug, thiserror::Error)]
#[error("PostToConnection {connection} failed")]
pub struct PostError {
    pub connection: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The WebSocket API's management endpoint.
pub trait Poster {
    fn post(
        &self,
        connection_id: &str,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<Posted, PostError>>;
}

/// Turns notifications into what the inbox shows (names, thumbnails): the API's own views.
pub trait Compose {
    fn views(
        &self,
        notifications: Vec<Notification>,
    ) -> impl Future<Output = Result<Vec<NotificationView>, ComposeError>>;
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("composing the notifications")]
    Views(#[source] api::error::HandlerError),
    #[error("reading the user's connections")]
    Connections(#[source] snapglow::table::TableError),
}

impl<S: api::store::Store> Compose for api::handlers::Api<S> {
    async fn views(
        &self,
        notifications: Vec<Notification>,
    ) -> Result<Vec<NotificationView>, ComposeError> {
        self.notification_views(notifications)
            .await
            .map_err(ComposeError::Views)
    }
}

/// What a batch came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Users with an open connection that were sent something.
    pub users: usize,
    pub delivered: usize,
    /// Connections found gone (410) and forgotten.
    pub gone: usize,
    /// Posts that failed otherwise: dropped (the client's refetch and poll recover them).
    pub failed: usize,
    /// Where the batch must be tried again from when reading what to send failed: its first
    /// inbox record (`None`: done).
    pub retry_from: Option<String>,
}

/// Sends each user in `records` their inbox's changes, on every connection they have open:
/// one Query of connections per user, then the views of every user's notifications in one
/// composition (one read of thumbnails and one of names for the batch). When a read fails
/// (DynamoDB unavailable past the SDK's retries) nothing is sent, and `retry_from` is the
/// batch's first inbox record, where the mapping resumes.
pub async fn push(
    composer: &impl Compose,
    connections: &impl Connections,
    poster: &impl Poster,
    records: &[EventRecord],
    now_s: i64,
) -> Report {
    let by_user = changes(records, now_s);
    let ready = match read_all(composer, connections, by_user.iter(), now_s).await {
        Ok(ready) => ready,
        Err(error) => {
            tracing::warn!(error = %snapglow::telemetry::error_chain(&error), "pushes wait for a retry");
            let first = (records.iter())
                .filter_map(|r| r.change.sequence_number.clone())
                .find(|seq| by_user.values().any(|u| u.first == *seq));
            return Report {
                retry_from: first,
                ..Report::default()
            };
        }
    };
    let mut report = Report::default();
    for (user, mut open, views, removed) in ready {
        report.users += 1;
        for message in messages(&views, &removed) {
            let sends = open.iter().map(|id| poster.post(id, message.clone()));
            let mut gone = Vec::new();
            for (id, posted) in open.iter().zip(futures_util::future::join_all(sends).await) {
                match posted {
                    Ok(Posted::Delivered) => report.delivered += 1,
                    Ok(Posted::Gone) => {
                        report.gone += 1;
                        gone.push(id.clone());
                        // Forgetting is tidying: TTL removes the items anyway.
                        if let Err(error) = connections.forget(&user, id).await {
                            tracing::warn!(error = %snapglow::telemetry::error_chain(&error), connection = %id, "a gone connection was not forgotten");
                        }
                    }
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(error = %snapglow::telemetry::error_chain(&error), user, "a push was dropped");
                    }
                }
            }
            open.retain(|id| !gone.contains(id));
        }
    }
    report
}

/// A user with open connections, and what to send them: the views of their new and changed
/// notifications, and the keys of those that left.
type Ready = (String, Vec<String>, Vec<NotificationView>, Vec<String>);

/// Each user's open connections, and the views of the notifications of those who have some,
/// composed together.
async fn read_all<'a>(
    composer: &impl Compose,
    connections: &impl Connections,
    by_user: impl Iterator<Item = (&'a String, &'a UserChanges)>,
    now_s: i64,
) -> Result<Vec<Ready>, ComposeError> {
    let mut ready = Vec::new();
    let mut notifications = Vec::new();
    for (user, changes) in by_user {
        let open = (connections.of_user(user, now_s).await).map_err(ComposeError::Connections)?;
        if open.is_empty() {
            continue;
        }
        let mut removed = Vec::new();
        let mut count = 0;
        for change in &changes.changes {
            match change {
                Change::Now(n) => {
                    notifications.push(n.clone());
                    count += 1;
                }
                Change::Gone(key) => removed.push(key.clone()),
            }
        }
        ready.push((user.clone(), open, count, removed));
    }
    let mut views = composer.views(notifications).await?.into_iter();
    Ok(ready
        .into_iter()
        .map(|(user, open, count, removed)| {
            (user, open, views.by_ref().take(count).collect(), removed)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::MemoryConnections;
    use api::store::memory::MemoryStore;
    use serde_dynamo::AttributeValue as A;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// The management endpoint in memory: connections it knows are open; others are gone.
    #[derive(Default)]
    struct MemoryPoster {
        open: Vec<String>,
        sent: Mutex<Vec<(String, serde_json::Value)>>,
    }

    impl Poster for MemoryPoster {
        async fn post(&self, id: &str, data: Vec<u8>) -> Result<Posted, PostError> {
            if !self.open.iter().any(|o| o == id) {
                return Ok(Posted::Gone);
            }
            let message = serde_json::from_slice(&data).unwrap();
            self.sent.lock().unwrap().push((id.to_owned(), message));
            Ok(Posted::Delivered)
        }
    }

    fn item(fields: &[(&str, A)]) -> serde_dynamo::Item {
        serde_dynamo::Item::from(
            (fields.iter().map(|(k, v)| (k.to_string(), v.clone()))).collect::<HashMap<_, _>>(),
        )
    }

    fn record(event: &str, pk: &str, sk: &str, new: &[(&str, A)]) -> EventRecord {
        let mut record = EventRecord::default();
        record.event_name = event.to_owned();
        record.change.keys = item(&[("pk", A::S(pk.into())), ("sk", A::S(sk.into()))]);
        let mut fields = vec![("pk", A::S(pk.into())), ("sk", A::S(sk.into()))];
        fields.extend(new.iter().cloned());
        if event != "REMOVE" {
            record.change.new_image = item(&fields);
        }
        record
    }

    fn likes_item(image: &str, likers: &[&str]) -> Vec<(&'static str, A)> {
        vec![
            ("id", A::S(format!("likes-{image}-0"))),
            ("kind", A::S("likes".into())),
            ("image_id", A::S(image.into())),
            ("created_at", A::N("1000".into())),
            ("updated_at", A::N("2000".into())),
            ("unread", A::Bool(true)),
            ("likes", A::N(likers.len().to_string())),
            (
                "recent",
                A::L(likers.iter().map(|l| A::S(l.to_string())).collect()),
            ),
        ]
    }

    fn composer() -> api::handlers::Api<MemoryStore> {
        api::handlers::Api {
            store: MemoryStore::default(),
            limits: api::handlers::Limits {
                requests_per_minute: 1,
                max_upload_bytes: 1,
                uploads_per_hour: 1,
                upload_bytes_per_day: 1,
            },
            upload_url_ttl_seconds: 1,
            live_url: None,
        }
    }

    #[tokio::test]
    async fn an_inbox_change_reaches_its_users_open_connections_by_name_and_gone_ones_are_forgotten()
     {
        // Prepare: carol has two connections, one of them closed; bob none. bob named himself.
        let composer = composer();
        let profile = api::store::Profile {
            display_name: "Bob Okafor".into(),
            updated_at_ms: 1,
        };
        use api::store::Profiles;
        composer
            .store
            .put_profile("bob", &profile, false)
            .await
            .unwrap();
        let connections = MemoryConnections::default();
        for (user, id) in [("carol", "open="), ("carol", "closed=")] {
            connections.open(user, id, 0, i64::MAX).await.unwrap();
        }
        let poster = MemoryPoster {
            open: vec!["open=".into()],
            ..Default::default()
        };
        let sk = notifier::inbox::notification_sk(1000, "likes-p1-0");
        let records = [
            record("MODIFY", "USER#carol", &sk, &likes_item("p1", &["bob"])),
            // the owner item of an image, and bob's own inbox (he has no connection)
            record("INSERT", "IMAGE#p1", "OWNER", &[]),
            record(
                "INSERT",
                "USER#bob",
                &notifier::inbox::notification_sk(5, "published-p2"),
                &[],
            ),
        ];

        // Act
        let report = push(&composer, &connections, &poster, &records, 0).await;

        // Assess: one message on carol's open connection, as her inbox shows it
        assert_eq!(
            report,
            Report {
                users: 1,
                delivered: 1,
                gone: 1,
                failed: 0,
                retry_from: None
            }
        );
        let sent = poster.sent.lock().unwrap().clone();
        let (to, message) = &sent[0];
        assert_eq!(to, "open=");
        assert_eq!(message["type"], "notifications");
        assert_eq!(message["items"][0]["text"], "Bob Okafor liked your photo");
        assert_eq!(message["items"][0]["id"], sk.as_str());
        assert_eq!(
            message["items"][0]["updated_at"],
            "1970-01-01T00:00:02.000Z"
        );
        assert_eq!(connections.of_user("carol", 0).await.unwrap(), ["open="]);
    }

    #[tokio::test]
    async fn a_notification_that_left_the_inbox_is_pushed_as_removed() {
        let composer = composer();
        let connections = MemoryConnections::default();
        connections.open("carol", "c=", 0, i64::MAX).await.unwrap();
        let poster = MemoryPoster {
            open: vec!["c=".into()],
            ..Default::default()
        };
        let sk = notifier::inbox::notification_sk(1000, "likes-p1-0");
        // the last like taken back (no likes left), then a deletion of another notification
        let other = notifier::inbox::notification_sk(7, "published-p9");
        let records = [
            record("MODIFY", "USER#carol", &sk, &likes_item("p1", &[])),
            record("REMOVE", "USER#carol", &other, &[]),
        ];

        let report = push(&composer, &connections, &poster, &records, 0).await;

        assert_eq!(report.delivered, 1);
        let sent = poster.sent.lock().unwrap();
        assert_eq!(sent[0].1["removed"], serde_json::json!([sk, other]));
        assert_eq!(sent[0].1["items"], serde_json::json!([]));
    }

    /// A management endpoint that refuses every post (throttling past the SDK's retries).
    struct Refusing;

    impl Poster for Refusing {
        async fn post(&self, id: &str, _: Vec<u8>) -> Result<Posted, PostError> {
            Err(PostError {
                connection: id.to_owned(),
                source: "LimitExceededException".into(),
            })
        }
    }

    /// Reads of names and thumbnails that fail (DynamoDB unavailable).
    struct Unavailable;

    impl Compose for Unavailable {
        async fn views(&self, _: Vec<Notification>) -> Result<Vec<NotificationView>, ComposeError> {
            Err(ComposeError::Connections(
                snapglow::table::TableError::rejected("images", "unavailable"),
            ))
        }
    }

    #[tokio::test]
    async fn a_refused_push_is_dropped_and_a_failed_read_retries_from_its_users_first_record() {
        // Prepare: carol and dan connected, a change for each
        let connections = MemoryConnections::default();
        connections.open("carol", "c=", 0, i64::MAX).await.unwrap();
        connections.open("dan", "d=", 0, i64::MAX).await.unwrap();
        let mut first = record(
            "INSERT",
            "USER#carol",
            &notifier::inbox::notification_sk(1, "likes-p1-0"),
            &likes_item("p1", &["bob"]),
        );
        first.change.sequence_number = Some("100".into());
        let mut second = record(
            "INSERT",
            "USER#dan",
            &notifier::inbox::notification_sk(2, "likes-p2-0"),
            &likes_item("p2", &["bob"]),
        );
        second.change.sequence_number = Some("200".into());
        let records = [first, second];

        // Act
        let refused = push(&composer(), &connections, &Refusing, &records, 0).await;
        let unreadable = push(&Unavailable, &connections, &Refusing, &records, 0).await;

        // Assess: refused posts are counted and dropped, nothing retried; a failed read stops
        // the batch at carol's first record, where the mapping retries it
        assert_eq!(
            (refused.failed, refused.delivered, refused.retry_from),
            (2, 0, None)
        );
        assert_eq!(unreadable.retry_from.as_deref(), Some("100"));
        assert_eq!(
            connections.of_user("carol", 0).await.unwrap(),
            ["c="],
            "not forgotten"
        );
    }

    #[tokio::test]
    async fn a_batch_reads_names_and_thumbnails_once_for_all_its_users() {
        // Prepare: carol and dan connected, each with a like of bob's in the batch
        let composer = composer();
        let connections = MemoryConnections::default();
        connections.open("carol", "c=", 0, i64::MAX).await.unwrap();
        connections.open("dan", "d=", 0, i64::MAX).await.unwrap();
        let poster = MemoryPoster {
            open: vec!["c=".into(), "d=".into()],
            ..Default::default()
        };
        let records = [
            record(
                "INSERT",
                "USER#carol",
                &notifier::inbox::notification_sk(1, "likes-p1-0"),
                &likes_item("p1", &["bob"]),
            ),
            record(
                "INSERT",
                "USER#dan",
                &notifier::inbox::notification_sk(2, "likes-p2-0"),
                &likes_item("p2", &["bob"]),
            ),
        ];

        // Act
        let report = push(&composer, &connections, &poster, &records, 0).await;

        // Assess: both told, each of their own photo, from one read of names
        assert_eq!((report.users, report.delivered), (2, 2));
        let sent = poster.sent.lock().unwrap().clone();
        let photo_of = |to: &str| {
            (sent.iter().find(|(id, _)| id == to)).map(|(_, m)| m["items"][0]["image_id"].clone())
        };
        assert_eq!(
            (photo_of("c="), photo_of("d=")),
            (Some("p1".into()), Some("p2".into()))
        );
        assert_eq!(*composer.store.name_reads.lock().unwrap(), 1);
    }

    #[test]
    fn a_large_push_is_split_into_messages_under_api_gateways_limit() {
        let view = |i: usize| NotificationView {
            id: format!("N#{i:013}#likes-x-0"),
            kind: "likes".into(),
            image_id: "x".into(),
            text: "y".repeat(2000),
            actors: vec![],
            actor_names: vec![],
            likes: Some(1),
            unread: true,
            created_at: String::new(),
            updated_at: String::new(),
            thumbnail: None,
        };
        let views: Vec<_> = (0..200).map(view).collect();
        let sent = messages(&views, &["N#1#gone".into()]);
        assert!(sent.len() >= 4, "{}", sent.len());
        assert!(sent.iter().all(|m| m.len() <= MAX_MESSAGE_BYTES));
        let items: usize = (sent.iter())
            .map(|m| {
                serde_json::from_slice::<serde_json::Value>(m).unwrap()["items"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(items, 200);
        assert!(
            messages(&[], &[]).is_empty(),
            "nothing to say, nothing sent"
        );
    }
}

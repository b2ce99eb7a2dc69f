//! `GET /me/notifications` and `POST /me/notifications/read`: the caller's inbox, which the
//! notifier writes.

use notifier::inbox::{Kind, is_notification_sk, likes_text};
use serde::Deserialize;
use snapglow::batch::Deadline;
use std::collections::{BTreeSet, HashMap};

use super::{Api, PAGE_MAX, WRITE_BUDGET};
use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::problem::Problem;
use crate::store::{Listing, Notification, Store};
use crate::views::{Marked, NotificationView, Page, Thumbnail};

/// The most notifications one request may mark read: a page of the web client's inbox (20)
/// with room. Each id is at most one write; more per request would let one request buy many.
pub const MARK_MAX: usize = 25;
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadRequest {
    ids: Vec<String>,
}

impl<S: Store> Api<S> {
    pub(super) async fn my_notifications(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let (limit, cursor) = request.page(PAGE_MAX, &Listing::inbox_of(sub))?;
        let (notifications, next) = self.store.inbox(sub, limit, cursor).await?;
        let items = self.notification_views(notifications).await?;
        Ok(ApiResponse::json(200, &Page::of(items, next)))
    }

    /// `notifications` as the inbox shows them: with their photos' thumbnails (one read for
    /// the page, one presigned URL each: no request) and the names of the people they are
    /// about (one read per 100 of them). The pusher sends exactly these.
    pub async fn notification_views(
        &self,
        notifications: Vec<Notification>,
    ) -> Result<Vec<NotificationView>, HandlerError> {
        // The photos the page is about: one read for the page, one presigned URL each (no
        // request).
        let ids: Vec<String> = notifications.iter().map(|n| n.image_id.clone()).collect();
        let renditions = self.store.thumbnails(&ids).await?;
        let mut thumbnails = HashMap::new();
        for (id, r) in renditions {
            let thumbnail = Thumbnail {
                url: self.store.rendition_url(&r.key).await?,
                width: r.width,
                height: r.height,
            };
            thumbnails.insert(id, thumbnail);
        }
        // The people the page names: one read per 100 of them (a page names at most 3 each).
        let people: Vec<String> = notifications
            .iter()
            .flat_map(|n| n.actors.clone())
            .collect();
        let names = self.names(&people).await?;
        Ok(notifications
            .into_iter()
            .map(|n| {
                let actor_names: Vec<String> = n.actors.iter().map(|a| names.of(a)).collect();
                let text = match (n.kind, n.likes) {
                    (Kind::Likes, Some(count)) => likes_text(&actor_names, count),
                    _ => n.text.clone(),
                };
                (n, text, actor_names)
            })
            .map(|(n, text, actor_names)| NotificationView {
                id: n.key,
                kind: n.kind.as_str().to_owned(),
                thumbnail: thumbnails.get(&n.image_id).cloned(),
                image_id: n.image_id,
                text,
                actors: n.actors,
                actor_names,
                likes: n.likes,
                unread: n.unread,
                created_at: n.created_at,
                updated_at: n.updated_at,
            })
            .collect())
    }

    pub(super) async fn read_notifications(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let asked: ReadRequest = request.json_body()?;
        if !(1..=MARK_MAX).contains(&asked.ids.len()) {
            return Err(Problem::invalid_body(format!(
                "ids must name 1 to {MARK_MAX} notifications, not {}",
                asked.ids.len()
            ))
            .into());
        }
        // An id no notification can have is the client's mistake, answered before any read:
        // DynamoDB would refuse an empty or over-long key as invalid (a 500).
        if let Some(bad) = asked.ids.iter().find(|id| !is_notification_sk(id)) {
            return Err(Problem::invalid_body(format!(
                "{bad:?} is not a notification id; send the ids GET /me/notifications answers"
            ))
            .into());
        }
        let ids: Vec<String> = (asked.ids.into_iter().collect::<BTreeSet<_>>())
            .into_iter()
            .collect();
        let deadline = Deadline::after(WRITE_BUDGET);
        let marked = self.store.mark_read(sub, &ids, &deadline).await?;
        Ok(ApiResponse::json(200, &Marked { marked }))
    }
}

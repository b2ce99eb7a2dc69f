//! `GET /me/notifications` and `POST /me/notifications/read`: the caller's inbox, which the
//! notifier writes.

use serde::Deserialize;
use snapglow::batch::Deadline;
use std::time::Duration;

use super::{Api, PAGE_MAX};
use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::problem::Problem;
use crate::store::Store;
use crate::views::{Marked, NotificationView, Page};

/// DynamoDB's largest sort key: a longer id names no notification.
const MAX_ID_BYTES: usize = 1024;
/// How long one request's marks may keep retrying busy writes: half the function's 10 s
/// timeout, as the reads' budget.
const WRITE_BUDGET: Duration = Duration::from_secs(5);

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
        let (limit, cursor) = request.page(PAGE_MAX)?;
        let refused = HandlerError::listing(cursor.is_some());
        let (notifications, next) =
            (self.store.inbox(sub, limit, cursor).await).map_err(refused)?;
        let items = notifications
            .into_iter()
            .map(|n| NotificationView {
                id: n.key,
                kind: n.kind.as_str().to_owned(),
                image_id: n.image_id,
                text: n.text,
                actors: n.actors,
                likes: n.likes,
                unread: n.unread,
                created_at: n.created_at,
            })
            .collect();
        Ok(ApiResponse::json(200, &Page::of(items, next)))
    }

    pub(super) async fn read_notifications(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let asked: ReadRequest = request.json_body()?;
        if asked.ids.is_empty() || asked.ids.len() > PAGE_MAX as usize {
            return Err(Problem::invalid_body(format!(
                "ids must name 1 to {PAGE_MAX} notifications"
            ))
            .into());
        }
        let mut marked = 0;
        let deadline = Deadline::after(WRITE_BUDGET);
        // An id no notification can have (empty, or longer than a sort key may be) marks
        // nothing, without a request DynamoDB would refuse as invalid (a 500).
        for id in (asked.ids.iter()).filter(|id| (1..=MAX_ID_BYTES).contains(&id.len())) {
            marked += usize::from(self.store.mark_read(sub, id, &deadline).await?);
        }
        Ok(ApiResponse::json(200, &Marked { marked }))
    }
}

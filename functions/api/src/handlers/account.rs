//! `DELETE /me`: the caller's account erased, resumably. A call does what fits before its
//! invocation ends and answers 202 (call again after `Retry-After`) until nothing is left,
//! then 204:
//!
//! 1. the account is marked erased: from then on its writes are refused (403), also with a
//!    token issued before, which API Gateway's JWT authorizer accepts until it expires;
//! 2. every photo it owns is taken back as `DELETE /images/{id}` does (pending uploads too),
//!    each with its `ImageDeleted`: the consumers erase the counts, inboxes and files;
//! 3. every like it gave is taken back with its `ImageLikeUndone` (counts fall, its name
//!    leaves the owners' notifications) and leaves the `by-liker` index, TTL removing it;
//! 4. once [`SETTLE`] has passed since the mark with both listings empty, its profile is
//!    deleted and its user from the user pool, and only then does the mark start to expire.
//!
//! Each step is idempotent: a call cut short (its time, a crash, a timeout) is finished by
//! the next, which finds only what is left. The listings are indexes (eventually consistent):
//! an item this call already handled may still be listed, and then the call answers 202
//! rather than loop on it; one written just before the mark may be listed late, which the
//! settling time covers.

use snapglow::batch::Deadline;
use snapglow::contracts::{Envelope, SocialEvent, Timestamp};
use std::collections::HashSet;
use std::time::Duration;

use super::{Api, next_like};
use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::store::{GivenLike, LikeChange, Status, Store};

/// How long after the mark the erasure may answer 204: longer than a write that read no mark
/// just before it can still take to land (the function's 10 s timeout) and than the indexes
/// usually lag behind it (DynamoDB states no bound: a margin). Until then, an empty listing
/// may be one that has not seen a last write yet: 202, look again.
pub const SETTLE: Duration = Duration::from_secs(15);

/// How long the mark outlives the user's deletion from the pool: longer than any access
/// token can live (Cognito allows at most a day), so no token issued before outlives it.
/// With another issuer, which may issue tokens for the same `sub` again, it stays for good.
pub const ERASED_MARK_KEPT: Duration = Duration::from_secs(2 * 86_400);

/// How long a retired like item is kept before TTL removes it: the relay has long published
/// its last event by then.
const RETIRED_LIKE_KEPT: Duration = Duration::from_secs(86_400);

/// Photos or likes listed per read.
const PAGE: i32 = 25;

/// What one pass over a listing came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The listing is empty.
    Done,
    /// Out of time, or the listing still shows only what this call handled (the index
    /// lags behind the writes): the next call goes on.
    Later,
}

impl<S: Store> Api<S> {
    pub(super) async fn delete_me(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let deadline = match request.deadline_ms {
            Some(ms) => Deadline::from_epoch_millis(ms.max(0) as u64),
            None => Deadline::after(Duration::from_secs(10)),
        };
        let now = Timestamp::now().millis();
        let marked_at = self.store.mark_erased(sub, now).await?;
        if self.erase_photos(sub, request, &deadline).await? == Pass::Later
            || self.withdraw_likes(sub, request, &deadline).await? == Pass::Later
        {
            return Ok(ApiResponse::accepted_retry(1));
        }
        let settled_at = marked_at + SETTLE.as_millis() as i64;
        if Timestamp::now().millis() < settled_at {
            let wait = (settled_at - Timestamp::now().millis()).div_euclid(1000) + 1;
            return Ok(ApiResponse::accepted_retry(wait.max(1) as u64));
        }
        if !enough_time(&deadline) {
            return Ok(ApiResponse::accepted_retry(1));
        }
        // The pool knows the user by their username (a Cognito access token's `username`);
        // an issuer without one names them by `sub`.
        let username = request.username.as_deref().unwrap_or(sub);
        // The name goes with the user: pages that still list something of theirs (a
        // notification's actor) show them unnamed.
        let until = Timestamp::now().millis() / 1000 + ERASED_MARK_KEPT.as_secs() as i64;
        self.store.erase_profile(sub, until).await?;
        if self.store.delete_user(username).await? {
            let until = Timestamp::now().millis() / 1000 + ERASED_MARK_KEPT.as_secs() as i64;
            self.store.settle_mark(sub, until).await?;
        }
        tracing::info!(user = sub, "account erased");
        Ok(ApiResponse::no_content())
    }

    async fn erase_photos(
        &self,
        sub: &str,
        request: &ApiRequest,
        deadline: &Deadline,
    ) -> Result<Pass, HandlerError> {
        let mut handled = HashSet::new();
        loop {
            if !enough_time(deadline) {
                return Ok(Pass::Later);
            }
            let (page, _) = self.store.my_images(sub, PAGE, None).await?;
            let listed = page.len();
            let left: Vec<String> = (page.into_iter())
                .filter(|i| i.status != Status::Deleted && !handled.contains(&i.image_id))
                .map(|i| i.image_id)
                .collect();
            if left.is_empty() {
                return Ok(if listed == 0 { Pass::Done } else { Pass::Later });
            }
            for id in left {
                if !enough_time(deadline) {
                    return Ok(Pass::Later);
                }
                self.take_back(sub, &id, request, true).await?;
                handled.insert(id);
            }
        }
    }

    async fn withdraw_likes(
        &self,
        sub: &str,
        request: &ApiRequest,
        deadline: &Deadline,
    ) -> Result<Pass, HandlerError> {
        let mut handled = HashSet::new();
        loop {
            if !enough_time(deadline) {
                return Ok(Pass::Later);
            }
            let page = self.store.likes_given(sub, PAGE).await?;
            let listed = page.len();
            let left: Vec<GivenLike> = (page.into_iter())
                .filter(|like| !handled.contains(&like.image_id))
                .collect();
            if left.is_empty() {
                return Ok(if listed == 0 { Pass::Done } else { Pass::Later });
            }
            for like in left {
                if !enough_time(deadline) {
                    return Ok(Pass::Later);
                }
                self.retire_like(sub, &like, request).await?;
                handled.insert(like.image_id);
            }
        }
    }

    /// Takes one like back (with its event, when it stands) and out of the listing, over
    /// the state it holds: the listing's copy first, then the item read strongly consistent.
    async fn retire_like(
        &self,
        sub: &str,
        like: &GivenLike,
        request: &ApiRequest,
    ) -> Result<(), HandlerError> {
        let id = &like.image_id;
        let expires = Timestamp::now().millis() / 1000 + RETIRED_LIKE_KEPT.as_secs() as i64;
        let mut state = Some(like.state);
        for _ in 0..3 {
            let Some(current) = state else {
                // Gone already (the eraser deletes a deleted photo's likes).
                return Ok(());
            };
            let unlike = next_like(Some(current), false, Timestamp::now().millis()).map(|next| {
                let envelope = Envelope {
                    event_id: uuid::Uuid::new_v4(),
                    occurred_at: Timestamp::from_millis(next.occurred_at_ms),
                    correlation_id: request.correlation_id.clone(),
                    producer: "api".into(),
                    event: SocialEvent::like(id, sub, false, Some(next.revision)),
                };
                LikeChange {
                    image_id: id.clone(),
                    user_id: sub.to_owned(),
                    previous: Some(current),
                    next,
                    event_id: envelope.event_id.to_string(),
                    event_json: String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
                }
            });
            let retired = (self.store)
                .retire_like(id, sub, current.revision, unlike.as_ref(), expires)
                .await?;
            if retired {
                return Ok(());
            }
            state = self.store.like_state(id, sub).await?;
        }
        Err(crate::problem::Problem::busy("a like changed under the erasure; retry").into())
    }
}

/// Whether one more step (at most two calls, each within its operation timeout) fits before
/// the invocation's end: a step is never cut off by the platform's timeout.
fn enough_time(deadline: &Deadline) -> bool {
    deadline.remaining() > 2 * snapglow::aws::call_margin()
}

//! `PUT` and `DELETE /images/{id}/like`: a like state change written with its event in one
//! conditional write (the relay publishes the event from the table's stream).

use snapglow::contracts::{Envelope, SocialEvent, Timestamp};

use super::{Api, PAGE_MAX};
use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::problem::Problem;
use crate::store::{LikeChange, LikeState, Listing, Status, Store};
use crate::views::{LikeView, LikerView, Page};

/// Attempts at a like change when other requests of the same user keep changing it.
const LIKE_ATTEMPTS: usize = 3;

/// How long a like written just after its image was deleted is kept before TTL removes it:
/// the relay publishes its event meanwhile, which every consumer ignores.
const LATE_LIKE_KEPT_S: i64 = 86_400;

/// The next like state for a request, or `None` when the state already is what was asked
/// (a repeated PUT or DELETE changes nothing and emits nothing). `occurred_at` never goes
/// back for one (image, user): consumers that order by time agree with the revision order.
pub fn next_like(previous: Option<LikeState>, liked: bool, now_ms: i64) -> Option<LikeState> {
    match previous {
        Some(state) if state.liked == liked => None,
        None if !liked => None,
        Some(state) => Some(LikeState {
            liked,
            revision: state.revision + 1,
            occurred_at_ms: now_ms.max(state.occurred_at_ms + 1),
        }),
        None => Some(LikeState {
            liked,
            revision: 1,
            occurred_at_ms: now_ms,
        }),
    }
}

impl<S: Store> Api<S> {
    /// `GET /images/{id}/likes`: who likes a photo the caller may see, by name: one Query of
    /// the image's like items and one BatchGetItem of their names per page.
    pub(super) async fn likers(
        &self,
        sub: &str,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let (limit, cursor) = request.page(PAGE_MAX, &Listing::likers_of(id))?;
        self.visible_image(sub, id).await?;
        let (likers, next) = self.store.likers(id, limit, cursor).await?;
        let ids: Vec<String> = likers.iter().map(|l| l.user_id.clone()).collect();
        let names = self.names(&ids).await?;
        let items = (likers.into_iter())
            .map(|l| LikerView {
                display_name: names.of(&l.user_id),
                user_id: l.user_id,
                liked_at: Timestamp::from_millis(l.occurred_at_ms).to_string(),
            })
            .collect();
        Ok(ApiResponse::json(200, &Page::of(items, next)))
    }

    /// Whether the image is still published, read strongly consistent.
    async fn still_published(&self, id: &str) -> Result<bool, HandlerError> {
        let image = self.store.image(id).await?;
        Ok(image.is_some_and(|i| i.status == Status::Published))
    }

    pub(super) async fn set_like(
        &self,
        sub: &str,
        id: &str,
        liked: bool,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let image = self.visible_image(sub, id).await?;
        if image.status != Status::Published {
            return Err(Problem::not_published(format!(
                "image {id} is {}; only published images can be liked",
                image.status.as_str()
            ))
            .into());
        }
        let view = |liked, revision| {
            let image_id = id.to_owned();
            ApiResponse::json(
                200,
                &LikeView {
                    image_id,
                    liked,
                    revision,
                },
            )
        };
        for _ in 0..LIKE_ATTEMPTS {
            let previous = self.store.like_state(id, sub).await?;
            let Some(next) = next_like(previous, liked, Timestamp::now().millis()) else {
                let (liked, revision) = previous.map_or((false, 0), |s| (s.liked, s.revision));
                return Ok(view(liked, revision));
            };
            let envelope = Envelope {
                event_id: uuid::Uuid::new_v4(),
                occurred_at: Timestamp::from_millis(next.occurred_at_ms),
                correlation_id: request.correlation_id.clone(),
                producer: "api".into(),
                event: SocialEvent::like(id, sub, liked, Some(next.revision)),
            };
            let change = LikeChange {
                image_id: id.to_owned(),
                user_id: sub.to_owned(),
                previous,
                next,
                event_id: envelope.event_id.to_string(),
                event_json: String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
            };
            if self.store.write_like(&change).await? {
                // HAZARD: the image was read before the write, and its owner may have taken
                // it back in between: a like item written over the tombstone would outlive
                // the eraser, which deletes the likes it finds. Read it again; if it is gone,
                // retire this like (TTL removes it) and answer as for any image gone.
                if !self.still_published(id).await? {
                    let expires = Timestamp::now().millis() / 1000 + LATE_LIKE_KEPT_S;
                    (self.store)
                        .retire_like(id, sub, next.revision, None, expires)
                        .await?;
                    return Err(Problem::not_found(format!("no image {id}")).into());
                }
                return Ok(view(liked, next.revision));
            }
            // Another request of this user changed the state in between: decide again on it.
        }
        Err(Problem::busy("the like changed under concurrent requests; retry").into())
    }
}

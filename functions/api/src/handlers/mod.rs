//! One request, end to end, in plain types: the route, the caller (the token's `sub`, which
//! API Gateway's JWT authorizer verified), the body, and the store. Nothing here knows
//! lambda_http; the tests drive it with the in-memory store.
//!
//! One file per resource: `uploads.rs` (POST /uploads), `images.rs` (an image, the caller's
//! images), `deletion.rs` (DELETE /images/{id}), `account.rs` (DELETE /me), `likes.rs` (PUT and DELETE of a like, who likes an image), `feed.rs`,
//! `notifications.rs` (the inbox), `profile.rs` (the caller's name, and the names a page
//! shows).
//! Each handler answers `Result<ApiResponse, HandlerError>`; [`Api::handle`] turns an error
//! into its problem once.

mod account;
pub(crate) mod deletion;
mod feed;
mod images;
mod likes;
mod live;
mod notifications;
mod profile;
mod uploads;

pub use likes::next_like;
pub use uploads::{ACCEPTED_TYPES, hour_start};

use snapglow::contracts::Timestamp;
use std::time::Duration;

use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::problem::Problem;
use crate::routes::{NoRoute, Route, route};
use crate::store::Store;

/// The largest page of a listing.
const PAGE_MAX: i32 = 100;

/// How long one request's writes may keep retrying busy items: half the function's 10 s
/// timeout, as the reads' budget.
const WRITE_BUDGET: Duration = Duration::from_secs(5);

/// The API over a [`Store`].
pub struct Api<S> {
    pub store: S,
    pub limits: Limits,
    pub upload_url_ttl_seconds: u64,
    /// The WebSocket API's URL (`wss://…/{stage}`; `None`: the stack has no live push).
    pub live_url: Option<String>,
}

/// What one user may ask of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute, on every route together.
    pub requests_per_minute: u64,
    pub max_upload_bytes: u64,
    pub uploads_per_hour: u64,
    /// Bytes of uploads issued per UTC day.
    pub upload_bytes_per_day: u64,
}

impl<S: Store> Api<S> {
    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let correlation_id = request.correlation_id.clone();
        let mut response = match self.route(&request).await {
            Ok(response) => response,
            Err(error) => ApiResponse::problem(&error.into_problem(&correlation_id)),
        };
        response
            .headers
            .push(("x-correlation-id".into(), correlation_id));
        response
    }

    async fn route(&self, request: &ApiRequest) -> Result<ApiResponse, HandlerError> {
        let route = route(&request.method, &request.path).map_err(|no| match no {
            NoRoute::NotFound => {
                Problem::not_found(format!("no route {} {}", request.method, request.path))
            }
            NoRoute::MethodNotAllowed { allowed } => Problem::method_not_allowed(allowed),
        })?;
        let Some(sub) = request.sub.as_deref().filter(|s| !s.is_empty()) else {
            return Err(Problem::unauthorized().into());
        };
        // HAZARD: a Cognito ID token passes the JWT authorizer's audience check too (its `aud`
        // is the client id). It is for the client to read, not a grant: only access tokens,
        // which sign-out revokes with their refresh token, are accepted. The authorizer's
        // required scope refuses ID tokens first; this holds if a route ever loses it.
        if request
            .token_use
            .as_deref()
            .is_some_and(|use_| use_ != "access")
        {
            return Err(Problem::not_an_access_token().into());
        }
        if route.writes() {
            // An erased account's token may outlive it (API Gateway checks only the
            // signature and expiry): its writes stop at the mark. Read beside the counter.
            let (counted, erased) = tokio::join!(self.count_request(sub), self.store.erased(sub));
            counted?;
            if erased? {
                return Err(Problem::account_erased().into());
            }
        } else {
            self.count_request(sub).await?;
        }
        match route {
            Route::CreateUpload => self.create_upload(sub, request).await,
            Route::GetImage { id } => self.get_image(sub, &id).await,
            Route::DeleteImage { id } => self.delete_image(sub, &id, request).await,
            Route::Like { id } => self.set_like(sub, &id, true, request).await,
            Route::Unlike { id } => self.set_like(sub, &id, false, request).await,
            Route::Feed => self.feed(sub, request).await,
            Route::MyImages => self.my_images(sub, request).await,
            Route::MyNotifications => self.my_notifications(sub, request).await,
            Route::ReadNotifications => self.read_notifications(sub, request).await,
            Route::DeleteMe => self.delete_me(sub, request).await,
            Route::Likers { id } => self.likers(sub, &id, request).await,
            Route::GetProfile => self.get_profile(sub, request).await,
            Route::PutProfile => self.put_profile(sub, request).await,
            Route::LiveTicket => self.live_ticket(sub).await,
        }
    }

    /// Counts the request in its user's minute: past the limit, 429 with the seconds left in
    /// the minute. One user's flood is refused here while every other user goes on; API
    /// Gateway's route throttles stay as the ceiling for all of them together.
    async fn count_request(&self, sub: &str) -> Result<(), HandlerError> {
        let now_ms = Timestamp::now().millis();
        let minute = now_ms - now_ms.rem_euclid(60_000);
        let limit = self.limits.requests_per_minute;
        if self.store.take_request(sub, minute, limit).await? {
            Ok(())
        } else {
            let retry_after = ((minute + 60_000 - now_ms) / 1000).max(1) as u64;
            Err(Problem::too_many_requests(limit, retry_after).into())
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_people;

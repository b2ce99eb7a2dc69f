//! One request, end to end, in plain types: the route, the caller (the token's `sub`, which
//! API Gateway's JWT authorizer verified), the body, and the store. Nothing here knows
//! lambda_http; the tests drive it with the in-memory store.
//!
//! One file per resource: `uploads.rs` (POST /uploads), `images.rs` (an image, the caller's
//! images), `likes.rs` (PUT and DELETE of a like), `feed.rs`, `notifications.rs` (the inbox).
//! Each handler answers `Result<ApiResponse, HandlerError>`; [`Api::handle`] turns an error
//! into its problem once.

mod feed;
mod images;
mod likes;
mod notifications;
mod uploads;

pub use likes::next_like;
pub use uploads::{ACCEPTED_TYPES, hour_start};

use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::problem::Problem;
use crate::routes::{NoRoute, Route, route};
use crate::store::Store;

/// The largest page of a listing.
const PAGE_MAX: i32 = 100;

/// The API over a [`Store`].
pub struct Api<S> {
    pub store: S,
    pub max_upload_bytes: u64,
    pub uploads_per_hour: u64,
    pub upload_url_ttl_seconds: u64,
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
        match route {
            Route::CreateUpload => self.create_upload(sub, request).await,
            Route::GetImage { id } => self.get_image(sub, &id).await,
            Route::Like { id } => self.set_like(sub, &id, true, request).await,
            Route::Unlike { id } => self.set_like(sub, &id, false, request).await,
            Route::Feed => self.feed(sub, request).await,
            Route::MyImages => self.my_images(sub, request).await,
            Route::MyNotifications => self.my_notifications(sub, request).await,
            Route::ReadNotifications => self.read_notifications(sub, request).await,
        }
    }
}

#[cfg(test)]
mod tests;

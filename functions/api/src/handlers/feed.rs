//! `GET /feed`: recently published images of everyone, newest first, with their counts and
//! the caller's likes.

use snapglow::contracts::Timestamp;

use super::Api;
use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::store::{Listing, Store};
use crate::views::{FeedItem, Page, Thumbnail};

/// A feed page reads two keys per image in one BatchGetItem, which takes 100.
const FEED_PAGE_MAX: i32 = 50;

impl<S: Store> Api<S> {
    /// A page of the feed: one Query of the by-publication index, one BatchGetItem for the
    /// counts and the caller's likes, one for the owners' names, and one presigned URL per
    /// thumbnail (no request).
    pub(super) async fn feed(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let (limit, cursor) = request.page(FEED_PAGE_MAX, &Listing::feed())?;
        let (images, next) = self.store.feed(limit, cursor).await?;
        let ids: Vec<String> = images.iter().map(|i| i.image_id.clone()).collect();
        let likes = self.store.likes_of(&ids, sub).await?;
        let owners: Vec<String> = images.iter().map(|i| i.owner_id.clone()).collect();
        let names = self.names(&owners).await?;
        let mut items = Vec::with_capacity(images.len());
        for image in images {
            let thumbnail = match image.renditions.iter().min_by_key(|r| r.width) {
                Some(r) => Some(Thumbnail {
                    url: self.store.rendition_url(&r.key).await?,
                    width: r.width,
                    height: r.height,
                }),
                None => None,
            };
            let (count, mine) = likes.get(&image.image_id).copied().unwrap_or_default();
            items.push(FeedItem {
                owner_name: names.of(&image.owner_id),
                owner_id: image.owner_id,
                published_at: Timestamp::from_millis(
                    image.published_at_ms.unwrap_or(image.created_at_ms),
                )
                .to_string(),
                image_id: image.image_id,
                thumbnail,
                placeholder: image.details.placeholder,
                likes: count,
                liked_by_me: mine,
            });
        }
        Ok(ApiResponse::json(200, &Page::of(items, next)))
    }
}

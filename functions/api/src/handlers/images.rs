//! `GET /images/{id}` and `GET /me/images`: what a caller may see of an image, and their own.

use snapglow::contracts::Timestamp;

use super::{Api, PAGE_MAX};
use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::problem::Problem;
use crate::store::{ImageRecord, Listing, Status, Store};
use crate::views::{ImageView, MyImageView, Page, RenditionView};

impl<S: Store> Api<S> {
    /// The image if `sub` may see it: published images to everyone, the others but deleted
    /// ones to their owner.
    pub(super) async fn visible_image(
        &self,
        sub: &str,
        id: &str,
    ) -> Result<ImageRecord, HandlerError> {
        match self.store.image(id).await? {
            Some(image) if image.status == Status::Published => Ok(image),
            Some(image) if image.owner_id == sub && image.status != Status::Deleted => Ok(image),
            _ => Err(Problem::not_found(format!("no image {id}")).into()),
        }
    }

    pub(super) async fn get_image(&self, sub: &str, id: &str) -> Result<ApiResponse, HandlerError> {
        let image = self.visible_image(sub, id).await?;
        let (likes, liked_by_me) = if image.status == Status::Published {
            let count = self.store.like_count(id).await?;
            let mine = self.store.like_state(id, sub).await?;
            (count, mine.is_some_and(|s| s.liked))
        } else {
            (0, false)
        };
        let owner = self.names(std::slice::from_ref(&image.owner_id)).await?;
        let mut renditions = Vec::with_capacity(image.renditions.len());
        for r in &image.renditions {
            renditions.push(RenditionView {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                content_type: r.content_type.clone(),
                url: self.store.rendition_url(&r.key).await?,
            });
        }
        Ok(ApiResponse::json(
            200,
            &ImageView {
                image_id: image.image_id,
                owner_name: owner.of(&image.owner_id),
                owner_id: image.owner_id,
                status: image.status.as_str(),
                reason: image.reason,
                message: image.message,
                created_at: Timestamp::from_millis(image.created_at_ms).to_string(),
                renditions,
                likes,
                liked_by_me,
            },
        ))
    }

    pub(super) async fn my_images(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let (limit, cursor) = request.page(PAGE_MAX, &Listing::images_of(sub))?;
        let (images, next) = self.store.my_images(sub, limit, cursor).await?;
        // HAZARD: the index is eventually consistent: for a moment after a deletion it can
        // still list the image as it was (a tombstone itself is in no index).
        let items = images
            .into_iter()
            .map(|i| MyImageView {
                image_id: i.image_id,
                status: i.status.as_str(),
                reason: i.reason,
                created_at: Timestamp::from_millis(i.created_at_ms).to_string(),
            })
            .collect();
        Ok(ApiResponse::json(200, &Page::of(items, next)))
    }
}

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
                camera: camera_name(
                    image.details.camera_make.as_deref(),
                    image.details.camera_model.as_deref(),
                ),
                placeholder: image.details.placeholder,
                taken_at: image.details.taken_at,
                lens: image.details.lens,
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

/// A camera's name from its EXIF make and model: the model alone when it already starts with
/// the make's first word ("NIKON CORPORATION" + "NIKON D850" is "NIKON D850"), else both.
pub fn camera_name(make: Option<&str>, model: Option<&str>) -> Option<String> {
    match (make, model) {
        (Some(make), Some(model)) => {
            let brand = make.split_whitespace().next().unwrap_or(make);
            if model.to_lowercase().starts_with(&brand.to_lowercase()) {
                Some(model.to_owned())
            } else {
                Some(format!("{make} {model}"))
            }
        }
        (make, model) => make.or(model).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::camera_name;

    #[test]
    fn a_camera_is_named_once_by_its_make_and_model() {
        let name = |make, model| camera_name(make, model);
        assert_eq!(
            name(Some("Canon"), Some("Canon EOS R6")).as_deref(),
            Some("Canon EOS R6")
        );
        assert_eq!(
            name(Some("NIKON CORPORATION"), Some("NIKON D850")).as_deref(),
            Some("NIKON D850")
        );
        assert_eq!(
            name(Some("Apple"), Some("iPhone 15 Pro")).as_deref(),
            Some("Apple iPhone 15 Pro")
        );
        assert_eq!(name(None, Some("X100V")).as_deref(), Some("X100V"));
        assert_eq!(name(Some("FUJIFILM"), None).as_deref(), Some("FUJIFILM"));
        assert_eq!(name(None, None), None);
    }
}

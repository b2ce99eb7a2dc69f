//! `POST /uploads`: an upload issued by the server, bound to its owner, type and length, put
//! once, within the owner's uploads per hour and bytes per day, and recorded as a pending
//! image.

use serde::Deserialize;
use snapglow::batch::Deadline;
use snapglow::contracts::Timestamp;

use super::{Api, WRITE_BUDGET};
use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::problem::Problem;
use crate::store::{NewImage, Status, Store, Taken, UploadQuota};
use crate::views::UploadIssued;

/// What `POST /uploads` accepts, by declared `content_type` (resize reads these formats).
pub const ACCEPTED_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/gif"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadRequest {
    content_type: String,
    content_length: u64,
}

const DAY_MS: i64 = 86_400_000;

/// The start of the hour `now_ms` falls in (the upload quota's window).
pub fn hour_start(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(3_600_000)
}

impl<S: Store> Api<S> {
    pub(super) async fn create_upload(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let asked: UploadRequest = request.json_body()?;
        let content_type = asked.content_type.to_ascii_lowercase();
        if !ACCEPTED_TYPES.contains(&content_type.as_str()) {
            return Err(Problem::unsupported_type(format!(
                "{:?} is not accepted; send one of {}",
                asked.content_type,
                ACCEPTED_TYPES.join(", ")
            ))
            .into());
        }
        let limits = &self.limits;
        if !(1..=limits.max_upload_bytes).contains(&asked.content_length) {
            return Err(Problem::upload_too_large(format!(
                "content_length must be from 1 to {} bytes, not {}",
                limits.max_upload_bytes, asked.content_length
            ))
            .into());
        }
        let now_ms = Timestamp::now().millis();
        let quota = UploadQuota {
            hour_start_ms: hour_start(now_ms),
            uploads_per_hour: limits.uploads_per_hour,
            day_start_ms: now_ms - now_ms.rem_euclid(DAY_MS),
            bytes_per_day: limits.upload_bytes_per_day,
        };
        let image_id = uuid::Uuid::new_v4().to_string();
        let deadline = Deadline::after(WRITE_BUDGET);
        let bytes = asked.content_length;
        let seconds_to = |end_ms: i64| ((end_ms - now_ms) / 1000).max(1) as u64;
        match (self.store)
            .take_upload_quota(sub, &quota, &image_id, bytes, &deadline)
            .await?
        {
            Taken::Yes => {}
            Taken::HourSpent => {
                let retry_after = seconds_to(quota.hour_start_ms + 3_600_000);
                return Err(Problem::too_many_uploads(limits.uploads_per_hour, retry_after).into());
            }
            Taken::DaySpent => {
                let retry_after = seconds_to(quota.day_start_ms + DAY_MS);
                let limit = limits.upload_bytes_per_day;
                return Err(Problem::too_many_upload_bytes(limit, retry_after).into());
            }
        }
        // The key binds the upload to its owner and id: resize accepts nothing else.
        let upload_key = format!("uploads/{sub}/{image_id}");
        let upload = (self.store)
            .upload_url(&upload_key, &content_type, asked.content_length)
            .await?;
        self.store
            .create_image(&NewImage {
                image_id: image_id.clone(),
                owner_id: sub.to_owned(),
                content_type,
                content_length: asked.content_length,
                upload_key,
                correlation_id: request.correlation_id.clone(),
                created_at_ms: now_ms,
                expires_at_s: now_ms / 1000 + 86_400,
            })
            .await?;
        let mut response = ApiResponse::json(
            201,
            &UploadIssued {
                image_id: image_id.clone(),
                status: Status::Pending.as_str(),
                upload,
                expires_in_seconds: self.upload_url_ttl_seconds,
            },
        );
        response
            .headers
            .push(("location".into(), format!("/images/{image_id}")));
        Ok(response)
    }
}

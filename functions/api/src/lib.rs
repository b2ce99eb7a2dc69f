//! api: the HTTP API in front of the platform (behind API Gateway's JWT authorizer).
//!
//! - [`routes`]: which handler a method and path reach;
//! - [`problem`]: errors as `application/problem+json` (RFC 9457) with stable types;
//! - [`store`]: what the API needs of its tables and of S3, the AWS adapters, and the
//!   decisions that are plain data (like revisions, the upload quota window);
//! - [`handlers`]: one request, end to end, in plain types ([`handlers::ApiRequest`]);
//! - `main.rs`: lambda_http's request to an [`handlers::ApiRequest`] and back.

pub mod handlers;
pub mod problem;
pub mod routes;
pub mod store;

use snapglow::config::{self, ConfigError};
use std::time::Duration;

/// The function's settings, from the environment template.yaml sets.
#[derive(Debug, Clone)]
pub struct Config {
    pub images_table: String,
    pub likes_table: String,
    pub notifications_table: String,
    pub uploads_bucket: String,
    pub renditions_bucket: String,
    pub max_upload_bytes: u64,
    pub uploads_per_hour: u64,
    pub upload_url_ttl: Duration,
    pub rendition_url_ttl: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            images_table: config::required("IMAGES_TABLE")?,
            likes_table: config::required("LIKES_TABLE")?,
            notifications_table: config::required("NOTIFICATIONS_TABLE")?,
            uploads_bucket: config::required("UPLOADS_BUCKET")?,
            renditions_bucket: config::required("RENDITIONS_BUCKET")?,
            max_upload_bytes: config::parsed_or("MAX_UPLOAD_BYTES", 50 * 1024 * 1024u64)?,
            uploads_per_hour: config::parsed_or("UPLOADS_PER_HOUR", 100u64)?,
            upload_url_ttl: Duration::from_secs(config::parsed_or("UPLOAD_URL_SECONDS", 300u64)?),
            rendition_url_ttl: Duration::from_secs(config::parsed_or(
                "RENDITION_URL_SECONDS",
                3600u64,
            )?),
        })
    }
}

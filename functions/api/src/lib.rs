//! api: the HTTP API in front of the platform (behind API Gateway's JWT authorizer).
//!
//! - [`routes`]: which handler a method and path reach;
//! - [`http`]: the request and response in plain types ([`http::ApiRequest`]), the body and
//!   the page a handler reads;
//! - [`handlers`]: one request, end to end, one file per resource, each answering a
//!   [`error::HandlerError`] that becomes a [`problem::Problem`] (RFC 9457) once;
//! - [`views`]: the JSON the API answers;
//! - [`store`]: what the API needs of its tables and of S3 (four small traits), the AWS
//!   adapter and the in-memory twin;
//! - `main.rs`: lambda_http's request to an [`http::ApiRequest`] and back.

pub mod error;
pub mod handlers;
pub mod http;
pub mod problem;
pub mod routes;
pub mod store;
pub mod views;

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
    pub limits: handlers::Limits,
    pub upload_url_ttl: Duration,
    pub rendition_url_ttl: Duration,
    /// The template's user pool (`None`: another issuer owns the accounts).
    pub user_pool_id: Option<String>,
    /// Live push: the connections table tickets go to, and the WebSocket API's URL.
    pub connections_table: Option<String>,
    pub live_url: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            images_table: config::required("IMAGES_TABLE")?,
            likes_table: config::required("LIKES_TABLE")?,
            notifications_table: config::required("NOTIFICATIONS_TABLE")?,
            uploads_bucket: config::required("UPLOADS_BUCKET")?,
            renditions_bucket: config::required("RENDITIONS_BUCKET")?,
            limits: handlers::Limits {
                requests_per_minute: config::parsed_or("REQUESTS_PER_MINUTE", 300u64)?,
                max_upload_bytes: config::parsed_or("MAX_UPLOAD_BYTES", 50 * 1024 * 1024u64)?,
                uploads_per_hour: config::parsed_or("UPLOADS_PER_HOUR", 100u64)?,
                upload_bytes_per_day: config::parsed_or("UPLOAD_BYTES_PER_DAY", 1u64 << 31)?,
            },
            upload_url_ttl: Duration::from_secs(config::parsed_or("UPLOAD_URL_SECONDS", 300u64)?),
            rendition_url_ttl: Duration::from_secs(config::parsed_or(
                "RENDITION_URL_SECONDS",
                3600u64,
            )?),
            user_pool_id: config::optional("USER_POOL_ID"),
            connections_table: config::optional("CONNECTIONS_TABLE"),
            live_url: config::optional("LIVE_URL"),
        })
    }
}

//! resize: every upload the API issued becomes web renditions, and its image turns published
//! or rejected together with the event that says so (the relay puts it on the stream).
//!
//! - [`upload`]: from an SQS body to the uploads it announces (pure);
//! - [`render`]: the rendition pipeline (pure, CPU-bound; also `cargo local render`);
//! - [`storage`]: what resize needs of the buckets ([`storage::ObjectStore`]) and the S3 adapter;
//! - [`registry`]: what resize needs of the API's images table, and the DynamoDB adapter;
//! - [`resizer`]: one batch, message by message.

pub mod registry;
pub use render;
pub mod resizer;
pub mod storage;
pub mod upload;

use snapglow::config::{self, ConfigError};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub renditions_bucket: String,
    pub images_table: String,
    pub specs: Vec<render::RenditionSpec>,
    pub limits: render::Limits,
    /// Time one upload may take; uploads that cannot start in time are redelivered.
    pub record_budget: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let sizes = std::env::var("RENDITION_SIZES")
            .unwrap_or_else(|_| "large:2048,medium:1024,thumb:320".into());
        let specs = render::parse_specs(&sizes).map_err(|error| ConfigError::Invalid {
            name: "RENDITION_SIZES".into(),
            value: sizes.clone(),
            detail: error.to_string(),
        })?;
        let defaults = render::Limits::default();
        Ok(Self {
            renditions_bucket: config::required("RENDITIONS_BUCKET")?,
            images_table: config::required("IMAGES_TABLE")?,
            specs,
            limits: render::Limits {
                max_bytes: config::parsed_or("MAX_UPLOAD_BYTES", defaults.max_bytes)?,
                max_pixels: config::parsed_or("MAX_PIXELS", defaults.max_pixels)?,
                // Lambda sets the configured memory (MB); the default is resize's 1769.
                memory_budget: render::memory_budget(config::parsed_or(
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    1769,
                )?),
            },
            record_budget: config::millis_or("RECORD_BUDGET_MS", Duration::from_secs(10))?,
        })
    }
}

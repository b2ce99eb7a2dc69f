//! resize: every upload the API issued becomes web renditions, and its image turns published
//! or rejected together with the event that says so (the relay puts it on the stream).
//!
//! - [`upload`]: from an SQS body to the uploads it announces (pure);
//! - [`render`]: the rendition pipeline (pure, CPU-bound; also `cargo local render`);
//! - [`storage`]: what resize needs of the buckets ([`storage::ObjectStore`]) and the S3 adapter;
//! - [`registry`]: what resize needs of the API's images table, and the DynamoDB adapter;
//! - [`scan`]: the content scan between rendering and publication (Rekognition, or open_nsfw
//!   in this process), judged by [`moderation::Policy`];
//! - [`resizer`]: one batch, message by message.

pub mod registry;
pub use render;
pub mod resizer;
pub mod scan;
pub mod storage;
pub mod upload;

use snapglow::config::{self, ConfigError};
use std::path::PathBuf;
use std::time::Duration;

/// Which classifier scans the renditions.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// Amazon Rekognition's `DetectModerationLabels` (the default).
    Rekognition,
    /// open_nsfw in this process, from the model file at this path.
    Local(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub renditions_bucket: String,
    pub images_table: String,
    pub specs: Vec<render::RenditionSpec>,
    pub limits: render::Limits,
    /// Time one upload may take; uploads that cannot start in time are redelivered.
    pub record_budget: Duration,
    pub backend: Backend,
    pub policy: moderation::Policy,
    /// The upload queue's `maxReceiveCount`: the delivery on which a failing scan holds.
    pub scan_attempts: u32,
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
            backend: backend()?,
            policy: policy()?,
            scan_attempts: config::parsed_or("SCAN_ATTEMPTS", 5)?,
        })
    }
}

fn backend() -> Result<Backend, ConfigError> {
    let name = std::env::var("MODERATION_BACKEND").unwrap_or_else(|_| "rekognition".into());
    match name.as_str() {
        "rekognition" => Ok(Backend::Rekognition),
        "local" => Ok(Backend::Local(PathBuf::from(config::required(
            "MODERATION_MODEL_PATH",
        )?))),
        _ => Err(ConfigError::Invalid {
            name: "MODERATION_BACKEND".into(),
            value: name.clone(),
            detail: "either rekognition or local".into(),
        }),
    }
}

fn policy() -> Result<moderation::Policy, ConfigError> {
    let labels = std::env::var("MODERATION_HOLD_LABELS").unwrap_or_else(|_| {
        "Explicit,Non-Explicit Nudity of Intimate parts and Kissing,Violence,Visually Disturbing,Hate Symbols".into()
    });
    let confidence = std::env::var("MODERATION_MIN_CONFIDENCE").unwrap_or_else(|_| "80".into());
    moderation::Policy::parse(&labels, &confidence).map_err(|e| ConfigError::Invalid {
        name: "MODERATION_HOLD_LABELS / MODERATION_MIN_CONFIDENCE".into(),
        value: format!("{labels} / {confidence}"),
        detail: e.to_string(),
    })
}

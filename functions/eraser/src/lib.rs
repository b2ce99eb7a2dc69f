//! eraser: what a deleted image leaves in the API's storage, erased from the stream. On each
//! `ImageDeleted` it deletes the original from the uploads bucket, the renditions from the
//! renditions bucket and the image's like items from the images table. like-counter and
//! notifier erase their own tables on the same event; together nothing of the image is left
//! but the tombstones that keep replays from bringing it back (docs/ARCHITECTURE.md,
//! "Taking a photo back").
//!
//! - [`erase`]: the decision per event and one batch, in shard order ([`Eraser`]);
//! - [`store`]: what it needs of S3 and the images table ([`store::Erasure`]) and the adapter.

pub mod erase;
pub mod store;

pub use erase::{EraseError, Eraser};

use snapglow::config::{self, ConfigError};
use std::time::Duration;

/// The function's settings, from the environment template.yaml sets.
#[derive(Debug, Clone)]
pub struct Config {
    pub images_table: String,
    pub uploads_bucket: String,
    pub renditions_bucket: String,
    /// The time one record may take (a photo with many likes: pages of like items).
    pub record_budget: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            images_table: config::required("IMAGES_TABLE")?,
            uploads_bucket: config::required("UPLOADS_BUCKET")?,
            renditions_bucket: config::required("RENDITIONS_BUCKET")?,
            record_budget: config::millis_or("RECORD_BUDGET_MS", Duration::from_millis(5000))?,
        })
    }
}

//! like-counter: exact like counts from `ImageLiked` / `ImageLikeUndone` on the stream, with
//! exactly-once effect per event under at-least-once delivery.
//!
//! - [`ledger`]: the pure decisions (latest fact per user, the writes, the transactions);
//! - [`table`]: what the counter needs of its table ([`table::LikeStore`]) and the DynamoDB
//!   adapter;
//! - [`counter`]: one batch, end to end.

pub mod counter;
pub mod ledger;
pub mod table;

use snapglow::config::{self, ConfigError};
use std::time::Duration;

/// The function's settings, from the environment template.yaml sets.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    /// How long an unliked state (and so the memory of its event id) is kept.
    pub dedup_retention: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::required("LIKES_TABLE")?,
            dedup_retention: snapglow::dedup::retention_from_env()?,
        })
    }
}

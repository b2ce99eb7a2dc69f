//! notifier: the second, independent consumer of the stream. Owners hear, once, that their
//! photo was published or rejected and who liked it.
//!
//! - [`inbox`]: the pure decisions of the inbox (keys, windows, texts);
//! - [`likes`]: the pure decisions of likes notifications (who counts where, exactly once);
//! - [`table`]: what the notifier needs of its table ([`table::NotificationStore`]), its
//!   items, the DynamoDB writer, the inbox reader the API uses, and the in-memory twin;
//! - [`notify`]: one batch ([`Notifier`]): image events record by record (`images.rs`), likes
//!   grouped (`likes.rs`).

pub mod inbox;
pub mod likes;
pub mod notify;
pub mod table;

pub use notify::Notifier;

use snapglow::config::{self, ConfigError};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub like_window: Duration,
    pub inbox_retention: Duration,
    pub dedup_retention: Duration,
    /// Time one record may take; records that cannot start in time are redelivered.
    pub record_budget: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::required("NOTIFICATIONS_TABLE")?,
            like_window: Duration::from_secs(config::parsed_or("LIKE_WINDOW_SECONDS", 900u64)?),
            inbox_retention: Duration::from_secs(
                86_400 * config::parsed_or("INBOX_RETENTION_DAYS", 30u64)?,
            ),
            dedup_retention: snapglow::dedup::retention_from_env()?,
            record_budget: config::millis_or("RECORD_BUDGET_MS", Duration::from_millis(2000))?,
        })
    }
}

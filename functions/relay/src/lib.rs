//! relay: the one writer of `image-social-events`. The API (and resize) record a fact and
//! its event in one write to the images table; the table's stream hands the change to the
//! relay, which puts the stored event's bytes on the Kinesis stream unchanged. No service
//! writes to DynamoDB and Kinesis side by side, so no event is lost between the two.
//!
//! - [`outbox`]: the pure decision per change record (publish, skip, poison);
//! - [`publish`]: one batch, in order, with partial batch responses ([`Relay`]).

pub mod outbox;
pub mod publish;

pub use publish::Relay;

use snapglow::config::{self, ConfigError};

#[derive(Debug, Clone)]
pub struct Config {
    pub stream_name: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            stream_name: config::required("STREAM_NAME")?,
        })
    }
}

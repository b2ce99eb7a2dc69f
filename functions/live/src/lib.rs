//! Live push: notifications sent to the people they are for as they happen, over an API
//! Gateway WebSocket API.
//!
//! - [`gateway`]: the WebSocket API's authorizer (a one-time ticket from `POST
//!   /me/live-ticket`) and its routes (`$connect`, `$disconnect`, the heartbeat), the `live`
//!   binary;
//! - [`push`]: the pusher, the `pusher` binary: the notifications table's stream to each user's
//!   open connections;
//! - [`connections`]: the connections table (`snapglow::live` describes its items);
//! - [`poster`]: `PostToConnection` on AWS, and how its answers read.

pub mod connections;
pub mod gateway;
pub mod poster;
pub mod push;

use snapglow::config::{self, ConfigError};

/// The settings both binaries read from the environment (template.yaml sets them).
pub struct Config {
    pub connections_table: String,
    /// The WebSocket API's management endpoint: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub management_url: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            connections_table: config::required("CONNECTIONS_TABLE")?,
            management_url: config::optional("LIVE_MANAGEMENT_URL"),
        })
    }
}

//! What every snapglow function shares: the event contracts of the stream, batch and
//! partial-failure handling, the quarantine, deduplication, retries, items and errors of the
//! functions' DynamoDB tables, configuration and telemetry. (The one writer of the stream is
//! the relay: no function here puts events.)

pub mod aws;
pub mod batch;
pub mod config;
pub mod contracts;
pub mod dedup;
pub mod live;
pub mod quarantine;
pub mod retry;
pub mod table;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

//! What every snapglow function shares: the event contracts of the stream, batch and
//! partial-failure handling, the quarantine, deduplication, retries, the stream publisher,
//! the errors of a function's own DynamoDB table, configuration and telemetry.

pub mod aws;
pub mod batch;
pub mod config;
pub mod contracts;
pub mod dedup;
pub mod quarantine;
pub mod retry;
pub mod stream;
pub mod table;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

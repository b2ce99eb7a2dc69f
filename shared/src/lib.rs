//! What every snapglow function shares: the event contracts of the stream, batch and
//! partial-failure handling, the quarantine, deduplication, retries, the stream publisher,
//! configuration and telemetry.

pub mod aws;
pub mod batch;
pub mod config;
pub mod contracts;
pub mod dedup;
pub mod quarantine;
pub mod retry;
pub mod stream;
pub mod telemetry;

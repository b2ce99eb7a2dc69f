//! What every snapglow function shares: the event contracts of the stream, batch and
//! partial-failure handling, the quarantine, the stream publisher, configuration and telemetry.

pub mod aws;
pub mod batch;
pub mod config;
pub mod contracts;
pub mod quarantine;
pub mod stream;
pub mod telemetry;

//! Lambda emulation: each function of the template runs as its real binary under a local
//! Runtime API, from its entry in `.local/stack.json` to a started [`LocalFunction`].

pub mod function;
pub mod http;
mod runtime_api;

use std::path::Path;
use std::time::Duration;

use crate::stack::StackInfo;
use crate::stack::clients::aws_environment;

pub use function::{FunctionSpec, Invoke, InvokeError, LocalFunction, LogSink, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error(
        "no function in template.yaml builds the binary {0:?}; functions are named after their folder under functions/: {1}"
    )]
    Unknown(String, String),
    #[error("starting a Runtime API on a loopback port")]
    Start(#[source] std::io::Error),
}

/// The spec for running `binary` (its folder name under `functions/`) against the local stack.
pub fn spec_for(
    stack: &StackInfo,
    binary: &str,
    binary_dir: &Path,
    log: LogSink,
) -> Result<FunctionSpec, FunctionError> {
    let (_, resource) = stack
        .function_by_binary(binary)
        .ok_or_else(|| FunctionError::Unknown(binary.to_owned(), stack.binaries().join(", ")))?;
    let info = resource
        .function()
        .expect("function_by_binary returns functions");
    let mut environment = aws_environment(&stack.endpoint_url, info.key(stack));
    environment.extend(info.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(FunctionSpec {
        name: resource.name.clone(),
        binary: binary_dir.join(binary),
        environment,
        timeout: Duration::from_secs(info.timeout_seconds),
        memory_mb: info.memory_mb,
        log_format: info.log_format.clone(),
        log_level: info.log_level.clone(),
        log,
    })
}

/// Starts the Runtime API for `binary`; its process starts on the first invocation.
pub async fn start(
    stack: &StackInfo,
    binary: &str,
    binary_dir: &Path,
    log: LogSink,
) -> Result<LocalFunction, FunctionError> {
    LocalFunction::start(spec_for(stack, binary, binary_dir, log)?)
        .await
        .map_err(FunctionError::Start)
}

//! Running the template's functions locally: from a function entry of `.local/stack.json` to
//! a started [`LocalFunction`].

use std::path::Path;
use std::time::Duration;

use crate::clients::aws_environment;
use crate::runtime_api::{FunctionSpec, LocalFunction, LogSink};
use crate::stack::StackInfo;

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error(
        "no function in template.yaml builds the binary {0:?}; functions are named after their folder under functions/: {1}"
    )]
    Unknown(String, String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The spec for running `binary` (its folder name under `functions/`) against the local stack.
pub fn spec_for(
    stack: &StackInfo,
    binary: &str,
    binary_dir: &Path,
    log: LogSink,
) -> Result<FunctionSpec, FunctionError> {
    let (_, resource) = stack.function_by_binary(binary).ok_or_else(|| {
        FunctionError::Unknown(binary.to_owned(), known_binaries(stack).join(", "))
    })?;
    let info = resource
        .function
        .as_ref()
        .expect("function_by_binary returns functions");
    let mut environment = aws_environment(&stack.endpoint_url);
    environment.extend(info.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(FunctionSpec {
        name: resource.name.clone().unwrap_or_else(|| binary.to_owned()),
        binary: binary_dir.join(binary),
        environment,
        timeout: Duration::from_secs(info.timeout_seconds),
        memory_mb: info.memory_mb,
        log_format: info.log_format.clone(),
        log_level: info.log_level.clone(),
        log,
    })
}

pub fn known_binaries(stack: &StackInfo) -> Vec<String> {
    stack
        .resources
        .values()
        .filter_map(|r| r.function.as_ref().map(|f| f.binary.clone()))
        .collect()
}

/// Starts the Runtime API for `binary`; its process starts on the first invocation.
pub async fn start(
    stack: &StackInfo,
    binary: &str,
    binary_dir: &Path,
    log: LogSink,
) -> Result<LocalFunction, FunctionError> {
    Ok(LocalFunction::start(spec_for(stack, binary, binary_dir, log)?).await?)
}

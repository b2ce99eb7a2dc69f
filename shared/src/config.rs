//! Function configuration from environment variables, which template.yaml sets (and
//! `cargo local invoke` sets from it). Errors name the variable and where it comes from.

use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "environment variable {0} is not set; it comes from the function's Environment in template.yaml (run the binary with `cargo local invoke`, which sets it)"
    )]
    Missing(String),
    #[error("environment variable {name}={value:?} is invalid: {detail}")]
    Invalid {
        name: String,
        value: String,
        detail: String,
    },
}

/// A variable that must be set and not empty.
pub fn required(name: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing(name.to_owned())),
    }
}

/// A variable that may be unset or empty (`None` then): a feature the template turns off.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// A variable with a default, parsed.
pub fn parsed_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Invalid {
                    name: name.to_owned(),
                    value,
                    detail: e.to_string(),
                })
        }
        _ => Ok(default),
    }
}

/// A duration in milliseconds, e.g. `RECORD_BUDGET_MS=5000`.
pub fn millis_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    parsed_or(name, default.as_millis() as u64).map(Duration::from_millis)
}

/// The name of the running function (`AWS_LAMBDA_FUNCTION_NAME`), for logs and the quarantine.
pub fn function_name(fallback: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| fallback.to_owned())
}

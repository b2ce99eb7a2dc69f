//! The AWS SDK configuration every function loads once, at init.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::sync::OnceLock;
use std::time::Duration;

/// The operation timeout [`load_sdk_config`] gave this process's calls.
static OPERATION_TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// The time one more call needs before the invocation's deadline: the whole operation timeout
/// (a call that hangs on every attempt lasts that long) and half a second to report what it
/// could not finish. One second in a process whose clients [`load_sdk_config`] did not make
/// (unit tests' fakes answer at once).
///
/// HAZARD: an attempt started with less than this left can outlast the invocation, and Lambda
/// then kills it instead of the function reporting the records it could not finish.
pub fn call_margin() -> Duration {
    OPERATION_TIMEOUT
        .get()
        .map_or(Duration::from_secs(1), |operation| {
            *operation + Duration::from_millis(500)
        })
}

/// How long one SDK call may take, set once per function from its Lambda timeout.
///
/// HAZARD: the SDK sets no operation or attempt timeout of its own. A request whose answer
/// never comes (a dropped connection, a hung endpoint) then holds the invocation until Lambda
/// kills it: the whole batch is retried, and the grouped consumers give it up after their
/// retries as if every record had failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimeouts {
    /// One attempt, from the request sent to the response's headers.
    pub attempt: Duration,
    /// The whole call, the SDK's retries and their backoff included.
    pub operation: Duration,
}

impl CallTimeouts {
    /// For a function whose invocation lasts at most `function_timeout` (template.yaml's
    /// `Timeout`): a call may use a quarter of it (2 to 10 s), an attempt a third of that
    /// (at least 1 s, far above DynamoDB's, Kinesis's and SQS's usual milliseconds), so that a
    /// hung request leaves time to retry it and to report the records it could not finish.
    pub fn within(function_timeout: Duration) -> Self {
        let operation =
            (function_timeout / 4).clamp(Duration::from_secs(2), Duration::from_secs(10));
        let attempt = (operation / 3).max(Duration::from_secs(1));
        CallTimeouts { attempt, operation }
    }

    /// The SDK's timeouts: these, and 3.1 s to connect.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(3100))
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }

    /// The SDK's standard retries (3 attempts), their backoff capped at half an attempt.
    ///
    /// HAZARD: uncapped, the standard backoff before a second attempt reaches 2 s (a random
    /// share of 1 s × 2): after an attempt that timed out, the retry may then not fit in the
    /// call's time, and one hung request fails a call that a retry would have saved.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_max_backoff(self.attempt / 2)
    }
}

/// Credentials, region and endpoint from the environment, with `timeouts` on every call.
/// Locally `AWS_ENDPOINT_URL` points every client at the emulator; on Lambda it is unset and
/// the SDK uses the real endpoints.
pub async fn load_sdk_config(timeouts: CallTimeouts) -> SdkConfig {
    // The first configuration of the process is the functions' one (loaded once, at init).
    let _ = OPERATION_TIMEOUT.set(timeouts.operation);
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts.timeout_config())
        .retry_config(timeouts.retry_config())
        .load()
        .await
}

/// True when an endpoint override is set (the local stack). S3 then needs path-style
/// addressing: `http://127.0.0.1:PORT/bucket/key`, since `bucket.127.0.0.1` does not resolve.
pub fn uses_endpoint_override(config: &SdkConfig) -> bool {
    config.endpoint_url().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_leaves_room_to_retry_and_report_within_the_function_timeout() {
        for (seconds, attempt_ms, operation_ms) in
            [(10, 1000, 2500), (30, 2500, 7500), (60, 3333, 10000)]
        {
            let timeouts = CallTimeouts::within(Duration::from_secs(seconds));
            assert_eq!(
                (timeouts.attempt.as_millis(), timeouts.operation.as_millis()),
                (attempt_ms, operation_ms),
                "{seconds} s"
            );
            assert!(timeouts.operation * 3 <= Duration::from_secs(seconds));
            // An attempt that timed out, the longest backoff, and its retry fit in the call.
            let retried = timeouts.attempt * 2 + timeouts.retry_config().max_backoff();
            assert!(retried <= timeouts.operation, "{seconds} s");
        }
    }
}

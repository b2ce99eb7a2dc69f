//! Retrying transient AWS errors inside the invocation's deadline.
//!
//! The SDK already makes 3 attempts (standard mode). This adds attempts, with exponential
//! backoff and jitter, for what the SDK does not retry (a canceled transaction's
//! `TransactionConflict`) and for longer throttling, but never past the deadline: what
//! cannot finish in time is reported for redelivery instead.

use std::future::Future;
use std::time::Duration;

use crate::batch::Deadline;

/// Why an attempt failed, as far as retrying goes.
pub enum Attempt<E> {
    /// Worth another attempt (throttling, 5xx, conflict, timeout).
    Retry(E),
    /// Retrying cannot help.
    GiveUp(E),
}

impl<E> Attempt<E> {
    /// The error, whether or not it was worth another attempt.
    pub fn into_error(self) -> E {
        match self {
            Attempt::Retry(error) | Attempt::GiveUp(error) => error,
        }
    }
}

/// Runs `operation` until it succeeds, gives up, runs out of attempts, or the next backoff
/// would end too close to the deadline. Returns the last error otherwise.
pub async fn with_backoff<T, E, F, Fut>(
    deadline: &Deadline,
    max_attempts: u32,
    mut operation: F,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    let mut attempt = 1;
    loop {
        match operation(attempt).await {
            Ok(value) => return Ok(value),
            Err(Attempt::GiveUp(error)) => return Err(error),
            Err(Attempt::Retry(error)) => {
                if attempt >= max_attempts || !pause(deadline, attempt).await {
                    return Err(error);
                }
                attempt += 1;
            }
        }
    }
}

/// Sleeps the backoff after failed attempt number `attempt` (from 1), unless the pause and one
/// more call after it ([`crate::aws::call_margin`]) would not fit before the deadline: then
/// returns false at once, and the caller gives up and reports.
pub async fn pause(deadline: &Deadline, attempt: u32) -> bool {
    let pause = backoff(attempt);
    if deadline.remaining() < pause + crate::aws::call_margin() {
        return false;
    }
    tokio::time::sleep(pause).await;
    true
}

/// 50 ms doubled each attempt, capped at 2 s, with "equal jitter" so that retries of
/// concurrent writers spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling = (50u64 << attempt.min(6)).min(2000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos() as u64;
    Duration::from_millis(ceiling / 2 + nanos % (ceiling / 2 + 1))
}

/// Whether an SDK error is worth another attempt: throttling, 5xx, timeouts, I/O.
pub fn is_transient<E>(
    error: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    use aws_sdk_dynamodb::error::SdkError;
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            status >= 500
                || matches!(
                    service.err().code(),
                    Some(
                        "ThrottlingException"
                            | "ProvisionedThroughputExceededException"
                            | "RequestLimitExceeded"
                            | "TransactionConflictException"
                            | "TransactionInProgressException"
                            | "InternalServerError"
                            | "ServiceUnavailable"
                            | "LimitExceededException"
                    )
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_until_success_then_stops() {
        let deadline = Deadline::after(Duration::from_secs(30));
        let result: Result<u32, &str> = with_backoff(&deadline, 5, |attempt| async move {
            if attempt < 3 {
                Err(Attempt::Retry("busy"))
            } else {
                Ok(attempt)
            }
        })
        .await;
        assert_eq!(result, Ok(3));
    }

    #[tokio::test]
    async fn gives_up_at_once_on_a_permanent_error_and_after_max_attempts_on_transient_ones() {
        let deadline = Deadline::after(Duration::from_secs(30));
        let mut calls = 0;
        let result: Result<(), &str> = with_backoff(&deadline, 5, |_| {
            calls += 1;
            async { Err(Attempt::GiveUp("bad")) }
        })
        .await;
        assert_eq!((result, calls), (Err("bad"), 1));
        let mut calls = 0;
        let result: Result<(), &str> = with_backoff(&deadline, 3, |_| {
            calls += 1;
            async { Err(Attempt::Retry("busy")) }
        })
        .await;
        assert_eq!((result, calls), (Err("busy"), 3));
    }

    #[tokio::test]
    async fn never_sleeps_past_the_deadline() {
        let deadline = Deadline::after(Duration::from_millis(500));
        let started = std::time::Instant::now();
        let result: Result<(), &str> =
            with_backoff(&deadline, 100, |_| async { Err(Attempt::Retry("busy")) }).await;
        assert_eq!(result, Err("busy"));
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}

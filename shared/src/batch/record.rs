use crate::quarantine::{Quarantine, QuarantineEntry, RecordSource};
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use super::BatchContext;

/// How a failure is handled; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input: quarantine and acknowledge.
    Permanent,
    /// Worth another delivery: report the record.
    Transient,
    /// The function cannot work (a refused permission, a wrong configuration): no record is at
    /// fault and none is quarantined. The record is reported, and the invocation fails
    /// ([`BatchReport::fatal`]) so that the function's `Errors` alarm says so at once.
    Fatal,
}

/// Implemented by each function's error enum: the one place its errors are classified.
pub trait Classify: std::fmt::Display {
    fn class(&self) -> ErrorClass;
    /// A stable snake_case code for the quarantine and metrics, e.g. `malformed_envelope`.
    fn reason_code(&self) -> &'static str;
}

/// A record the handler finished with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its effect is applied (or was already: a duplicate is a success).
    Done,
    /// Deliberately not processed, for the reason given (e.g. an `s3:TestEvent`, an unknown
    /// event type, a key outside `uploads/`). Logged, counted and acknowledged.
    Skipped(String),
    /// Its effect was applied before (a redelivery, a producer retry, a replay, or an event
    /// older than the state it would change): acknowledged and counted as suppressed.
    Duplicate(String),
}

/// Counts for one batch, logged and turned into metrics at its end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub done: usize,
    pub skipped: usize,
    /// Acknowledged because their effect was already applied.
    pub duplicates: usize,
    pub quarantined: usize,
    /// Reported for redelivery: transient errors, panics, timeouts, failed quarantine writes.
    pub failed: usize,
    /// Reported for redelivery without being started (deadline, or after an earlier failure
    /// on an ordered source).
    pub not_started: usize,
    /// Per acknowledged record: when its event happened (`occurred_at`, or when it entered
    /// the queue) → now, in ms.
    pub end_to_end_ms: Vec<u64>,
    /// Per record: the handler's own time, in ms.
    pub record_ms: Vec<u64>,
    /// AWS requests the batch made (the function's own calls, not the quarantine's): the
    /// figure to divide by the records for requests per event.
    pub requests: usize,
    /// Set by an [`ErrorClass::Fatal`] failure: [`super::run`] fails the invocation with it.
    pub fatal: Option<String>,
}

impl BatchReport {
    /// The one log line per batch, and its metrics (CloudWatch Embedded Metric Format).
    pub fn log(&self, function: &str, source: &str) {
        tracing::info!(
            function,
            source,
            cold_start = crate::telemetry::cold_start(),
            done = self.done,
            skipped = self.skipped,
            duplicates = self.duplicates,
            quarantined = self.quarantined,
            failed = self.failed,
            not_started = self.not_started,
            requests = self.requests,
            "batch settled"
        );
        crate::telemetry::emit_batch_metrics(function, self);
    }

    /// Records the end-to-end latency of a record whose event happened at `occurred_at_ms`.
    pub fn observe_end_to_end(&mut self, occurred_at_ms: i64) {
        let now_ms = crate::contracts::Timestamp::now().millis();
        self.end_to_end_ms
            .push((now_ms - occurred_at_ms).max(0) as u64);
    }
}

/// What became of one record.
pub(crate) enum Settled {
    Acknowledged,
    Failed,
}

/// Runs one record's handler with every guard: deadline, panic, classification, quarantine.
pub(crate) async fn settle<Q, Fut, E>(
    ctx: &BatchContext<'_, Q>,
    source: &RecordSource,
    raw: &[u8],
    occurred_at_ms: Option<i64>,
    handler: Fut,
    report: &mut BatchReport,
) -> Settled
where
    Q: Quarantine,
    Fut: Future<Output = Result<Outcome, E>>,
    E: Classify,
{
    let started = Instant::now();
    let id = source.id();
    // Leave a margin for the quarantine write and for the response to reach the runtime API.
    let allowed = ctx
        .deadline
        .remaining()
        .saturating_sub(Duration::from_millis(250));
    // Boxed: a handler's future nests the SDK's, which nest so deep that the caller's future
    // (a function's main) would overflow rustc's query depth when it is laid out.
    let handler = Box::pin(handler);
    let result = tokio::time::timeout(allowed, AssertUnwindSafe(handler).catch_unwind()).await;
    let ms = started.elapsed().as_millis() as u64;
    report.record_ms.push(ms);
    if let (Some(at), Ok(Ok(Ok(_)))) = (occurred_at_ms, &result) {
        report.observe_end_to_end(at);
    }
    match result {
        Err(_elapsed) => {
            tracing::warn!(function = ctx.function, record = %id, ms, outcome = "failed", "record did not finish before the invocation deadline; reported for redelivery (raise the function timeout or lower the batch size)");
            report.failed += 1;
            Settled::Failed
        }
        Ok(Err(panic)) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(function = ctx.function, record = %id, ms, outcome = "failed", panic = %message, "handler panicked; record reported for redelivery (a bug: it ends in the DLQ or on-failure destination if it repeats)");
            report.failed += 1;
            Settled::Failed
        }
        Ok(Ok(Ok(Outcome::Done))) => {
            tracing::debug!(function = ctx.function, record = %id, ms, outcome = "done");
            report.done += 1;
            Settled::Acknowledged
        }
        Ok(Ok(Ok(Outcome::Duplicate(reason)))) => {
            tracing::debug!(function = ctx.function, record = %id, ms, outcome = "duplicate", reason = %reason);
            report.duplicates += 1;
            Settled::Acknowledged
        }
        Ok(Ok(Ok(Outcome::Skipped(reason)))) => {
            tracing::info!(function = ctx.function, record = %id, ms, outcome = "skipped", reason = %reason);
            report.skipped += 1;
            Settled::Acknowledged
        }
        Ok(Ok(Err(error))) => match error.class() {
            ErrorClass::Transient => {
                tracing::warn!(function = ctx.function, record = %id, ms, outcome = "failed", reason = error.reason_code(), error = %error, "transient failure; record reported for redelivery");
                report.failed += 1;
                Settled::Failed
            }
            ErrorClass::Fatal => {
                tracing::error!(function = ctx.function, record = %id, ms, outcome = "failed", reason = error.reason_code(), error = %error, "the function cannot work; record reported for redelivery and the invocation fails");
                report.failed += 1;
                report.fatal.get_or_insert_with(|| error.to_string());
                Settled::Failed
            }
            ErrorClass::Permanent => quarantine(ctx, source, raw, &error, report).await,
        },
    }
}

/// Puts a permanently failing record in the quarantine; acknowledged only once it is there.
pub(crate) async fn quarantine<Q: Quarantine, E: Classify>(
    ctx: &BatchContext<'_, Q>,
    source: &RecordSource,
    raw: &[u8],
    error: &E,
    report: &mut BatchReport,
) -> Settled {
    let id = source.id();
    let entry = QuarantineEntry::new(
        ctx.function,
        error.reason_code(),
        error.to_string(),
        source.clone(),
        raw,
    );
    match ctx.quarantine.put(&entry, raw).await {
        Ok(()) => {
            tracing::warn!(function = ctx.function, record = %id, outcome = "quarantined", reason = error.reason_code(), error = %error);
            report.quarantined += 1;
            Settled::Acknowledged
        }
        Err(quarantine_error) => {
            // Acknowledging now would lose the record: keep it on the source instead.
            tracing::error!(function = ctx.function, record = %id, outcome = "failed", reason = error.reason_code(), error = %error, quarantine_error = %quarantine_error, "could not quarantine a permanently failing record; reported for redelivery");
            report.failed += 1;
            if quarantine_error.fatal {
                // A missing or refused quarantine does not clear by retrying: the invocation
                // fails so that the Errors alarm fires, and nothing is given up meanwhile.
                report
                    .fatal
                    .get_or_insert_with(|| quarantine_error.to_string());
            }
            Settled::Failed
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

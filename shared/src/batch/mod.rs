//! Batch handling shared by every function: process an SQS or Kinesis batch record by record
//! and answer with the exact partial-batch response the event source mapping expects.
//!
//! HAZARD: every mapping in template.yaml must declare
//! `FunctionResponseTypes: [ReportBatchItemFailures]`. Without it AWS ignores the
//! `batchItemFailures` returned here, counts the batch as a success and deletes (SQS) or
//! checkpoints past (Kinesis) the records that failed. `tests/template_invariants/` guards it.
//!
//! Every error is classified once, by the function's error type ([`Classify`]):
//! - permanent (bad input): the record is quarantined with its raw bytes and acknowledged;
//!   retrying the same bytes can never succeed;
//! - transient (throttling, 5xx, timeouts, missing infrastructure): the record is reported
//!   and redelivered. A record is acknowledged only when its handler finished (done, skipped,
//!   or quarantined): a panic, a timeout or a failed quarantine write reports it instead.

mod deadline;
mod function;
pub mod grouped;
mod kinesis;
mod record;
mod screen;
mod sqs;

pub use deadline::Deadline;
pub use function::{BatchFunction, run};
pub use kinesis::{StreamRecord, first_failure_response, process_kinesis, settle_record};
pub use record::{BatchReport, Classify, ErrorClass, Outcome};
pub use screen::{Screened, screen, set_aside};
pub use sqs::{QueueMessage, process_sqs};

use crate::quarantine::Quarantine;
use std::time::Duration;

/// What a batch run needs besides the records.
pub struct BatchContext<'a, Q> {
    /// The function's name, written into quarantine entries and log lines.
    pub function: &'a str,
    pub deadline: Deadline,
    /// The time one record may take. A record is not started when less than this remains
    /// before the deadline: it is reported for redelivery instead of being cut off by the
    /// platform's timeout, which would fail the whole batch.
    pub record_budget: Duration,
    pub quarantine: &'a Q,
}

impl<'a, Q: Quarantine> BatchContext<'a, Q> {
    pub fn new(
        function: &'a str,
        deadline: Deadline,
        record_budget: Duration,
        quarantine: &'a Q,
    ) -> Self {
        Self {
            function,
            deadline,
            record_budget,
            quarantine,
        }
    }
}

#[cfg(test)]
mod tests;

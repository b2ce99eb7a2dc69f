//! The one shape of every batch function (resize on its queue; like-counter, notifier, eraser and relay
//! on their streams): a batch and its context in, the event source mapping's response and the
//! batch's report out; and the one place where a fatal report fails the invocation.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::Duration;

use super::{BatchContext, BatchReport, Deadline};
use crate::quarantine::Quarantine;

/// A function that handles batches of `E`.
pub trait BatchFunction<E> {
    /// The partial-batch response its event source mapping reads.
    type Response: Serialize;

    /// One batch: the response names what must come back; a [`BatchReport::fatal`] says the
    /// function cannot work (a refused grant, an unwritable quarantine or stream), whatever
    /// the response says.
    fn handle_batch<Q: Quarantine>(
        &self,
        event: E,
        ctx: &BatchContext<'_, Q>,
    ) -> impl Future<Output = (Self::Response, BatchReport)>;
}

/// Runs `function` on the Lambda runtime until it stops: each invocation gets its context
/// (the function's `name`, the invocation's deadline, the per-record `record_budget`, the
/// quarantine) and answers with the response, or fails when the report is fatal.
///
/// HAZARD: a fatal report must fail the invocation, never answer "all done": the Errors alarm
/// fires at once, and the mapping retries the whole batch (every write in it is idempotent)
/// instead of checkpointing past records that could not be written or quarantined.
pub async fn run<F, E, Q>(
    function: &F,
    name: &str,
    record_budget: Duration,
    quarantine: &Q,
) -> Result<(), lambda_runtime::Error>
where
    F: BatchFunction<E>,
    E: DeserializeOwned,
    Q: Quarantine,
{
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<E>| async move {
            let deadline = Deadline::from_epoch_millis(event.context.deadline);
            // A record is not started unless one call of it could end before the deadline.
            let budget = record_budget.max(crate::aws::call_margin());
            let ctx = BatchContext::new(name, deadline, budget, quarantine);
            let (response, report) = function.handle_batch(event.payload, &ctx).await;
            match report.fatal {
                Some(fatal) => Err(lambda_runtime::Error::from(fatal)),
                None => Ok(response),
            }
        },
    ))
    .await
}

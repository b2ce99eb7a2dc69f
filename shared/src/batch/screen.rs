use super::record::{Settled, quarantine};
use super::{BatchContext, BatchReport, Classify, ErrorClass, StreamRecord};
use crate::contracts::{ContractError, Decoded, Envelope, SocialEvent};
use crate::quarantine::Quarantine;

impl Classify for ContractError {
    fn class(&self) -> ErrorClass {
        // The same bytes will never decode: retrying would only block the shard.
        ErrorClass::Permanent
    }
    fn reason_code(&self) -> &'static str {
        ContractError::reason_code(self)
    }
}

/// What a stream consumer does with a record after decoding it.
#[derive(Debug)]
pub enum Screened {
    /// An event this consumer acts on.
    Event(Box<Envelope>),
    /// Finished without action: skipped (unknown type, or a type this consumer ignores) or
    /// quarantined (malformed).
    Acknowledged,
    /// Malformed, but the quarantine write failed: report it for redelivery.
    Failed,
}

/// Decodes one stream record for a consumer that acts on the types `wanted` accepts.
///
/// For consumers that work on a whole batch at once (grouping writes) rather than record by
/// record, so the decoding and poison-record rules stay the same for every consumer.
pub async fn screen<Q: Quarantine>(
    ctx: &BatchContext<'_, Q>,
    record: &StreamRecord,
    report: &mut BatchReport,
    wanted: impl Fn(&SocialEvent) -> bool,
) -> Screened {
    match Envelope::decode(&record.data) {
        Ok(Decoded::Known(envelope)) if wanted(&envelope.event) => {
            Screened::Event(Box::new(envelope))
        }
        Ok(Decoded::Known(envelope)) => {
            tracing::debug!(function = ctx.function, record = %record.source().id(), outcome = "skipped", event_type = envelope.event.type_name(), "not an event this function consumes");
            report.skipped += 1;
            Screened::Acknowledged
        }
        Ok(Decoded::UnknownType {
            event_id,
            type_name,
            version,
        }) => {
            tracing::info!(function = ctx.function, record = %record.source().id(), outcome = "skipped", %event_id, event_type = %type_name, version, "unknown event type; skipped (a newer producer?)");
            report.skipped += 1;
            Screened::Acknowledged
        }
        Err(error) => match quarantine(ctx, &record.source(), &record.data, &error, report).await {
            Settled::Acknowledged => Screened::Acknowledged,
            Settled::Failed => Screened::Failed,
        },
    }
}

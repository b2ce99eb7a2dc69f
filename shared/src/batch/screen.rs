use super::record::{Settled, quarantine};
use super::{BatchContext, BatchReport, Classify, ErrorClass, StreamRecord};
use crate::contracts::{ContractError, Decoded, Envelope, SocialEvent};
use crate::quarantine::Quarantine;
use crate::table::TableError;

impl Classify for ContractError {
    fn class(&self) -> ErrorClass {
        // The same bytes will never decode: retrying would only block the shard.
        ErrorClass::Permanent
    }
    fn reason_code(&self) -> &'static str {
        ContractError::reason_code(self)
    }
}

impl Classify for TableError {
    fn class(&self) -> ErrorClass {
        match self {
            // The request without this record's data succeeds: set the record aside.
            TableError::Rejected { .. }
            | TableError::CorruptItem { .. }
            | TableError::CollectionFull { .. } => ErrorClass::Permanent,
            TableError::Transient { .. } => ErrorClass::Transient,
            TableError::Denied { .. } => ErrorClass::Fatal,
        }
    }
    fn reason_code(&self) -> &'static str {
        match self {
            TableError::Rejected { .. } => "rejected_by_dynamodb",
            TableError::CorruptItem { .. } => "corrupt_item",
            TableError::CollectionFull { .. } => "item_collection_full",
            TableError::Transient { .. } => "dynamodb_unavailable",
            TableError::Denied { .. } => "dynamodb_access_denied",
        }
    }
}

/// Quarantines a decoded record that failed for good on its own data (for consumers that
/// work on a whole batch). True once it is in the quarantine; false when the quarantine
/// write failed, and the record must be redelivered.
pub async fn set_aside<Q: Quarantine, E: Classify>(
    ctx: &BatchContext<'_, Q>,
    record: &StreamRecord,
    error: &E,
    report: &mut BatchReport,
) -> bool {
    matches!(
        quarantine(ctx, &record.source(), &record.data, error, report).await,
        Settled::Acknowledged
    )
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

//! Deduplication and ordering of facts under at-least-once delivery.
//!
//! Consumers key their idempotency on what the producer sent (the event id and its
//! `occurred_at`), never on Kinesis sequence numbers: a producer retry puts the same event on
//! the stream twice with two sequence numbers.

use std::time::Duration;
use uuid::Uuid;

use crate::contracts::Envelope;

/// The order in which facts about one thing apply: when both carry the source's `revision`
/// (likes from the API), the higher revision wins; otherwise a later `occurred_at` wins and
/// ties are broken by event id. A fact whose version is not greater than the stored one is a
/// duplicate or stale redelivery and changes nothing, whatever order deliveries arrive in.
///
/// Hazard: mixing the two rules is only a total order because the API keeps `occurred_at`
/// increasing with `revision` for each (image, user); a producer that stamps revisions must
/// do the same (docs/EVENTS.md, producer rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventVersion {
    pub revision: Option<u64>,
    pub at_ms: i64,
    pub event_id: Uuid,
}

impl EventVersion {
    pub fn of(envelope: &Envelope) -> Self {
        Self {
            revision: envelope.event.revision(),
            at_ms: envelope.occurred_at.millis(),
            event_id: envelope.event_id,
        }
    }

    /// A version without a revision (events from before revisions, and non-like events).
    pub fn at(at_ms: i64, event_id: Uuid) -> Self {
        Self {
            revision: None,
            at_ms,
            event_id,
        }
    }
}

impl Ord for EventVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let by_time = (self.at_ms, self.event_id).cmp(&(other.at_ms, other.event_id));
        match (self.revision, other.revision) {
            (Some(a), Some(b)) => a.cmp(&b).then(by_time),
            _ => by_time,
        }
    }
}

impl PartialOrd for EventVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// How long a consumer remembers an event (`DEDUP_RETENTION_HOURS`, the template's
/// `DedupRetentionHours`; 15 days unless set): longer than the stream keeps a record, so that
/// no redelivery can find its memory gone.
pub fn retention_from_env() -> Result<Duration, crate::config::ConfigError> {
    let hours: u64 = crate::config::parsed_or("DEDUP_RETENTION_HOURS", 360)?;
    Ok(Duration::from_secs(3600 * hours))
}

/// The TTL (epoch seconds) for a record that must outlive every redelivery of the events it
/// deduplicates: `retention` must exceed the stream's retention period, counted from now
/// (a record can be redelivered until the stream trims it, whenever it happened).
pub fn expires_at(retention: Duration) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now + retention).as_secs() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_order_facts_that_carry_them_whatever_their_clocks() {
        // Prepare: the source's revision 2 was stamped by a clock behind revision 1's
        let first = EventVersion {
            revision: Some(1),
            at_ms: 500,
            event_id: Uuid::from_u128(9),
        };
        let second = EventVersion {
            revision: Some(2),
            at_ms: 400,
            event_id: Uuid::from_u128(1),
        };
        // Assess
        assert!(second > first);
        assert!(
            EventVersion::at(400, Uuid::from_u128(1)) < EventVersion::at(500, Uuid::from_u128(9))
        );
    }

    #[test]
    fn later_facts_win_and_ties_break_on_event_id() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert!(
            EventVersion {
                revision: None,
                at_ms: 2,
                event_id: a
            } > EventVersion {
                revision: None,
                at_ms: 1,
                event_id: b
            }
        );
        assert!(
            EventVersion {
                revision: None,
                at_ms: 1,
                event_id: b
            } > EventVersion {
                revision: None,
                at_ms: 1,
                event_id: a
            }
        );
        assert_eq!(
            EventVersion {
                revision: None,
                at_ms: 1,
                event_id: a
            },
            EventVersion {
                revision: None,
                at_ms: 1,
                event_id: a
            }
        );
    }
}

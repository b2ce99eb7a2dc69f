//! Deduplication and ordering of facts under at-least-once delivery.
//!
//! Consumers key their idempotency on what the producer sent (the event id and its
//! `occurred_at`), never on Kinesis sequence numbers: a producer retry puts the same event on
//! the stream twice with two sequence numbers.

use std::time::Duration;
use uuid::Uuid;

use crate::contracts::Envelope;

/// The order in which facts about one thing apply: a later `occurred_at` wins, ties are
/// broken by event id. A fact whose version is not greater than the stored one is a duplicate
/// or stale redelivery and changes nothing, whatever order deliveries arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventVersion {
    pub at_ms: i64,
    pub event_id: Uuid,
}

impl EventVersion {
    pub fn of(envelope: &Envelope) -> Self {
        Self {
            at_ms: envelope.occurred_at.millis(),
            event_id: envelope.event_id,
        }
    }
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
    fn later_facts_win_and_ties_break_on_event_id() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert!(
            EventVersion {
                at_ms: 2,
                event_id: a
            } > EventVersion {
                at_ms: 1,
                event_id: b
            }
        );
        assert!(
            EventVersion {
                at_ms: 1,
                event_id: b
            } > EventVersion {
                at_ms: 1,
                event_id: a
            }
        );
        assert_eq!(
            EventVersion {
                at_ms: 1,
                event_id: a
            },
            EventVersion {
                at_ms: 1,
                event_id: a
            }
        );
    }
}

//! Whether the tables agree with the ground truth, and one drill's figures.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::scenarios::ScenarioError;
use crate::stack::StackInfo;
use crate::stack::clients::LocalClients;

use super::*;

/// What a check of the tables against the ground truth found.
#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    pub images: usize,
    pub wrong_counts: Vec<String>,
    pub wrong_notifications: Vec<String>,
    /// Likes the notifier still keeps (`EARLY#`) for an image whose owner it knows: a like
    /// that would never be told.
    pub kept_early: Vec<String>,
}

impl Verdict {
    pub fn holds(&self) -> bool {
        self.wrong_counts.is_empty()
            && self.wrong_notifications.is_empty()
            && self.kept_early.is_empty()
    }
}

/// Reads every count and every owner's inbox and compares them with the ground truth.
pub async fn verify(
    clients: &LocalClients,
    stack: &StackInfo,
    truth: &GroundTruth,
) -> Result<Verdict, ScenarioError> {
    let likes =
        like_counter::table::LikeCounts::new(clients.dynamodb.clone(), stack.name_of("LikesTable"));
    let notifications = notifier::table::InboxReader::new(
        clients.dynamodb.clone(),
        stack.name_of("NotificationsTable"),
    );
    let mut verdict = Verdict {
        images: truth.owners.len(),
        ..Default::default()
    };
    for image_id in truth.owners.keys() {
        let kept = notifications.kept_likes(image_id).await.map_err(|e| {
            ScenarioError::table(format!("the likes kept for {image_id}"))(e.into())
        })?;
        if !kept.is_empty() {
            verdict
                .kept_early
                .push(format!("{image_id}: {} likes still kept", kept.len()));
        }
        let expected = truth.likes_of(image_id).len() as i64;
        let counted = likes
            .count(image_id)
            .await
            .map_err(|e| ScenarioError::table(format!("the like count of {image_id}"))(e.into()))?;
        if counted != expected {
            verdict
                .wrong_counts
                .push(format!("{image_id}: counted {counted}, truth {expected}"));
        }
    }
    let owners: BTreeSet<&String> = truth.owners.values().collect();
    for owner in owners {
        let inbox = notifications
            .inbox(owner)
            .await
            .map_err(|e| ScenarioError::table(format!("the inbox of {owner}"))(e.into()))?;
        for (image_id, _) in truth.owners.iter().filter(|(_, o)| *o == owner) {
            let published = inbox
                .iter()
                .filter(|n| &n.image_id == image_id && n.kind == notifier::inbox::Kind::Published)
                .count();
            if published != 1 {
                verdict.wrong_notifications.push(format!(
                    "{owner}: {published} 'published' notifications for {image_id}, expected 1"
                ));
            }
            let mut expected = truth.likes_of(image_id);
            expected.remove(owner.as_str());
            // Each standing like is counted in exactly one window's notification, which names
            // its latest likers (at most 3), each once, all of them standing.
            let notes: Vec<&notifier::inbox::Notification> = inbox
                .iter()
                .filter(|n| &n.image_id == image_id && n.kind == notifier::inbox::Kind::Likes)
                .collect();
            let counted: i64 = notes.iter().filter_map(|n| n.likes).sum();
            let misnamed = notes.iter().any(|n| {
                let distinct: BTreeSet<&String> = n.actors.iter().collect();
                distinct.len() != n.actors.len()
                    || n.actors.len() > 3
                    || n.actors.iter().any(|a| !expected.contains(a))
            });
            if counted != expected.len() as i64 || misnamed {
                let named: Vec<(&Vec<String>, Option<i64>)> =
                    notes.iter().map(|n| (&n.actors, n.likes)).collect();
                verdict.wrong_notifications.push(format!(
                    "{owner}: likes of {image_id} count {counted} and name {named:?}, truth {expected:?}"
                ));
            }
        }
    }
    Ok(verdict)
}

/// One drill's figures, for its report line.
#[derive(Debug, Default, Serialize)]
pub struct DrillReport {
    pub drill: String,
    /// Events the drill produced (each API change and each image) plus poison records.
    pub events_in: usize,
    /// Records handed to the relay and both consumers, retries and replays included.
    pub deliveries: usize,
    /// Deliveries beyond the first of each distinct event, per function: each one a duplicate
    /// (a relay retry, a batch retry after a crash or throttle, a replay) that was absorbed.
    pub duplicates_absorbed: usize,
    pub invocations: usize,
    pub failed_invocations: usize,
    pub crashes: u64,
    pub throttled_requests: u64,
    /// Requests the fault proxy answered, per failure shape.
    pub injected: BTreeMap<String, u64>,
    /// The relay's and the consumers' DynamoDB and Kinesis requests (through the fault proxy,
    /// when there is one), by operation: retries included, the quarantine's excluded.
    pub requests: BTreeMap<String, u64>,
    pub quarantined: usize,
    /// Every entry on the quarantine queue (this drill's and earlier ones'), by reason.
    pub quarantined_reasons: BTreeMap<String, usize>,
    pub given_up: usize,
    /// Records the stream trimmed before their readers read them.
    pub expired: usize,
    /// The oldest record's age when its batch was handed over (AWS's IteratorAge), at worst.
    pub lag_peak_ms: u64,
    /// From the consumers' (re)start to the end of the backlog.
    pub recovery_ms: u128,
    pub verdict: Verdict,
}

impl DrillReport {
    pub fn markdown_row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.drill,
            self.events_in,
            self.deliveries,
            self.duplicates_absorbed,
            self.failed_invocations,
            self.crashes,
            self.throttled_requests + self.injected.values().sum::<u64>(),
            self.quarantined,
            self.given_up,
            self.lag_peak_ms,
            self.recovery_ms,
            if self.verdict.holds() {
                "exact"
            } else {
                "WRONG"
            }
        )
    }

    pub const MARKDOWN_HEADER: &'static str = "| drill | events in | deliveries | duplicates absorbed | failed invocations | crashes | faults injected | quarantined | given up | lag peak ms | recovery ms | counts and notifications |\n|---|---|---|---|---|---|---|---|---|---|---|---|";
}

//! Fire drills: the stream's two consumers under the failures AWS promises will happen, with
//! the real binaries, the template's mappings and the emulator. Each drill checks the outcome
//! against the ground truth (exact like counts; one "published" notification per image; each
//! likes notifications counting exactly the users whose like stands, naming at most three of them) and reports its figures.
//!
//! Used at a small size by `make test` (tests/fire_drills.rs) and at a larger one by
//! `make bench`.
//!
//! `mod.rs`: the ground truth and the workload; `verdict.rs`: the check and the report;
//! `faults.rs`: what each drill injects; `stage.rs`: the stack a drill runs on, and the runs.

mod faults;
mod stage;
mod verdict;

pub use faults::{Faults, wire_faults};
pub use stage::DrillStage;
pub use verdict::{DrillReport, Verdict, verify};

use snapglow::contracts::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

use crate::scenarios::ScenarioError;
use crate::scenarios::client::ApiClient;
use crate::scenarios::producer::published_event;
use crate::stack::StackInfo;
use crate::stack::clients::{AwsResult, LocalClients};

/// Likes notifications coalesce per 15-minute window; the drills' events all fall in one.
const WINDOW_MS: i64 = 15 * 60 * 1000;
const OWNERS: u64 = 5;
const USERS: u64 = 40;

/// What the stream was sent, and what must be true once it is all processed.
#[derive(Debug, Default)]
pub struct GroundTruth {
    pub owners: BTreeMap<String, String>,
    /// (image, user) → liked, by the latest `occurred_at`.
    pub latest: BTreeMap<(String, String), bool>,
    /// Requests a client sent again after a timeout (they change nothing, emit nothing).
    pub client_retries: usize,
    pub distinct_events: usize,
    pub poison_sent: usize,
    next_image: usize,
    next_at: i64,
}

impl GroundTruth {
    pub fn new() -> GroundTruth {
        let now = Timestamp::now().millis();
        GroundTruth {
            next_at: now - now.rem_euclid(WINDOW_MS),
            ..Default::default()
        }
    }

    pub fn likes_of(&self, image_id: &str) -> BTreeSet<String> {
        self.latest
            .iter()
            .filter(|((image, _), liked)| image == image_id && **liked)
            .map(|((_, user), _)| user.clone())
            .collect()
    }
}

/// Publishes `images` new images (recorded as resize records them, with their
/// ImagePublished) and makes `likes` like/unlike requests through the HTTP API, 10% of them
/// sent twice by a retrying client; `poison` undecodable records are put on the stream
/// directly, as a foreign producer's bug would. The relay puts every recorded event on the
/// stream.
#[allow(clippy::too_many_arguments)]
pub async fn produce(
    clients: &LocalClients,
    stack: &StackInfo,
    api: &mut ApiClient,
    truth: &mut GroundTruth,
    random: &mut fastrand::Rng,
    images: usize,
    likes: usize,
    poison: usize,
) -> Result<(), ScenarioError> {
    let stream = stack.name_of("ImageSocialEvents");
    let registry = resize::registry::ImagesTable {
        client: clients.dynamodb.clone(),
        table: stack.name_of("ImagesTable").to_owned(),
    };
    let first = truth.next_image;
    for i in first..first + images {
        let (image_id, owner_id) = (
            format!("drill-img-{i:04}"),
            format!("user{}", i as u64 % OWNERS),
        );
        let upload_key = format!("uploads/{owner_id}/{image_id}");
        truth.next_at += 1;
        let pending = api::store::NewImage {
            image_id: image_id.clone(),
            owner_id: owner_id.clone(),
            content_type: "image/jpeg".into(),
            content_length: 1,
            upload_key: upload_key.clone(),
            correlation_id: format!("drill-{image_id}"),
            created_at_ms: truth.next_at,
            expires_at_s: 0,
        };
        api::store::create_pending(&clients.dynamodb, &registry.table, &pending)
            .await
            .map_err(|e| ScenarioError::table(format!("issuing {image_id}"))(e.into()))?;
        let envelope = published_event(&image_id, &owner_id, Timestamp::from_millis(truth.next_at));
        let finished = resize::registry::Finished {
            status: "published",
            event_id: envelope.event_id.to_string(),
            event_json: String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
            renditions_json: Some("[]".into()),
            reason: None,
            details: Vec::new(),
            moderation: None,
        };
        use resize::registry::Registry;
        registry
            .finish(&image_id, &owner_id, &upload_key, &finished)
            .await
            .map_err(|e| ScenarioError::table(format!("publishing {image_id}"))(e.into()))?;
        truth.distinct_events += 1;
        truth.owners.insert(image_id, owner_id);
    }
    truth.next_image += images;
    // Likes go to this call's new images, or to every image so far when it adds none (a
    // second wave).
    let (pool_start, pool) = match images {
        0 => (0, truth.next_image.max(1)),
        n => (first, n),
    };
    let poison_at: BTreeSet<usize> = (0..poison)
        .map(|p| (p + 1) * likes / (poison + 1))
        .collect();
    for n in 0..likes {
        if poison_at.contains(&n) {
            // A producer bug: bytes that are no event at all, in the middle of an image's shard.
            clients
                .kinesis
                .put_record()
                .stream_name(stream)
                .partition_key(format!("drill-img-{:04}", pool_start + n % pool))
                .data(aws_sdk_kinesis::primitives::Blob::new(
                    format!("{{\"event_id\": \"not-a-uuid-{n}\", \"type\": ").into_bytes(),
                ))
                .send()
                .await
                .aws(|| format!("PutRecord of a poison record on {stream}"))?;
            truth.poison_sent += 1;
        }
        let image_id = format!("drill-img-{:04}", pool_start + random.usize(..pool));
        let username = format!("drill-user{}", random.u64(..USERS));
        let liked = random.u64(..100) >= 20;
        let answer = api.like(&username, &image_id, liked).await?;
        if answer.status != 200 {
            return Err(ScenarioError::Failed(format!(
                "a like answered {}: {}",
                answer.status, answer.body
            )));
        }
        let user_id = api.user_id(&username).await?;
        let before = truth
            .latest
            .insert((image_id.clone(), user_id), liked)
            .unwrap_or(false);
        // The API emits an event only when the state changes.
        truth.distinct_events += usize::from(before != liked);
        if random.u64(..100) < 10 {
            // The client timed out and sent the request again: it changes nothing.
            api.like(&username, &image_id, liked).await?;
            truth.client_retries += 1;
        }
    }
    Ok(())
}

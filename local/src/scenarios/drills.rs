//! Fire drills: the stream's two consumers under the failures AWS promises will happen, with
//! the real binaries, the template's mappings and the emulator. Each drill checks the outcome
//! against the ground truth (exact like counts; one "published" notification per image; each
//! likes notifications counting exactly the users whose like stands, naming at most three of them) and reports its figures.
//!
//! Used at a small size by `make test` (tests/fire_drills.rs) and at a larger one by
//! `make bench`.

use serde::Serialize;
use snapglow::contracts::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ScenarioError;
use super::client::ApiClient;
use super::producer::published_event;
use crate::faults::{Crashing, Fault, FaultProxy, Reasons, Service, Shape, ThrottlingProxy};
use crate::stack::StackInfo;
use crate::stack::clients::{AwsResult, LocalClients};
use crate::stack::presigned::PresignedGate;
use crate::stack::queues::peek;
use crate::triggers::http::HttpApiServer;
use crate::triggers::pipeline::{run_rounds, run_until_idle};
use crate::triggers::{Mapping, MappingOptions, PollStats, mappings};

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
            owner_name: None,
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

/// Faults to inject while a pipeline runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Share of invocations whose process is killed mid-batch (or just after it).
    pub crash_percent: u64,
    /// Share of DynamoDB requests answered with a throttling error.
    pub throttle_percent: u64,
    /// Share of DynamoDB and Kinesis requests answered, per shape, with each failure shape AWS
    /// documents for them ([`wire_faults`]).
    pub wire_percent: u64,
    /// How long the streams keep records (`None`: 24 h, as deployed).
    pub stream_retention: Option<Duration>,
    pub seed: u64,
}

/// Every failure shape the drills inject at the wire, each for `percent` of the requests it
/// can answer: DynamoDB's for the relay and both consumers, Kinesis's for the relay's puts.
/// HAZARD: a hang outlasts the SDK's attempt timeout (2.5 s for a 30 s function), so the
/// request is sent again while the first is still on its way: the ambiguous commit that
/// transactions' tokens and conditions must absorb.
pub fn wire_faults(percent: u64) -> Vec<Fault> {
    let dynamodb = |operation, shape| Fault::share(Service::DynamoDb, operation, percent, shape);
    let kinesis = |shape| Fault::share(Service::Kinesis, Some("PutRecords"), percent, shape);
    let error = |status, code, message| Shape::Error {
        status,
        code,
        message,
    };
    vec![
        dynamodb(Some("TransactWriteItems"), Shape::throttled_transaction()),
        dynamodb(
            Some("TransactWriteItems"),
            Shape::Canceled(Reasons::At(0, "TransactionConflict")),
        ),
        dynamodb(Some("TransactWriteItems"), Shape::Canceled(Reasons::Absent)),
        dynamodb(Some("BatchGetItem"), Shape::UnprocessedKeys),
        dynamodb(
            None,
            error(
                400,
                "ThrottlingException",
                "Throughput exceeds the current capacity of your table or index.",
            ),
        ),
        dynamodb(
            None,
            error(500, "InternalServerError", "Internal server error"),
        ),
        Fault::share(
            Service::DynamoDb,
            None,
            percent.div_ceil(5),
            Shape::Hang(Duration::from_secs(3)),
        ),
        kinesis(Shape::FailedRecords(
            "ProvisionedThroughputExceededException",
        )),
        kinesis(Shape::FailedRecords("InternalFailure")),
        kinesis(error(
            400,
            "KMSThrottlingException",
            "Rate exceeded for KMS key",
        )),
        kinesis(error(500, "InternalFailure", "Internal service failure")),
    ]
}

/// A stack, the binaries and a place for checkpoints and logs: what every drill starts from.
pub struct DrillStage {
    pub stack: StackInfo,
    pub clients: LocalClients,
    pub binary_dir: PathBuf,
    pub state_dir: PathBuf,
    pub truth: GroundTruth,
    pub random: fastrand::Rng,
    /// Likes come in through the HTTP API, as an app's do.
    pub api: ApiClient,
    _server: HttpApiServer,
    /// Where the API's upload URLs point: lives as long as the API.
    _gate: PresignedGate,
}

impl DrillStage {
    pub async fn new(
        stack: StackInfo,
        binary_dir: &Path,
        state_dir: &Path,
    ) -> Result<DrillStage, ScenarioError> {
        let clients = LocalClients::admin(&stack).await;
        let gate = PresignedGate::for_stack(&stack)
            .await
            .map_err(|e| ScenarioError::Failed(format!("starting the presigned-URL gate: {e}")))?;
        let logs = state_dir.join("logs");
        let server = HttpApiServer::start(&stack, binary_dir, &logs, 0, &gate.url)
            .await
            .map_err(|e| ScenarioError::Failed(crate::logging::chain(&e)))?;
        let api = ApiClient::new(&server.url, &clients, &stack);
        let stage = DrillStage {
            stack,
            clients,
            binary_dir: binary_dir.to_owned(),
            state_dir: state_dir.to_owned(),
            truth: GroundTruth::new(),
            random: fastrand::Rng::with_seed(2026),
            api,
            _server: server,
            _gate: gate,
        };
        let _ = std::fs::remove_dir_all(stage.checkpoints_dir());
        Ok(stage)
    }

    fn checkpoints_dir(&self) -> PathBuf {
        self.state_dir.join("checkpoints")
    }

    /// The stream consumers' mappings (the SQS one is not part of these drills), with faults.
    async fn consumers(&self, faults: Faults) -> Result<Consumers, ScenarioError> {
        let proxy = match faults.throttle_percent {
            0 => None,
            percent => Some(
                ThrottlingProxy::start(&self.stack.endpoint_url, percent, faults.seed)
                    .await
                    .map_err(ScenarioError::file(Path::new(
                        "a loopback port for the throttling proxy",
                    )))?,
            ),
        };
        let wire = match faults.wire_percent {
            0 => None,
            percent => {
                let wire = FaultProxy::start_seeded(&self.stack.endpoint_url, faults.seed)
                    .await
                    .map_err(ScenarioError::file(Path::new(
                        "a loopback port for the fault proxy",
                    )))?;
                for fault in wire_faults(percent) {
                    wire.inject(fault);
                }
                Some(wire)
            }
        };
        let mut environment: Vec<(String, String)> = proxy
            .iter()
            .map(|p| ("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), p.url()))
            .collect();
        if let Some(wire) = &wire {
            for service in ["DYNAMODB", "KINESIS"] {
                environment.push((format!("AWS_ENDPOINT_URL_{service}"), wire.url()));
            }
        }
        let options = MappingOptions {
            checkpoints_dir: Some(self.checkpoints_dir()),
            environment,
            only_streams: true,
            stream_retention: faults.stream_retention,
        };
        let mut mappings = mappings(
            &self.stack,
            &self.binary_dir,
            &self.state_dir.join("logs"),
            &options,
        )
        .await?;
        let mut crashes = Vec::new();
        if faults.crash_percent > 0 {
            for (i, mapping) in mappings.iter_mut().enumerate() {
                mapping.wrap(|function| {
                    let layer = Crashing::new(
                        function,
                        faults.crash_percent,
                        Duration::from_millis(60),
                        faults.seed + i as u64,
                    );
                    crashes.push(layer.crashes());
                    Box::new(layer)
                });
            }
        }
        Ok(Consumers {
            mappings,
            proxy,
            wire,
            crashes,
        })
    }

    /// Runs the relay's mapping alone (`relay`), or the stream readers' alone, until the
    /// stream is drained.
    async fn run_only(&self, faults: Faults, relay: bool) -> Result<PollStats, ScenarioError> {
        let mut runner = self.consumers(faults).await?;
        runner
            .mappings
            .retain(|m| m.name().starts_with("RelayFunction") == relay);
        Ok(run_until_idle(&mut runner.mappings, Duration::from_secs(600)).await?)
    }

    async fn quarantined(&self) -> Result<usize, ScenarioError> {
        Ok(peek(&self.clients, self.stack.url_of("QuarantineQueue"))
            .await?
            .len())
    }

    /// The quarantine's entries by reason.
    async fn quarantined_reasons(&self) -> Result<BTreeMap<String, usize>, ScenarioError> {
        let mut reasons = BTreeMap::new();
        for body in peek(&self.clients, self.stack.url_of("QuarantineQueue")).await? {
            let reason = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|entry| entry["reason"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "not an entry".to_owned());
            *reasons.entry(reason).or_default() += 1;
        }
        Ok(reasons)
    }

    /// Where the stream and the quarantine stand before a drill.
    async fn mark(&self) -> Result<Mark, ScenarioError> {
        Ok(Mark {
            distinct_events: self.truth.distinct_events,
            poison_sent: self.truth.poison_sent,
            quarantined: self.quarantined().await?,
        })
    }

    async fn produce(
        &mut self,
        images: usize,
        likes: usize,
        poison: usize,
    ) -> Result<(), ScenarioError> {
        produce(
            &self.clients,
            &self.stack,
            &mut self.api,
            &mut self.truth,
            &mut self.random,
            images,
            likes,
            poison,
        )
        .await
    }

    /// Fills in what happened since `mark`, and checks the tables against the ground truth.
    async fn conclude(
        &self,
        mut report: DrillReport,
        mark: &Mark,
    ) -> Result<DrillReport, ScenarioError> {
        let events = self.truth.distinct_events - mark.distinct_events;
        let poison = self.truth.poison_sent - mark.poison_sent;
        report.events_in = events + poison;
        report.quarantined = self.quarantined().await? - mark.quarantined;
        report.quarantined_reasons = self.quarantined_reasons().await?;
        // The relay needs each event's change once and each consumer each record once (poison
        // reaches the consumers only); every other delivery was absorbed.
        report.duplicates_absorbed = report.deliveries.saturating_sub(3 * events + 2 * poison);
        report.verdict = verify(&self.clients, &self.stack, &self.truth).await?;
        Ok(report)
    }

    /// Runs fresh consumers with `faults` until the stream is drained; `earlier` is what a
    /// previous runner of the same drill did.
    async fn drain(
        &self,
        drill: &str,
        faults: Faults,
        earlier: PollStats,
        earlier_crashes: u64,
    ) -> Result<DrillReport, ScenarioError> {
        let started = Instant::now();
        let mut consumers = self.consumers(faults).await?;
        let mut stats = earlier;
        stats += run_until_idle(&mut consumers.mappings, Duration::from_secs(600)).await?;
        Ok(DrillReport {
            drill: drill.to_owned(),
            deliveries: stats.delivered,
            invocations: stats.invocations,
            failed_invocations: stats.failed_invocations,
            crashes: earlier_crashes + consumers.crashes(),
            throttled_requests: consumers
                .proxy
                .as_ref()
                .map_or(0, ThrottlingProxy::throttled),
            injected: consumers
                .wire
                .as_ref()
                .map(FaultProxy::injected)
                .unwrap_or_default(),
            given_up: stats.given_up,
            lag_peak_ms: stats.max_iterator_age_ms,
            recovery_ms: started.elapsed().as_millis(),
            ..Default::default()
        })
    }

    /// Consumers die mid-batch in `crash_percent` of invocations; then the whole runner is
    /// stopped after one round, a second wave of events arrives while nothing consumes it (lag
    /// builds), and a new runner continues from the saved checkpoints.
    pub async fn crash_and_catch_up(
        &mut self,
        images: usize,
        likes: usize,
        crash_percent: u64,
    ) -> Result<DrillReport, ScenarioError> {
        let faults = Faults {
            crash_percent,
            seed: 11,
            ..Faults::default()
        };
        let mark = self.mark().await?;
        self.produce(images, likes / 2, 0).await?;
        let mut first = self.consumers(faults).await?;
        let stats = run_rounds(&mut first.mappings, 1).await?;
        let crashes_before = first.crashes();
        drop(first); // the runner dies; its checkpoints stay on disk
        self.produce(0, likes - likes / 2, 0).await?;
        let drill = "crash mid-batch, stop, lag, restart";
        let report = self
            .drain(drill, Faults { seed: 12, ..faults }, stats, crashes_before)
            .await?;
        self.conclude(report, &mark).await
    }

    /// DynamoDB throttles a share of requests, invocations crash, and poison records sit
    /// in the middle of the shards.
    pub async fn throttling_and_poison(
        &mut self,
        images: usize,
        likes: usize,
        throttle_percent: u64,
        crash_percent: u64,
    ) -> Result<DrillReport, ScenarioError> {
        let faults = Faults {
            crash_percent,
            throttle_percent,
            seed: 21,
            ..Faults::default()
        };
        let drill = "DynamoDB throttling + crashes + poison records";
        self.with_poison(images, likes, faults, drill).await
    }

    /// New images, likes and two poison records, drained by fresh consumers with `faults`.
    async fn with_poison(
        &mut self,
        images: usize,
        likes: usize,
        faults: Faults,
        drill: &str,
    ) -> Result<DrillReport, ScenarioError> {
        let mark = self.mark().await?;
        self.produce(images, likes, 2).await?;
        let report = self.drain(drill, faults, PollStats::default(), 0).await?;
        self.conclude(report, &mark).await
    }

    /// Every failure shape AWS documents for DynamoDB and Kinesis answered at the wire for a
    /// share of the relay's and both consumers' requests ([`wire_faults`]), invocations
    /// crash, and poison records sit mid-shard.
    pub async fn wire_faults_and_crashes(
        &mut self,
        images: usize,
        likes: usize,
        wire_percent: u64,
        crash_percent: u64,
    ) -> Result<DrillReport, ScenarioError> {
        let faults = Faults {
            crash_percent,
            wire_percent,
            seed: 31,
            ..Faults::default()
        };
        let drill = "every failure shape at the wire + crashes + poison records";
        self.with_poison(images, likes, faults, drill).await
    }

    /// The stream's readers are down for longer than the stream keeps records (`retention`,
    /// shortened from 24 h for the drill): what they missed expires unread, and the counts are
    /// wrong, as on AWS. Replaying the outbox (every event the images table holds) recovers it:
    /// then every count and notification is exact again.
    pub async fn outage_past_retention(
        &mut self,
        images: usize,
        likes: usize,
        retention: Duration,
    ) -> Result<(DrillReport, Verdict), ScenarioError> {
        let mark = self.mark().await?;
        // From this drill's first event on: its images are stamped from the ground truth's
        // clock (which may run behind), its likes by the API (now).
        let since = Timestamp::from_millis(Timestamp::now().millis().min(self.truth.next_at));
        self.produce(images, likes, 0).await?;
        // The relay runs: every event reaches the stream, while its readers are down.
        let relayed = self.run_only(Faults::default(), true).await?;
        // The outage outlasts the retention: the newest record is older than it when the
        // readers come back (a bound of time, not a guess).
        tokio::time::sleep(retention + Duration::from_millis(500)).await;
        let shortened = Faults {
            stream_retention: Some(retention),
            ..Faults::default()
        };
        let missed = self.run_only(shortened, false).await?;
        let before = verify(&self.clients, &self.stack, &self.truth).await?;
        // Recovery: the outbox replayed onto the stream, read with the stream's own retention.
        let started = Instant::now();
        let replayed = crate::stack::replay::replay_outbox(
            &self.clients,
            self.stack.name_of("ImagesTable"),
            self.stack.name_of("ImageSocialEvents"),
            since,
        )
        .await
        .map_err(|e| ScenarioError::Failed(crate::logging::chain(&e)))?;
        let recovered = self.run_only(Faults::default(), false).await?;
        let report = DrillReport {
            drill: format!(
                "readers down past the stream's retention ({} s), outbox replayed ({} events)",
                retention.as_secs(),
                replayed.events
            ),
            deliveries: relayed.delivered + missed.delivered + recovered.delivered,
            invocations: relayed.invocations + missed.invocations + recovered.invocations,
            failed_invocations: relayed.failed_invocations
                + missed.failed_invocations
                + recovered.failed_invocations,
            expired: missed.expired,
            given_up: relayed.given_up + missed.given_up + recovered.given_up,
            lag_peak_ms: missed
                .max_iterator_age_ms
                .max(recovered.max_iterator_age_ms),
            recovery_ms: started.elapsed().as_millis(),
            ..Default::default()
        };
        Ok((self.conclude(report, &mark).await?, before))
    }

    /// Both mappings start over at TRIM_HORIZON: every record is delivered again, and nothing
    /// may change.
    pub async fn replay(&mut self) -> Result<DrillReport, ScenarioError> {
        let checkpoints = self.checkpoints_dir();
        std::fs::remove_dir_all(&checkpoints).map_err(ScenarioError::file(&checkpoints))?;
        let mark = self.mark().await?;
        let drill = "replay from TRIM_HORIZON";
        let report = self
            .drain(drill, Faults::default(), PollStats::default(), 0)
            .await?;
        self.conclude(report, &mark).await
    }
}

/// A drill's starting point.
struct Mark {
    distinct_events: usize,
    poison_sent: usize,
    quarantined: usize,
}

/// The stream consumers of one runner, with their fault layers.
struct Consumers {
    mappings: Vec<Mapping>,
    proxy: Option<ThrottlingProxy>,
    wire: Option<FaultProxy>,
    crashes: Vec<Arc<AtomicU64>>,
}

impl Consumers {
    fn crashes(&self) -> u64 {
        self.crashes.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

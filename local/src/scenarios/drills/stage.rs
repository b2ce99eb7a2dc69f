//! The stack a drill runs on: its binaries, checkpoints, logs and API, and the drills' runs.

use snapglow::contracts::Timestamp;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::faults::{Crashing, FaultProxy, ThrottlingProxy};
use crate::scenarios::ScenarioError;
use crate::scenarios::client::ApiClient;
use crate::stack::StackInfo;
use crate::stack::clients::LocalClients;
use crate::stack::presigned::PresignedGate;
use crate::stack::queues::peek;
use crate::triggers::http::HttpApiServer;
use crate::triggers::pipeline::{run_rounds, run_until_idle};
use crate::triggers::{Mapping, MappingOptions, PollStats, mappings};

use super::*;

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
            environment_of: Vec::new(),
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
            requests: (consumers.wire.as_ref())
                .map(FaultProxy::requests)
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

//! The whole pipeline of template.yaml on this machine: every function's event source
//! mappings, polled until nothing is left to do (or until Ctrl-C, with `cargo local run`).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::checkpoints::CheckpointStore;
use crate::clients::LocalClients;
use crate::functions;
use crate::mappings::{KinesisMapping, KinesisSettings, PollStats, SqsMapping};
use crate::runtime_api::{LocalFunction, LogSink};
use crate::stack::StackInfo;

pub enum Mapping {
    Sqs(SqsMapping),
    Kinesis(KinesisMapping),
}

impl Mapping {
    pub fn name(&self) -> &str {
        match self {
            Mapping::Sqs(m) => &m.name,
            Mapping::Kinesis(m) => &m.name,
        }
    }

    pub fn function(&self) -> &LocalFunction {
        match self {
            Mapping::Sqs(m) => &m.function,
            Mapping::Kinesis(m) => &m.function,
        }
    }

    pub fn function_mut(&mut self) -> &mut LocalFunction {
        match self {
            Mapping::Sqs(m) => &mut m.function,
            Mapping::Kinesis(m) => &mut m.function,
        }
    }

    /// End-to-end latency of every record processed so far: into the queue or stream →
    /// acknowledged by the function, in ms.
    pub fn latencies_ms(&self) -> &[u64] {
        match self {
            Mapping::Sqs(m) => &m.latencies_ms,
            Mapping::Kinesis(m) => &m.latencies_ms,
        }
    }

    pub async fn poll_once(&mut self, clients: &LocalClients) -> Result<PollStats, String> {
        match self {
            Mapping::Sqs(m) => m.poll_once(clients).await,
            Mapping::Kinesis(m) => m.poll_once(clients).await,
        }
    }

    /// Messages still in the queue: visible, or received and not yet deleted (a failed batch
    /// waits out the queue's visibility timeout before it comes back). Zero for streams.
    pub async fn in_flight(&self, clients: &LocalClients) -> Result<usize, String> {
        let Mapping::Sqs(m) = self else {
            return Ok(0);
        };
        use aws_sdk_sqs::types::QueueAttributeName as Attribute;
        let wanted = [
            Attribute::ApproximateNumberOfMessages,
            Attribute::ApproximateNumberOfMessagesNotVisible,
        ];
        let output = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&m.queue_url)
            .set_attribute_names(Some(wanted.to_vec()))
            .send()
            .await
            .map_err(|e| format!("{}: {}", m.name, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(wanted
            .iter()
            .filter_map(|a| output.attributes()?.get(a)?.parse::<usize>().ok())
            .sum())
    }
}

/// How to build the mappings.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Kinesis positions are saved here and read back at start; `None` keeps them in memory.
    pub checkpoints_dir: Option<PathBuf>,
    /// Added to every function's environment (fire drills point DynamoDB at a proxy).
    pub environment: Vec<(String, String)>,
    /// Only the stream mappings (the drills leave the uploads queue alone).
    pub only_streams: bool,
}

/// One mapping per SQS or Kinesis event of every function in the stack, each with its own
/// function process (as each mapping has its own concurrency on AWS).
pub async fn mappings(
    stack: &StackInfo,
    binary_dir: &Path,
    log_dir: &Path,
    options: &PipelineOptions,
) -> Result<Vec<Mapping>, String> {
    let arn_lookup = |arn: &str| {
        stack
            .resources
            .values()
            .find(|r| r.arn.as_deref() == Some(arn))
            .cloned()
    };
    let mut all = Vec::new();
    for (logical_id, resource) in &stack.resources {
        let Some(info) = &resource.function else {
            continue;
        };
        for (event_name, event) in &info.events {
            let kind = event
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if kind != "Kinesis" && (kind != "SQS" || options.only_streams) {
                continue;
            }
            let properties = event.get("Properties").cloned().unwrap_or(Value::Null);
            let name = format!("{logical_id}.{event_name}");
            let log = LogSink::File(log_dir.join(format!("{}.log", info.binary)));
            let mut spec = functions::spec_for(stack, &info.binary, binary_dir, log)
                .map_err(|e| e.to_string())?;
            spec.environment.extend(options.environment.iter().cloned());
            let function = LocalFunction::start(spec)
                .await
                .map_err(|e| e.to_string())?;
            let source_arn = properties
                .get(if kind == "SQS" { "Queue" } else { "Stream" })
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let source = arn_lookup(&source_arn)
                .ok_or_else(|| format!("{name}: {source_arn} is not in the local stack"))?;
            if kind == "SQS" {
                let batch_size = properties
                    .get("BatchSize")
                    .and_then(Value::as_i64)
                    .unwrap_or(10) as i32;
                all.push(Mapping::Sqs(SqsMapping {
                    name,
                    queue_url: source.url.unwrap_or_default(),
                    queue_arn: source_arn,
                    batch_size,
                    function,
                    latencies_ms: Vec::new(),
                }));
            } else {
                let store = match &options.checkpoints_dir {
                    Some(dir) => CheckpointStore::in_dir(dir, &name),
                    None => CheckpointStore::in_memory(),
                };
                all.push(Mapping::Kinesis(KinesisMapping {
                    checkpoints: store.load(&source_arn),
                    store,
                    name,
                    stream_name: source.name.unwrap_or_default(),
                    stream_arn: source_arn,
                    function_arn: resource.arn.clone().unwrap_or_default(),
                    settings: KinesisSettings::from_event(&properties, stack),
                    function,
                    latencies_ms: Vec::new(),
                }));
            }
        }
    }
    Ok(all)
}

/// Polls every mapping `rounds` times (each poll: one batch per queue, one per shard).
pub async fn run_rounds(
    mappings: &mut [Mapping],
    clients: &LocalClients,
    rounds: usize,
) -> Result<PollStats, String> {
    let mut progress = Progress::quiet();
    let mut total = PollStats::default();
    for _ in 0..rounds {
        total += poll_round(mappings, clients, &mut progress).await?;
    }
    Ok(total)
}

/// One poll of every mapping, counted per mapping in `progress`.
async fn poll_round(
    mappings: &mut [Mapping],
    clients: &LocalClients,
    progress: &mut Progress,
) -> Result<PollStats, String> {
    let mut round = PollStats::default();
    for mapping in mappings.iter_mut() {
        let stats = mapping.poll_once(clients).await?;
        progress.add(mapping.name(), stats);
        round += stats;
    }
    Ok(round)
}

/// Polls every mapping until a whole round finds nothing to do and no message is in flight
/// (a failed SQS batch comes back after the visibility timeout), or `limit` passes.
pub async fn run_until_idle(
    mappings: &mut [Mapping],
    clients: &LocalClients,
    limit: Duration,
) -> Result<PollStats, String> {
    let mut progress = Progress::quiet();
    run(mappings, clients, Some(limit), &mut progress).await
}

/// What `cargo local run` shows while it runs: per mapping, records, failures and lag.
pub struct Progress {
    every: Option<Duration>,
    last: Instant,
    per_mapping: BTreeMap<String, PollStats>,
}

impl Progress {
    pub fn quiet() -> Progress {
        Progress {
            every: None,
            last: Instant::now(),
            per_mapping: BTreeMap::new(),
        }
    }

    pub fn every(period: Duration) -> Progress {
        Progress {
            every: Some(period),
            ..Progress::quiet()
        }
    }

    fn add(&mut self, mapping: &str, stats: PollStats) {
        *self.per_mapping.entry(mapping.to_owned()).or_default() += stats;
    }

    /// One line per mapping: what it has done since the start.
    pub fn lines(&self) -> Vec<String> {
        self.per_mapping
            .iter()
            .map(|(name, s)| {
                format!(
                    "{name:<34} records {:>6}  invocations {:>5}  failed {:>4}  given up {:>3}  max lag {:>6} ms",
                    s.records, s.invocations, s.failed_invocations, s.given_up, s.max_iterator_age_ms
                )
            })
            .collect()
    }

    fn maybe_print(&mut self) {
        if let Some(every) = self.every
            && self.last.elapsed() >= every
        {
            self.last = Instant::now();
            for line in self.lines() {
                eprintln!("{line}");
            }
        }
    }
}

/// Polls the mappings round after round. With a `limit`, returns once the pipeline is idle
/// (an error if that takes longer than the limit); without one, runs until the process is
/// stopped, waiting a little between idle rounds.
pub async fn run(
    mappings: &mut [Mapping],
    clients: &LocalClients,
    limit: Option<Duration>,
    progress: &mut Progress,
) -> Result<PollStats, String> {
    let started = Instant::now();
    let mut total = PollStats::default();
    loop {
        let round = poll_round(mappings, clients, progress).await?;
        total += round;
        progress.maybe_print();
        let Some(limit) = limit else {
            // Running until stopped: an idle round only slows the next poll down.
            if round.records == 0 {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            continue;
        };
        if round.records > 0 {
            if started.elapsed() > limit {
                return Err(format!(
                    "the pipeline was still busy after {}s",
                    limit.as_secs()
                ));
            }
            continue;
        }
        let mut in_flight = 0;
        for mapping in mappings.iter() {
            in_flight += mapping.in_flight(clients).await?;
        }
        if in_flight == 0 {
            return Ok(total);
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{in_flight} messages were still in flight after {}s (a failed batch reappears after the queue's visibility timeout)",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

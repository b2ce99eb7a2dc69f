//! The whole pipeline of template.yaml on this machine: every function's event source
//! mappings, polled until nothing is left to do.

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::clients::LocalClients;
use crate::functions;
use crate::mappings::{KinesisMapping, KinesisSettings, PollStats, SqsMapping};
use crate::runtime_api::LogSink;
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

    pub async fn poll_once(&mut self, clients: &LocalClients) -> Result<PollStats, String> {
        match self {
            Mapping::Sqs(m) => m.poll_once(clients).await,
            Mapping::Kinesis(m) => m.poll_once(clients).await,
        }
    }
}

/// One mapping per SQS or Kinesis event of every function in the stack, each with its own
/// function process (as each mapping has its own concurrency on AWS).
pub async fn mappings(
    stack: &StackInfo,
    binary_dir: &Path,
    log_dir: &Path,
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
            let properties = event.get("Properties").cloned().unwrap_or(Value::Null);
            let name = format!("{logical_id}.{event_name}");
            let log = LogSink::File(log_dir.join(format!("{}.log", info.binary)));
            let function = functions::start(stack, &info.binary, binary_dir, log)
                .await
                .map_err(|e| e.to_string())?;
            match kind {
                "SQS" => {
                    let arn = properties
                        .get("Queue")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let queue = arn_lookup(&arn)
                        .ok_or_else(|| format!("{name}: queue {arn} is not in the local stack"))?;
                    let batch_size = properties
                        .get("BatchSize")
                        .and_then(Value::as_i64)
                        .unwrap_or(10) as i32;
                    all.push(Mapping::Sqs(SqsMapping {
                        name,
                        queue_url: queue.url.unwrap_or_default(),
                        queue_arn: arn,
                        batch_size,
                        function,
                    }));
                }
                "Kinesis" => {
                    let arn = properties
                        .get("Stream")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let stream = arn_lookup(&arn)
                        .ok_or_else(|| format!("{name}: stream {arn} is not in the local stack"))?;
                    all.push(Mapping::Kinesis(KinesisMapping {
                        name,
                        stream_name: stream.name.unwrap_or_default(),
                        stream_arn: arn,
                        function_arn: resource.arn.clone().unwrap_or_default(),
                        settings: KinesisSettings::from_event(&properties, stack),
                        function,
                        checkpoints: Default::default(),
                    }));
                }
                _ => {}
            }
        }
    }
    Ok(all)
}

/// Polls every mapping until a whole round finds nothing to do, or `limit` passes.
pub async fn run_until_idle(
    mappings: &mut [Mapping],
    clients: &LocalClients,
    limit: Duration,
) -> Result<PollStats, String> {
    let started = Instant::now();
    let mut total = PollStats::default();
    loop {
        let mut round = PollStats::default();
        for mapping in mappings.iter_mut() {
            round += mapping.poll_once(clients).await?;
        }
        total += round;
        if round.records == 0 {
            return Ok(total);
        }
        if started.elapsed() > limit {
            return Err(format!(
                "the pipeline was still busy after {}s",
                limit.as_secs()
            ));
        }
    }
}

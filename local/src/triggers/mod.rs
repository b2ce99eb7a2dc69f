//! Event source mappings, run locally with AWS's semantics: what turns a queue, a stream or
//! an HTTP request into invocations of a function. One home per source kind: [`sqs`];
//! [`kinesis`] and [`dynamodb`], both polled by [`stream`] (with [`filter`] for event
//! filtering); [`http`], the HTTP API. [`pipeline`] polls the mappings.

pub mod checkpoints;
pub mod dynamodb;
pub mod filter;
pub mod http;
pub mod kinesis;
pub mod pipeline;
pub mod sqs;
pub mod stream;
pub mod websocket;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::lambda::{FunctionError, Invoke, InvokeError, LocalFunction, LogSink, spec_for};
use crate::stack::StackInfo;
use crate::stack::clients::{AwsError, LocalClients};
use crate::template::model::EventSource;
use checkpoints::CheckpointStore;
use sqs::SqsMapping;
use stream::{Source, StreamMapping};

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("mapping {mapping}")]
    Aws {
        mapping: String,
        #[source]
        source: AwsError,
    },
    #[error("mapping {mapping}: saving the checkpoint in {path}")]
    Checkpoint {
        mapping: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "mapping {mapping}: its source {arn} is not in the local stack; run `cargo local up` again after changing template.yaml"
    )]
    UnknownSource { mapping: String, arn: String },
    #[error("mapping {mapping}: starting its function")]
    Function {
        mapping: String,
        #[source]
        source: FunctionError,
    },
    #[error(
        "the pipeline was still busy after {seconds} s ({in_flight} messages in flight; a failed batch reappears after the queue's visibility timeout)"
    )]
    Busy { seconds: u64, in_flight: usize },
    #[error("mapping {mapping}: a FilterCriteria pattern is not JSON; fix it in template.yaml")]
    Filter {
        mapping: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollStats {
    /// Records read from the source (each once per poll).
    pub records: usize,
    /// Records handed to the function, counting every retry and bisected half.
    pub delivered: usize,
    pub invocations: usize,
    /// Invocations that failed or reported items (the batch, or part of it, comes back).
    pub failed_invocations: usize,
    /// How far behind the mapping is: for Kinesis the age of a batch's newest record when it
    /// was handed over (AWS's IteratorAge), for SQS the oldest message's age; the maximum
    /// over the polls added up.
    pub max_iterator_age_ms: u64,
    pub acknowledged: usize,
    /// Records reported or left for redelivery.
    pub failed: usize,
    pub given_up: usize,
    /// Records the stream trimmed before this mapping read them (older than its retention):
    /// gone, as on AWS, with no pointer anywhere.
    pub expired: usize,
}

impl std::ops::AddAssign for PollStats {
    fn add_assign(&mut self, other: PollStats) {
        self.records += other.records;
        self.delivered += other.delivered;
        self.invocations += other.invocations;
        self.failed_invocations += other.failed_invocations;
        self.max_iterator_age_ms = self.max_iterator_age_ms.max(other.max_iterator_age_ms);
        self.acknowledged += other.acknowledged;
        self.failed += other.failed;
        self.given_up += other.given_up;
        self.expired += other.expired;
    }
}

/// How a batch ended, from the function's answer. Anything but a well-formed partial batch
/// response fails the whole batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchResult {
    Success,
    /// The itemIdentifiers the response listed.
    Partial(Vec<String>),
    Failed(String),
}

/// Reads a function's answer exactly as Lambda does: `null`, `{}`, an empty or null list are
/// success; each failure needs a non-empty string `itemIdentifier` naming a record of the
/// batch; anything else (invalid JSON, a wrong key, an unknown id) fails the whole batch.
/// Without `ReportBatchItemFailures` on the mapping (`reports_items` false) Lambda does not
/// read the body at all: any answer is success, the failed items included.
pub fn read_response(
    outcome: &Result<Vec<u8>, InvokeError>,
    batch_ids: &[String],
    reports_items: bool,
) -> BatchResult {
    let body = match outcome {
        Ok(_) if !reports_items => return BatchResult::Success,
        Ok(body) => body,
        Err(error) => return BatchResult::Failed(error.to_string()),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return BatchResult::Success;
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return BatchResult::Failed(format!("the response is not JSON ({e})")),
    };
    let failures = match &value {
        Value::Null => return BatchResult::Success,
        Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(Value::Null) => return BatchResult::Success,
            Some(Value::Array(list)) => list,
            Some(other) => {
                return BatchResult::Failed(format!("batchItemFailures is not a list: {other}"));
            }
        },
        other => return BatchResult::Failed(format!("the response is not an object: {other}")),
    };
    let mut ids = Vec::new();
    for failure in failures {
        match failure.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() && batch_ids.contains(id) => {
                ids.push(id.clone())
            }
            other => {
                return BatchResult::Failed(format!(
                    "invalid itemIdentifier {other:?}: it must name a record of the batch"
                ));
            }
        }
    }
    if ids.is_empty() {
        BatchResult::Success
    } else {
        BatchResult::Partial(ids)
    }
}

/// One mapping of the template, with the function it invokes (each mapping has its own
/// execution environment, as each has its own concurrency on AWS).
pub enum Mapping {
    Sqs(Box<SqsMapping>),
    Stream(Box<StreamMapping>),
}

impl Mapping {
    pub fn name(&self) -> &str {
        match self {
            Mapping::Sqs(m) => &m.name,
            Mapping::Stream(m) => &m.name,
        }
    }

    pub fn function(&self) -> &dyn Invoke {
        match self {
            Mapping::Sqs(m) => m.function.as_ref(),
            Mapping::Stream(m) => m.function.as_ref(),
        }
    }

    /// Wraps the mapping's function in a layer (a fault, for fire drills).
    pub fn wrap(&mut self, layer: impl FnOnce(Box<dyn Invoke>) -> Box<dyn Invoke>) {
        let slot = match self {
            Mapping::Sqs(m) => &mut m.function,
            Mapping::Stream(m) => &mut m.function,
        };
        let placeholder: Box<dyn Invoke> = Box::new(Unwired);
        let function = std::mem::replace(slot, placeholder);
        *slot = layer(function);
    }

    /// End-to-end latency of every record processed so far: into the queue or stream →
    /// acknowledged by the function, in ms.
    pub fn latencies_ms(&self) -> &[u64] {
        match self {
            Mapping::Sqs(m) => &m.latencies_ms,
            Mapping::Stream(m) => &m.latencies_ms,
        }
    }

    /// One poll, with the function's own key: Lambda reads a mapping's source and writes its
    /// on-failure destination with the execution role, so a missing grant stops it here too.
    pub async fn poll_once(&mut self) -> Result<PollStats, TriggerError> {
        match self {
            Mapping::Sqs(m) => {
                let clients = m.clients.clone();
                m.poll_once(&clients).await
            }
            Mapping::Stream(m) => {
                let clients = m.clients.clone();
                m.poll_once(&clients).await
            }
        }
    }

    /// Messages still in the queue, visible or in flight; zero for streams.
    pub async fn in_flight(&self) -> Result<usize, TriggerError> {
        match self {
            Mapping::Sqs(m) => m.in_flight(&m.clients).await,
            Mapping::Stream(_) => Ok(0),
        }
    }
}

/// Held for an instant while [`Mapping::wrap`] swaps the function.
struct Unwired;

impl Invoke for Unwired {
    fn name(&self) -> &str {
        "unwired"
    }
    fn invoke(
        &mut self,
        _: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = crate::lambda::Outcome> + Send + '_>>
    {
        Box::pin(async {
            Err(InvokeError::Spawn {
                binary: "unwired".into(),
                detail: "a layer was being put around this function".into(),
            })
        })
    }
    fn reset(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// How to build the mappings.
#[derive(Debug, Clone, Default)]
pub struct MappingOptions {
    /// Kinesis positions are saved here and read back at start; `None` keeps them in memory.
    pub checkpoints_dir: Option<PathBuf>,
    /// Added to every function's environment (fire drills point DynamoDB at a proxy).
    pub environment: Vec<(String, String)>,
    /// Added to one binary's environment, after `environment` (the pusher presigns rendition
    /// URLs for the presigned gate, as the API does).
    pub environment_of: Vec<(String, String, String)>,
    /// Only the stream mappings (the drills leave the uploads queue alone).
    pub only_streams: bool,
    /// How long the streams keep records (a Kinesis stream's `RetentionPeriodHours`; a table's
    /// stream, 24 h). `None`: 24 h. Drills shorten it to run an outage past it.
    pub stream_retention: Option<std::time::Duration>,
}

/// One mapping per SQS or Kinesis event of every function in the stack.
pub async fn mappings(
    stack: &StackInfo,
    binary_dir: &Path,
    log_dir: &Path,
    options: &MappingOptions,
) -> Result<Vec<Mapping>, TriggerError> {
    let mut all = Vec::new();
    for (logical_id, resource) in &stack.resources {
        let Some(info) = resource.function() else {
            continue;
        };
        for (event_name, event) in &info.events {
            let (source_arn, wanted) = match event {
                EventSource::Sqs(sqs) => (&sqs.queue, !options.only_streams),
                EventSource::Kinesis(kinesis) => (&kinesis.stream, true),
                EventSource::DynamoDB(dynamodb) => (&dynamodb.poll.stream, true),
                // HTTP APIs are served by [`http`], not polled.
                EventSource::HttpApi(_) | EventSource::Unsupported(_) => continue,
            };
            if !wanted {
                continue;
            }
            let name = format!("{logical_id}.{event_name}");
            let source = stack
                .resources
                .values()
                .find(|r| r.arn == *source_arn || r.stream_arn() == Some(source_arn.as_str()))
                .ok_or_else(|| TriggerError::UnknownSource {
                    mapping: name.clone(),
                    arn: source_arn.clone(),
                })?;
            let log = LogSink::File(log_dir.join(format!("{}.log", info.binary)));
            let starting = |source: FunctionError| TriggerError::Function {
                mapping: name.clone(),
                source,
            };
            let clients = LocalClients::new(&stack.endpoint_url, info.key(stack)).await;
            let mut spec = spec_for(stack, &info.binary, binary_dir, log).map_err(starting)?;
            spec.environment.extend(options.environment.iter().cloned());
            spec.environment.extend(
                (options.environment_of.iter())
                    .filter(|(binary, _, _)| *binary == info.binary)
                    .map(|(_, key, value)| (key.clone(), value.clone())),
            );
            let function: Box<dyn Invoke> = Box::new(
                LocalFunction::start(spec)
                    .await
                    .map_err(|e| starting(FunctionError::Start(e)))?,
            );
            let stream = |settings: &crate::template::model::KinesisEvent,
                          source_kind: Source,
                          function: Box<dyn Invoke>| {
                let store = match &options.checkpoints_dir {
                    Some(dir) => CheckpointStore::in_dir(dir, &name),
                    None => CheckpointStore::in_memory(),
                };
                StreamMapping {
                    retention: options
                        .stream_retention
                        .unwrap_or(std::time::Duration::from_secs(24 * 3600)),
                    retrying: BTreeMap::new(),
                    checkpoints: store.load(source_arn),
                    store,
                    source: source_kind,
                    stream_arn: source_arn.clone(),
                    function_arn: resource.arn.clone(),
                    on_failure_queue_url: settings
                        .on_failure_arn()
                        .and_then(|arn| stack.by_arn(arn))
                        .and_then(|r| r.url().map(str::to_owned)),
                    settings: settings.clone(),
                    function,
                    latencies_ms: Vec::new(),
                    name: name.clone(),
                    clients: clients.clone(),
                }
            };
            all.push(match event {
                EventSource::Sqs(settings) => Mapping::Sqs(Box::new(SqsMapping {
                    queue_url: source.url().unwrap_or_default().to_owned(),
                    queue_arn: source_arn.clone(),
                    settings: settings.clone(),
                    function,
                    latencies_ms: Vec::new(),
                    name,
                    clients,
                })),
                EventSource::Kinesis(settings) => {
                    let filters = settings
                        .filter_patterns()
                        .map_err(|e| TriggerError::Filter {
                            mapping: name.clone(),
                            source: e,
                        })?;
                    Mapping::Stream(Box::new(stream(
                        settings,
                        Source::Kinesis {
                            stream_name: source.name.clone(),
                            filters,
                        },
                        function,
                    )))
                }
                EventSource::DynamoDB(settings) => {
                    let filters =
                        settings
                            .poll
                            .filter_patterns()
                            .map_err(|e| TriggerError::Filter {
                                mapping: name.clone(),
                                source: e,
                            })?;
                    Mapping::Stream(Box::new(stream(
                        &settings.poll,
                        Source::DynamoDb { filters },
                        function,
                    )))
                }
                EventSource::HttpApi(_) | EventSource::Unsupported(_) => {
                    unreachable!("skipped above")
                }
            });
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["1".into(), "2".into(), "10".into()]
    }

    #[test]
    fn without_report_batch_item_failures_a_partial_response_is_ignored() {
        let body = br#"{"batchItemFailures":[{"itemIdentifier":"2"}]}"#.to_vec();
        assert_eq!(
            read_response(&Ok(body.clone()), &ids(), false),
            BatchResult::Success
        );
        assert_eq!(
            read_response(&Ok(body), &ids(), true),
            BatchResult::Partial(vec!["2".into()])
        );
    }

    #[test]
    fn success_shapes_are_what_aws_accepts() {
        for body in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
        ] {
            assert_eq!(
                read_response(&Ok(body.as_bytes().to_vec()), &ids(), true),
                BatchResult::Success,
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_valid_partial_response_names_records_of_the_batch() {
        let body =
            br#"{"batchItemFailures":[{"itemIdentifier":"10"},{"itemIdentifier":"2"}]}"#.to_vec();
        assert_eq!(
            read_response(&Ok(body), &ids(), true),
            BatchResult::Partial(vec!["10".into(), "2".into()])
        );
    }

    #[test]
    fn anything_else_fails_the_whole_batch() {
        for body in [
            "not json",
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":123}]}"#,
            r#"{"batchItemFailures":[{"foo":"1"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"99"}]}"#,
            r#""text""#,
        ] {
            assert!(
                matches!(
                    read_response(&Ok(body.as_bytes().to_vec()), &ids(), true),
                    BatchResult::Failed(_)
                ),
                "{body:?}"
            );
        }
        let error = Err(InvokeError::Timeout { seconds: 3.0 });
        assert!(matches!(
            read_response(&error, &ids(), true),
            BatchResult::Failed(_)
        ));
    }
}

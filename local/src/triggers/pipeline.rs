//! The whole pipeline of template.yaml on this machine: every mapping polled, round after
//! round, until nothing is left to do (or until Ctrl-C, with `cargo local run`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Mapping, PollStats, TriggerError};

/// Polls every mapping `rounds` times (each poll: one batch per queue, one per shard).
pub async fn run_rounds(
    mappings: &mut [Mapping],
    rounds: usize,
) -> Result<PollStats, TriggerError> {
    let mut progress = Progress::quiet();
    let mut total = PollStats::default();
    for _ in 0..rounds {
        total += poll_round(mappings, &mut progress).await?;
    }
    Ok(total)
}

/// One poll of every mapping, counted per mapping in `progress`.
async fn poll_round(
    mappings: &mut [Mapping],
    progress: &mut Progress,
) -> Result<PollStats, TriggerError> {
    let mut round = PollStats::default();
    for mapping in mappings.iter_mut() {
        let stats = mapping.poll_once().await?;
        progress.add(mapping.name(), stats);
        round += stats;
    }
    Ok(round)
}

/// Polls every mapping until a whole round finds nothing to do and no message is in flight
/// (a failed SQS batch comes back after the visibility timeout), or `limit` passes.
pub async fn run_until_idle(
    mappings: &mut [Mapping],
    limit: Duration,
) -> Result<PollStats, TriggerError> {
    let mut progress = Progress::quiet();
    run(mappings, Some(limit), &mut progress).await
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
    limit: Option<Duration>,
    progress: &mut Progress,
) -> Result<PollStats, TriggerError> {
    let started = Instant::now();
    let mut total = PollStats::default();
    loop {
        let round = poll_round(mappings, progress).await?;
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
                return Err(TriggerError::Busy {
                    seconds: limit.as_secs(),
                    in_flight: round.records,
                });
            }
            continue;
        }
        let mut in_flight = 0;
        for mapping in mappings.iter() {
            in_flight += mapping.in_flight().await?;
        }
        if in_flight == 0 {
            return Ok(total);
        }
        if started.elapsed() > limit {
            return Err(TriggerError::Busy {
                seconds: limit.as_secs(),
                in_flight,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

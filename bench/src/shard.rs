//! like-counter at a full shard's rate: the release binary under the local Runtime API, fed by
//! the template's mapping (its batch size and starting position) from one Kinesis shard that a
//! producer writes at the shard's write limit. The question is Kinesis's, not DynamoDB's: a
//! consumer slower than a full shard (1,000 records/s) falls behind for as long as the shard
//! stays hot. Writes bench/results/shard.md and shard.png (lag over time, with gnuplot).

use anyhow::{Context, Result, bail};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use like_counter::table::LikeCounts;
use snapglow::contracts::{Envelope, SocialEvent};
use snapglow_local::scenarios::measure::{
    children_named, cpu_seconds, peak_memory_kb, percentile_u64,
};
use snapglow_local::stack::fresh::FreshStack;
use snapglow_local::stack::project::build_binaries;
use snapglow_local::triggers::{Mapping, MappingOptions, mappings};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// PutRecords takes at most 500 records.
const PUT_CHUNK: usize = 500;
/// The hash key of shard 0 of the stream's two: every record lands on one shard, whatever its
/// partition key (the image id, which would spread them over both).
const SHARD_ZERO_HASH_KEY: &str = "0";

/// One poll of the mapping, as the lag plot shows it.
struct Sample {
    at_s: f64,
    /// IteratorAge: how old the batch's newest record was when it was handed over.
    iterator_age_ms: u64,
    produced: usize,
    consumed: usize,
}

/// The like count of each image once every fact is applied: per (image, user) the latest
/// fact by (time, event id), whatever the order or the duplicates.
fn expected_counts(stream: &[Envelope]) -> BTreeMap<String, i64> {
    let mut latest: BTreeMap<(String, String), (i64, uuid::Uuid, bool)> = BTreeMap::new();
    for envelope in stream {
        let (image, user, liked) = match &envelope.event {
            SocialEvent::ImageLiked(d) => (&d.image_id, &d.user_id, true),
            SocialEvent::ImageLikeUndone(d) => (&d.image_id, &d.user_id, false),
            _ => continue,
        };
        let version = (envelope.occurred_at.millis(), envelope.event_id, liked);
        let entry = latest
            .entry((image.clone(), user.clone()))
            .or_insert(version);
        if (version.0, version.1) > (entry.0, entry.1) {
            *entry = version;
        }
    }
    let mut counts = BTreeMap::new();
    for ((image, _), (_, _, liked)) in latest {
        *counts.entry(image).or_insert(0) += i64::from(liked);
    }
    counts
}

/// One run's figures.
struct Run {
    batch_size: u64,
    producing_s: f64,
    elapsed_s: f64,
    busy_s: f64,
    invocations: usize,
    failed: usize,
    samples: Vec<Sample>,
    /// From the function's own "like batch settled" log lines.
    spent: Spent,
    /// CPU seconds over the run: the emulator's process, like-counter's.
    emulator_cpu_s: f64,
    function_cpu_s: f64,
    /// The emulator's peak resident memory over its life (VmHWM), MB.
    emulator_peak_mb: f64,
    wrong: Vec<String>,
}

/// What the function says it spent, summed over its batches.
#[derive(Default)]
struct Spent {
    records: u64,
    requests: u64,
    write_units: u64,
    handler_ms: Vec<u64>,
}

/// Sums the "like batch settled" lines like-counter logs per invocation.
fn spent(log: &std::path::Path) -> Result<Spent> {
    let text = std::fs::read_to_string(log)
        .with_context(|| format!("reading like-counter's log {}", log.display()))?;
    let mut spent = Spent::default();
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let fields = &entry["fields"];
        if fields["message"] != "like batch settled" {
            continue;
        }
        let number = |name: &str| fields[name].as_u64().unwrap_or(0);
        spent.records += number("records");
        spent.requests += number("dynamodb_requests");
        spent.write_units += number("write_units");
        spent.handler_ms.push(number("ms"));
    }
    Ok(spent)
}

async fn one_run(
    events: usize,
    rate: usize,
    batch_size: u64,
) -> Result<(Run, BTreeMap<String, i64>)> {
    let fresh = FreshStack::start().await?;
    let root = fresh.root.clone();
    let binary_dir = build_binaries(&root, &["like-counter"], true)?;
    let state_dir = root.join(".local").join("bench-shard");
    let logs = state_dir.join(format!("logs-{batch_size}"));
    let _ = std::fs::remove_dir_all(&logs);
    let options = MappingOptions {
        only_streams: true,
        ..MappingOptions::default()
    };
    let mut mapping = mappings(&fresh.stack, &binary_dir, &logs, &options)
        .await?
        .into_iter()
        .find(|m| m.name().starts_with("LikeCounterFunction."))
        .context("the template has no Kinesis mapping for LikeCounterFunction")?;
    if let Mapping::Stream(stream) = &mut mapping {
        stream.settings.batch_size = batch_size;
    }
    let stream = crate::likes::workload(events);
    let expected = expected_counts(&stream);
    let emulator_pid = fresh.emulator.pid().context("the emulator's pid")?;
    let emulator_cpu_before = cpu_seconds(emulator_pid);
    // The producer: PutRecords of 500, paced at `rate` records/s, every record on shard 0.
    let produced = Arc::new(AtomicUsize::new(0));
    let producer = {
        let kinesis = fresh.clients.kinesis.clone();
        let name = fresh.stack.name_of("ImageSocialEvents").to_owned();
        let produced = produced.clone();
        let chunks: Vec<Vec<PutRecordsRequestEntry>> = stream
            .chunks(PUT_CHUNK)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|e| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(e.partition_key())
                            .explicit_hash_key(SHARD_ZERO_HASH_KEY)
                            .data(Blob::new(e.to_json()))
                            .build()
                            .expect("partition key and data are set")
                    })
                    .collect()
            })
            .collect();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            for (i, entries) in chunks.into_iter().enumerate() {
                let due = Duration::from_secs_f64((i * PUT_CHUNK) as f64 / rate as f64);
                tokio::time::sleep_until(started + due).await;
                let count = entries.len();
                let output = kinesis
                    .put_records()
                    .stream_name(&name)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .context("putting likes on the stream")?;
                if output.failed_record_count().unwrap_or(0) > 0 {
                    bail!(
                        "the emulator refused {:?} records",
                        output.failed_record_count()
                    );
                }
                produced.fetch_add(count, Ordering::Relaxed);
            }
            anyhow::Ok(started.elapsed().as_secs_f64())
        })
    };

    // The consumer: the template's mapping, polled back to back, as Lambda's poller does.
    let started = Instant::now();
    let mut samples = Vec::new();
    let (mut consumed, mut busy, mut invocations, mut failed) = (0, Duration::ZERO, 0, 0);
    let limit = Duration::from_secs((events / rate.max(1)) as u64 * 4 + 300);
    while consumed < events {
        if started.elapsed() > limit {
            bail!("like-counter consumed {consumed} of {events} records in {limit:?}");
        }
        let poll = Instant::now();
        let stats = mapping.poll_once().await?;
        if stats.records == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        busy += poll.elapsed();
        invocations += stats.invocations;
        failed += stats.failed_invocations;
        consumed += stats.acknowledged;
        samples.push(Sample {
            at_s: started.elapsed().as_secs_f64(),
            iterator_age_ms: stats.max_iterator_age_ms,
            produced: produced.load(Ordering::Relaxed),
            consumed,
        });
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let producing_s = producer.await.context("the producer task")??;

    // Exact counts: every image of the workload, read back from the table.
    let table = LikeCounts::new(
        fresh.clients.dynamodb.clone(),
        fresh.stack.name_of("LikesTable"),
    );
    let mut wrong = Vec::new();
    for (image, count) in &expected {
        let stored = table
            .count(image)
            .await
            .with_context(|| format!("reading the count of {image}"))?;
        if stored != *count {
            wrong.push(format!("{image}: {stored} counted, {count} expected"));
        }
    }

    let emulator_cpu_s = cpu_seconds(emulator_pid) - emulator_cpu_before;
    let emulator_peak_mb = peak_memory_kb(emulator_pid) as f64 / 1024.0;
    let function_cpu_s = children_named("like-counter")
        .into_iter()
        .map(cpu_seconds)
        .sum();
    drop(mapping);
    drop(fresh);
    let spent = spent(&logs.join("like-counter.log"))?;
    Ok((
        Run {
            batch_size,
            producing_s,
            elapsed_s,
            busy_s: busy.as_secs_f64(),
            invocations,
            failed,
            samples,
            spent,
            emulator_cpu_s,
            function_cpu_s,
            emulator_peak_mb,
            wrong,
        },
        expected,
    ))
}

pub async fn run(events: usize, rate: usize, batch_sizes: &[u64]) -> Result<crate::Report> {
    let root = snapglow_local::stack::project::project_root();
    let state_dir = root.join(".local").join("bench-shard");
    let mut runs = Vec::new();
    let mut liked = 0;
    let mut images = 0;
    for &batch_size in batch_sizes {
        eprintln!("shard: {events} events at {rate}/s, batches of {batch_size} ...");
        let (run, expected) = one_run(events, rate, batch_size).await?;
        liked = expected.values().sum::<i64>();
        images = expected.len();
        runs.push(run);
    }
    let rows: Vec<String> = runs
        .iter()
        .map(|r| {
            let ages: Vec<u64> = r.samples.iter().map(|s| s.iterator_age_ms).collect();
            let backlog_max = r
                .samples
                .iter()
                .map(|s| s.produced.saturating_sub(s.consumed))
                .max()
                .unwrap_or(0);
            let n = r.spent.records.max(1) as f64;
            format!(
                "| {} | {:.1} s | {:.1} s | {:.0} | **{:.0}** | {} | {} | {} | {} | {} | {backlog_max} | {:.3} | {:.2} | {} | {:.0} | {:.0} | {:.0} |",
                r.batch_size,
                r.producing_s,
                r.elapsed_s,
                events as f64 / r.elapsed_s,
                events as f64 / r.busy_s,
                r.invocations,
                r.failed,
                percentile_u64(&ages, 50.0),
                percentile_u64(&ages, 99.0),
                ages.iter().max().copied().unwrap_or(0),
                r.spent.requests as f64 / n,
                r.spent.write_units as f64 / n,
                percentile_u64(&r.spent.handler_ms, 50.0),
                r.emulator_cpu_s * 1e6 / events as f64,
                r.function_cpu_s * 1e6 / events as f64,
                r.emulator_peak_mb,
            )
        })
        .collect();
    let out = root.join("bench").join("results");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let plotted = draw(&state_dir, &out.join("shard.png"), &runs);
    let wrong: Vec<String> = runs
        .iter()
        .filter(|r| !r.wrong.is_empty())
        .map(|r| {
            format!(
                "batches of {}: {} images wrong, e.g. {}",
                r.batch_size,
                r.wrong.len(),
                r.wrong[..r.wrong.len().min(3)].join("; ")
            )
        })
        .collect();
    let verdict = if wrong.is_empty() {
        format!(
            "Counts exact in every run: all {images} images match the ground truth ({liked} standing likes)."
        )
    } else {
        format!("**Counts WRONG**: {}", wrong.join(" / "))
    };
    let sizes: Vec<String> = batch_sizes.iter().map(u64::to_string).collect();
    // Where the time goes, from the fastest row: the emulator's CPU per event against the
    // function's, and the rate the function's own CPU would allow.
    let bound = runs
        .iter()
        .max_by(|a, b| a.busy_s.total_cmp(&b.busy_s).reverse())
        .map(|r| {
            format!(
                "Where the time goes (batches of {}): the emulator spent {:.0}× like-counter's CPU per event ({:.0} µs against {:.0} µs), and it is one Python process: on this machine it, not the function, sets the rate. like-counter's own CPU would allow about {:.0} events/s on one core; on AWS the bound is DynamoDB's latency per batch (one BatchGetItem per 100 likes, then the batch's transactions, those sharing no item at once), which this emulator cannot measure.",
                r.batch_size,
                r.emulator_cpu_s / r.function_cpu_s.max(1e-9),
                r.emulator_cpu_s * 1e6 / events as f64,
                r.function_cpu_s * 1e6 / events as f64,
                events as f64 / r.function_cpu_s.max(1e-9),
            )
        })
        .unwrap_or_default();
    let report = format!(
        "# like-counter at a full shard's rate\n\n\
         Command: `make bench` (`cargo run --release -p snapglow-bench -- shard --events {events} --rate {rate} --batches {}`). Machine: 2 cores, shared and noisy, one run per row; the emulator (moto {moto}, through local/emulator/moto_server.py) is one Python process on 127.0.0.1 serving the producer's puts, the mapping's reads and every DynamoDB request, on the same two cores as the function.\n\n\
         The release binary of like-counter under the local Runtime API, invoked by the template's mapping of LikeCounterFunction (bisect on error, partial batch responses) on one shard, with the batch size of the row. A producer puts the likes benchmark's workload (Zipf(1.1) popularity over 2,000 images, 5,000 users, 5% unlikes, 10% producer duplicates) on that shard at {rate} records/s (PutRecords of {PUT_CHUNK}; Kinesis's write limit per shard is 1,000 records/s).\n\n\
         | batch size | producer done | consumer done | throughput events/s | capacity events/s | invocations | failed | IteratorAge p50 ms | p99 ms | max ms | backlog max | DynamoDB requests / event | write units / event | handler p50 ms | emulator CPU µs / event | like-counter CPU µs / event | emulator peak MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n{}\n\n\
         Throughput: events over the time from the first put to the last acknowledgement (at most the put rate). Capacity: events over the time the mapping spent reading the shard and waiting on the function, idle polls excluded: the rate it sustains with a backlog. IteratorAge per batch: the age of its newest record when it was handed over, as Lambda reports it. Requests, write units and the handler's time are what the function logged per batch (`like batch settled`). CPU per event: user and system time of the emulator's process and of like-counter's over the run (`/proc/<pid>/stat`), divided by the events: where the time goes. Emulator peak MB: its peak resident memory (VmHWM) over the run, the stream's records and the table's items included: a local stack that holds 100,000 events in bounded memory.\n\n\
         {bound}\n\n{verdict}\n\n{}\n",
        sizes.join(","),
        rows.join("\n"),
        if plotted {
            "![IteratorAge and backlog over time](shard.png)"
        } else {
            "(No plot: gnuplot is not installed.)"
        },
        moto = "5.2.5",
    );
    std::fs::write(out.join("shard.md"), &report).context("writing bench/results/shard.md")?;
    if !wrong.is_empty() {
        bail!("{report}");
    }
    Ok(report)
}

/// IteratorAge over the run, one line per batch size, with gnuplot.
fn draw(work: &std::path::Path, png: &std::path::Path, runs: &[Run]) -> bool {
    if std::fs::create_dir_all(work).is_err() {
        return false;
    }
    let mut lines = Vec::new();
    for run in runs {
        let data: String = run
            .samples
            .iter()
            .map(|s| {
                format!(
                    "{:.2} {} {}\n",
                    s.at_s,
                    s.iterator_age_ms,
                    s.produced.saturating_sub(s.consumed)
                )
            })
            .collect();
        let data_file = work.join(format!("shard-{}.dat", run.batch_size));
        if std::fs::write(&data_file, data).is_err() {
            return false;
        }
        lines.push(format!(
            "'{}' using 1:2 with lines lw 2 title 'IteratorAge, batches of {}'",
            data_file.display(),
            run.batch_size
        ));
        lines.push(format!(
            "'{}' using 1:3 axes x1y2 with lines dt 2 title 'backlog, batches of {}'",
            data_file.display(),
            run.batch_size
        ));
    }
    let script = format!(
        "set terminal png size 1100,520\n\
         set output '{}'\n\
         set title 'like-counter on one shard written at 1,000 records/s: lag over time'\n\
         set xlabel 'seconds since the first put'\nset ylabel 'IteratorAge (ms)'\nset y2label 'backlog (records put, not yet counted)'\n\
         set yrange [0:*]\nset y2range [0:*]\nset ytics nomirror\nset y2tics\nset grid\nset key top left\n\
         plot {}\n",
        png.display(),
        lines.join(", ")
    );
    crate::plot::gnuplot(&work.join("shard.gp"), &script)
}

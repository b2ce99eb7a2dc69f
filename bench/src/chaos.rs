//! The chaos drill at ten times the fire drills' volume: every failure shape AWS documents for
//! DynamoDB and Kinesis (errors, cancellations, unprocessed keys, failed records, hangs, resets,
//! and writes that land while their answer is lost or a 500), answered at the wire for a share of the relay's and both consumers'
//! requests, with crashes and poison records, over `likes` like requests through the HTTP API.
//! Writes bench/results/chaos.md: the faults injected per shape, retries, recovery time and
//! requests per event, and whether every count and notification came out exact.

use anyhow::{Context, Result, bail};
use snapglow_local::scenarios::drills::{DrillReport, DrillStage, wire_faults};
use snapglow_local::stack::fresh::FreshStack;
use snapglow_local::stack::project::build_binaries;

pub async fn run(images: usize, likes: usize, percent: u64) -> Result<crate::Report> {
    let fresh = FreshStack::start().await?;
    let root = fresh.root.clone();
    let binary_dir = build_binaries(&root, &["like-counter", "notifier", "relay", "api"], true)?;
    let state_dir = root.join(".local").join("bench-chaos");
    let mut stage = DrillStage::new(fresh.stack.clone(), &binary_dir, &state_dir).await?;
    let started = std::time::Instant::now();
    let drill = stage
        .wire_faults_and_crashes(images, likes, percent, 5)
        .await?;
    let took = started.elapsed();
    // Then the readers are down for longer than the stream keeps records (shortened to 10 s),
    // and the outbox replay recovers what expired.
    let (outage, during) = stage
        .outage_past_retention(images / 10, likes / 10, std::time::Duration::from_secs(10))
        .await?;
    let shapes: Vec<String> = wire_faults(percent)
        .iter()
        .map(|f| {
            format!(
                "{:?} {} {:?}",
                f.service,
                f.operation.unwrap_or("(every operation)"),
                f.shape
            )
        })
        .collect();
    let injected: Vec<String> = drill
        .injected
        .iter()
        .map(|(shape, n)| format!("| {shape} | {n} |"))
        .collect();
    let events = drill.events_in.max(1);
    let requests: Vec<String> = drill
        .requests
        .iter()
        .map(|(operation, n)| format!("| {operation} | {n} | {:.2} |", *n as f64 / events as f64))
        .collect();
    let all_requests: u64 = drill.requests.values().sum();
    let report = format!(
        "# Chaos drill\n\n\
         Command: `cargo run --release -p snapglow-bench -- chaos --images {images} --likes {likes} --percent {percent}` (ten times the fire drills' 2,000 likes), release binaries of the API, the relay, like-counter and notifier under the local Runtime API, the template's mappings, moto on 127.0.0.1. Machine: 2 cores, shared and noisy: durations vary from run to run; counts do not.\n\n\
         {images} images are published and {likes} like/unlike requests made through the HTTP API as 40 signed-in users (20% unlikes, 10% sent twice by a retrying client), two poison records put mid-shard. While the relay and both consumers drain the stream, 5% of their invocations crash (mid-batch or just after answering) and a fault proxy answers {percent}% of the requests each shape fits (a hang: a fifth of that), every shape in its AWS wire form:\n\n{}\n\n\
         | shape injected | requests |\n|---|---|\n{}\n\n\
         Requests of the relay and both consumers to DynamoDB and Kinesis (through the fault proxy: SDK retries, own retries and the faults' answers included; the quarantine's excluded): {} in all, {:.2} per event in.\n\n\
         | operation | requests | per event in |\n|---|---|---|\n{}\n\n\
         {}\n{}\n{}\n\n\
         Deliveries: {} records handed to the relay and both consumers for {} events in ({:.2} per event per function, retries and crashes included). Invocations: {} ({} failed and retried). Recovery (from the consumers' start to a drained stream): {:.1} s; the whole drill, production included: {:.1} s. Quarantine by reason: {:?}.\n\n\
         Verdict: {}\n\n\
         The retention drill (second row): {} more images and {} likes reach the stream while its readers are down for longer than it keeps records (retention shortened to 10 s; the local poller trims older records as Kinesis does); {} records expired unread, and the counts were then {} (as on AWS). Replaying the outbox (`cargo local replay-outbox`: every event the images table holds, image events first) recovered them in {:.1} s: {}.\n",
        shapes
            .iter()
            .map(|s| format!("- {s}"))
            .collect::<Vec<_>>()
            .join("\n"),
        injected.join("\n"),
        all_requests,
        all_requests as f64 / events as f64,
        requests.join("\n"),
        DrillReport::MARKDOWN_HEADER,
        drill.markdown_row(),
        outage.markdown_row(),
        drill.deliveries,
        drill.events_in,
        drill.deliveries as f64 / events as f64 / 3.0,
        drill.invocations,
        drill.failed_invocations,
        drill.recovery_ms as f64 / 1000.0,
        took.as_secs_f64(),
        drill.quarantined_reasons,
        if drill.verdict.holds() {
            "every like count exact, every image's \"published\" notification once, every likes notification counting exactly the standing likes, no like left kept (`EARLY#`), nothing given up, the quarantine holding only the planted poison.".to_owned()
        } else {
            format!("**WRONG**: {:?}", drill.verdict)
        },
        images / 10,
        likes / 10,
        outage.expired,
        if during.holds() {
            "still exact (nothing was missed: WRONG drill)".to_owned()
        } else {
            format!("wrong for {} images", during.wrong_counts.len())
        },
        outage.recovery_ms as f64 / 1000.0,
        if outage.verdict.holds() {
            "every count and notification exact again".to_owned()
        } else {
            format!("**WRONG**: {:?}", outage.verdict)
        },
    );
    let out = root.join("bench").join("results");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("chaos.md"), &report).context("writing bench/results/chaos.md")?;
    drop(fresh);
    let only_poison = drill
        .quarantined_reasons
        .keys()
        .all(|r| r == "malformed_envelope");
    if !drill.verdict.holds()
        || drill.given_up > 0
        || !only_poison
        || !outage.verdict.holds()
        || during.holds()
    {
        bail!("{report}");
    }
    Ok(report)
}

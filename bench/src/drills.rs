//! The fire drills of tests/fire_drills.rs at a larger volume, with the release binaries:
//! what crashes, throttling, poison records and a replay cost, and that nothing is lost or
//! doubled. Writes bench/results/fire-drills.md.

use anyhow::{Context, Result, bail};
use snapglow_local::scenarios::drills::{DrillReport, DrillStage};
use snapglow_local::stack::fresh::FreshStack;
use snapglow_local::stack::project::build_binaries;

pub async fn run(images: usize, likes: usize) -> Result<crate::Report> {
    let fresh = FreshStack::start().await?;
    let root = fresh.root.clone();
    let binary_dir = build_binaries(&root, &["like-counter", "notifier", "relay", "api"], true)?;
    let state_dir = root.join(".local").join("bench-drills");
    let mut stage = DrillStage::new(fresh.stack.clone(), &binary_dir, &state_dir).await?;
    let reports = [
        stage.crash_and_catch_up(images, likes, 5).await?,
        stage.throttling_and_poison(images, likes, 5, 5).await?,
        stage.replay().await?,
    ];
    let rows: Vec<String> = reports.iter().map(DrillReport::markdown_row).collect();
    let failures: Vec<String> = reports
        .iter()
        .filter(|r| !r.verdict.holds())
        .map(|r| format!("{}: {:?}", r.drill, r.verdict))
        .collect();
    let report = format!(
        "# Fire drills\n\n\
         Command: `make bench` (`cargo run --release -p snapglow-bench -- drills --images {images} --likes {likes}`), release binaries of the API, the relay, like-counter and notifier under the local Runtime API; the template's mappings (the images table's stream to the relay; the Kinesis stream, 2 shards, batches of 1,000 to like-counter and 100 to notifier, bisect on error, 5 retries, to the consumers); moto on 127.0.0.1. Machine: 2 cores, shared and noisy: durations vary from run to run; counts do not.\n\n\
         Each drill publishes its own images (recorded as resize records them) and makes {likes} like/unlike requests through the HTTP API as 40 signed-in users (20% unlikes, 10% sent twice by a retrying client; only state changes emit events, which the relay puts on the stream) and checks the result against the ground truth: every like count, one \"published\" notification per image, and the likes notifications of each image counting exactly the users whose like stands, each naming at most its three latest likers, all of them standing.\n\n\
         1. **crash mid-batch, stop, lag, restart**: 5% of invocations (relay and consumers) are killed mid-batch (or just after the handler answered, so the answer is lost); the runner stops after one round, the second half of the events arrives while nothing consumes, a new runner resumes from the saved checkpoints.\n\
         2. **DynamoDB throttling + crashes + poison records**: 5% of DynamoDB requests answered with ProvisionedThroughputExceededException by a proxy, 5% of invocations crash, two undecodable records mid-shard.\n\
         3. **replay from TRIM_HORIZON**: both mappings start over; every record is delivered again.\n\n\
         {}\n{}\n\n\
         Deliveries count every record handed to the relay or either consumer, retries included; duplicates absorbed = deliveries beyond the first per function of each distinct record. Crashes hit the relay too. Quarantined counts quarantine messages: a poison record is quarantined by each consumer, again on every redelivery (a replay quarantines it again; the queue keeps raw bytes, not a dedup key). Lag peak is the oldest record's age when its batch was handed over (IteratorAge).\n\n{}\n",
        DrillReport::MARKDOWN_HEADER,
        rows.join("\n"),
        if failures.is_empty() {
            "Every drill ended with exact counts and notifications.".to_owned()
        } else {
            format!("**FAILED**: {}", failures.join("; "))
        }
    );
    let out = root.join("bench").join("results");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("fire-drills.md"), &report)
        .context("writing bench/results/fire-drills.md")?;
    drop(fresh);
    if !failures.is_empty() {
        bail!("{report}");
    }
    Ok(report)
}

//! notifier's DynamoDB requests and write units per event, first delivery and replay.
//! A measurement of cost, not a race: there is no second implementation to compare with.

use anyhow::{Context, Result, bail};
use notifier::Notifier;
use notifier::table::NotificationsTable;
use snapglow::batch::{BatchContext, BatchFunction, Deadline};
use snapglow::contracts::{Envelope, Timestamp};
use snapglow::quarantine::SqsQuarantine;
use snapglow_local::scenarios::producer::{like_event, published_event};
use snapglow_local::stack::fresh::FreshStack;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn workload(images: usize, likes: usize) -> Vec<Envelope> {
    let mut random = fastrand::Rng::with_seed(7);
    let mut next = |n: u64| random.u64(..n);
    let base = 1_795_000_000_000i64;
    let mut events = Vec::new();
    for i in 0..images {
        let mut published = published_event(
            &format!("img{i}"),
            &format!("user{}", i % 50),
            Timestamp::from_millis(base + i as i64),
        );
        published.event_id = Uuid::from_u64_pair(1, i as u64);
        events.push(published);
    }
    for n in 0..likes {
        let (image_id, user_id) = (
            format!("img{}", next(images as u64)),
            format!("user{}", next(500)),
        );
        let at = base + 1000 + (n as i64) * 500; // two likes a second: windows fill and roll over
        let liked = next(100) >= 5;
        let envelope = like_event(
            &image_id,
            &user_id,
            liked,
            Some(Uuid::from_u64_pair(2, n as u64)),
            Timestamp::from_millis(at),
        );
        if next(100) < 10 {
            events.push(envelope.clone());
        }
        events.push(envelope);
    }
    events
}

pub async fn run(images: usize, likes: usize) -> Result<crate::Report> {
    let fresh = FreshStack::start().await?;
    let (root, stack, clients) = (&fresh.root, &fresh.stack, &fresh.clients);
    let table = NotificationsTable::new(
        clients.dynamodb.clone(),
        stack.name_of("NotificationsTable"),
        Duration::from_secs(86_400 * 30),
        Duration::from_secs(3600 * 192),
    );
    let notifier = Notifier::new(table, 15 * 60 * 1000);
    let events = workload(images, likes);
    let mut rows = Vec::new();
    let mut applied_on_replay = 0;
    for pass in ["first delivery", "replay of the whole stream"] {
        let (requests, units) = (
            notifier.table.requests.load(Ordering::Relaxed),
            notifier.table.write_units.load(Ordering::Relaxed),
        );
        let started = Instant::now();
        let (mut done, mut skipped) = (0, 0);
        let quarantine = SqsQuarantine::new(clients.sqs.clone(), stack.url_of("QuarantineQueue"));
        // As the mapping delivers them: batches of 100 in stream order.
        for (i, batch) in events.chunks(crate::likes::BATCH).enumerate() {
            let ctx = BatchContext::new(
                "bench",
                Deadline::after(Duration::from_secs(60)),
                Duration::from_millis(100),
                &quarantine,
            );
            let event = crate::likes::kinesis_event(batch, i * crate::likes::BATCH);
            let (response, report) = notifier.handle_batch(event, &ctx).await;
            if !response.batch_item_failures.is_empty() || report.quarantined > 0 {
                bail!("notifier failed or quarantined records of batch {i}: {report:?}");
            }
            done += report.done;
            skipped += report.skipped + report.duplicates;
        }
        applied_on_replay = done;
        let seconds = started.elapsed().as_secs_f64();
        let n = events.len() as f64;
        let requests = (notifier.table.requests.load(Ordering::Relaxed) - requests) as f64;
        let units = (notifier.table.write_units.load(Ordering::Relaxed) - units) as f64;
        rows.push(format!(
            "| {pass} | {} | {done} | {skipped} | {:.3} | {:.3} | {:.0} |",
            events.len(),
            requests / n,
            units / n,
            n / seconds
        ));
    }
    let report = format!(
        "# notifier: DynamoDB cost per event\n\n\
         Command: `make bench` (`cargo run --release -p snapglow-bench -- notifier`). Machine: 2 cores, shared; DynamoDB is moto on 127.0.0.1.\n\n\
         Workload: {images} ImagePublished, then {likes} likes (5% unlikes, 10% producer duplicates) from 500 users, two a second, 15-minute coalescing windows; one process, so each image's owner is read once.\n\n\
         | pass | events | applied | not applied (duplicate, stale, own like) | requests / event | write units / event (attempted) | events/s |\n|---|---|---|---|---|---|---|\n{}\n\n\
         ImagePublished/ImageRejected: the batch's notices written together, one TransactWriteItems per 33 (receipt, owner view, notification: 6 units each; one more when a duplicate cancels one, or an image holds likes); only an image holding likes kept while its owner was unknown (its owner item marked `held`) costs a Query for them, a delete each and an update clearing the mark. Likes are grouped per batch of 100, as the mapping delivers them: one BatchGetItem per 100 keys (the likers' states and the notifications they land in), one more when an unlike reaches a notification not read yet, one read of owners per 100 images this process has not seen, and one TransactWriteItems per 100 actions (each liker's state, 2 units, and each notification's count, 2 units). A replay reads and writes nothing new.\n",
        rows.join("\n")
    );
    if applied_on_replay > 0 {
        // Exactly once: a replay that changes an inbox is a bug, not a figure.
        bail!("the replay applied {applied_on_replay} events: notifications changed\n{report}");
    }
    let out = root.join("bench").join("results");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("notifier.md"), &report)
        .context("writing bench/results/notifier.md")?;
    Ok(report)
}

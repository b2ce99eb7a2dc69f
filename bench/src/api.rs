//! A like through the front door against the textbook, on the same local stack, in one run.
//!
//! - **ours**: the API's handler in a warm process (`Api::handle`: read the image, read the
//!   user's like state, one conditional UpdateItem that also stores the event), then the
//!   relay's share: its PutRecords calls for those events, read from the table's stream.
//! - **textbook**: the same reads and write without the event, then `PutRecord` in the
//!   handler (a dual write: the like can be saved and its event lost, or the reverse).
//!
//! Requests are counted by a proxy in front of each service; write units follow DynamoDB's
//! rule (one per KB written, rounded up) on the measured size of a stored like.

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use snapglow::batch::BatchFunction;
use snapglow::contracts::{Envelope, SocialEvent, Timestamp};
use snapglow_local::faults::{Throttled, ThrottlingProxy};
use snapglow_local::scenarios::measure::{median, percentile};
use snapglow_local::stack::fresh::FreshStack;
use std::time::{Duration, Instant};

const USERS: usize = 100;

#[derive(Default)]
struct Figures {
    ms: Vec<f64>,
    dynamodb_requests: u64,
    kinesis_requests: u64,
}

fn dynamodb_via(fresh: &FreshStack, proxy: &ThrottlingProxy) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&fresh.clients.config)
            .endpoint_url(proxy.url())
            .build(),
    )
}

fn kinesis_via(fresh: &FreshStack, proxy: &ThrottlingProxy) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::config::Builder::from(&fresh.clients.config)
            .endpoint_url(proxy.url())
            .build(),
    )
}

async fn publish_image(fresh: &FreshStack, image_id: &str) -> Result<()> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    fresh
        .clients
        .dynamodb
        .put_item()
        .table_name(fresh.stack.name_of("ImagesTable"))
        .item("pk", s(&format!("IMAGE#{image_id}")))
        .item("sk", s("IMAGE"))
        .item("image_id", s(image_id))
        .item("owner_id", s("owner"))
        .item("status", s("published"))
        .item("created_at", AttributeValue::N("1".into()))
        .send()
        .await
        .context("publishing the benchmark's image")?;
    Ok(())
}

/// Request `i`: user `i % USERS`, liking on even rounds and unliking on odd ones, so every
/// request changes a state (a repeat would change nothing and cost one read less).
fn request(i: usize) -> (String, bool) {
    (format!("u{}", i % USERS), (i / USERS).is_multiple_of(2))
}

async fn ours(fresh: &FreshStack, likes: usize) -> Result<Figures> {
    let ddb_proxy = ThrottlingProxy::start(&fresh.stack.endpoint_url, 0, 1).await?;
    let kinesis_proxy =
        ThrottlingProxy::start_for(Throttled::Kinesis, &fresh.stack.endpoint_url, 0, 1).await?;
    let dynamodb = dynamodb_via(fresh, &ddb_proxy);
    let api = api::handlers::Api {
        store: api::store::AwsStore {
            dynamodb: dynamodb.clone(),
            s3: fresh.clients.s3.clone(),
            images_table: fresh.stack.name_of("ImagesTable").to_owned(),
            // Every request pays its user's request counter, as on AWS.
            requests: api::store::RequestCounter::new(
                dynamodb.clone(),
                fresh.stack.name_of("ImagesTable"),
            ),
            likes: like_counter::table::LikeCounts::new(
                dynamodb.clone(),
                fresh.stack.name_of("LikesTable"),
            ),
            notifications: notifier::table::InboxReader::new(
                dynamodb,
                fresh.stack.name_of("NotificationsTable"),
            ),
            // The benchmark deletes no account.
            connections_table: None,
            pool: None,
            uploads_bucket: fresh.stack.name_of("UploadsBucket").to_owned(),
            renditions_bucket: fresh.stack.name_of("RenditionsBucket").to_owned(),
            upload_url_ttl: Duration::from_secs(300),
            rendition_url_ttl: Duration::from_secs(3600),
        },
        limits: api::handlers::Limits {
            requests_per_minute: 1_000_000,
            max_upload_bytes: 1,
            uploads_per_hour: 1,
            upload_bytes_per_day: 1,
        },
        upload_url_ttl_seconds: 300,
        live_url: Some("wss://live.example/prod".into()),
    };
    publish_image(fresh, "bench-ours").await?;
    let mut figures = Figures::default();
    for i in 0..likes {
        let (user, liked) = request(i);
        let started = Instant::now();
        let response = api
            .handle(api::http::ApiRequest {
                method: if liked { "PUT" } else { "DELETE" }.into(),
                path: "/images/bench-ours/like".into(),
                sub: Some(user),
                correlation_id: format!("bench-{i}"),
                ..Default::default()
            })
            .await;
        figures.ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if response.status != 200 {
            bail!(
                "the API answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
    }
    figures.dynamodb_requests = ddb_proxy.forwarded();
    // The relay's share: the same events, from the table's stream, in its batches of 100.
    let relay = relay::Relay {
        sink: relay::publish::KinesisSink {
            client: kinesis_via(fresh, &kinesis_proxy),
            stream_name: fresh.stack.name_of("ImageSocialEvents").to_owned(),
        },
    };
    let quarantine = snapglow::quarantine::SqsQuarantine::new(
        fresh.clients.sqs.clone(),
        fresh.stack.url_of("QuarantineQueue"),
    );
    let stream_arn = fresh
        .stack
        .resource("ImagesTable")
        .and_then(|r| r.stream_arn().map(str::to_owned))
        .context("the images table has a stream")?;
    let mut checkpoints = std::collections::BTreeMap::new();
    let mut published = 0;
    loop {
        let batches = snapglow_local::triggers::dynamodb::fetch(
            &fresh.clients,
            &stream_arn,
            &checkpoints,
            true,
            100,
        )
        .await?;
        let mut any = false;
        for (shard, records) in batches {
            let Some(last) = records.last().map(|r| r.sequence.clone()) else {
                continue;
            };
            any = true;
            let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(
                serde_json::json!({ "Records": records.iter().map(|r| &r.record).collect::<Vec<_>>() }),
            )?;
            let deadline = snapglow::batch::Deadline::after(Duration::from_secs(60));
            let ctx = snapglow::batch::BatchContext::new(
                "bench-relay",
                deadline,
                Duration::ZERO,
                &quarantine,
            );
            let (response, report) = relay.handle_batch(event, &ctx).await;
            if !response.batch_item_failures.is_empty() {
                bail!("the relay failed a batch: {report:?}");
            }
            published += report.done;
            checkpoints.insert(shard, last);
        }
        if !any {
            break;
        }
    }
    if published < likes {
        bail!("the relay published {published} of {likes} events");
    }
    figures.kinesis_requests = kinesis_proxy.forwarded();
    Ok(figures)
}

/// The per-user request counter alone, as every request of ours pays it: `count` conditional
/// UpdateItems of 100 users' minute counters.
async fn counter(fresh: &FreshStack, count: usize) -> Result<Figures> {
    let ddb_proxy = ThrottlingProxy::start(&fresh.stack.endpoint_url, 0, 3).await?;
    let counter = api::store::RequestCounter::new(
        dynamodb_via(fresh, &ddb_proxy),
        fresh.stack.name_of("ImagesTable"),
    );
    let now_ms = Timestamp::now().millis();
    let minute = now_ms - now_ms.rem_euclid(60_000);
    let mut figures = Figures::default();
    for i in 0..count {
        let (user, _) = request(i);
        let started = Instant::now();
        if !counter
            .take(&format!("bench-{user}"), minute, 1_000_000)
            .await?
        {
            bail!("the request counter refused request {i}");
        }
        figures.ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    figures.dynamodb_requests = ddb_proxy.forwarded();
    Ok(figures)
}

async fn textbook(fresh: &FreshStack, likes: usize) -> Result<Figures> {
    let ddb_proxy = ThrottlingProxy::start(&fresh.stack.endpoint_url, 0, 2).await?;
    let kinesis_proxy =
        ThrottlingProxy::start_for(Throttled::Kinesis, &fresh.stack.endpoint_url, 0, 2).await?;
    let dynamodb = dynamodb_via(fresh, &ddb_proxy);
    let kinesis = kinesis_via(fresh, &kinesis_proxy);
    let table = fresh.stack.name_of("ImagesTable").to_owned();
    let stream = fresh.stack.name_of("ImageSocialEvents").to_owned();
    publish_image(fresh, "bench-textbook").await?;
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut figures = Figures::default();
    for i in 0..likes {
        let (user, liked) = request(i);
        let started = Instant::now();
        let image = dynamodb
            .get_item()
            .table_name(&table)
            .key("pk", s("IMAGE#bench-textbook"))
            .key("sk", s("IMAGE"))
            .send()
            .await?;
        if image.item.is_none() {
            bail!("the textbook's image is missing");
        }
        let key = format!("LIKE#{user}");
        let state = dynamodb
            .get_item()
            .table_name(&table)
            .key("pk", s("IMAGE#bench-textbook"))
            .key("sk", s(&key))
            .consistent_read(true)
            .send()
            .await?;
        let revision: u64 = state
            .item
            .as_ref()
            .and_then(|i| i.get("revision"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let mut update = dynamodb
            .update_item()
            .table_name(&table)
            .key("pk", s("IMAGE#bench-textbook"))
            .key("sk", s(&key))
            .update_expression("SET liked = :liked, revision = :next")
            .expression_attribute_values(":liked", AttributeValue::Bool(liked))
            .expression_attribute_values(":next", AttributeValue::N((revision + 1).to_string()));
        update = if revision == 0 {
            update.condition_expression("attribute_not_exists(pk)")
        } else {
            update
                .condition_expression("revision = :revision")
                .expression_attribute_values(":revision", AttributeValue::N(revision.to_string()))
        };
        update.send().await?;
        let envelope = Envelope {
            event_id: uuid::Uuid::new_v4(),
            occurred_at: Timestamp::now(),
            correlation_id: format!("bench-{i}"),
            producer: "textbook".into(),
            event: SocialEvent::like("bench-textbook", &user, liked, Some(revision + 1)),
        };
        kinesis
            .put_record()
            .stream_name(&stream)
            .partition_key("bench-textbook")
            .data(aws_sdk_kinesis::primitives::Blob::new(envelope.to_json()))
            .send()
            .await?;
        figures.ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    figures.dynamodb_requests = ddb_proxy.forwarded();
    figures.kinesis_requests = kinesis_proxy.forwarded();
    Ok(figures)
}

/// Bytes of a stored like item of ours, by DynamoDB's size rule (names plus values).
async fn like_item_bytes(fresh: &FreshStack) -> Result<usize> {
    let item = fresh
        .clients
        .dynamodb
        .get_item()
        .table_name(fresh.stack.name_of("ImagesTable"))
        .key("pk", AttributeValue::S("IMAGE#bench-ours".into()))
        .key("sk", AttributeValue::S("LIKE#u0".into()))
        .send()
        .await?
        .item
        .context("a like item of ours")?;
    Ok(item
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                    _ => 1,
                }
        })
        .sum())
}

pub async fn run(likes: usize, repeats: usize) -> Result<crate::Report> {
    let mut runs = Vec::new();
    let mut item_bytes = 0;
    let mut root = std::path::PathBuf::new();
    for repeat in 0..repeats.max(1) {
        eprintln!(
            "repeat {}/{}: {likes} likes each way ...",
            repeat + 1,
            repeats.max(1)
        );
        let fresh = FreshStack::start().await?;
        root.clone_from(&fresh.root);
        let mine = ours(&fresh, likes).await?;
        item_bytes = like_item_bytes(&fresh).await?;
        let theirs = textbook(&fresh, likes).await?;
        let counted = counter(&fresh, likes).await?;
        runs.push((mine, theirs, counted));
    }
    let n = likes as f64;
    let units = item_bytes.div_ceil(1024) as f64;
    let row = |name: &str, pick: &dyn Fn(&(Figures, Figures, Figures)) -> &Figures, writes: f64| {
        let p50: Vec<f64> = runs.iter().map(|r| percentile(&pick(r).ms, 50.0)).collect();
        let p99: Vec<f64> = runs.iter().map(|r| percentile(&pick(r).ms, 99.0)).collect();
        let first = pick(&runs[0]);
        format!(
            "| {name} | {:.1} | {:.1} | {:.3} | {:.3} | {writes:.2} |",
            median(&p50),
            median(&p99),
            first.dynamodb_requests as f64 / n,
            first.kinesis_requests as f64 / n,
        )
    };
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        "--release "
    };
    let report = format!(
        "# A like through the front door\n\n\
         Command: `cargo run {profile}-p snapglow-bench -- api --likes {likes} --repeats {repeats}` (`make bench` runs it with `--release`). Machine: 2 cores, shared and noisy; DynamoDB and Kinesis are moto 5.2.5 on 127.0.0.1, so the milliseconds are the emulator's (medians of {repeats} repeats of p50 and p99); request counts are exact, counted by a proxy in front of each service.\n\n\
         Workload: {likes} changes of {USERS} users' like states on one published image, each request a real change (like, then unlike on the next round).\n\n\
         | approach | p50 ms | p99 ms | DynamoDB requests / like | Kinesis requests / like | DynamoDB write units / like |\n|---|---|---|---|---|---|\n{}\n{}\n{}\n\n\
         Ours, six requests: the caller's request counter (one conditional UpdateItem of an item under 1 KB: one write unit, also when it refuses; the third row measures it alone, and the textbook has none, so it is the price of per-user limits, not of the outbox) and, beside it, the account's erased mark (a strongly consistent GetItem: a like is a write, refused for an erased account); read the image, read the user's state (strongly consistent), one conditional UpdateItem that stores the state and its event ({item_bytes} bytes: {units:.0} write unit), and the image read again (strongly consistent: a like landing just after its photo's deletion is retired, not left behind). The reads are one read unit each (items under 4 KB), a fifth of a write unit's price; the relay then publishes the stored events with PutRecords, up to 500 a call (its batches of 100 here), and reads the table's stream, which is not billed as table reads. The textbook makes the same reads and write, then one PutRecord per like from the handler: as many Kinesis requests as likes, and nothing ties the two writes together (a crash between them loses the event; a retry of a timed-out PutRecord doubles it).\n",
        row(
            "ours: API handler + relay (outbox by change data capture)",
            &|r| &r.0,
            units + 1.0
        ),
        row(
            "textbook: write the like, then PutRecord in the handler",
            &|r| &r.1,
            1.0
        ),
        row(
            "ours' per-user request counter alone (every API request pays it)",
            &|r| &r.2,
            1.0
        ),
    );
    let out = root.join("bench").join("results");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("api.md"), &report).context("writing bench/results/api.md")?;
    Ok(report)
}

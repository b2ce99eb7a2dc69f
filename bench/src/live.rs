//! Live push against polling: how long from a like request until the photo's owner's page
//! knows of it, pushed over the local WebSocket API and polled every 5 s as the web client did
//! before live push (its peer, in the same run), and what an open tab costs per hour either
//! way. Writes bench/results/live.md.

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde_json::Value;
use snapglow_local::guard::Guard;
use snapglow_local::scenarios::client::ApiClient;
use snapglow_local::stack::fresh::FreshStack;
use snapglow_local::stack::presigned::PresignedGate;
use snapglow_local::stack::project::{build_binaries, template_path};
use snapglow_local::template::Template;
use snapglow_local::triggers::http::HttpApiServer;
use snapglow_local::triggers::pipeline::{self, Progress};
use snapglow_local::triggers::websocket::{Limits, LiveServer};
use snapglow_local::triggers::{MappingOptions, mappings};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The web client's poll of its inbox without live push, and its fallback poll with it.
const POLL: Duration = Duration::from_secs(5);
const LIVE_POLL: Duration = Duration::from_secs(60);
/// Its heartbeat, under API Gateway's 10-minute idle limit.
const HEARTBEAT: Duration = Duration::from_secs(240);

/// The likes count of the likes notification of `image` in a list of notification views.
fn likes_of(items: &Value, image: &str) -> Option<i64> {
    (items.as_array()?.iter())
        .filter(|n| n["kind"] == "likes" && n["image_id"] == image)
        .filter_map(|n| n["likes"].as_i64())
        .max()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub async fn run(likes: usize) -> Result<crate::Report> {
    let fresh = FreshStack::start().await?;
    let (root, stack, clients) = (&fresh.root, &fresh.stack, &fresh.clients);
    let binary_dir = build_binaries(
        root,
        &[
            "resize",
            "relay",
            "like-counter",
            "notifier",
            "eraser",
            "api",
            "live",
            "pusher",
        ],
        true,
    )?;
    let logs = fresh.state_dir("bench-live");
    let template = Template::load(&template_path(root))?;
    let live = LiveServer::start(
        stack,
        &template,
        &binary_dir,
        &logs,
        0,
        Limits::default(),
        Guard::Programs,
    )
    .await?;
    let gate = PresignedGate::for_stack(stack).await?;
    let http = HttpApiServer::start_with(
        stack,
        &binary_dir,
        &logs,
        0,
        &gate.url,
        &live.api_environment(),
    )
    .await?;
    let options = live.mapping_options(&gate.url, MappingOptions::default());
    let mut pipeline = mappings(stack, &binary_dir, &logs, &options).await?;
    // The pipeline runs behind the clients, as Lambda's pollers do.
    let mut progress = Progress::quiet();
    let measured = tokio::select! {
        measured = measure(&http, &live, clients, stack, likes) => measured?,
        ended = pipeline::run(&mut pipeline, None, &mut progress) => {
            bail!("the pipeline stopped: {ended:?}")
        }
    };
    let Measured {
        mut pushed_ms,
        mut polled_ms,
        messages,
        elapsed,
    } = measured;

    // Assess: latencies, and each tab's requests per hour
    pushed_ms.sort_by(f64::total_cmp);
    polled_ms.sort_by(f64::total_cmp);
    let (p50_push, p99_push) = (percentile(&pushed_ms, 50.0), percentile(&pushed_ms, 99.0));
    let (p50_poll, p99_poll) = (percentile(&polled_ms, 50.0), percentile(&polled_ms, 99.0));
    let hour = 3600.0;
    let polling_per_hour = hour / POLL.as_secs_f64();
    // With push: the fallback poll, the heartbeat, a ticket and a refetch per connection (API
    // Gateway closes each after 2 h), and one message per change the tab is told of.
    let fallback = hour / LIVE_POLL.as_secs_f64();
    let heartbeats = hour / HEARTBEAT.as_secs_f64();
    let reconnects = 0.5 * 2.0;
    let changes_per_hour = messages as f64 * hour / elapsed.as_secs_f64();
    let report = format!(
        "# Live push against polling\n\n\
         Command: `make bench` (`cargo run --release -p snapglow-bench -- live --likes {likes}`), release binaries of every function under the local Runtime API, the template's mappings run behind the clients, the local WebSocket API (`local/src/triggers/websocket/`) and HTTP API, moto on 127.0.0.1. Machine: 2 cores, shared and noisy: latencies vary from run to run.\n\n\
         carol keeps two tabs on her inbox: one with live push (a socket opened with a ticket, sent each inbox change by the pusher from the notifications table's stream), and its peer in the same run, a tab polling `GET /me/notifications` every 5 s as the web client did before. {likes} people each like her photo once, each at a random moment of the poll's 5 s cycle (seeded); a like is known to a tab when it shows the likes notification counting it.\n\n\
         | like request → known to carol's tab | p50 | p99 | max |\n|---|---|---|---|\n\
         | pushed | {p50_push:.0} ms | {p99_push:.0} ms | {max_push:.0} ms |\n\
         | polled every 5 s | {p50_poll:.0} ms | {p99_poll:.0} ms | {max_poll:.0} ms |\n\
         | ratio (pushed / polled) | {r50:.2} | {r99:.2} | |\n\n\
         Requests per open tab and hour:\n\n\
         | | HTTP API requests (each a Lambda invocation) | WebSocket messages | Lambda invocations in all |\n|---|---|---|---|\n\
         | polling every 5 s | {polling_per_hour:.0} | 0 | {polling_per_hour:.0} |\n\
         | live push | {live_requests:.0} (a poll a minute, a ticket and a refetch per 2 h connection) | {live_messages:.0} ({heartbeats:.0} heartbeats, each a `$default` invocation, and the {changes_per_hour:.0} changes an hour of this run) | {live_invocations:.0} (and a connect and disconnect per 2 h) |\n\n\
         The measured part is the latency and the {messages} messages the socket received in {secs:.0} s; the hourly counts follow from the client's schedule (5 s poll; 60 s fallback poll, 4 min heartbeat with push). The polling tab's own cost does not grow with activity; the pushing tab's grows by one message per inbox change (this run's rate: a like every 5 s), and the pusher's invocations (one per batch of inbox changes) are shared by every tab.\n",
        max_push = pushed_ms.last().copied().unwrap_or_default(),
        max_poll = polled_ms.last().copied().unwrap_or_default(),
        r50 = p50_push / p50_poll,
        r99 = p99_push / p99_poll,
        live_requests = fallback + reconnects,
        live_messages = heartbeats + changes_per_hour,
        live_invocations = fallback + reconnects + heartbeats,
        secs = elapsed.as_secs_f64(),
    );
    let out = root.join("bench").join("results");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("live.md"), &report).context("writing bench/results/live.md")?;
    drop(http);
    drop(live);
    drop(fresh);
    Ok(report)
}

/// What the run measured: each like's latency to each tab, and the socket's messages.
struct Measured {
    pushed_ms: Vec<f64>,
    polled_ms: Vec<f64>,
    messages: u64,
    elapsed: Duration,
}

async fn measure(
    http: &HttpApiServer,
    _live: &LiveServer,
    clients: &snapglow_local::stack::clients::LocalClients,
    stack: &snapglow_local::stack::StackInfo,
    likes: usize,
) -> Result<Measured> {
    let mut api = ApiClient::new(&http.url, clients, stack);
    // carol's photo, published
    let photo = snapglow_local::scenarios::photos::generated_jpeg(1600, 1067, 3);
    let image = api.upload("carol", photo, "image/jpeg").await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = api
            .request("carol", "GET", &format!("/images/{image}"), None)
            .await?;
        if seen.body["status"] == "published" {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "carol's photo was not published within 120 s: {}",
                seen.body
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 0..likes {
        api.token(&format!("fan{i}")).await?; // signed in before the clock starts
    }

    // Two tabs of carol's: one with live push, one polling every 5 s as before
    let issued = api
        .request("carol", "POST", "/me/live-ticket", None)
        .await?;
    let url = issued.body["url"]
        .as_str()
        .context("a ticket URL")?
        .to_owned();
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .context("carol's socket")?;
    let polled: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let poller = {
        let mut api = ApiClient::new(&http.url, clients, stack);
        let (polled, image) = (polled.clone(), image.clone());
        tokio::spawn(async move {
            loop {
                let inbox = api.request("carol", "GET", "/me/notifications?limit=20", None);
                if let Ok(inbox) = inbox.await
                    && let Some(count) = likes_of(&inbox.body["items"], &image)
                {
                    polled.lock().unwrap().push((Instant::now(), count));
                }
                tokio::time::sleep(POLL).await;
            }
        })
    };

    // Act: each fan likes the photo at a random moment of the poll's cycle
    let mut random = fastrand::Rng::with_seed(11);
    let (mut pushed_ms, mut polled_ms) = (Vec::new(), Vec::new());
    let mut messages = 0u64;
    let started = Instant::now();
    for i in 0..likes {
        tokio::time::sleep(Duration::from_millis(random.u64(0..5000))).await;
        let sent = Instant::now();
        let answer = api.like(&format!("fan{i}"), &image, true).await?;
        if answer.status != 200 {
            bail!("fan{i}'s like answered {}: {}", answer.status, answer.body);
        }
        let want = i as i64 + 1;
        let push_deadline = sent + Duration::from_secs(60);
        loop {
            let left = push_deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, socket.next())
                .await
                .with_context(|| format!("no push of like {want} within 60 s"))?;
            let Some(Ok(Message::Text(text))) = message else {
                bail!("carol's socket closed: {message:?}");
            };
            messages += 1;
            let pushed: Value = serde_json::from_str(text.as_str())?;
            if likes_of(&pushed["items"], &image).is_some_and(|n| n >= want) {
                pushed_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                break;
            }
        }
        let poll_deadline = sent + Duration::from_secs(60);
        loop {
            let seen = (polled.lock().unwrap().iter())
                .find(|(at, count)| *at >= sent && *count >= want)
                .map(|(at, _)| at.duration_since(sent));
            if let Some(after) = seen {
                polled_ms.push(after.as_secs_f64() * 1000.0);
                break;
            }
            if Instant::now() > poll_deadline {
                bail!("the polling tab did not see like {want} within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let elapsed = started.elapsed();
    poller.abort();
    Ok(Measured {
        pushed_ms,
        polled_ms,
        messages,
        elapsed,
    })
}

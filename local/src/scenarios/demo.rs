//! `cargo local demo`: the main job on this machine. Photos are uploaded, resized, published,
//! liked by a burst of users (with producer duplicates and unlikes), counted and notified, and
//! one taken back by its owner and erased, all through the real binaries and the template's
//! event source mappings; then the result is checked against the ground truth and shown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ScenarioError;
use super::client::ApiClient;
use super::measure::percentile_u64;
use super::photos::{PHOTO_DIRS, find_photos, generated_jpeg};
use crate::stack::StackInfo;
use crate::stack::clients::{AwsResult, LocalClients};
use crate::stack::presigned::PresignedGate;
use crate::stack::queues::peek;
use crate::triggers::http::HttpApiServer;
use crate::triggers::pipeline::{Progress, run as run_pipeline};
use crate::triggers::{Mapping, PollStats, mappings};
const OWNERS: [&str; 3] = ["alice", "bob", "carol"];

fn image_id_of(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("photo")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub async fn run(
    stack: &StackInfo,
    root: &Path,
    binary_dir: &Path,
    photos: &[PathBuf],
) -> Result<bool, ScenarioError> {
    let clients = LocalClients::admin(stack).await;
    let log_dir = root.join(".local").join("logs");
    let mut pipeline = mappings(stack, binary_dir, &log_dir, &Default::default()).await?;
    println!(
        "pipeline: {}",
        pipeline
            .iter()
            .map(|m| m.name().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // 1. Uploads: real photographs where the machine has them, plus a corrupt file.
    let mut files: Vec<(String, String, Vec<u8>)> = Vec::new();
    for (i, path) in find_photos(photos).iter().enumerate() {
        let bytes = std::fs::read(path).map_err(ScenarioError::file(path))?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("jpg")
            .to_ascii_lowercase();
        files.push((
            OWNERS[i % OWNERS.len()].to_owned(),
            format!("{}.{ext}", image_id_of(path)),
            bytes,
        ));
    }
    if files.is_empty() {
        println!(
            "no photographs found in {PHOTO_DIRS:?} (apt-get install lomiri-wallpapers): using generated images"
        );
        for seed in 0..3 {
            files.push((
                OWNERS[seed as usize % OWNERS.len()].to_owned(),
                format!("generated-{seed}.jpg"),
                generated_jpeg(2400 + seed * 160, 1600, seed),
            ));
        }
    }
    files.push((
        "bob".into(),
        "corrupt.jpg".into(),
        b"\xff\xd8\xff\xe0 not really a jpeg".to_vec(),
    ));
    // Through the HTTP API, as an app would: each owner signs in, asks for an upload and puts
    // the file to the presigned URL it gets.
    let gate = PresignedGate::for_stack(stack)
        .await
        .map_err(|e| ScenarioError::Failed(format!("starting the presigned-URL gate: {e}")))?;
    let server = HttpApiServer::start(stack, binary_dir, &log_dir, stack.api_port(), &gate.url)
        .await
        .map_err(|e| ScenarioError::Failed(crate::logging::chain(&e)))?;
    println!("HTTP API at {}", server.url);
    let mut api = ApiClient::new(&server.url, &clients, stack);
    let started = Instant::now();
    // (image id, owner's name, file)
    let mut images: Vec<(String, String, String)> = Vec::new();
    for (owner, file, bytes) in &files {
        let content_type = match file.rsplit_once('.').map(|(_, e)| e) {
            Some("png") => "image/png",
            Some("webp") => "image/webp",
            _ => "image/jpeg",
        };
        let image_id = api.upload(owner, bytes.clone(), content_type).await?;
        println!(
            "{owner} uploaded {file} ({} KB) as image {image_id}",
            bytes.len() / 1024
        );
        images.push((image_id, owner.clone(), file.clone()));
    }
    // The notifications are asynchronous: wait for every upload's message to be visible
    // (plus the s3:TestEvent the fresh stack's bucket configuration sent).
    wait_for_messages(&clients, stack.url_of("ImageUploadsQueue"), files.len() + 1).await?;
    let stats = run_to_idle(&mut pipeline).await?;
    let resize_ms = started.elapsed().as_millis();
    println!(
        "resized and published in {resize_ms} ms ({} invocations)",
        stats.invocations
    );
    println!(
        "\nmoderation (each upload's scan before publication: Rekognition's DetectModerationLabels, answered locally by open_nsfw)"
    );
    for (image_id, _, file) in &images {
        let item = clients
            .image_item(stack.name_of("ImagesTable"), image_id)
            .await?;
        let text = |name: &str| (item.get(name)).and_then(|v| v.as_s().ok()).cloned();
        let scan: Option<serde_json::Value> =
            text("moderation").and_then(|m| serde_json::from_str(&m).ok());
        let scanned = match &scan {
            Some(scan) => {
                let labels: Vec<String> = (scan["labels"].as_array().into_iter().flatten())
                    .filter(|l| l["parent"].as_str().unwrap_or_default().is_empty())
                    .map(|l| {
                        format!(
                            "{} {:.1} %",
                            l["name"].as_str().unwrap_or("?"),
                            l["confidence"].as_f64().unwrap_or(0.0)
                        )
                    })
                    .collect();
                let labels = if labels.is_empty() {
                    "no label at the hold confidence".to_owned()
                } else {
                    labels.join(", ")
                };
                format!("{} ({labels})", scan["model"].as_str().unwrap_or("?"))
            }
            None => "not scanned".to_owned(),
        };
        println!(
            "  {file:<40} {:<10} {scanned}",
            text("status").unwrap_or_default()
        );
    }

    // 2. A burst of likes from many users through the API, with unlikes and client retries
    // (a repeated PUT or DELETE changes nothing).
    let published: Vec<&(String, String, String)> = images
        .iter()
        .filter(|(_, _, f)| f != "corrupt.jpg")
        .collect();
    let mut random = fastrand::Rng::with_seed(20261128);
    let mut truth: BTreeMap<(String, String), bool> = BTreeMap::new();
    let (mut sent, mut retries) = (0, 0);
    for _ in 0..120 {
        let (image_id, _, _) = published[random.usize(..published.len())];
        let user = format!("user{:02}", random.u32(..20));
        let liked = random.u32(..100) >= 15;
        let answer = api.like(&user, image_id, liked).await?;
        if answer.status != 200 {
            return Err(ScenarioError::Failed(format!(
                "a like answered {}: {}",
                answer.status, answer.body
            )));
        }
        sent += 1;
        if random.u32(..100) < 10 {
            // The client timed out and sent the request again.
            api.like(&user, image_id, liked).await?;
            retries += 1;
        }
        truth.insert((image_id.clone(), api.user_id(&user).await?), liked);
    }
    let started = Instant::now();
    let stats = run_to_idle(&mut pipeline).await?;
    println!(
        "{sent} likes and unlikes (+{retries} client retries) recorded, relayed, counted and notified in {} ms ({} invocations)",
        started.elapsed().as_millis(),
        stats.invocations
    );

    // 3. An owner takes a photo back: every read answers 404 at once; from the stream, its
    // count, its notifications and its files are erased.
    let (gone_id, gone_owner, gone_file) = published[published.len() - 1].clone();
    let answer = (api.request(&gone_owner, "DELETE", &format!("/images/{gone_id}"), None)).await?;
    if answer.status != 204 {
        return Err(ScenarioError::Failed(format!(
            "the deletion of {gone_id} answered {}: {}",
            answer.status, answer.body
        )));
    }
    let started = Instant::now();
    let stats = run_to_idle(&mut pipeline).await?;
    let erased = erased(&clients, stack, &mut api, &gone_id, &gone_owner).await?;
    println!(
        "{gone_owner} took back {gone_file}: {} in {} ms ({} invocations)",
        if erased {
            "its page, count, notifications and files erased"
        } else {
            "NOT ALL ERASED"
        },
        started.elapsed().as_millis(),
        stats.invocations
    );
    let published: Vec<&(String, String, String)> = (published.into_iter())
        .filter(|(id, _, _)| *id != gone_id)
        .collect();

    // 4. What a user wants to see.
    let mut all_match = erased;
    println!("\nrenditions");
    let listed = clients
        .s3
        .list_objects_v2()
        .bucket(stack.name_of("RenditionsBucket"))
        .send()
        .await
        .aws(|| "ListObjectsV2 of the renditions bucket".to_owned())?;
    for object in listed.contents() {
        println!(
            "  {:<48} {:>8} KB",
            object.key().unwrap_or_default(),
            object.size().unwrap_or(0) / 1024
        );
    }
    println!("\nlike counts (checked against the ground truth)");
    let likes =
        like_counter::table::LikeCounts::new(clients.dynamodb.clone(), stack.name_of("LikesTable"));
    for (image_id, _, file) in &published {
        let expected = truth
            .iter()
            .filter(|((image, _), liked)| image == image_id && **liked)
            .count() as i64;
        let counted = likes
            .count(image_id)
            .await
            .map_err(|e| ScenarioError::table(format!("the like count of {image_id}"))(e.into()))?;
        all_match &= counted == expected;
        // The API's read, which the page shows: like-counter's count, as the owner sees it.
        let shown = api
            .request(OWNERS[0], "GET", &format!("/images/{image_id}"), None)
            .await?;
        all_match &= shown.body["likes"].as_i64() == Some(counted);
        println!(
            "  {file:<40} {counted:>4} likes  {}",
            if counted == expected {
                "= truth".to_owned()
            } else {
                format!("!= truth {expected}")
            }
        );
    }
    println!("\nnotifications (as GET /me/notifications shows them, with display names)");
    for owner in OWNERS {
        let inbox = api
            .request(owner, "GET", "/me/notifications?limit=100", None)
            .await?;
        if inbox.status != 200 {
            return Err(ScenarioError::Failed(format!(
                "GET /me/notifications of {owner} answered {}: {}",
                inbox.status, inbox.body
            )));
        }
        for n in inbox.body["items"].as_array().into_iter().flatten() {
            println!(
                "  {owner:<6} {} {:<44} {}",
                if n["unread"] == true { "*" } else { " " },
                n["text"].as_str().unwrap_or_default(),
                n["image_id"].as_str().unwrap_or_default()
            );
        }
    }
    println!("\nquarantine (records no code could process, kept with their raw bytes)");
    for body in peek(&clients, stack.url_of("QuarantineQueue")).await? {
        println!("  {body}");
    }
    for queue in ["ImageUploadsDLQ", "StreamFailuresQueue"] {
        let held = peek(&clients, stack.url_of(queue)).await?;
        println!("{queue}: {} messages", held.len());
        for body in held {
            println!("  {body}");
        }
    }
    println!(
        "\nend-to-end latency (into the queue or stream → processed), ms; the like burst is recorded\n\
         before the pipeline runs, so its latency includes the time it waited in the streams"
    );
    for mapping in &pipeline {
        let latencies = mapping.latencies_ms();
        let what = match mapping.function().name() {
            name if name.contains("Resize") => "upload → renditions published",
            name if name.contains("LikeCounter") => "event → like counted",
            name if name.contains("Notifier") => "event → owner notified",
            name if name.contains("Relay") => "change → event on the stream",
            name if name.contains("Eraser") => "deletion → files erased",
            _ => "processed",
        };
        println!(
            "  {:<32} {what:<32} p50 {:>6}  p99 {:>6}  ({} records)",
            mapping.name(),
            percentile_u64(latencies, 50.0),
            percentile_u64(latencies, 99.0),
            latencies.len()
        );
    }
    let sheet = root.join(".local").join("demo").join("contact-sheet.png");
    let thumb_keys: Vec<&str> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| k.contains("/thumb."))
        .collect();
    let thumbs = contact_sheet(&clients, stack, &thumb_keys, &sheet).await?;
    println!(
        "\ncontact sheet of {thumbs} thumbnails: {}",
        sheet.display()
    );
    println!(
        "\n{}",
        if all_match {
            "all like counts match the ground truth"
        } else {
            "LIKE COUNTS DO NOT MATCH THE GROUND TRUTH"
        }
    );
    println!(
        "inspect: cargo local likes <image_id> | cargo local quarantine; act: cargo local run, then cargo local token <user> | cargo local like <image_id> --as <user>; stop: cargo local down"
    );
    Ok(all_match)
}

/// Whether nothing of `image_id` is left: its page answers 404 to its owner, its count is 0,
/// no notification names it, and its original and renditions are gone.
async fn erased(
    clients: &LocalClients,
    stack: &StackInfo,
    api: &mut ApiClient,
    image_id: &str,
    owner: &str,
) -> Result<bool, ScenarioError> {
    let page = (api.request(owner, "GET", &format!("/images/{image_id}"), None)).await?;
    let likes =
        like_counter::table::LikeCounts::new(clients.dynamodb.clone(), stack.name_of("LikesTable"));
    let count = (likes.count(image_id).await)
        .map_err(|e| ScenarioError::table(format!("the like count of {image_id}"))(e.into()))?;
    let owner_id = api.user_id(owner).await?;
    let inbox = notifier::table::InboxReader::new(
        clients.dynamodb.clone(),
        stack.name_of("NotificationsTable"),
    );
    let notified = (inbox.inbox(&owner_id).await)
        .map_err(|e| ScenarioError::table(format!("the inbox of {owner}"))(e.into()))?
        .iter()
        .any(|n| n.image_id == image_id);
    let mut files = 0;
    for (bucket, prefix) in [
        ("UploadsBucket", format!("uploads/{owner_id}/{image_id}")),
        ("RenditionsBucket", format!("renditions/{image_id}/")),
    ] {
        let listed = (clients.s3.list_objects_v2())
            .bucket(stack.name_of(bucket))
            .prefix(&prefix)
            .send()
            .await
            .aws(|| format!("ListObjectsV2 of {prefix}"))?;
        files += listed.contents().len();
    }
    Ok(page.status == 404 && count == 0 && !notified && files == 0)
}

async fn wait_for_messages(
    clients: &LocalClients,
    queue_url: &str,
    count: usize,
) -> Result<(), ScenarioError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let visible = crate::stack::queues::held(clients, queue_url).await?;
        if visible >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ScenarioError::Failed(format!(
                "only {visible} of {count} upload notifications arrived within 30 s; see the emulator's log in .local/logs/"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pipeline's run with a progress line per mapping every second.
async fn run_to_idle(pipeline: &mut [Mapping]) -> Result<PollStats, ScenarioError> {
    let mut progress = Progress::every(Duration::from_secs(1));
    let stats = run_pipeline(pipeline, Some(Duration::from_secs(300)), &mut progress).await?;
    for line in progress.lines() {
        eprintln!("  {line}");
    }
    Ok(stats)
}

/// Tiles the thumbnail renditions into one PNG, so a person can look at the result.
async fn contact_sheet(
    clients: &LocalClients,
    stack: &StackInfo,
    thumb_keys: &[&str],
    out: &Path,
) -> Result<usize, ScenarioError> {
    const CELL: u32 = 340;
    let bucket = stack.name_of("RenditionsBucket");
    let mut thumbs = Vec::new();
    for &key in thumb_keys {
        let object = clients
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .aws(|| format!("GetObject {key}"))?;
        let bytes = object
            .body
            .collect()
            .await
            .aws(|| format!("reading the body of {key}"))?
            .into_bytes();
        let decoded = image::load_from_memory(&bytes).map_err(|source| ScenarioError::Image {
            what: key.to_owned(),
            source,
        })?;
        thumbs.push(decoded.to_rgba8());
    }
    let columns = (thumbs.len() as u32).clamp(1, 4);
    let rows = (thumbs.len() as u32).div_ceil(columns).max(1);
    let mut sheet =
        image::RgbaImage::from_pixel(columns * CELL, rows * CELL, image::Rgba([24, 24, 24, 255]));
    for (i, thumb) in thumbs.iter().enumerate() {
        let (column, row) = (i as u32 % columns, i as u32 / columns);
        let x = column * CELL + (CELL - thumb.width().min(CELL)) / 2;
        let y = row * CELL + (CELL - thumb.height().min(CELL)) / 2;
        image::imageops::overlay(&mut sheet, thumb, x.into(), y.into());
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(ScenarioError::file(dir))?;
    }
    sheet.save(out).map_err(|source| ScenarioError::Image {
        what: out.display().to_string(),
        source,
    })?;
    Ok(thumbs.len())
}

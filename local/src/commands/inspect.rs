//! `cargo local likes | inbox | quarantine [redrive <id>]`: what the tables and the quarantine
//! hold, and a quarantined record put back.

use anyhow::{Context, Result};

use super::stack::running_stack;
use snapglow_local::stack::clients::LocalClients;
use snapglow_local::stack::queues::peek_messages;

pub async fn likes(image_id: &str) -> Result<()> {
    let stack = running_stack()?;
    let clients = LocalClients::admin(&stack).await;
    let table = like_counter::table::LikeCounts::new(clients.dynamodb, stack.name_of("LikesTable"));
    let count = table
        .count(image_id)
        .await
        .with_context(|| format!("reading the like count of {image_id}"))?;
    println!(
        "{}",
        serde_json::json!({ "image_id": image_id, "likes": count })
    );
    Ok(())
}

/// `username`'s inbox: the user is the local pool's, whose `sub` keys the inbox.
pub async fn inbox(username: &str) -> Result<()> {
    let stack = running_stack()?;
    let clients = LocalClients::admin(&stack).await;
    let token = snapglow_local::stack::users::token(&clients, &stack, username).await?;
    let user_id = snapglow_local::scenarios::client::sub_of(&token)
        .with_context(|| format!("the token of {username} has no sub"))?;
    let user_id = user_id.as_str();
    let table =
        notifier::table::InboxReader::new(clients.dynamodb, stack.name_of("NotificationsTable"));
    let notifications = table
        .inbox(user_id)
        .await
        .with_context(|| format!("reading the inbox of {user_id}"))?;
    println!("{}", serde_json::to_string_pretty(&notifications)?);
    Ok(())
}

/// The quarantined records as JSON lines, oldest first, without removing them: each entry
/// with its message `id` (what `redrive` takes).
pub async fn quarantine() -> Result<()> {
    let stack = running_stack()?;
    let clients = LocalClients::admin(&stack).await;
    for message in peek_messages(&clients, stack.url_of("QuarantineQueue")).await? {
        let entry: serde_json::Value = serde_json::from_str(&message.body)
            .unwrap_or_else(|_| serde_json::Value::String(message.body.clone()));
        let mut line = serde_json::Map::new();
        line.insert("id".into(), message.message_id.into());
        match entry {
            serde_json::Value::Object(fields) => line.extend(fields),
            other => {
                line.insert("body".into(), other);
            }
        }
        println!("{}", serde_json::Value::Object(line));
    }
    Ok(())
}

/// Puts quarantine message `id`'s record back where it came from.
pub async fn redrive(id: &str) -> Result<()> {
    let stack = running_stack()?;
    let clients = LocalClients::admin(&stack).await;
    let redriven = snapglow_local::stack::redrive::redrive(
        &clients,
        stack.url_of("QuarantineQueue"),
        id,
        stack.dedup_retention(),
    )
    .await
    .with_context(|| format!("redriving quarantine message {id}"))?;
    println!(
        "{}",
        serde_json::json!({ "id": id, "redriven_to": redriven.to, "bytes": redriven.bytes })
    );
    Ok(())
}

/// Puts the images table's events from `since` on back on the stream.
pub async fn replay_outbox(since: &str) -> Result<()> {
    let since: snapglow::contracts::Timestamp = since.parse().with_context(|| {
        format!("--since {since:?} is not an RFC 3339 time, e.g. 2026-12-07T00:00:00Z")
    })?;
    let stack = running_stack()?;
    let clients = LocalClients::admin(&stack).await;
    let replayed = snapglow_local::stack::replay::replay_outbox(
        &clients,
        stack.name_of("ImagesTable"),
        stack.name_of("ImageSocialEvents"),
        since,
    )
    .await
    .context("replaying the outbox")?;
    println!(
        "{}",
        serde_json::json!({
            "events": replayed.events,
            "image_events": replayed.image_events,
            "scan_requests": replayed.scan_requests,
            "put_calls": replayed.put_calls,
        })
    );
    Ok(())
}

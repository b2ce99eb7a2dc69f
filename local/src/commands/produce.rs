//! `cargo local like | unlike`: a like event on the stream, through the one producer.

use anyhow::Result;

use super::stack::running_stack;
use snapglow::contracts::Timestamp;
use snapglow::stream::StreamPublisher;
use snapglow_local::scenarios::producer::like_event;
use snapglow_local::stack::clients::LocalClients;

pub async fn like(
    image_id: &str,
    user_id: &str,
    liked: bool,
    event_id: Option<uuid::Uuid>,
) -> Result<()> {
    let stack = running_stack()?;
    let clients = LocalClients::new(&stack.endpoint_url).await;
    let publisher = StreamPublisher::new(clients.kinesis, stack.name_of("ImageSocialEvents"));
    let envelope = like_event(image_id, user_id, liked, event_id, Timestamp::now());
    let sequence = publisher.publish(&envelope).await?;
    println!(
        "{}",
        serde_json::json!({ "event_id": envelope.event_id, "type": envelope.event.type_name(), "sequence_number": sequence })
    );
    Ok(())
}

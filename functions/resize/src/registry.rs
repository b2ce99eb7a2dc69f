//! resize's view of the images table, which the API owns: whether an upload was issued, to
//! whom, and the one write resize may make, turning a pending image into a published, held or
//! rejected one together with the event that announces it (the relay publishes it).

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::future::Future;

#[derive(Debug, thiserror::Error)]
#[error(
    "the images table {table} could not be read or written: {detail}; redelivery retries it (check IMAGES_TABLE and the role's grants)"
)]
pub struct RegistryError {
    pub table: String,
    pub detail: String,
    /// The table is missing or refuses resize (ResourceNotFound, AccessDenied, a 403): its
    /// configuration is wrong, not the moment.
    pub refused: bool,
}

/// An image the API issued an upload for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub owner_id: String,
    pub upload_key: String,
    /// `pending`, `published` or `rejected`.
    pub status: String,
    pub correlation_id: String,
    pub event_id: Option<String>,
}

/// The end of an image's processing, and its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// `published`, `held` or `rejected`.
    pub status: &'static str,
    pub event_id: String,
    /// The envelope exactly as it must reach the stream.
    pub event_json: String,
    /// Published or held: the renditions (JSON list).
    pub renditions_json: Option<String>,
    /// Held or rejected: the reason code and the message for people.
    pub reason: Option<(String, String)>,
    /// Published or held: what the upload says of itself and its placeholder, by attribute
    /// name (`placeholder`, `taken_at`, `camera_make`, `camera_model`, `lens`), those it has.
    pub details: Vec<(&'static str, String)>,
    /// What the content scan said (JSON: model and labels), when one ran.
    pub moderation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishOutcome {
    Applied,
    /// This very event is already recorded (a redelivered notification).
    AlreadyRecorded,
    /// The image is no longer pending for this key and owner: another processing finished it.
    NotPending,
    /// DynamoDB will never accept this write (`ValidationException`: the item would exceed
    /// 400 KB, or an attribute is one DynamoDB refuses). Retrying the same write cannot help.
    Refused(String),
}

/// DynamoDB's largest item: names and values of every attribute, in UTF-8.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

pub trait Registry {
    fn issued(&self, image_id: &str)
    -> impl Future<Output = Result<Option<Issued>, RegistryError>>;
    /// Records the outcome if the image is still pending under `owner_id` and `upload_key`.
    fn finish(
        &self,
        image_id: &str,
        owner_id: &str,
        upload_key: &str,
        finished: &Finished,
    ) -> impl Future<Output = Result<FinishOutcome, RegistryError>>;
}

/// The images table in DynamoDB.
pub struct ImagesTable {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

fn key(image_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(snapglow::table::image_pk(image_id)),
        ),
        ("sk".to_owned(), AttributeValue::S("IMAGE".into())),
    ])
}

impl ImagesTable {
    fn error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        error: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> RegistryError {
        let refused = error.code() == Some("ResourceNotFoundException")
            || snapglow::table::refuses_the_caller(
                error.code(),
                error.raw_response().map(|r| r.status().as_u16()),
            );
        RegistryError {
            table: self.table.clone(),
            detail: aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string(),
            refused,
        }
    }
}

impl Registry for ImagesTable {
    async fn issued(&self, image_id: &str) -> Result<Option<Issued>, RegistryError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(image_id)))
            // Written by the API moments before the upload: an eventually consistent read could
            // miss it and skip a real upload.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        Ok(output.item.map(|item| {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            Issued {
                owner_id: text("owner_id").unwrap_or_default(),
                upload_key: text("upload_key").unwrap_or_default(),
                status: text("status").unwrap_or_default(),
                correlation_id: text("correlation_id").unwrap_or_default(),
                event_id: text("event_id"),
            }
        }))
    }

    async fn finish(
        &self,
        image_id: &str,
        owner_id: &str,
        upload_key: &str,
        finished: &Finished,
    ) -> Result<FinishOutcome, RegistryError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let mut set: Vec<String> = [
            "#status = :status",
            "event = :event",
            "event_id = :event_id",
            "updated_at = :now",
        ]
        .map(str::to_owned)
        .to_vec();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(image_id)))
            .condition_expression("#status = :pending AND owner_id = :owner AND upload_key = :key")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(finished.status))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":owner", s(owner_id))
            .expression_attribute_values(":key", s(upload_key))
            .expression_attribute_values(":event", s(&finished.event_json))
            .expression_attribute_values(":event_id", s(&finished.event_id))
            .expression_attribute_values(
                ":now",
                AttributeValue::N(snapglow::contracts::Timestamp::now().millis().to_string()),
            );
        if let Some(renditions) = &finished.renditions_json {
            set.push("renditions = :renditions".into());
            request = request.expression_attribute_values(":renditions", s(renditions));
        }
        if finished.status == "published" {
            // The image enters the feed (the by-publication index's keys); a held one does not.
            set.push("feed = :feed, published_at = :now".into());
            request = request.expression_attribute_values(":feed", s("published"));
        }
        if let Some(moderation) = &finished.moderation {
            set.push("moderation = :moderation".into());
            request = request.expression_attribute_values(":moderation", s(moderation));
        }
        if let Some((reason, message)) = &finished.reason {
            set.push("reason = :reason, message = :message".into());
            request = request
                .expression_attribute_values(":reason", s(reason))
                .expression_attribute_values(":message", s(message));
        }
        for (name, value) in &finished.details {
            set.push(format!("{name} = :{name}"));
            request = request.expression_attribute_values(format!(":{name}"), s(value));
        }
        // A finished image is kept: the TTL that forgets abandoned uploads no longer applies.
        let expression = format!("SET {} REMOVE expires_at", set.join(", "));
        match request.update_expression(expression).send().await {
            Ok(_) => Ok(FinishOutcome::Applied),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                let current = self.issued(image_id).await?;
                Ok(match current.and_then(|i| i.event_id) {
                    Some(id) if id == finished.event_id => FinishOutcome::AlreadyRecorded,
                    _ => FinishOutcome::NotPending,
                })
            }
            Err(e) if e.code() == Some("ValidationException") => Ok(FinishOutcome::Refused(
                aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
            )),
            Err(e) => Err(self.error(e)),
        }
    }
}

/// The table in memory, for unit tests: the same condition on the same fields.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryRegistry {
    pub images: std::sync::Mutex<std::collections::BTreeMap<String, (Issued, Option<Finished>)>>,
    /// Images their owner takes back right before resize records them (while rendered).
    pub taken_back_while_rendered: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

#[cfg(test)]
impl MemoryRegistry {
    /// An upload the API issued: pending, for `owner_id`, at `uploads/{owner}/{image_id}`.
    pub fn issue(&self, image_id: &str, owner_id: &str, correlation_id: &str) {
        self.images.lock().expect("registry lock").insert(
            image_id.to_owned(),
            (
                Issued {
                    owner_id: owner_id.to_owned(),
                    upload_key: format!("uploads/{owner_id}/{image_id}"),
                    status: "pending".into(),
                    correlation_id: correlation_id.to_owned(),
                    event_id: None,
                },
                None,
            ),
        );
    }

    /// The image taken back by its owner (the API's tombstone).
    pub fn delete(&self, image_id: &str) {
        if let Some((issued, _)) = self.images.lock().expect("registry lock").get_mut(image_id) {
            issued.status = "deleted".into();
        }
    }

    pub fn finished(&self, image_id: &str) -> Option<Finished> {
        self.images
            .lock()
            .expect("registry lock")
            .get(image_id)
            .and_then(|(_, f)| f.clone())
    }
}

#[cfg(test)]
impl Registry for MemoryRegistry {
    async fn issued(&self, image_id: &str) -> Result<Option<Issued>, RegistryError> {
        Ok(self
            .images
            .lock()
            .expect("registry lock")
            .get(image_id)
            .map(|(i, _)| i.clone()))
    }

    async fn finish(
        &self,
        image_id: &str,
        owner_id: &str,
        upload_key: &str,
        finished: &Finished,
    ) -> Result<FinishOutcome, RegistryError> {
        let mut images = self.images.lock().expect("registry lock");
        let Some((issued, outcome)) = images.get_mut(image_id) else {
            return Ok(FinishOutcome::NotPending);
        };
        if self
            .taken_back_while_rendered
            .lock()
            .expect("registry lock")
            .remove(image_id)
        {
            issued.status = "deleted".into();
        }
        if issued.status != "pending"
            || issued.owner_id != owner_id
            || issued.upload_key != upload_key
        {
            return Ok(if issued.event_id.as_deref() == Some(&finished.event_id) {
                FinishOutcome::AlreadyRecorded
            } else {
                FinishOutcome::NotPending
            });
        }
        // The twin refuses what DynamoDB refuses: an item over 400 KB (the finished attributes
        // and the issued ones, names and values; a bound from below of DynamoDB's own sum).
        let size = [
            ("event", finished.event_json.len()),
            (
                "renditions",
                finished.renditions_json.as_ref().map_or(0, String::len),
            ),
            (
                "details",
                (finished.details.iter())
                    .map(|(name, value)| name.len() + value.len())
                    .sum(),
            ),
            (
                "message",
                finished
                    .reason
                    .as_ref()
                    .map_or(0, |(r, m)| r.len() + m.len()),
            ),
            (
                "upload_key",
                issued.upload_key.len() + issued.owner_id.len(),
            ),
        ]
        .iter()
        .map(|(name, bytes)| name.len() + bytes)
        .sum::<usize>();
        if size > MAX_ITEM_BYTES {
            return Ok(FinishOutcome::Refused(format!(
                "ValidationException: Item size has exceeded the maximum allowed size ({size} bytes)"
            )));
        }
        issued.status = finished.status.to_owned();
        issued.event_id = Some(finished.event_id.clone());
        *outcome = Some(finished.clone());
        Ok(FinishOutcome::Applied)
    }
}

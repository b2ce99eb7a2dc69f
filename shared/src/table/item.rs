//! Items and keys as every table of the project writes them: one home for the attribute
//! helpers and for the key conventions the tables share.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// A DynamoDB item, as the SDK holds it.
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The partition key of everything one table knows about one image: `IMAGE#{image_id}`, in
/// the images, likes and notifications tables alike.
pub fn image_pk(image_id: &str) -> String {
    format!("IMAGE#{image_id}")
}

/// The image id of an [`image_pk`]; `None` for any other partition.
pub fn image_of_pk(pk: &str) -> Option<&str> {
    pk.strip_prefix("IMAGE#")
}

/// Whether a write was refused because its condition did not hold (the state changed since
/// it was read): an answer to decide on, never a failure of the table.
pub fn is_condition_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

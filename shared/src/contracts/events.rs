//! The `data` of each event type, one struct per type and version. A new version of a type
//! may only add `Option` fields (with `#[serde(default)]`); anything else is a new type.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An upload was turned into renditions; they are in the renditions bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImagePublishedV1 {
    pub image_id: String,
    pub owner_id: String,
    /// The uploads-bucket key the renditions were made from.
    pub source_key: String,
    /// The ETag of the source object, without quotes.
    pub source_etag: String,
    /// Dimensions of the source after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub renditions: Vec<RenditionV1>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RenditionV1 {
    /// The configured size name, e.g. `large`, `medium`, `thumb`.
    pub name: String,
    /// The key in the renditions bucket.
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub content_type: String,
}

/// An upload could never be turned into renditions (retrying cannot help).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageRejectedV1 {
    pub image_id: String,
    pub owner_id: String,
    pub source_key: String,
    /// A snake_case code: `decompression_bomb`, `unsupported_format`, `corrupt`, `too_large`.
    /// Consumers must accept codes they do not know.
    pub reason: String,
    /// For people: what was wrong with the file.
    pub message: String,
}

/// A user liked an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageLikedV2 {
    pub image_id: String,
    pub user_id: String,
    /// v2: the (image, user) like state's revision at the source of truth, one more on every
    /// change. Consumers order one (image, user)'s facts by it when both carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// A user took back a like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageLikeUndoneV2 {
    pub image_id: String,
    pub user_id: String,
    /// v2: as in `ImageLiked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

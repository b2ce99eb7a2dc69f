//! The `data` of each event type, one struct per type and version. A new version of a type
//! may only add `Option` fields (with `#[serde(default)]`); anything else is a new type.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The longest id (image, owner, user) the contract allows, in bytes. Ids end up in DynamoDB
/// keys (a sort key holds at most 1,024 bytes) and Kinesis partition keys (256 characters):
/// one over-long id must fail alone, at decoding, never a whole batch at the table.
pub const MAX_ID_BYTES: usize = 128;

/// Whether `id` is an id of the contract: 1 to [`MAX_ID_BYTES`] printable ASCII characters,
/// spaces included, except `#` (the tables' key separator) and `/` (the upload key's): UUIDs,
/// Cognito subs and slugs fit; control characters and non-characters such as U+FFFF do not.
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_BYTES).contains(&id.len())
        && id
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'#' && b != b'/')
}

/// An upload was turned into renditions; they are in the renditions bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImagePublishedV2 {
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub image_id: String,
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub owner_id: String,
    /// The uploads-bucket key the renditions were made from.
    pub source_key: String,
    /// The ETag of the source object, without quotes.
    pub source_etag: String,
    /// Dimensions of the source after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub renditions: Vec<RenditionV1>,
    /// v2: a BlurHash of the smallest rendition, for a client to paint while it loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 6, max = 64))]
    pub placeholder: Option<String>,
    /// v2: when the photo was taken, as its EXIF says (`2024-05-01T14:03:22`, local time, or
    /// with the offset the EXIF gives: `2024-05-01T14:03:22+02:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 19, max = 25))]
    pub taken_at: Option<String>,
    /// v2: the camera's make, model and lens, as its EXIF says (at most 64 characters each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub camera_make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub camera_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub lens: Option<String>,
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
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub image_id: String,
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub owner_id: String,
    pub source_key: String,
    /// A snake_case code: `decompression_bomb`, `unsupported_format`, `corrupt`, `too_large`.
    /// Consumers must accept codes they do not know.
    pub reason: String,
    /// For people: what was wrong with the file.
    pub message: String,
}

/// An upload was rendered but is held for review: its owner sees it, with why; nobody else
/// does, and it is not in the feed. A review publishes it (ImagePublished) or removes it
/// (ImageDeleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageHeldV1 {
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub image_id: String,
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub owner_id: String,
    /// The uploads-bucket key the renditions were made from.
    pub source_key: String,
    /// A snake_case code: `moderation` (a classifier's label held it), `scan_failed` (no
    /// classifier answered, however often asked: held rather than published unscanned).
    /// Consumers must accept codes they do not know.
    pub reason: String,
    /// For people: why it is held.
    pub message: String,
    /// `moderation`: the label that held it, in Rekognition's taxonomy (`Explicit Nudity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub label: Option<String>,
    /// `moderation`: that label's confidence, 0 to 100, rounded down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub confidence: Option<u8>,
}

/// A user liked an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageLikedV2 {
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub image_id: String,
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub user_id: String,
    /// v2: the (image, user) like state's revision at the source of truth, one more on every
    /// change. Consumers order one (image, user)'s facts by it when both carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// A user took back a like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageLikeUndoneV2 {
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub image_id: String,
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub user_id: String,
    /// v2: as in `ImageLiked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// An owner took an image back (deleted it, or their account). Every consumer removes what it
/// keeps of the image, and a like of it delivered or replayed afterwards changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageDeletedV1 {
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub image_id: String,
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[\x20-\x22\x24-\x2E\x30-\x7E]+$")
    )]
    pub owner_id: String,
    /// The uploads-bucket key of the original.
    pub upload_key: String,
    /// The renditions-bucket keys of its renditions (none for a rejected upload).
    pub rendition_keys: Vec<String>,
}

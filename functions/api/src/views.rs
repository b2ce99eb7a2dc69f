//! What the API answers, as typed views: the JSON shapes clients (web/) read. A field added
//! here is a field every client sees; one removed or renamed breaks them.

use serde::Serialize;

use crate::store::Presigned;

#[derive(Debug, Serialize)]
pub struct UploadIssued {
    pub image_id: String,
    pub status: &'static str,
    pub upload: Presigned,
    pub expires_in_seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct RenditionView {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct ImageView {
    pub image_id: String,
    pub owner_id: String,
    /// The owner's display name (their profile's, as of this read).
    pub owner_name: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub created_at: String,
    pub renditions: Vec<RenditionView>,
    pub likes: i64,
    pub liked_by_me: bool,
    /// A BlurHash to paint while a rendition loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// When it was taken, as the upload's EXIF says (local time, or with its offset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<String>,
    /// The camera, as the upload's EXIF names it ("NIKON D850").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lens: Option<String>,
}

/// One of the caller's own images, in `GET /me/images`.
#[derive(Debug, Serialize)]
pub struct MyImageView {
    pub image_id: String,
    pub status: &'static str,
    /// Why it was rejected (`null` otherwise).
    pub reason: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Thumbnail {
    pub url: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Serialize)]
pub struct FeedItem {
    pub image_id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub published_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
    /// A BlurHash of the thumbnail, to paint while it loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    pub likes: i64,
    pub liked_by_me: bool,
}

#[derive(Debug, Serialize)]
pub struct LikeView {
    pub image_id: String,
    pub liked: bool,
    pub revision: u64,
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of a listing, and the cursor of the next one when there is more.
    pub fn of(items: Vec<T>, next: Option<crate::store::Cursor>) -> Self {
        let next_cursor = next.map(|cursor| cursor.encode());
        Page { items, next_cursor }
    }
}

#[derive(Debug, Serialize)]
pub struct NotificationView {
    pub id: String,
    pub kind: String,
    pub image_id: String,
    /// What it says, with the display names of the people it is about.
    pub text: String,
    /// Who did it, by id, most recent first (the latest few).
    pub actors: Vec<String>,
    /// Their display names, in the same order.
    pub actor_names: Vec<String>,
    /// For likes: how many this notification counts (`actors` names the latest few).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likes: Option<i64>,
    pub unread: bool,
    pub created_at: String,
    /// When its latest event happened (for likes, the newest like it counts).
    pub updated_at: String,
    /// The photo it is about, while it is published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
}

/// The caller's profile: `display_name` is `null` until they choose one (or gave one at
/// sign-up).
#[derive(Debug, Serialize)]
pub struct ProfileView {
    pub user_id: String,
    pub display_name: Option<String>,
    pub updated_at: Option<String>,
}

/// A one-time ticket to open the live WebSocket: `url` carries it (a ticket is good once, for
/// a minute: unlike a token, nothing is lost if it lands in a log).
#[derive(Debug, Serialize)]
pub struct LiveTicketView {
    pub url: String,
    pub expires_in_seconds: u64,
}

/// Someone whose like of a photo stands, in `GET /images/{id}/likes`.
#[derive(Debug, Serialize)]
pub struct LikerView {
    pub user_id: String,
    pub display_name: String,
    pub liked_at: String,
}

/// How many of the named notifications `POST /me/notifications/read` marked read.
#[derive(Debug, Serialize)]
pub struct Marked {
    pub marked: usize,
}

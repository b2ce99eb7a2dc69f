//! What the API needs of its table, of the read models it reads, and of S3: four small
//! traits by resource ([`Images`], [`Likes`], [`Inbox`], [`Links`]; [`Store`] is all four),
//! the AWS adapter ([`AwsStore`]: `dynamodb.rs`, `s3.rs`), the in-memory twin
//! ([`memory::MemoryStore`]) and the plain data they speak.
//!
//! The images table (one owner: this API; resize may only flip a pending image's status):
//! - `IMAGE#{id}` / `IMAGE`: the image (`owner_id`, `status`, `content_type`,
//!   `upload_key`, `correlation_id`, `created_at`; once published, renditions and `feed` /
//!   `published_at`, the keys of the `by-publication` index, and what resize kept of the
//!   upload: `placeholder`, `taken_at`, `camera_make`, `camera_model`, `lens`; `expires_at`
//!   while pending);
//!   once deleted, a tombstone: `status` `deleted`, `owner_id`, `upload_key`, `deleted_at`,
//!   the `ImageDeleted` event, `expires_at`, and no index keys;
//! - `IMAGE#{id}` / `LIKE#{user}`: who likes what, the source of truth (`liked`, `revision`,
//!   `occurred_at`), with the change's `event` and `event_id` for the relay;
//! - `QUOTA#{user}` / `HOUR#{start}`: uploads issued to the user in that hour (`issued`, and
//!   the `images` they were issued for); `QUOTA#{user}` / `DAY#{start}`: the bytes they may
//!   put that day (`issued_bytes`);
//! - `RATE#{user}` / `MINUTE#{start}`: the user's requests in that minute (`requests`);
//! - `ACCOUNT#{user}` / `ERASED`: the user's account is erased (`erased_at`): their writes are
//!   refused while a token issued before could still be presented (`expires_at`);
//! - `ACCOUNT#{user}` / `PROFILE`: what others see of the user (`display_name`, `updated_at`),
//!   resolved by id whenever a page names people, so that a rename shows everywhere at once.
//!
//! A like item carries `user_id` and `occurred_at`, the keys of the sparse `by-liker` index
//! (the likes a user gave); an account's erasure takes each out of it by removing `user_id`.
//!
//! The quota, rate, account and profile items carry no `event`: the relay's filter never sees them, and TTL
//! (`expires_at`) removes them.
//!
//! An item's `event` is the envelope its latest change emits, exactly as it goes on the
//! stream: written by the same conditional write as the change, published by the relay from
//! the table's stream. There is no second write that could fail on its own.

mod accounts;
mod cursor;
mod dynamodb;
mod limits;
pub mod memory;
mod profiles;
mod s3;
mod tickets;

pub use accounts::UserPool;
pub use cursor::{Cursor, CursorValue, Listing};
pub use dynamodb::{AwsStore, FEED, create_pending};
pub use limits::RequestCounter;

use snapglow::batch::Deadline;
use snapglow::contracts::RenditionV1;
use snapglow::table::TableError;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A table's failure, sorted (transient, rejected, corrupt item) as every function of the
    /// project sorts them.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The user pool refused or failed a call (the deletion of an erased account's user).
    #[error("the user pool {pool} refused {action}")]
    Pool {
        pool: String,
        action: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        /// Throttling, a 5xx or a timeout: the client's next DELETE /me finishes it.
        transient: bool,
    },
    /// S3 would not presign (a bad key or expiry): a bug, not load.
    #[error("presigning {what}")]
    Presign {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Published,
    Rejected,
    /// Rendered, but held for review: its owner sees it (with why), nobody else does.
    Held,
    /// Taken back by its owner: a tombstone that answers a repeated DELETE until TTL removes it.
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Published => "published",
            Status::Rejected => "rejected",
            Status::Held => "held",
            Status::Deleted => "deleted",
        }
    }
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "pending" => Some(Status::Pending),
            "published" => Some(Status::Published),
            "rejected" => Some(Status::Rejected),
            "held" => Some(Status::Held),
            "deleted" => Some(Status::Deleted),
            _ => None,
        }
    }
}

/// An image as the images table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub image_id: String,
    pub owner_id: String,
    pub published_at_ms: Option<i64>,
    pub status: Status,
    pub content_type: String,
    /// The original's key in the uploads bucket.
    pub upload_key: String,
    pub created_at_ms: i64,
    pub correlation_id: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub renditions: Vec<RenditionV1>,
    /// Once published: what the upload said of itself, and its placeholder.
    pub details: PhotoDetails,
}

/// What resize kept of a published upload (`ImagePublished` v2), each when the upload had it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhotoDetails {
    /// A BlurHash of the thumbnail.
    pub placeholder: Option<String>,
    /// When it was taken, as its EXIF says (local time, or with its offset).
    pub taken_at: Option<String>,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    pub lens: Option<String>,
}

/// A new pending image, issued with its upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    pub image_id: String,
    pub owner_id: String,
    pub content_type: String,
    pub content_length: u64,
    pub upload_key: String,
    pub correlation_id: String,
    pub created_at_ms: i64,
    /// A pending image whose upload never came is forgotten (TTL, epoch seconds).
    pub expires_at_s: i64,
}

/// One user's like state of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikeState {
    pub liked: bool,
    pub revision: u64,
    pub occurred_at_ms: i64,
}

/// A like state change and the event it emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikeChange {
    pub image_id: String,
    pub user_id: String,
    /// The state this change replaces (`None`: there was none); the write applies only over it.
    pub previous: Option<LikeState>,
    pub next: LikeState,
    pub event_id: String,
    pub event_json: String,
}

/// An image taken back, and the event that tells the consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDeletion {
    pub image_id: String,
    /// The status the deletion was decided on: it applies only while the image still has it.
    pub was: Status,
    pub deleted_at_ms: i64,
    /// When TTL removes the tombstone (epoch seconds).
    pub expires_at_s: i64,
    pub event_id: String,
    pub event_json: String,
}

/// A presigned request: what the client must send, exactly.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Presigned {
    pub method: String,
    pub url: String,
    /// Headers that are part of the signature: sent with other values, the URL is refused.
    pub headers: BTreeMap<String, String>,
}

/// One notification as the API shows it.
pub use notifier::inbox::Notification;

/// A user's id: their token's `sub`.
pub type UserId = String;
/// What a user is called on pages (see [`Profile`]).
pub type DisplayName = String;

/// What others see of a user. Events and items name users by id only; names are resolved
/// when a page is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub display_name: DisplayName,
    pub updated_at_ms: i64,
}

/// The quotas an upload is counted in: uploads per hour, bytes per day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadQuota {
    pub hour_start_ms: i64,
    pub uploads_per_hour: u64,
    pub day_start_ms: i64,
    pub bytes_per_day: u64,
}

/// What taking an upload's share of the quotas came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Yes,
    /// The hour's uploads are spent.
    HourSpent,
    /// The day's bytes would be exceeded by this upload.
    DaySpent,
}

/// The images table's images, and the upload quotas it keeps beside them.
pub trait Images {
    /// Counts an upload of `bytes` for `image_id` in the user's hour and day, both or neither;
    /// what stopped it otherwise. Taking it again for the same image (a request sent twice)
    /// takes nothing more and answers [`Taken::Yes`]. Busy writes are retried until `deadline`.
    fn take_upload_quota(
        &self,
        user_id: &str,
        quota: &UploadQuota,
        image_id: &str,
        bytes: u64,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Taken, StoreError>>;
    fn create_image(&self, image: &NewImage) -> impl Future<Output = Result<(), StoreError>>;
    /// Makes the image a tombstone with its `ImageDeleted` event, in one write, if its status
    /// is still `deletion.was`; false otherwise. It leaves the feed and the owner's listing.
    fn delete_image(
        &self,
        deletion: &ImageDeletion,
    ) -> impl Future<Output = Result<bool, StoreError>>;
    fn image(
        &self,
        image_id: &str,
    ) -> impl Future<Output = Result<Option<ImageRecord>, StoreError>>;
    fn my_images(
        &self,
        user_id: &str,
        limit: i32,
        after: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<ImageRecord>, Option<Cursor>), StoreError>>;
    /// The smallest rendition of each of `image_ids` that is published (the others are
    /// absent), in one read per 100 images.
    fn thumbnails(
        &self,
        image_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, RenditionV1>, StoreError>>;
    /// Published images of everyone, newest first.
    fn feed(
        &self,
        limit: i32,
        after: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<ImageRecord>, Option<Cursor>), StoreError>>;
}

/// A like a user gave, as the `by-liker` index lists it (eventually consistent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenLike {
    pub image_id: String,
    pub state: LikeState,
}

/// One user whose like of an image stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikedBy {
    pub user_id: String,
    /// When the like was given (its last change).
    pub occurred_at_ms: i64,
}

/// Likes: each user's like state (the images table, written with its event) and
/// like-counter's counts (a read model that lags the states by the pipeline).
pub trait Likes {
    fn like_state(
        &self,
        image_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<LikeState>, StoreError>>;
    /// Writes the change if the stored state is still `change.previous`; false otherwise.
    fn write_like(&self, change: &LikeChange) -> impl Future<Output = Result<bool, StoreError>>;
    fn like_count(&self, image_id: &str) -> impl Future<Output = Result<i64, StoreError>>;
    /// A page of the users whose like of `image_id` stands, in user-id order; a page may hold
    /// fewer than `limit` (taken-back likes are read and skipped) and still have a next one.
    fn likers(
        &self,
        image_id: &str,
        limit: i32,
        after: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<LikedBy>, Option<Cursor>), StoreError>>;
    /// Up to `limit` of the likes `user_id` gave (standing or taken back), from the
    /// `by-liker` index: a like retired by [`Likes::retire_like`] leaves it.
    fn likes_given(
        &self,
        user_id: &str,
        limit: i32,
    ) -> impl Future<Output = Result<Vec<GivenLike>, StoreError>>;
    /// Retires a like item of an erased account, over `revision`: writes `unlike` (a standing
    /// like taken back, with its event) when given, removes the item from the `by-liker`
    /// index and lets TTL remove it at `expires_at_s`. False when the item changed since.
    fn retire_like(
        &self,
        image_id: &str,
        user_id: &str,
        revision: u64,
        unlike: Option<&LikeChange>,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<bool, StoreError>>;
    /// Per image: its like count and whether `user_id` likes it, in one read for the page.
    fn likes_of(
        &self,
        image_ids: &[String],
        user_id: &str,
    ) -> impl Future<Output = Result<HashMap<String, (i64, bool)>, StoreError>>;
}

/// The caller's inbox: the read side of notifier's table.
pub trait Inbox {
    fn inbox(
        &self,
        user_id: &str,
        limit: i32,
        after: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<Notification>, Option<Cursor>), StoreError>>;
    /// Marks the notifications `keys` names read (at most 100 keys); answers how many were
    /// unread. A key no notification has writes nothing. A busy write (a transaction of the
    /// notifier holding the item, throttling) is retried until `deadline`.
    fn mark_read(
        &self,
        user_id: &str,
        keys: &[String],
        deadline: &Deadline,
    ) -> impl Future<Output = Result<usize, StoreError>>;
}

/// Presigned S3 requests (signed locally: no request is sent).
pub trait Links {
    fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
    ) -> impl Future<Output = Result<Presigned, StoreError>>;
    fn rendition_url(&self, key: &str) -> impl Future<Output = Result<String, StoreError>>;
}

/// Each user's requests per minute, counted before any route does its work.
pub trait Limits {
    /// Counts one request of `user_id` in the minute starting at `minute_start_ms`; false when
    /// the minute's `limit` was spent already.
    fn take_request(
        &self,
        user_id: &str,
        minute_start_ms: i64,
        limit: u64,
    ) -> impl Future<Output = Result<bool, StoreError>>;
}

/// Accounts: an erased account's mark, and the sign-in pool its user is deleted from.
pub trait Accounts {
    /// Whether `user_id`'s account is erased (or being erased): its writes are refused.
    fn erased(&self, user_id: &str) -> impl Future<Output = Result<bool, StoreError>>;
    /// Marks the account erased from `at_ms`, for good until [`Accounts::settle_mark`]; a
    /// mark already there keeps its time. Answers the mark's time (the first erasure call's).
    fn mark_erased(
        &self,
        user_id: &str,
        at_ms: i64,
    ) -> impl Future<Output = Result<i64, StoreError>>;
    /// Lets TTL remove the mark at `expires_at_s`, once no token can be issued for the
    /// account any more.
    fn settle_mark(
        &self,
        user_id: &str,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<(), StoreError>>;
    /// Deletes `username` from the user pool: true once it is gone (now or before); false
    /// when another issuer than the template's pool owns the accounts, which may still issue
    /// tokens for it.
    fn delete_user(&self, username: &str) -> impl Future<Output = Result<bool, StoreError>>;
}

/// Profiles: display names, and the one the user gave at sign-up.
pub trait Profiles {
    /// The user's profile, read strongly consistent (their own, just after a change).
    fn profile(&self, user_id: &str) -> impl Future<Output = Result<Option<Profile>, StoreError>>;
    /// Stores the profile; with `only_new`, only while the user has none (a seed from the
    /// pool never overwrites a name chosen since): false when one was there.
    fn put_profile(
        &self,
        user_id: &str,
        profile: &Profile,
        only_new: bool,
    ) -> impl Future<Output = Result<bool, StoreError>>;
    /// Removes the user's name for good (an erased account): TTL removes the item at
    /// `expires_at_s`, and no seed gives it a name again.
    fn erase_profile(
        &self,
        user_id: &str,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<(), StoreError>>;
    /// The display names of those of `user_ids` that have a profile, in one read per 100.
    fn display_names(
        &self,
        user_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<UserId, DisplayName>, StoreError>>;
    /// The name `username` gave at sign-up (the user pool's `name` attribute), if any.
    fn signup_name(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<DisplayName>, StoreError>>;
}

/// Live push's one-time tickets (snapglow::live describes the connections table).
pub trait Tickets {
    /// Stores a ticket of `user_id` under `key` (its hash) until `expires_at_s`. A ticket
    /// issued twice (the SDK re-sending a put that landed) is stored once.
    fn issue_ticket(
        &self,
        key: &str,
        user_id: &str,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<(), StoreError>>;
}

/// Everything the handlers use.
pub trait Store: Images + Likes + Inbox + Links + Limits + Accounts + Profiles + Tickets {}

impl<T: Images + Likes + Inbox + Links + Limits + Accounts + Profiles + Tickets> Store for T {}

//! One request, end to end, in plain types: the route, the caller (the token's `sub`, which
//! API Gateway's JWT authorizer verified), the body, and the store. Nothing here knows
//! lambda_http; the tests drive it with an in-memory store.

use serde::{Deserialize, Serialize};
use snapglow::contracts::{Envelope, SocialEvent, Timestamp};
use std::collections::BTreeMap;

use crate::problem::Problem;
use crate::routes::{NoRoute, Route, route};
use crate::store::{
    Cursor, ImageRecord, LikeChange, LikeState, NewImage, Status, Store, StoreError,
};

/// Request bodies are small JSON documents; anything larger is refused unread.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// What `POST /uploads` accepts, by declared `content_type` (resize reads these formats).
pub const ACCEPTED_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/gif"];
/// Attempts at a like change when other requests of the same user keep changing it.
const LIKE_ATTEMPTS: usize = 3;
const PAGE_DEFAULT: i32 = 20;
const PAGE_MAX: i32 = 100;
/// A feed page reads two keys per image in one BatchGetItem, which takes 100.
const FEED_PAGE_MAX: i32 = 50;

#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// The verified token's `sub`; `None` only if the authorizer was bypassed.
    pub sub: Option<String>,
    /// The token's username (`username` of an access token, `cognito:username` of an ID
    /// token): shown beside the caller's photos, never used to decide anything.
    pub username: Option<String>,
    pub correlation_id: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    fn json(status: u16, value: &impl Serialize) -> ApiResponse {
        ApiResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).expect("responses serialize"),
        }
    }

    pub fn problem(problem: &Problem) -> ApiResponse {
        let mut response = ApiResponse::json(problem.status, problem);
        response.headers[0].1 = "application/problem+json".into();
        if let Some(seconds) = problem.retry_after {
            response
                .headers
                .push(("retry-after".into(), seconds.to_string()));
        }
        response
    }
}

/// A valid `x-correlation-id` is kept; anything else is replaced by the request id.
pub fn correlation_id(header: Option<&str>, request_id: &str) -> String {
    match header {
        Some(id)
            if (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
        {
            id.to_owned()
        }
        _ => request_id.to_owned(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadRequest {
    content_type: String,
    content_length: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadRequest {
    ids: Vec<String>,
}

#[derive(Debug, Serialize)]
struct UploadIssued {
    image_id: String,
    status: &'static str,
    upload: crate::store::Presigned,
    expires_in_seconds: u64,
}

#[derive(Debug, Serialize)]
struct RenditionView {
    name: String,
    width: u32,
    height: u32,
    content_type: String,
    url: String,
}

#[derive(Debug, Serialize)]
struct ImageView {
    image_id: String,
    owner_id: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    created_at: String,
    renditions: Vec<RenditionView>,
    likes: i64,
    liked_by_me: bool,
}

#[derive(Debug, Serialize)]
struct Thumbnail {
    url: String,
    width: u32,
    height: u32,
}

#[derive(Debug, Serialize)]
struct FeedItem {
    image_id: String,
    owner_id: String,
    owner_name: String,
    published_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbnail: Option<Thumbnail>,
    likes: i64,
    liked_by_me: bool,
}

#[derive(Debug, Serialize)]
struct LikeView {
    image_id: String,
    liked: bool,
    revision: u64,
}

#[derive(Debug, Serialize)]
struct Page<T> {
    items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
struct NotificationView {
    id: String,
    kind: String,
    image_id: String,
    text: String,
    actors: Vec<String>,
    /// For likes: how many this notification counts (`actors` names the latest few).
    #[serde(skip_serializing_if = "Option::is_none")]
    likes: Option<i64>,
    unread: bool,
    created_at: String,
}

/// The API over a [`Store`].
pub struct Api<S> {
    pub store: S,
    pub max_upload_bytes: u64,
    pub uploads_per_hour: u64,
    pub upload_url_ttl_seconds: u64,
}

/// The next like state for a request, or `None` when the state already is what was asked
/// (a repeated PUT or DELETE changes nothing and emits nothing). `occurred_at` never goes
/// back for one (image, user): consumers that order by time agree with the revision order.
pub fn next_like(previous: Option<LikeState>, liked: bool, now_ms: i64) -> Option<LikeState> {
    match previous {
        Some(state) if state.liked == liked => None,
        None if !liked => None,
        Some(state) => Some(LikeState {
            liked,
            revision: state.revision + 1,
            occurred_at_ms: now_ms.max(state.occurred_at_ms + 1),
        }),
        None => Some(LikeState {
            liked,
            revision: 1,
            occurred_at_ms: now_ms,
        }),
    }
}

/// The start of the hour `now_ms` falls in (the upload quota's window).
pub fn hour_start(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(3_600_000)
}

fn body<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Problem> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::body_too_large(MAX_BODY_BYTES));
    }
    // serde's message names the unknown or missing field and what was expected.
    serde_json::from_slice(bytes).map_err(|e| Problem::invalid_body(e.to_string()))
}

fn store_problem(error: StoreError, correlation_id: &str) -> Problem {
    let chain = snapglow::telemetry::error_chain(&error);
    match &error {
        StoreError::Table(snapglow::table::TableError::Transient { .. }) => {
            tracing::warn!(error = %chain, correlation_id, "a dependency is unavailable");
            Problem::busy("a dependency is busy; retry with backoff")
        }
        _ => {
            tracing::error!(error = %chain, correlation_id, "request failed");
            Problem::internal()
        }
    }
}

/// A listing's store error: a start key DynamoDB refused, when the client sent a cursor, is
/// the client's cursor (400); anything else stays the store's.
fn listing_error(had_cursor: bool) -> impl Fn(StoreError) -> Result<Problem, StoreError> {
    move |error| {
        if had_cursor && error.is_start_key_refusal() {
            Ok(Problem::invalid_query(
                "cursor is not one this API handed out",
            ))
        } else {
            Err(error)
        }
    }
}

impl<S: Store> Api<S> {
    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let correlation_id = request.correlation_id.clone();
        let mut response = match self.route(request).await {
            Ok(response) => response,
            Err(problem) => ApiResponse::problem(&problem),
        };
        response
            .headers
            .push(("x-correlation-id".into(), correlation_id));
        response
    }

    async fn route(&self, request: ApiRequest) -> Result<ApiResponse, Problem> {
        let route = match route(&request.method, &request.path) {
            Ok(route) => route,
            Err(NoRoute::NotFound) => {
                return Err(Problem::not_found(format!(
                    "no route {} {}",
                    request.method, request.path
                )));
            }
            Err(NoRoute::MethodNotAllowed { allowed }) => {
                return Err(Problem::method_not_allowed(allowed));
            }
        };
        let Some(sub) = request.sub.clone().filter(|s| !s.is_empty()) else {
            return Err(Problem::unauthorized());
        };
        let fail = |e: StoreError| store_problem(e, &request.correlation_id);
        match route {
            Route::CreateUpload => self.create_upload(&sub, &request).await,
            Route::GetImage { id } => self
                .get_image(&sub, &id)
                .await
                .map_err(|e| e.unwrap_or_else(fail)),
            Route::Like { id } => self
                .set_like(&sub, &id, true, &request)
                .await
                .map_err(|e| e.unwrap_or_else(fail)),
            Route::Unlike { id } => self
                .set_like(&sub, &id, false, &request)
                .await
                .map_err(|e| e.unwrap_or_else(fail)),
            Route::Feed => self
                .feed(&sub, &request)
                .await
                .map_err(|e| e.unwrap_or_else(fail)),
            Route::MyImages => self
                .my_images(&sub, &request)
                .await
                .map_err(|e| e.unwrap_or_else(fail)),
            Route::MyNotifications => self
                .my_notifications(&sub, &request)
                .await
                .map_err(|e| e.unwrap_or_else(fail)),
            Route::ReadNotifications => self
                .read_notifications(&sub, &request)
                .await
                .map_err(|e| e.unwrap_or_else(fail)),
        }
    }

    async fn create_upload(&self, sub: &str, request: &ApiRequest) -> Result<ApiResponse, Problem> {
        let fail = |e: StoreError| store_problem(e, &request.correlation_id);
        let asked: UploadRequest = body(&request.body)?;
        let content_type = asked.content_type.to_ascii_lowercase();
        if !ACCEPTED_TYPES.contains(&content_type.as_str()) {
            return Err(Problem::unsupported_type(format!(
                "{:?} is not accepted; send one of {}",
                asked.content_type,
                ACCEPTED_TYPES.join(", ")
            )));
        }
        if !(1..=self.max_upload_bytes).contains(&asked.content_length) {
            return Err(Problem::upload_too_large(format!(
                "content_length must be from 1 to {} bytes, not {}",
                self.max_upload_bytes, asked.content_length
            )));
        }
        let now_ms = Timestamp::now().millis();
        let hour = hour_start(now_ms);
        if !self
            .store
            .take_upload_slot(sub, hour, self.uploads_per_hour)
            .await
            .map_err(fail)?
        {
            let retry_after = ((hour + 3_600_000 - now_ms) / 1000).max(1) as u64;
            return Err(Problem::too_many_uploads(
                self.uploads_per_hour,
                retry_after,
            ));
        }
        let image_id = uuid::Uuid::new_v4().to_string();
        // The key binds the upload to its owner and id: resize accepts nothing else.
        let upload_key = format!("uploads/{sub}/{image_id}");
        let upload = self
            .store
            .upload_url(&upload_key, &content_type, asked.content_length)
            .await
            .map_err(fail)?;
        self.store
            .create_image(&NewImage {
                image_id: image_id.clone(),
                owner_id: sub.to_owned(),
                owner_name: request.username.clone(),
                content_type,
                content_length: asked.content_length,
                upload_key,
                correlation_id: request.correlation_id.clone(),
                created_at_ms: now_ms,
                expires_at_s: now_ms / 1000 + 86_400,
            })
            .await
            .map_err(fail)?;
        let mut response = ApiResponse::json(
            201,
            &UploadIssued {
                image_id: image_id.clone(),
                status: Status::Pending.as_str(),
                upload,
                expires_in_seconds: self.upload_url_ttl_seconds,
            },
        );
        response
            .headers
            .push(("location".into(), format!("/images/{image_id}")));
        Ok(response)
    }

    /// The image if `sub` may see it: published images to everyone, the others to their owner.
    async fn visible_image(
        &self,
        sub: &str,
        id: &str,
    ) -> Result<ImageRecord, Result<Problem, StoreError>> {
        let image = self.store.image(id).await.map_err(Err)?;
        match image {
            Some(image) if image.status == Status::Published || image.owner_id == sub => Ok(image),
            _ => Err(Ok(Problem::not_found(format!("no image {id}")))),
        }
    }

    async fn get_image(
        &self,
        sub: &str,
        id: &str,
    ) -> Result<ApiResponse, Result<Problem, StoreError>> {
        let image = self.visible_image(sub, id).await?;
        let (likes, liked_by_me) = if image.status == Status::Published {
            let count = self.store.like_count(id).await.map_err(Err)?;
            let mine = self.store.like_state(id, sub).await.map_err(Err)?;
            (count, mine.is_some_and(|s| s.liked))
        } else {
            (0, false)
        };
        let mut renditions = Vec::with_capacity(image.renditions.len());
        for r in &image.renditions {
            renditions.push(RenditionView {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                content_type: r.content_type.clone(),
                url: self.store.rendition_url(&r.key).await.map_err(Err)?,
            });
        }
        Ok(ApiResponse::json(
            200,
            &ImageView {
                image_id: image.image_id,
                owner_id: image.owner_id,
                status: image.status.as_str(),
                reason: image.reason,
                message: image.message,
                created_at: Timestamp::from_millis(image.created_at_ms).to_string(),
                renditions,
                likes,
                liked_by_me,
            },
        ))
    }

    async fn set_like(
        &self,
        sub: &str,
        id: &str,
        liked: bool,
        request: &ApiRequest,
    ) -> Result<ApiResponse, Result<Problem, StoreError>> {
        let image = self.visible_image(sub, id).await?;
        if image.status != Status::Published {
            return Err(Ok(Problem::not_published(format!(
                "image {id} is {}; only published images can be liked",
                image.status.as_str()
            ))));
        }
        for _ in 0..LIKE_ATTEMPTS {
            let previous = self.store.like_state(id, sub).await.map_err(Err)?;
            let Some(next) = next_like(previous, liked, Timestamp::now().millis()) else {
                let state = previous.map_or((false, 0), |s| (s.liked, s.revision));
                return Ok(ApiResponse::json(
                    200,
                    &LikeView {
                        image_id: id.to_owned(),
                        liked: state.0,
                        revision: state.1,
                    },
                ));
            };
            let envelope = Envelope {
                event_id: uuid::Uuid::new_v4(),
                occurred_at: Timestamp::from_millis(next.occurred_at_ms),
                correlation_id: request.correlation_id.clone(),
                producer: "api".into(),
                event: SocialEvent::like(id, sub, liked, Some(next.revision)),
            };
            let change = LikeChange {
                image_id: id.to_owned(),
                user_id: sub.to_owned(),
                previous,
                next,
                event_id: envelope.event_id.to_string(),
                event_json: String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
            };
            if self.store.write_like(&change).await.map_err(Err)? {
                return Ok(ApiResponse::json(
                    200,
                    &LikeView {
                        image_id: id.to_owned(),
                        liked,
                        revision: next.revision,
                    },
                ));
            }
            // Another request of this user changed the state in between: decide again on it.
        }
        Err(Ok(Problem::busy(
            "the like changed under concurrent requests; retry",
        )))
    }

    fn page(request: &ApiRequest) -> Result<(i32, Option<Cursor>), Result<Problem, StoreError>> {
        Self::page_of(request, PAGE_MAX)
    }

    fn page_of(
        request: &ApiRequest,
        max: i32,
    ) -> Result<(i32, Option<Cursor>), Result<Problem, StoreError>> {
        let limit = match request.query.get("limit") {
            None => PAGE_DEFAULT.min(max),
            Some(text) => text
                .parse::<i32>()
                .ok()
                .filter(|l| (1..=max).contains(l))
                .ok_or_else(|| {
                    Ok(Problem::invalid_query(format!(
                        "limit must be a number from 1 to {max}"
                    )))
                })?,
        };
        let cursor = match request.query.get("cursor") {
            None => None,
            Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
                Ok(Problem::invalid_query(
                    "cursor is not one this API handed out",
                ))
            })?),
        };
        Ok((limit, cursor))
    }

    /// A page of the feed: one Query of the by-publication index, one BatchGetItem for the
    /// counts and the caller's likes, and one presigned URL per thumbnail (no request).
    async fn feed(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, Result<Problem, StoreError>> {
        let (limit, cursor) = Self::page_of(request, FEED_PAGE_MAX)?;
        let refused = listing_error(cursor.is_some());
        let (images, next) = self.store.feed(limit, cursor).await.map_err(refused)?;
        let ids: Vec<String> = images.iter().map(|i| i.image_id.clone()).collect();
        let likes = self.store.likes_of(&ids, sub).await.map_err(Err)?;
        let mut items = Vec::with_capacity(images.len());
        for image in images {
            let thumbnail = match image.renditions.iter().min_by_key(|r| r.width) {
                Some(r) => Some(Thumbnail {
                    url: self.store.rendition_url(&r.key).await.map_err(Err)?,
                    width: r.width,
                    height: r.height,
                }),
                None => None,
            };
            let (count, mine) = likes.get(&image.image_id).copied().unwrap_or_default();
            items.push(FeedItem {
                owner_name: image
                    .owner_name
                    .clone()
                    .unwrap_or_else(|| image.owner_id.clone()),
                owner_id: image.owner_id,
                published_at: Timestamp::from_millis(
                    image.published_at_ms.unwrap_or(image.created_at_ms),
                )
                .to_string(),
                image_id: image.image_id,
                thumbnail,
                likes: count,
                liked_by_me: mine,
            });
        }
        Ok(ApiResponse::json(
            200,
            &Page {
                items,
                next_cursor: next.map(|c| c.encode()),
            },
        ))
    }

    async fn my_images(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, Result<Problem, StoreError>> {
        let (limit, cursor) = Self::page(request)?;
        let refused = listing_error(cursor.is_some());
        let (images, next) = self
            .store
            .my_images(sub, limit, cursor)
            .await
            .map_err(refused)?;
        let items: Vec<serde_json::Value> = images
            .into_iter()
            .map(|i| {
                serde_json::json!({
                    "image_id": i.image_id,
                    "status": i.status.as_str(),
                    "reason": i.reason,
                    "created_at": Timestamp::from_millis(i.created_at_ms).to_string(),
                })
            })
            .collect();
        Ok(ApiResponse::json(
            200,
            &Page {
                items,
                next_cursor: next.map(|c| c.encode()),
            },
        ))
    }

    async fn my_notifications(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, Result<Problem, StoreError>> {
        let (limit, cursor) = Self::page(request)?;
        let refused = listing_error(cursor.is_some());
        let (notifications, next) = self
            .store
            .inbox(sub, limit, cursor)
            .await
            .map_err(refused)?;
        let items = notifications
            .into_iter()
            .map(|n| NotificationView {
                id: n.key,
                kind: n.kind.as_str().to_owned(),
                image_id: n.image_id,
                text: n.text,
                actors: n.actors,
                likes: n.likes,
                unread: n.unread,
                created_at: n.created_at,
            })
            .collect();
        Ok(ApiResponse::json(
            200,
            &Page {
                items,
                next_cursor: next.map(|c| c.encode()),
            },
        ))
    }

    async fn read_notifications(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, Result<Problem, StoreError>> {
        let asked: ReadRequest = body(&request.body).map_err(Ok)?;
        if asked.ids.is_empty() || asked.ids.len() > PAGE_MAX as usize {
            return Err(Ok(Problem::invalid_body(format!(
                "ids must name 1 to {PAGE_MAX} notifications"
            ))));
        }
        let mut marked = 0;
        // An id no notification can have (empty, or longer than a sort key may be) marks
        // nothing, without a request DynamoDB would refuse as invalid (a 500).
        for id in asked.ids.iter().filter(|id| (1..=1024).contains(&id.len())) {
            marked += usize::from(self.store.mark_read(sub, id).await.map_err(Err)?);
        }
        Ok(ApiResponse::json(
            200,
            &serde_json::json!({ "marked": marked }),
        ))
    }
}

#[cfg(test)]
mod tests {
    //! The handlers over an in-memory store that keeps the table's conditions.
    use super::*;
    use crate::store::{Notification, Presigned};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Memory {
        images: Mutex<BTreeMap<String, ImageRecord>>,
        likes: Mutex<BTreeMap<(String, String), (LikeState, String)>>,
        slots: Mutex<BTreeMap<(String, i64), u64>>,
        /// A competing request's change, committed right before the next like write.
        race: Mutex<Option<LikeState>>,
        writes: Mutex<usize>,
    }

    impl Store for Memory {
        async fn take_upload_slot(
            &self,
            user: &str,
            hour: i64,
            limit: u64,
        ) -> Result<bool, StoreError> {
            let mut slots = self.slots.lock().unwrap();
            let used = slots.entry((user.to_owned(), hour)).or_default();
            Ok(*used < limit && {
                *used += 1;
                true
            })
        }
        async fn create_image(&self, image: &NewImage) -> Result<(), StoreError> {
            self.images.lock().unwrap().insert(
                image.image_id.clone(),
                ImageRecord {
                    image_id: image.image_id.clone(),
                    owner_id: image.owner_id.clone(),
                    owner_name: image.owner_name.clone(),
                    published_at_ms: None,
                    status: Status::Pending,
                    content_type: image.content_type.clone(),
                    created_at_ms: image.created_at_ms,
                    correlation_id: image.correlation_id.clone(),
                    reason: None,
                    message: None,
                    renditions: vec![],
                },
            );
            Ok(())
        }
        async fn image(&self, id: &str) -> Result<Option<ImageRecord>, StoreError> {
            Ok(self.images.lock().unwrap().get(id).cloned())
        }
        async fn like_state(&self, id: &str, user: &str) -> Result<Option<LikeState>, StoreError> {
            Ok(self
                .likes
                .lock()
                .unwrap()
                .get(&(id.to_owned(), user.to_owned()))
                .map(|(s, _)| *s))
        }
        async fn write_like(&self, change: &LikeChange) -> Result<bool, StoreError> {
            let key = (change.image_id.clone(), change.user_id.clone());
            let mut likes = self.likes.lock().unwrap();
            if let Some(raced) = self.race.lock().unwrap().take() {
                likes.insert(key.clone(), (raced, "{}".into()));
            }
            // The table's condition: the stored revision is still the one the change replaces.
            if likes.get(&key).map(|(s, _)| s.revision) != change.previous.map(|p| p.revision) {
                return Ok(false);
            }
            *self.writes.lock().unwrap() += 1;
            likes.insert(key, (change.next, change.event_json.clone()));
            Ok(true)
        }
        async fn my_images(
            &self,
            user: &str,
            _: i32,
            _: Option<Cursor>,
        ) -> Result<(Vec<ImageRecord>, Option<Cursor>), StoreError> {
            Ok((
                self.images
                    .lock()
                    .unwrap()
                    .values()
                    .filter(|i| i.owner_id == user)
                    .cloned()
                    .collect(),
                None,
            ))
        }
        async fn like_count(&self, id: &str) -> Result<i64, StoreError> {
            Ok(self
                .likes
                .lock()
                .unwrap()
                .iter()
                .filter(|((i, _), (s, _))| i == id && s.liked)
                .count() as i64)
        }
        async fn feed(
            &self,
            limit: i32,
            _: Option<Cursor>,
        ) -> Result<(Vec<ImageRecord>, Option<Cursor>), StoreError> {
            let mut published: Vec<ImageRecord> = self
                .images
                .lock()
                .unwrap()
                .values()
                .filter(|i| i.status == Status::Published)
                .cloned()
                .collect();
            published.sort_by_key(|i| std::cmp::Reverse(i.published_at_ms));
            published.truncate(limit as usize);
            Ok((published, None))
        }
        async fn likes_of(
            &self,
            ids: &[String],
            user: &str,
        ) -> Result<std::collections::HashMap<String, (i64, bool)>, StoreError> {
            let mut all = std::collections::HashMap::new();
            for id in ids {
                let mine = self.like_state(id, user).await?.is_some_and(|s| s.liked);
                all.insert(id.clone(), (self.like_count(id).await?, mine));
            }
            Ok(all)
        }
        async fn inbox(
            &self,
            _: &str,
            _: i32,
            _: Option<Cursor>,
        ) -> Result<(Vec<Notification>, Option<Cursor>), StoreError> {
            Ok((vec![], None))
        }
        async fn mark_read(&self, _: &str, _: &str) -> Result<bool, StoreError> {
            Ok(true)
        }
        async fn upload_url(
            &self,
            key: &str,
            content_type: &str,
            length: u64,
        ) -> Result<Presigned, StoreError> {
            Ok(Presigned {
                method: "PUT".into(),
                url: format!(
                    "https://uploads.example/{key}?X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"
                ),
                headers: BTreeMap::from([
                    ("content-type".into(), content_type.into()),
                    ("content-length".into(), length.to_string()),
                ]),
            })
        }
        async fn rendition_url(&self, key: &str) -> Result<String, StoreError> {
            Ok(format!("https://renditions.example/{key}?signed"))
        }
    }

    fn api() -> Api<Memory> {
        Api {
            store: Memory::default(),
            max_upload_bytes: 1000,
            uploads_per_hour: 2,
            upload_url_ttl_seconds: 300,
        }
    }

    fn request(method: &str, path: &str, sub: Option<&str>, body: &str) -> ApiRequest {
        ApiRequest {
            method: method.into(),
            path: path.into(),
            sub: sub.map(str::to_owned),
            correlation_id: "corr-1".into(),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn json(response: &ApiResponse) -> serde_json::Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    fn publish(api: &Api<Memory>, id: &str, owner: &str) {
        let order = api.store.images.lock().unwrap().len() as i64;
        api.store.images.lock().unwrap().insert(
            id.into(),
            ImageRecord {
                image_id: id.into(),
                owner_id: owner.into(),
                owner_name: Some(format!("{owner}-name")),
                published_at_ms: Some(order + 10),
                status: Status::Published,
                content_type: "image/jpeg".into(),
                created_at_ms: 1,
                correlation_id: "c".into(),
                reason: None,
                message: None,
                renditions: vec![snapglow::contracts::RenditionV1 {
                    name: "thumb".into(),
                    key: format!("renditions/{id}/thumb.jpg"),
                    width: 320,
                    height: 240,
                    bytes: 10,
                    content_type: "image/jpeg".into(),
                }],
            },
        );
    }

    #[tokio::test]
    async fn the_feed_lists_published_images_newest_first_with_counts_and_the_callers_likes() {
        // Prepare: two published images of alice, one pending of carol; bob likes the older
        let api = api();
        publish(&api, "older", "alice");
        publish(&api, "newer", "alice");
        api.handle(request(
            "POST",
            "/uploads",
            Some("carol"),
            r#"{"content_type":"image/png","content_length":10}"#,
        ))
        .await;
        let liked = api
            .handle(request("PUT", "/images/older/like", Some("bob"), ""))
            .await;
        assert_eq!(liked.status, 200);

        // Act
        let feed = api.handle(request("GET", "/feed", Some("bob"), "")).await;
        let too_long = api
            .handle(ApiRequest {
                query: BTreeMap::from([("limit".into(), "51".into())]),
                ..request("GET", "/feed", Some("bob"), "")
            })
            .await;

        // Assess
        assert_eq!(feed.status, 200);
        let items = json(&feed)["items"].as_array().unwrap().clone();
        let summary: Vec<(String, String, i64, bool)> = items
            .iter()
            .map(|i| {
                (
                    i["image_id"].as_str().unwrap().to_owned(),
                    i["owner_name"].as_str().unwrap().to_owned(),
                    i["likes"].as_i64().unwrap(),
                    i["liked_by_me"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("newer".into(), "alice-name".into(), 0, false),
                ("older".into(), "alice-name".into(), 1, true),
            ]
        );
        assert_eq!(
            items[0]["thumbnail"]["url"],
            "https://renditions.example/renditions/newer/thumb.jpg?signed"
        );
        assert_eq!(too_long.status, 400, "a feed page is at most 50 images");
    }

    #[tokio::test]
    async fn an_upload_is_issued_for_the_callers_own_key_and_recorded_pending() {
        // Act
        let api = api();
        let response = api
            .handle(request(
                "POST",
                "/uploads",
                Some("alice"),
                r#"{"content_type":"image/jpeg","content_length":500}"#,
            ))
            .await;

        // Assess
        assert_eq!(
            response.status,
            201,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let body = json(&response);
        let id = body["image_id"].as_str().unwrap();
        assert!(
            body["upload"]["url"]
                .as_str()
                .unwrap()
                .contains(&format!("uploads/alice/{id}"))
        );
        assert_eq!(body["upload"]["headers"]["content-length"], "500");
        let image = api.store.images.lock().unwrap()[id].clone();
        assert_eq!(
            (
                image.owner_id.as_str(),
                image.status,
                image.correlation_id.as_str()
            ),
            ("alice", Status::Pending, "corr-1")
        );
        assert!(
            response
                .headers
                .contains(&("x-correlation-id".into(), "corr-1".into()))
        );
    }

    #[tokio::test]
    async fn bad_uploads_are_refused_each_with_its_status_and_problem_type() {
        let api = api();
        for (body, status, kind) in [
            (
                r#"{"content_type":"text/html","content_length":5}"#,
                415,
                "unsupported-media-type",
            ),
            (
                r#"{"content_type":"image/png","content_length":0}"#,
                413,
                "upload-size",
            ),
            (
                r#"{"content_type":"image/png","content_length":1001}"#,
                413,
                "upload-size",
            ),
            (
                r#"{"content_type":"image/png","content_length":5,"owner":"bob"}"#,
                400,
                "invalid-body",
            ),
            (r#"{"content_type":"image/png"}"#, 400, "invalid-body"),
        ] {
            let response = api
                .handle(request("POST", "/uploads", Some("alice"), body))
                .await;
            assert_eq!(response.status, status, "{body}");
            assert_eq!(
                json(&response)["type"],
                format!("urn:snapglow:problem:{kind}"),
                "{body}"
            );
            assert_eq!(response.headers[0].1, "application/problem+json");
        }
        let unknown = api
            .handle(request(
                "POST",
                "/uploads",
                Some("alice"),
                r#"{"content_type":"image/png","content_length":5,"owner":"bob"}"#,
            ))
            .await;
        assert!(
            json(&unknown)["detail"]
                .as_str()
                .unwrap()
                .contains("unknown field `owner`")
        );
        let huge = "x".repeat(MAX_BODY_BYTES + 1);
        assert_eq!(
            api.handle(request("POST", "/uploads", Some("alice"), &huge))
                .await
                .status,
            413
        );
        assert_eq!(
            api.handle(request("POST", "/uploads", None, "{}"))
                .await
                .status,
            401
        );
    }

    #[tokio::test]
    async fn the_hourly_upload_quota_answers_429_with_retry_after() {
        let api = api();
        let ask = r#"{"content_type":"image/png","content_length":5}"#;
        assert_eq!(
            api.handle(request("POST", "/uploads", Some("alice"), ask))
                .await
                .status,
            201
        );
        assert_eq!(
            api.handle(request("POST", "/uploads", Some("alice"), ask))
                .await
                .status,
            201
        );
        let third = api
            .handle(request("POST", "/uploads", Some("alice"), ask))
            .await;
        assert_eq!(third.status, 429);
        assert!(third.headers.iter().any(|(k, _)| k == "retry-after"));
        assert_eq!(
            api.handle(request("POST", "/uploads", Some("bob"), ask))
                .await
                .status,
            201,
            "quotas are per user"
        );
    }

    #[tokio::test]
    async fn a_like_is_recorded_once_with_its_event_and_a_repeat_changes_nothing() {
        // Prepare
        let api = api();
        publish(&api, "sunset", "alice");

        // Act
        let first = api
            .handle(request("PUT", "/images/sunset/like", Some("bob"), ""))
            .await;
        let again = api
            .handle(request("PUT", "/images/sunset/like", Some("bob"), ""))
            .await;
        let undone = api
            .handle(request("DELETE", "/images/sunset/like", Some("bob"), ""))
            .await;

        // Assess: one write per change, each carrying its event with the source's revision
        assert_eq!(
            (first.status, json(&first)["revision"].as_u64()),
            (200, Some(1))
        );
        assert_eq!(json(&again)["revision"], 1);
        assert_eq!(
            (
                json(&undone)["liked"].as_bool(),
                json(&undone)["revision"].as_u64()
            ),
            (Some(false), Some(2))
        );
        assert_eq!(*api.store.writes.lock().unwrap(), 2);
        let (state, event) =
            api.store.likes.lock().unwrap()[&("sunset".to_owned(), "bob".to_owned())].clone();
        let snapglow::contracts::Decoded::Known(envelope) =
            Envelope::decode(event.as_bytes()).unwrap()
        else {
            panic!("a known event");
        };
        assert_eq!(
            envelope.event,
            SocialEvent::like("sunset", "bob", false, Some(2))
        );
        assert_eq!(
            (
                envelope.correlation_id.as_str(),
                envelope.occurred_at.millis()
            ),
            ("corr-1", state.occurred_at_ms)
        );
    }

    #[tokio::test]
    async fn a_change_racing_the_like_is_read_again_and_the_like_lands_on_top_of_it() {
        let api = api();
        publish(&api, "sunset", "alice");
        *api.store.race.lock().unwrap() = Some(LikeState {
            liked: false,
            revision: 4,
            occurred_at_ms: 9_999_999_999_999,
        });
        let response = api
            .handle(request("PUT", "/images/sunset/like", Some("bob"), ""))
            .await;
        assert_eq!(
            json(&response)["revision"],
            5,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let state = api.store.likes.lock().unwrap()[&("sunset".to_owned(), "bob".to_owned())].0;
        assert!(
            state.occurred_at_ms > 9_999_999_999_999,
            "occurred_at never goes back for one (image, user)"
        );
    }

    #[tokio::test]
    async fn what_a_user_may_not_see_is_not_found_and_pending_images_cannot_be_liked() {
        let api = api();
        let issued = api
            .handle(request(
                "POST",
                "/uploads",
                Some("alice"),
                r#"{"content_type":"image/png","content_length":5}"#,
            ))
            .await;
        let id = json(&issued)["image_id"].as_str().unwrap().to_owned();
        assert_eq!(
            api.handle(request("GET", &format!("/images/{id}"), Some("bob"), ""))
                .await
                .status,
            404
        );
        assert_eq!(
            api.handle(request(
                "PUT",
                &format!("/images/{id}/like"),
                Some("bob"),
                ""
            ))
            .await
            .status,
            404
        );
        assert_eq!(
            api.handle(request(
                "PUT",
                &format!("/images/{id}/like"),
                Some("alice"),
                ""
            ))
            .await
            .status,
            409
        );
        let own = api
            .handle(request("GET", &format!("/images/{id}"), Some("alice"), ""))
            .await;
        assert_eq!(
            (own.status, json(&own)["status"].as_str()),
            (200, Some("pending"))
        );
        assert_eq!(
            api.handle(request("GET", "/images/nope", Some("alice"), ""))
                .await
                .status,
            404
        );
    }

    #[tokio::test]
    async fn a_published_image_shows_loadable_renditions_its_count_and_my_like() {
        let api = api();
        publish(&api, "sunset", "alice");
        api.handle(request("PUT", "/images/sunset/like", Some("bob"), ""))
            .await;
        let seen = json(
            &api.handle(request("GET", "/images/sunset", Some("bob"), ""))
                .await,
        );
        assert_eq!(
            (seen["likes"].as_i64(), seen["liked_by_me"].as_bool()),
            (Some(1), Some(true))
        );
        assert!(
            seen["renditions"][0]["url"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        let theirs = json(
            &api.handle(request("GET", "/images/sunset", Some("carol"), ""))
                .await,
        );
        assert_eq!(theirs["liked_by_me"], false);
    }

    #[test]
    fn a_correlation_id_is_kept_only_when_it_is_safe_to_log_and_propagate() {
        assert_eq!(
            correlation_id(Some("web-123.a:b_c"), "req"),
            "web-123.a:b_c"
        );
        assert_eq!(correlation_id(Some("has space"), "req"), "req");
        assert_eq!(correlation_id(Some(&"x".repeat(129)), "req"), "req");
        assert_eq!(correlation_id(None, "req"), "req");
    }
}

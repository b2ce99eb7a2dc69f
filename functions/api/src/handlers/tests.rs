//! The handlers over the in-memory store, which keeps the table's conditions.

use super::*;
use crate::http::{MAX_BODY_BYTES, correlation_id};
use crate::store::memory::MemoryStore;
use crate::store::{ImageRecord, LikeState, Status};
use snapglow::contracts::{Envelope, SocialEvent};
use std::collections::BTreeMap;

pub(super) fn api() -> Api<MemoryStore> {
    Api {
        store: MemoryStore::default(),
        limits: Limits {
            requests_per_minute: 50,
            max_upload_bytes: 1000,
            uploads_per_hour: 2,
            upload_bytes_per_day: 1500,
        },
        upload_url_ttl_seconds: 300,
        live_url: Some("wss://live.example/prod".into()),
    }
}

pub(super) fn request(method: &str, path: &str, sub: Option<&str>, body: &str) -> ApiRequest {
    ApiRequest {
        method: method.into(),
        path: path.into(),
        sub: sub.map(str::to_owned),
        correlation_id: "corr-1".into(),
        body: body.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A small PNG upload asked for by `user`: the answer.
async fn ask_upload(api: &Api<MemoryStore>, user: &str) -> ApiResponse {
    let body = r#"{"content_type":"image/png","content_length":10}"#;
    api.handle(request("POST", "/uploads", Some(user), body))
        .await
}

pub(super) fn json(response: &ApiResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap()
}

/// Dates `user`'s erasure mark long ago, as if it had settled.
fn settle_erasure(api: &Api<MemoryStore>, user: &str) {
    api.store.erased_at.lock().unwrap().insert(user.into(), 0);
}

pub(super) fn publish(api: &Api<MemoryStore>, id: &str, owner: &str) {
    let order = api.store.images.lock().unwrap().len() as i64;
    api.store.images.lock().unwrap().insert(
        id.into(),
        ImageRecord {
            image_id: id.into(),
            owner_id: owner.into(),
            published_at_ms: Some(order + 10),
            status: Status::Published,
            content_type: "image/jpeg".into(),
            upload_key: format!("uploads/{owner}/{id}"),
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
            details: crate::store::PhotoDetails {
                placeholder: Some(format!("LKO2?U%2Tw=w]~RBVZRi}}{id}")),
                taken_at: Some("2025-08-14T19:45:03+02:00".into()),
                camera_make: Some("NIKON CORPORATION".into()),
                camera_model: Some("NIKON D850".into()),
                lens: None,
            },
        },
    );
}

#[tokio::test]
async fn the_feed_lists_published_images_newest_first_with_counts_and_the_callers_likes() {
    // Prepare: two published images of alice (who named herself), one pending of carol; bob
    // likes the older
    let api = api();
    let named = r#"{"display_name":"Alice Moreau"}"#;
    let named = (api.handle(request("PUT", "/me/profile", Some("alice"), named))).await;
    assert_eq!(named.status, 200);
    publish(&api, "older", "alice");
    publish(&api, "newer", "alice");
    ask_upload(&api, "carol").await;
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
            ("newer".into(), "Alice Moreau".into(), 0, false),
            ("older".into(), "Alice Moreau".into(), 1, true),
        ]
    );
    assert_eq!(
        items[0]["thumbnail"]["url"],
        "https://renditions.example/renditions/newer/thumb.jpg?signed"
    );
    assert_eq!(too_long.status, 400, "a feed page is at most 50 images");
    // ... and the photo's own page names its owner as the feed does
    let page = api
        .handle(request("GET", "/images/older", Some("bob"), ""))
        .await;
    assert_eq!(json(&page)["owner_name"], "Alice Moreau");
    // ... with what the upload said of itself, and the placeholder the feed paints first
    assert_eq!(json(&page)["taken_at"], "2025-08-14T19:45:03+02:00");
    assert_eq!(json(&page)["camera"], "NIKON D850");
    assert_eq!(json(&page).get("lens"), None);
    assert_eq!(items[1]["placeholder"], json(&page)["placeholder"]);
    assert!(
        items[1]["placeholder"]
            .as_str()
            .unwrap()
            .starts_with("LKO2")
    );
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
    let snapglow::contracts::Decoded::Known(envelope) = Envelope::decode(event.as_bytes()).unwrap()
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

#[tokio::test]
async fn marking_read_takes_a_bounded_set_of_well_formed_ids_and_counts_each_once() {
    // Prepare: two unread notifications of alice
    let api = api();
    let sk = |n: i64| format!("N#{n:013}#published-img{n}");
    let notification = |n: i64| notifier::inbox::Notification {
        id: format!("published-img{n}"),
        key: sk(n),
        kind: notifier::inbox::Kind::Published,
        image_id: format!("img{n}"),
        actors: Vec::new(),
        likes: None,
        text: "Your photo is live".into(),
        unread: true,
        created_at: "2026-12-07T18:00:00Z".into(),
        updated_at: "2026-12-07T18:00:00Z".into(),
    };
    (api.store.inboxes.lock().unwrap())
        .insert("alice".into(), vec![notification(1), notification(2)]);
    let read = |ids: Vec<String>| {
        let body = serde_json::json!({ "ids": ids }).to_string();
        request("POST", "/me/notifications/read", Some("alice"), &body)
    };

    // Act: too many ids, a made-up id, then the first notification named twice
    let too_many = api
        .handle(read((1..=1000).map(|n| n.to_string()).collect()))
        .await;
    let made_up = api.handle(read(vec![sk(1), "x".repeat(2000)])).await;
    let twice = api.handle(read(vec![sk(1), sk(1), sk(9)])).await;

    // Assess: refused whole, each with what to fix, and nothing marked; then one marked once
    for refused in [&too_many, &made_up] {
        assert_eq!(refused.status, 400);
        assert_eq!(json(refused)["type"], "urn:snapglow:problem:invalid-body");
    }
    assert!(
        json(&too_many)["detail"]
            .as_str()
            .unwrap()
            .contains("1 to 25")
    );
    assert_eq!(
        (twice.status, json(&twice)["marked"].clone()),
        (200, 1.into())
    );
    let unread: Vec<bool> = api.store.inboxes.lock().unwrap()["alice"]
        .iter()
        .map(|n| n.unread)
        .collect();
    assert_eq!(unread, [false, true]);
}

#[tokio::test]
async fn only_an_access_token_is_a_grant() {
    // Prepare: the same caller with an ID token, an access token, and a token of an issuer
    // that names no use
    let api = api();
    let with_use = |token_use: Option<&str>| ApiRequest {
        token_use: token_use.map(str::to_owned),
        ..request("GET", "/me/images", Some("alice"), "")
    };

    // Act
    let id = api.handle(with_use(Some("id"))).await;
    let access = api.handle(with_use(Some("access"))).await;
    let unnamed = api.handle(with_use(None)).await;

    // Assess
    assert_eq!(id.status, 401);
    assert!(
        json(&id)["detail"]
            .as_str()
            .unwrap()
            .contains("access token")
    );
    assert_eq!((access.status, unnamed.status), (200, 200));
}

#[tokio::test]
async fn the_daily_upload_bytes_are_a_quota_beside_the_hourly_count() {
    // Prepare: 1,500 bytes a day; alice is issued 1,000 of them
    let api = api();
    let ask = |length: u64| {
        let body = format!(r#"{{"content_type":"image/png","content_length":{length}}}"#);
        request("POST", "/uploads", Some("alice"), &body)
    };
    assert_eq!(api.handle(ask(1000)).await.status, 201);

    // Act: 600 more would pass the day's bytes; 500 fit exactly
    let over = api.handle(ask(600)).await;
    let fits = api.handle(ask(500)).await;

    // Assess: refused with its own problem type and the seconds to midnight (UTC); the one
    // that fit took the hour's second slot; nothing was counted for the refused one
    assert_eq!(over.status, 429);
    let problem = json(&over);
    assert_eq!(
        problem["type"],
        "urn:snapglow:problem:too-many-upload-bytes"
    );
    let retry_after = problem["retry_after"].as_u64().unwrap();
    assert!((1..=86_400).contains(&retry_after), "{problem}");
    assert_eq!(fits.status, 201);
    assert_eq!(
        api.store.day_bytes.lock().unwrap().values().sum::<u64>(),
        1500
    );
}

#[tokio::test]
async fn a_flood_from_one_user_is_refused_while_another_user_goes_on() {
    // Prepare: 50 requests a minute per user
    let api = api();
    let feed = |user: &str| request("GET", "/feed", Some(user), "");

    // Act: alice asks until she is refused (at most two minutes' worth, should the minute
    // turn in between); then bob asks once
    let mut refused = None;
    for _ in 0..=100 {
        let answer = api.handle(feed("alice")).await;
        if answer.status != 200 {
            refused = Some(answer);
            break;
        }
    }
    let bobs = api.handle(feed("bob")).await;

    // Assess: 429 with Retry-After within the minute, and bob unaffected
    let refused = refused.expect("a flood is refused");
    assert_eq!(refused.status, 429);
    assert_eq!(
        json(&refused)["type"],
        "urn:snapglow:problem:too-many-requests"
    );
    let seconds: u64 = (refused.headers.iter())
        .find(|(k, _)| k == "retry-after")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    assert!((1..=60).contains(&seconds));
    assert_eq!(bobs.status, 200);
}

#[tokio::test]
async fn an_owner_deletes_a_photo_once_and_it_is_gone_for_everyone() {
    // Prepare: alice's published photo, liked by bob; carol's upload still pending
    let api = api();
    publish(&api, "sunset", "alice");
    let liked = api
        .handle(request("PUT", "/images/sunset/like", Some("bob"), ""))
        .await;
    assert_eq!(liked.status, 200);
    let issued = ask_upload(&api, "carol").await;
    let pending = json(&issued)["image_id"].as_str().unwrap().to_owned();

    // Act
    let by_bob = api
        .handle(request("DELETE", "/images/sunset", Some("bob"), ""))
        .await;
    let by_alice = api
        .handle(request("DELETE", "/images/sunset", Some("alice"), ""))
        .await;
    let again = api
        .handle(request("DELETE", "/images/sunset", Some("alice"), ""))
        .await;
    let too_early = api
        .handle(request(
            "DELETE",
            &format!("/images/{pending}"),
            Some("carol"),
            "",
        ))
        .await;

    // Assess: only the owner deletes, once; a repeat is 204 with no second event
    assert_eq!(
        by_bob.status, 404,
        "another user's photo is not theirs to delete"
    );
    assert_eq!((by_alice.status, again.status), (204, 204));
    assert!(by_alice.body.is_empty());
    assert_eq!(*api.store.deleted_events.lock().unwrap(), 1);
    // ... a pending upload is refused until resize finishes it
    assert_eq!(too_early.status, 409);
    assert_eq!(
        json(&too_early)["type"],
        "urn:snapglow:problem:still-pending"
    );
    // ... and the photo is gone: from its page, its likes, the feed and the owner's listing
    for (method, path, who) in [
        ("GET", "/images/sunset", "bob"),
        ("GET", "/images/sunset", "alice"),
        ("PUT", "/images/sunset/like", "bob"),
        ("DELETE", "/images/sunset/like", "bob"),
    ] {
        let answer = api.handle(request(method, path, Some(who), "")).await;
        assert_eq!(answer.status, 404, "{method} {path} by {who}");
    }
    let feed = api.handle(request("GET", "/feed", Some("bob"), "")).await;
    assert_eq!(json(&feed)["items"], serde_json::json!([]));
    let mine = api
        .handle(request("GET", "/me/images", Some("alice"), ""))
        .await;
    assert_eq!(json(&mine)["items"], serde_json::json!([]));
}

#[test]
fn a_deletion_is_decided_on_the_owner_and_the_status() {
    use super::deletion::{Verdict, verdict};
    let api = api();
    publish(&api, "i", "alice");
    let mut image = api.store.images.lock().unwrap()["i"].clone();
    assert_eq!(verdict(None, "alice"), Verdict::Unknown);
    assert_eq!(verdict(Some(&image), "bob"), Verdict::Unknown);
    assert_eq!(
        verdict(Some(&image), "alice"),
        Verdict::Delete(Status::Published)
    );
    image.status = Status::Rejected;
    assert_eq!(
        verdict(Some(&image), "alice"),
        Verdict::Delete(Status::Rejected)
    );
    image.status = Status::Pending;
    assert_eq!(verdict(Some(&image), "alice"), Verdict::StillPending);
    image.status = Status::Deleted;
    assert_eq!(verdict(Some(&image), "alice"), Verdict::AlreadyDeleted);
}

#[tokio::test]
async fn an_erased_account_takes_back_every_photo_and_like_even_when_cut_short_halfway() {
    // Prepare: alice's published photo and her pending upload; she likes three of bob's
    // photos and took back a like of a fourth; bob likes her photo
    let api = api();
    publish(&api, "alices", "alice");
    let issued = ask_upload(&api, "alice").await;
    let pending = json(&issued)["image_id"].as_str().unwrap().to_owned();
    for photo in ["b1", "b2", "b3", "b4"] {
        publish(&api, photo, "bob");
        let liked = api
            .handle(request(
                "PUT",
                &format!("/images/{photo}/like"),
                Some("alice"),
                "",
            ))
            .await;
        assert_eq!(liked.status, 200);
    }
    api.handle(request("DELETE", "/images/b4/like", Some("alice"), ""))
        .await;
    api.handle(request("PUT", "/images/alices/like", Some("bob"), ""))
        .await;
    let writes_before = *api.store.writes.lock().unwrap();
    // ... and the table fails after two of her likes are taken back
    *api.store.retire_fails_after.lock().unwrap() = Some(2);

    // Act: she deletes her account; the call fails halfway; she calls again at once, then
    // once the erasure has settled (its mark made long enough ago), then once more
    let erase = || request("DELETE", "/me", Some("alice"), "");
    let cut_short = api.handle(erase()).await;
    *api.store.retire_fails_after.lock().unwrap() = None;
    let unsettled = api.handle(erase()).await;
    let expiring_early = api.store.mark_expires.lock().unwrap().clone();
    settle_erasure(&api, "alice");
    let finished = api.handle(erase()).await;
    let again = api.handle(erase()).await;
    let upload_after = ask_upload(&api, "alice").await;

    // Assess: the first call was cut short (503: call again); the second did the rest but
    // waits out the settling time (202, Retry-After), with the mark kept for good meanwhile;
    // the third finished it and a fourth finds nothing left; her writes are refused
    assert_eq!(
        (
            cut_short.status,
            unsettled.status,
            finished.status,
            again.status
        ),
        (503, 202, 204, 204)
    );
    assert!(
        unsettled
            .headers
            .iter()
            .any(|(name, value)| name == "retry-after" && value.parse::<u64>().unwrap() >= 1)
    );
    assert!(expiring_early.is_empty(), "{expiring_early:?}");
    assert!(api.store.mark_expires.lock().unwrap().contains_key("alice"));
    assert_eq!(upload_after.status, 403);
    assert_eq!(
        json(&upload_after)["type"],
        "urn:snapglow:problem:account-erased"
    );
    // ... both her photos are tombstones, each taken back once
    let images = api.store.images.lock().unwrap().clone();
    for id in ["alices", pending.as_str()] {
        assert_eq!(images[id].status, Status::Deleted, "{id}");
    }
    assert_eq!(*api.store.deleted_events.lock().unwrap(), 2);
    // ... her three standing likes were taken back (one event each), the fourth was already
    // undone and only retired; bob's like of her photo is not hers to retire
    let likes = api.store.likes.lock().unwrap().clone();
    for photo in ["b1", "b2", "b3", "b4"] {
        assert!(
            !likes[&(photo.to_owned(), "alice".to_owned())].0.liked,
            "{photo}"
        );
    }
    assert_eq!(*api.store.writes.lock().unwrap() - writes_before, 3);
    let retired = api.store.retired.lock().unwrap().clone();
    assert_eq!(retired.len(), 4);
    assert!(likes[&("alices".to_owned(), "bob".to_owned())].0.liked);
    // ... and her user is deleted from the pool, once
    assert_eq!(*api.store.pool_deleted.lock().unwrap(), ["alice"]);
}

#[tokio::test]
async fn a_like_landing_just_after_its_photo_was_deleted_is_retired_and_answered_404() {
    // Prepare: alice's photo, which she deletes while bob's like is on its way
    let api = api();
    publish(&api, "sunset", "alice");
    *api.store.deleted_before_like.lock().unwrap() = Some("sunset".into());

    // Act
    let liked = api
        .handle(request("PUT", "/images/sunset/like", Some("bob"), ""))
        .await;

    // Assess: answered as for a photo gone; the like item written is retired (out of bob's
    // likes, removed by TTL), so it outlives neither the photo nor the eraser
    assert_eq!(liked.status, 404);
    let retired = api.store.retired.lock().unwrap().clone();
    assert!(retired.contains(&("sunset".to_owned(), "bob".to_owned())));
}

#[tokio::test]
async fn an_erasure_takes_back_a_like_the_listing_shows_stale_over_its_current_state() {
    // Prepare: bob's photo, liked by alice twice over (liked, undone, liked again); the
    // listing of her likes still shows the state before the last change
    let api = api();
    publish(&api, "dunes", "bob");
    for method in ["PUT", "DELETE", "PUT"] {
        let answer = api
            .handle(request(method, "/images/dunes/like", Some("alice"), ""))
            .await;
        assert_eq!(answer.status, 200);
    }
    *api.store.stale_given.lock().unwrap() = true;
    settle_erasure(&api, "alice");

    // Act
    let erased = api
        .handle(request("DELETE", "/me", Some("alice"), ""))
        .await;

    // Assess: the write over the stale revision failed its condition; the erasure read the
    // like again and took it back over its current state: revision 4, unliked, retired
    assert_eq!(erased.status, 204);
    let likes = api.store.likes.lock().unwrap().clone();
    let state = likes[&("dunes".to_owned(), "alice".to_owned())].0;
    assert_eq!((state.liked, state.revision), (false, 4));
    assert!(
        api.store
            .retired
            .lock()
            .unwrap()
            .contains(&("dunes".to_owned(), "alice".to_owned()))
    );
}

#[tokio::test]
async fn an_erasure_pages_through_more_likes_than_one_listing_holds() {
    // Prepare: alice likes 30 of bob's photos (a listing holds 25); her erasure has settled
    let api = api();
    for i in 0..30 {
        let photo = format!("p{i:02}");
        publish(&api, &photo, "bob");
        let liked = api
            .handle(request(
                "PUT",
                &format!("/images/{photo}/like"),
                Some("alice"),
                "",
            ))
            .await;
        assert_eq!(liked.status, 200);
    }
    settle_erasure(&api, "alice");

    // Act
    let erased = api
        .handle(request("DELETE", "/me", Some("alice"), ""))
        .await;

    // Assess: every one taken back and retired, in one call
    assert_eq!(erased.status, 204);
    let likes = api.store.likes.lock().unwrap().clone();
    assert!(likes.values().all(|(state, _)| !state.liked));
    assert_eq!(api.store.retired.lock().unwrap().len(), 30);
}

#[tokio::test]
async fn a_notification_shows_its_photo_while_published_and_the_time_of_its_latest_like() {
    // Prepare: alice's published photo and her deleted one, each with a likes notification
    // whose window opened at 18:00 and whose latest like came at 18:09
    let api = api();
    publish(&api, "live", "alice");
    publish(&api, "gone", "alice");
    api.store
        .images
        .lock()
        .unwrap()
        .get_mut("gone")
        .unwrap()
        .status = Status::Deleted;
    let notification = |image: &str| notifier::inbox::Notification {
        id: format!("likes-{image}-0"),
        key: format!("N#0000000000000#likes-{image}-0"),
        kind: notifier::inbox::Kind::Likes,
        image_id: image.into(),
        actors: vec!["bob".into()],
        likes: Some(1),
        text: "bob liked your photo".into(),
        unread: true,
        created_at: "2026-12-07T18:00:00.000Z".into(),
        updated_at: "2026-12-07T18:09:00.000Z".into(),
    };
    (api.store.inboxes.lock().unwrap()).insert(
        "alice".into(),
        vec![notification("live"), notification("gone")],
    );

    // Act
    let inbox = api
        .handle(request("GET", "/me/notifications", Some("alice"), ""))
        .await;

    // Assess: the live photo's thumbnail, none for the other; the latest like's time
    let items = json(&inbox)["items"].as_array().unwrap().clone();
    assert_eq!(
        items[0]["thumbnail"]["url"],
        "https://renditions.example/renditions/live/thumb.jpg?signed"
    );
    assert!(items[1].get("thumbnail").is_none(), "{}", items[1]);
    assert_eq!(items[0]["updated_at"], "2026-12-07T18:09:00.000Z");
}

//! People on pages: display names (a profile each, seeded from sign-up), resolved by id
//! whenever a page names someone; never a sign-in username.

use super::tests::{api, json, publish, request};
use crate::http::ApiRequest;

fn named(user: &str, name: &str) -> ApiRequest {
    let body = serde_json::json!({ "display_name": name }).to_string();
    request("PUT", "/me/profile", Some(user), &body)
}

#[tokio::test]
async fn a_first_profile_read_takes_the_name_given_at_sign_up_and_never_overwrites_a_chosen_one() {
    // Prepare: bob signed up as "bob" giving the name "Bob Okafor"; carol gave none
    let api = api();
    (api.store.signup_names.lock().unwrap()).insert("bob".into(), "  Bob   Okafor ".into());
    let signed_in = |sub: &str, username: &str| ApiRequest {
        username: Some(username.into()),
        ..request("GET", "/me/profile", Some(sub), "")
    };

    // Act
    let bob = api.handle(signed_in("sub-bob", "bob")).await;
    let carol = api.handle(signed_in("sub-carol", "carol")).await;
    let renamed = api.handle(named("sub-bob", "Bobby O.")).await;
    (api.store.signup_names.lock().unwrap()).insert("bob".into(), "Robert".into());
    let again = api.handle(signed_in("sub-bob", "bob")).await;

    // Assess: bob's sign-up name, tidied, stored once; carol unnamed until she chooses; a
    // chosen name stands over the pool's
    assert_eq!(bob.status, 200);
    assert_eq!(json(&bob)["display_name"], "Bob Okafor");
    assert_eq!(json(&bob)["user_id"], "sub-bob");
    assert_eq!(json(&carol)["display_name"], serde_json::Value::Null);
    assert_eq!(json(&renamed)["display_name"], "Bobby O.");
    assert_eq!(json(&again)["display_name"], "Bobby O.");
}

#[tokio::test]
async fn a_name_is_validated_and_an_erased_account_cannot_take_one() {
    // Prepare
    let api = api();

    // Act
    let blank = api.handle(named("alice", "   ")).await;
    let long = api.handle(named("alice", &"x".repeat(51))).await;
    let hidden = api.handle(named("alice", "Alice\u{202E}ecilA")).await;
    let extra = api
        .handle(request(
            "PUT",
            "/me/profile",
            Some("alice"),
            r#"{"display_name":"Alice","admin":true}"#,
        ))
        .await;
    api.store.erased.lock().unwrap().insert("dave".into());
    (api.store.signup_names.lock().unwrap()).insert("dave".into(), "Dave".into());
    let erased_put = api.handle(named("dave", "Dave")).await;
    let erased_get = api
        .handle(request("GET", "/me/profile", Some("dave"), ""))
        .await;

    // Assess: each refusal says what to fix; nothing stored
    for (refused, says) in [
        (&blank, "1 to 50"),
        (&long, "not 51"),
        (&hidden, "U+202E"),
        (&extra, "admin"),
    ] {
        assert_eq!(refused.status, 400);
        let detail = json(refused)["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(says), "{detail}");
    }
    assert_eq!(erased_put.status, 403);
    assert_eq!(json(&erased_get)["display_name"], serde_json::Value::Null);
    assert!(api.store.profiles.lock().unwrap().is_empty());
}

#[tokio::test]
async fn pages_name_people_by_display_name_resolved_at_read_so_a_rename_shows_at_once() {
    // Prepare: carol's photo, liked by bob (named) and dee (no profile)
    let api = api();
    publish(&api, "p1", "carol");
    assert_eq!(api.handle(named("bob", "Bob Okafor")).await.status, 200);
    for liker in ["bob", "dee"] {
        let liked = api
            .handle(request("PUT", "/images/p1/like", Some(liker), ""))
            .await;
        assert_eq!(liked.status, 200);
    }
    let notification = notifier::inbox::Notification {
        id: "likes-p1-1".into(),
        key: "N#0000000000001#likes-p1-1".into(),
        kind: notifier::inbox::Kind::Likes,
        image_id: "p1".into(),
        actors: vec!["bob".into(), "dee".into()],
        likes: Some(3),
        text: "bob and 2 others liked your photo".into(),
        unread: true,
        created_at: "2026-12-07T18:00:00Z".into(),
        updated_at: "2026-12-07T18:00:05Z".into(),
    };
    (api.store.inboxes.lock().unwrap()).insert("carol".into(), vec![notification]);
    let likers = || request("GET", "/images/p1/likes", Some("alice"), "");
    let inbox = || request("GET", "/me/notifications", Some("carol"), "");

    // Act: read, then carol names herself and bob renames, then read again
    let likers_before = api.handle(likers()).await;
    let inbox_before = api.handle(inbox()).await;
    let feed_before = api.handle(request("GET", "/feed", Some("bob"), "")).await;
    let reads = *api.store.name_reads.lock().unwrap();
    assert_eq!(api.handle(named("carol", "Carol Nguyen")).await.status, 200);
    assert_eq!(api.handle(named("bob", "B. Okafor")).await.status, 200);
    let likers_after = api.handle(likers()).await;
    let inbox_after = api.handle(inbox()).await;
    let feed_after = api.handle(request("GET", "/feed", Some("bob"), "")).await;
    let unseen = api
        .handle(request("GET", "/images/nope/likes", Some("alice"), ""))
        .await;

    // Assess: names, never ids, in the text; one name read per page; renames at once
    let names = |page: &crate::http::ApiResponse| -> Vec<String> {
        (json(page)["items"].as_array().unwrap().iter())
            .map(|l| l["display_name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&likers_before), ["Bob Okafor", "Someone"]);
    assert_eq!(names(&likers_after), ["B. Okafor", "Someone"]);
    let first = |page: &crate::http::ApiResponse| json(page)["items"][0].clone();
    assert_eq!(
        first(&inbox_before)["text"],
        "Bob Okafor and 2 others liked your photo"
    );
    assert_eq!(
        first(&inbox_before)["actor_names"],
        serde_json::json!(["Bob Okafor", "Someone"])
    );
    assert_eq!(
        first(&inbox_before)["actors"],
        serde_json::json!(["bob", "dee"])
    );
    assert_eq!(
        first(&inbox_after)["text"],
        "B. Okafor and 2 others liked your photo"
    );
    assert_eq!(first(&feed_before)["owner_name"], "Someone");
    assert_eq!(first(&feed_after)["owner_name"], "Carol Nguyen");
    assert_eq!(reads, 3, "one name read per page");
    assert_eq!(unseen.status, 404);
}

//! The front door through HTTP only, as an app uses it: sign-in with the user pool, an upload
//! to the presigned URL the API issued, the pipeline (resize, the relay, the consumers), likes
//! with client retries, and what the owner then reads; and what must be refused, with the
//! status and problem type API Gateway and the API answer.

use serde_json::{Value, json};
use snapglow_local::lambda::http::call;
use snapglow_local::scenarios::client::{ApiClient, sub_of};
use snapglow_local::stack::presigned::PresignedGate;
use snapglow_local::triggers::http::HttpApiServer;
use snapglow_local::triggers::pipeline::run_until_idle;
use snapglow_local::triggers::{Mapping, mappings};
use snapglow_tests::{TestStack, sample_jpeg};
use std::time::Duration;

struct Stage {
    test: TestStack,
    server: HttpApiServer,
    _gate: PresignedGate,
    pipeline: Vec<Mapping>,
}

async fn stage(purpose: &str) -> Stage {
    let test = TestStack::start().await;
    let logs = test.state_dir(purpose);
    let gate = PresignedGate::for_stack(&test.stack).await.unwrap();
    let server = HttpApiServer::start(&test.stack, &test.binaries(), &logs, 0, &gate.url)
        .await
        .unwrap();
    let pipeline = mappings(&test.stack, &test.binaries(), &logs, &Default::default())
        .await
        .unwrap();
    Stage {
        test,
        server,
        _gate: gate,
        pipeline,
    }
}

impl Stage {
    fn api(&self) -> ApiClient {
        ApiClient::new(&self.server.url, &self.test.clients, &self.test.stack)
    }

    async fn drain(&mut self) {
        run_until_idle(&mut self.pipeline, Duration::from_secs(120))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_photo_goes_from_upload_to_likes_and_notifications_through_the_api_only() {
    // Prepare
    let mut stage = stage("front-door-story").await;
    let mut api = stage.api();

    // Act: alice uploads a photo through the URL the API issued her
    let image = api
        .upload("alice", sample_jpeg(800, 600), "image/jpeg")
        .await
        .unwrap();
    let path = format!("/images/{image}");
    let pending = api.request("alice", "GET", &path, None).await.unwrap();
    let hidden = api.request("bob", "GET", &path, None).await.unwrap();
    let early_like = api.like("bob", &image, true).await.unwrap();
    stage.test.wait_for_messages("ImageUploadsQueue", 2).await; // the s3:TestEvent and the upload
    stage.drain().await;

    // Assess: pending for its owner only, then published with renditions a browser can load
    assert_eq!(
        (pending.status, pending.body["status"].as_str()),
        (200, Some("pending"))
    );
    assert_eq!((hidden.status, early_like.status), (404, 404));
    let view = api.request("alice", "GET", &path, None).await.unwrap();
    assert_eq!(view.body["status"], "published", "{}", view.body);
    let renditions = view.body["renditions"].as_array().unwrap();
    assert_eq!(renditions.len(), 3);
    let (status, headers, bytes) = call(
        "GET",
        renditions[2]["url"].as_str().unwrap(),
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, headers["content-type"].to_str().unwrap()),
        (200, "image/jpeg")
    );
    let thumb = image::load_from_memory(&bytes).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 240));

    // Act: bob likes (and his client sends it again), carol likes, dan likes then takes it
    // back, erin takes back a like she never gave
    for (user, liked) in [
        ("bob", true),
        ("bob", true),
        ("carol", true),
        ("dan", true),
        ("dan", false),
        ("erin", false),
    ] {
        let answer = api.like(user, &image, liked).await.unwrap();
        assert_eq!(answer.status, 200, "{user}: {}", answer.body);
    }
    stage.drain().await;

    // Assess: the count converged, each user sees their own like state
    let seen_by_bob = api.request("bob", "GET", &path, None).await.unwrap();
    let seen_by_dan = api.request("dan", "GET", &path, None).await.unwrap();
    assert_eq!(
        (
            seen_by_bob.body["likes"].as_i64(),
            seen_by_bob.body["liked_by_me"].as_bool()
        ),
        (Some(2), Some(true))
    );
    assert_eq!(seen_by_dan.body["liked_by_me"], false);
    // ... the stream got each change once, in revision order per user: the retry and erin's
    // unlike emitted nothing
    let likes: Vec<(String, String, u64)> = stage
        .test
        .stream_events()
        .await
        .into_iter()
        .filter(|e| e["type"] == "ImageLiked" || e["type"] == "ImageLikeUndone")
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["data"]["user_id"].as_str().unwrap().to_owned(),
                e["data"]["revision"].as_u64().unwrap(),
            )
        })
        .collect();
    let dan = api.user_id("dan").await.unwrap();
    assert_eq!(likes.len(), 4, "{likes:?}");
    assert!(likes.contains(&("ImageLikeUndone".into(), dan.clone(), 2)));
    assert!(likes.contains(&("ImageLiked".into(), dan, 1)));
    // ... and alice hears of it: her photo is live, bob and carol like it
    let inbox = api
        .request("alice", "GET", "/me/notifications", None)
        .await
        .unwrap();
    let items = inbox.body["items"].as_array().unwrap().clone();
    let likes_note = items
        .iter()
        .find(|n| n["kind"] == "likes")
        .expect("a likes notification");
    let mut actors: Vec<String> = likes_note["actors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    actors.sort();
    let mut expected = vec![
        api.user_id("bob").await.unwrap(),
        api.user_id("carol").await.unwrap(),
    ];
    expected.sort();
    assert_eq!(actors, expected);
    assert_eq!(likes_note["likes"], 2, "the count of likes it stands for");
    assert!(items.iter().any(|n| n["kind"] == "published"));
    // ... each showing the photo (a thumbnail a browser can load), the likes at the time of
    // the latest like rather than the window's start
    for note in &items {
        let url = note["thumbnail"]["url"].as_str().expect("a thumbnail");
        let (status, _, _) = call("GET", url, &[], Vec::new()).await.unwrap();
        assert_eq!(status, 200, "{note}");
        assert_eq!(note["image_id"], image.as_str());
    }
    let at = |value: &Value| {
        serde_json::from_value::<snapglow::contracts::Timestamp>(value.clone())
            .unwrap()
            .millis()
    };
    // (the latest like it holds: dan's like, taken back, is not one of them)
    let latest_like = (stage.test.stream_events().await.iter())
        .filter(|e| e["type"] == "ImageLiked")
        .filter(|e| actors.iter().any(|a| e["data"]["user_id"] == a.as_str()))
        .map(|e| at(&e["occurred_at"]))
        .max()
        .unwrap();
    assert_eq!(at(&likes_note["updated_at"]), latest_like, "{likes_note}");
    assert!(at(&likes_note["created_at"]) <= latest_like);
    // ... which she marks read
    let read = api
        .request(
            "alice",
            "POST",
            "/me/notifications/read",
            Some(json!({ "ids": [likes_note["id"]] })),
        )
        .await
        .unwrap();
    assert_eq!(read.body["marked"], 1);
    let again = api
        .request("alice", "GET", "/me/notifications", None)
        .await
        .unwrap();
    let note = again.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "likes")
        .cloned()
        .unwrap();
    assert_eq!(note["unread"], false);
    let mine = api
        .request("alice", "GET", "/me/images", None)
        .await
        .unwrap();
    assert_eq!(mine.body["items"][0]["image_id"], image.as_str());
}

/// A token for the pool's keys but signed by moto's private key with an `exp` in the past:
/// what a stolen, expired token looks like.
fn expired_token(issuer: &str, audience: &str, sub: &str) -> String {
    let python = snapglow_local::stack::project::project_root().join(".local/venv/bin/python");
    let script = format!(
        "import json,time\nfrom joserfc import jwt, jwk\nfrom moto.utilities.utils import load_resource\nkey = jwk.RSAKey.import_key(load_resource('cognitoidp/resources/jwks-private.json'))\nnow = int(time.time())\nprint(jwt.encode({{'kid': 'dummy', 'alg': 'RS256'}}, {{'iss': '{issuer}', 'sub': '{sub}', 'client_id': '{audience}', 'token_use': 'access', 'iat': now - 7200, 'exp': now - 3600}}, key))"
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// alice's password sign-in (USER_PASSWORD_AUTH) on the app client `client_id`.
async fn alice_signs_in(
    stage: &Stage,
    client_id: &str,
) -> Result<
    aws_sdk_cognitoidentityprovider::types::AuthenticationResultType,
    aws_sdk_cognitoidentityprovider::error::SdkError<
        aws_sdk_cognitoidentityprovider::operation::initiate_auth::InitiateAuthError,
    >,
> {
    let signed_in = (stage.test.clients.cognito.initiate_auth())
        .client_id(client_id)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "alice")
        .auth_parameters("PASSWORD", "Local-alice-Passw0rd!")
        .send()
        .await?;
    Ok(signed_in
        .authentication_result
        .expect("a password sign-in answers tokens"))
}

#[tokio::test]
async fn the_api_refuses_what_api_gateway_and_the_api_must_refuse() {
    // Prepare
    let mut stage = stage("front-door-refusals").await;
    let mut api = stage.api();
    let token = api.token("alice").await.unwrap();
    let url = format!("{}/me/images", stage.server.url);
    let (pool, web_client) =
        snapglow_local::stack::users::pool_and_client(&stage.test.stack).unwrap();
    let client = snapglow_local::stack::users::cli_client(&stage.test.stack).unwrap();
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{pool}");
    let status = |headers: Vec<(&'static str, String)>| {
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            call("GET", &url, &headers, Vec::new()).await.unwrap().0
        }
    };

    // Assess: API Gateway's JWT authorizer answers 401 before the function runs
    assert_eq!(status(vec![]).await, 401, "no token");
    assert_eq!(
        status(vec![("authorization", format!("Bearer {token}"))]).await,
        200,
        "a valid token"
    );
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(
        status(vec![("authorization", format!("Bearer {forged}"))]).await,
        401,
        "a forged signature"
    );
    let expired = expired_token(&issuer, &client, &sub_of(&token).unwrap());
    assert_eq!(
        status(vec![("authorization", format!("Bearer {expired}"))]).await,
        401,
        "an expired token"
    );
    let other_client = stage
        .test
        .clients
        .cognito
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("another-app")
        .explicit_auth_flows(
            aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType::AllowUserPasswordAuth,
        )
        .send()
        .await
        .unwrap()
        .user_pool_client
        .unwrap()
        .client_id
        .unwrap();
    let other_audience = alice_signs_in(&stage, &other_client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    assert_eq!(
        status(vec![("authorization", format!("Bearer {other_audience}"))]).await,
        401,
        "another app's token"
    );
    // ... the web's client takes no password (SRP only: the password flow is the CLI's client's)
    let password_on_web = alice_signs_in(&stage, &web_client).await.unwrap_err();
    assert_eq!(
        aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata::code(&password_on_web),
        Some("InvalidParameterException"),
        "{password_on_web:?}"
    );
    // ... and an ID token of this very app: valid, signed, for this audience, but no grant (it
    // carries no scope; API Gateway answers 403 when a route's scope is missing)
    let id_token = alice_signs_in(&stage, &client)
        .await
        .unwrap()
        .id_token
        .unwrap();
    assert_eq!(
        status(vec![("authorization", format!("Bearer {id_token}"))]).await,
        403,
        "an ID token"
    );

    // ... the API refuses bad requests, each with its problem type
    for (body, code, kind) in [
        (
            json!({ "content_type": "text/html", "content_length": 10 }),
            415,
            "unsupported-media-type",
        ),
        (
            json!({ "content_type": "image/png", "content_length": 0 }),
            413,
            "upload-size",
        ),
        (
            json!({ "content_type": "image/png", "content_length": 60_000_000u64 }),
            413,
            "upload-size",
        ),
        (
            json!({ "content_type": "image/png", "content_length": 10, "owner_id": "bob" }),
            400,
            "invalid-body",
        ),
    ] {
        let answer = api
            .request("alice", "POST", "/uploads", Some(body.clone()))
            .await
            .unwrap();
        assert_eq!(
            (answer.status, answer.body["type"].as_str()),
            (code, Some(format!("urn:snapglow:problem:{kind}").as_str())),
            "{body}"
        );
    }

    // ... a listing pages through with the cursors it hands out (the emulator, like DynamoDB,
    // refuses a start key that is not the index's)
    let alice = sub_of(&token).unwrap();
    for n in 0..3 {
        stage.test.issue(&alice, &format!("paged-{n}")).await;
    }
    let (mut seen, mut next) = (Vec::new(), Some(String::new()));
    while let Some(cursor) = next.take() {
        let path = match cursor.as_str() {
            "" => "/me/images?limit=1".to_owned(),
            c => format!("/me/images?limit=1&cursor={c}"),
        };
        let page = api.request("alice", "GET", &path, None).await.unwrap();
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["image_id"].as_str().unwrap().to_owned());
        }
        next = page.body["next_cursor"].as_str().map(str::to_owned);
        assert!(seen.len() <= 10, "the pages end: {seen:?}");
    }
    seen.sort();
    assert_eq!(seen, ["paged-0", "paged-1", "paged-2"]);

    // ... and what a client can put in a path, a cursor or a body never reaches DynamoDB as a
    // request it refuses (a 500): ids no image or notification can have, forged cursors
    let forged_cursor = |json: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    };
    let long_id = "x".repeat(3000);
    for (method, path, body, code) in [
        ("GET", format!("/images/{long_id}"), None, 404),
        ("PUT", format!("/images/{long_id}/like"), None, 404),
        (
            "GET",
            format!(
                "/feed?cursor={}",
                forged_cursor(r#"{"pk":{"S":"IMAGE#a"}}"#)
            ),
            None,
            400,
        ),
        (
            "GET",
            format!(
                "/me/notifications?cursor={}",
                forged_cursor(r#"{"owner_id":{"S":"nobody"}}"#)
            ),
            None,
            400,
        ),
        (
            "GET",
            format!(
                "/me/images?cursor={}",
                forged_cursor(r#"{"extra":{"S":"x"}}"#)
            ),
            None,
            400,
        ),
        // ... a cursor of the right shape for another partition: bob's images, another feed
        (
            "GET",
            format!(
                "/me/images?cursor={}",
                forged_cursor(
                    r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"},"owner_id":{"S":"bob"},"created_at":{"N":"1"}}"#
                )
            ),
            None,
            400,
        ),
        (
            "GET",
            format!(
                "/feed?cursor={}",
                forged_cursor(
                    r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"},"feed":{"S":"drafts"},"published_at":{"N":"1"}}"#
                )
            ),
            None,
            400,
        ),
        // ... ids no notification can have, and more ids than one request may mark
        (
            "POST",
            "/me/notifications/read".to_owned(),
            Some(json!({ "ids": ["x".repeat(2000)] })),
            400,
        ),
        (
            "POST",
            "/me/notifications/read".to_owned(),
            Some(json!({ "ids": (0..1000).map(|n| n.to_string()).collect::<Vec<_>>() })),
            400,
        ),
    ] {
        let answer = api.request("alice", method, &path, body).await.unwrap();
        assert_eq!(
            answer.status,
            code,
            "{method} {}: {}",
            &path[..path.len().min(80)],
            answer.body
        );
    }

    // ... and an object nobody issued never publishes anything, even under alice's image id
    let image = api
        .upload("alice", sample_jpeg(64, 48), "image/jpeg")
        .await
        .unwrap();
    let mallory = api.user_id("mallory").await.unwrap();
    let forged_key = format!("uploads/{mallory}/{image}");
    stage.test.upload(&forged_key, sample_jpeg(64, 48)).await;
    stage.test.wait_for_messages("ImageUploadsQueue", 3).await;
    stage.drain().await;
    let alices = api
        .request("alice", "GET", &format!("/images/{image}"), None)
        .await
        .unwrap();
    assert_eq!(
        alices.body["status"], "published",
        "alice's own upload is processed"
    );
    let published: Vec<Value> = stage
        .test
        .stream_events()
        .await
        .into_iter()
        .filter(|e| e["type"] == "ImagePublished")
        .collect();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(
        published[0]["data"]["source_key"],
        format!("uploads/{}/{image}", sub_of(&token).unwrap())
    );

    // ... CORS: a preflight from the allowed origin is answered without a token, others are not
    let preflight = |origin: &'static str| {
        let url = url.clone();
        async move {
            let (status, headers, _) = call(
                "OPTIONS",
                &url,
                &[("origin", origin), ("access-control-request-method", "GET")],
                Vec::new(),
            )
            .await
            .unwrap();
            (
                status,
                headers
                    .get("access-control-allow-origin")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        }
    };
    assert_eq!(
        preflight("http://127.0.0.1:3000").await,
        (204, Some("http://127.0.0.1:3000".to_owned()))
    );
    assert_eq!(preflight("http://evil.example").await.1, None);
}

#[tokio::test]
async fn likes_recorded_while_the_stream_refuses_writes_reach_it_after_and_count_exactly_once() {
    use snapglow_local::faults::{Crashing, Throttled, ThrottlingProxy};
    use snapglow_local::triggers::MappingOptions;
    use snapglow_local::triggers::pipeline::run_rounds;

    // Prepare: the relay writes through a proxy that can refuse Kinesis, and its process is
    // killed in a third of its invocations (mid-batch, or after it answered)
    let test = TestStack::start().await;
    let logs = test.state_dir("front-door-drill");
    let proxy = ThrottlingProxy::start_for(Throttled::Kinesis, &test.stack.endpoint_url, 0, 7)
        .await
        .unwrap();
    let options = |checkpoints: &str| MappingOptions {
        environment: vec![("AWS_ENDPOINT_URL_KINESIS".into(), proxy.url())],
        checkpoints_dir: Some(logs.join(checkpoints)),
        ..Default::default()
    };
    let gate = PresignedGate::for_stack(&test.stack).await.unwrap();
    let server = HttpApiServer::start(&test.stack, &test.binaries(), &logs, 0, &gate.url)
        .await
        .unwrap();
    let mut pipeline = mappings(
        &test.stack,
        &test.binaries(),
        &logs,
        &options("checkpoints"),
    )
    .await
    .unwrap();
    for mapping in pipeline
        .iter_mut()
        .filter(|m| m.name().starts_with("RelayFunction"))
    {
        mapping
            .wrap(|function| Box::new(Crashing::new(function, 33, Duration::from_millis(40), 5)));
    }
    let mut api = ApiClient::new(&server.url, &test.clients, &test.stack);
    let image = api
        .upload("alice", sample_jpeg(64, 48), "image/jpeg")
        .await
        .unwrap();
    test.wait_for_messages("ImageUploadsQueue", 2).await;
    run_until_idle(&mut pipeline, Duration::from_secs(120))
        .await
        .unwrap();

    // Act: the stream refuses every write while six users like the photo
    proxy.set_percent(100);
    let users = ["u1", "u2", "u3", "u4", "u5", "u6"];
    for user in users {
        let answer = api.like(user, &image, true).await.unwrap();
        assert_eq!(
            answer.status, 200,
            "a like succeeds while the stream is down"
        );
    }
    let during = run_rounds(&mut pipeline, 3).await.unwrap();
    let on_stream_during = test
        .stream_events()
        .await
        .iter()
        .filter(|e| e["type"] == "ImageLiked")
        .count();
    // ... then the stream recovers
    proxy.set_percent(0);
    run_until_idle(&mut pipeline, Duration::from_secs(120))
        .await
        .unwrap();

    // Assess: nothing reached the stream while it refused, every like did after, and each
    // counted once, whatever the relay's crashes and retries put on the stream twice
    assert!(
        during.failed_invocations > 0 && proxy.throttled() > 0,
        "{during:?}"
    );
    assert_eq!(on_stream_during, 0);
    let liked: std::collections::BTreeSet<String> = test
        .stream_events()
        .await
        .into_iter()
        .filter(|e| e["type"] == "ImageLiked")
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(liked.len(), users.len());
    let view = api
        .request("alice", "GET", &format!("/images/{image}"), None)
        .await
        .unwrap();
    assert_eq!(view.body["likes"], users.len());

    // Act: a full replay of the images table's stream, by a relay without checkpoints
    let mut replay = mappings(
        &test.stack,
        &test.binaries(),
        &logs,
        &options("replay-checkpoints"),
    )
    .await
    .unwrap();
    replay.retain(|m| m.name().starts_with("RelayFunction"));
    run_until_idle(&mut replay, Duration::from_secs(120))
        .await
        .unwrap();
    run_until_idle(&mut pipeline, Duration::from_secs(120))
        .await
        .unwrap();

    // Assess: the same events again, absorbed: the count does not move
    let view = api
        .request("alice", "GET", &format!("/images/{image}"), None)
        .await
        .unwrap();
    assert_eq!(view.body["likes"], users.len());
}

#[tokio::test]
async fn a_flood_from_one_user_gets_429_while_another_users_requests_succeed() {
    // Prepare: alice's and bob's tokens; the template's limit of requests per user and minute
    let stage = stage("front-door-flood").await;
    let mut api = stage.api();
    let (alice, bob) = (
        api.token("alice").await.unwrap(),
        api.token("bob").await.unwrap(),
    );
    let root = snapglow_local::stack::project::project_root();
    let template = snapglow_local::template::Template::load(&root.join("template.yaml")).unwrap();
    let limit = &template.parameters["RequestsPerMinute"];
    let limit = limit
        .as_u64()
        .unwrap_or_else(|| limit.as_str().unwrap().parse().unwrap()) as usize;
    let url = format!("{}/feed?limit=1", stage.server.url);
    let get = |token: &str| {
        let (url, bearer) = (url.clone(), format!("Bearer {token}"));
        async move {
            let (status, headers, body) =
                call("GET", &url, &[("authorization", &bearer)], Vec::new())
                    .await
                    .unwrap();
            let retry_after =
                (headers.get("retry-after")).map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (status, retry_after, body)
        }
    };

    // Act: alice asks until she is refused (within two minutes' worth, should the minute turn
    // during the flood); then bob asks
    let mut sent = 0;
    let refused = loop {
        let answer = get(&alice).await;
        sent += 1;
        if answer.0 != 200 || sent > 2 * limit + 1 {
            break answer;
        }
    };
    let bobs = get(&bob).await;

    // Assess: alice refused after at least her limit (signing in read her profile: one
    // request of her minute already), with the seconds left in the minute; bob served
    assert_eq!(refused.0, 429, "after {sent} requests: {:?}", refused.2);
    assert!(sent + 1 > limit, "refused after {sent} + 1 of {limit}");
    assert_eq!(refused.2["type"], "urn:snapglow:problem:too-many-requests");
    assert!(matches!(refused.1, Some(1..=60)), "{:?}", refused.1);
    assert_eq!(bobs.0, 200, "{:?}", bobs.2);
}

#[tokio::test]
async fn a_foreign_page_reaches_no_local_server_and_cannot_wipe_the_emulator() {
    // Prepare: the stack for a site on a free port (its origin is the one CORS allows), with
    // its HTTP API, presigned gate, site and the site's Cognito endpoint
    let root = snapglow_local::stack::project::project_root();
    let site_port = snapglow_local::stack::emulator::free_port().unwrap();
    let ports = snapglow_local::stack::LocalPorts::new(0, site_port);
    let test = TestStack::start_from(&ports.template(&root).unwrap()).await;
    let logs = test.state_dir("front-door-foreign");
    let gate = PresignedGate::for_stack(&test.stack).await.unwrap();
    let api = HttpApiServer::start(&test.stack, &test.binaries(), &logs, 0, &gate.url)
        .await
        .unwrap();
    let site = snapglow_local::site::SiteServer::start(
        &test.stack,
        &test.clients,
        &root.join("web"),
        &api.url,
        None,
        &gate.url,
        site_port,
    )
    .await
    .unwrap();
    let config = call("GET", &format!("{}config.json", site.url), &[], Vec::new()).await;
    let config: Value = serde_json::from_slice(&config.unwrap().2).unwrap();
    let servers = [
        ("the emulator", test.stack.endpoint_url.clone()),
        ("the HTTP API", api.url.clone()),
        ("the presigned gate", gate.url.clone()),
        ("the site", site.url.trim_end_matches('/').to_owned()),
        (
            "the Cognito endpoint",
            config["cognito"]["endpoint"]
                .as_str()
                .unwrap()
                .trim_end_matches('/')
                .to_owned(),
        ),
    ];
    let own = ports.site_origin();
    // A request as a page sends it: `method` to `url`, from `origin` (none for a page's
    // same-origin read), for `host` (a name of the page's own, rebound to 127.0.0.1; none: the
    // server's)
    let from_page = |method: &'static str,
                     url: String,
                     origin: Option<&'static str>,
                     host: Option<&'static str>| async move {
        let mut headers = vec![("content-type", "text/plain")];
        headers.extend(origin.map(|origin| ("origin", origin)));
        headers.extend(host.map(|host| ("host", host)));
        call(method, &url, &headers, Vec::new()).await.unwrap().0
    };
    // What a page would read or do: the emulator's state and its reset, the site's config (the
    // demo users' passwords), the API's and the gate's answers
    let read = |name: &str| match name {
        "the emulator" => "/moto-api/data.json",
        "the site" => "/config.json",
        _ => "/",
    };

    // Act: a foreign page posts to each server (the emulator's reset among them); a page of a
    // DNS name rebound to 127.0.0.1 reads each as its own (same origin: no Origin header)
    let mut foreign = Vec::new();
    let mut rebound = Vec::new();
    for (name, url) in &servers {
        let reset = format!("{url}/moto-api/reset");
        let evil = Some("http://evil.example");
        foreign.push((*name, from_page("POST", reset, evil, None).await));
        let target = format!("{url}{}", read(name));
        rebound.push((
            *name,
            from_page("GET", target, None, Some("evil.example")).await,
        ));
    }
    let own_reads = [
        from_page(
            "GET",
            format!("{}/moto-api/data.json", test.stack.endpoint_url),
            None,
            None,
        )
        .await,
        from_page("GET", format!("{}config.json", site.url), None, None).await,
    ];
    let site_page = call(
        "GET",
        &format!("{}config.json", site.url),
        &[("origin", own.as_str())],
        Vec::new(),
    )
    .await
    .unwrap();
    let tables = test.clients.dynamodb.list_tables().send().await.unwrap();

    // Assess: every server refused both; the stack is whole; the site's own pages still reach it
    for (name, status) in foreign.iter().chain(&rebound) {
        assert_eq!(*status, 403, "{name}");
    }
    assert_eq!(
        own_reads,
        [200, 200],
        "the same reads under the servers' own Host"
    );
    assert!(
        tables
            .table_names()
            .iter()
            .any(|t| t == test.name("ImagesTable")),
        "{tables:?}"
    );
    assert_eq!(site_page.0, 200);
}

#[tokio::test]
async fn a_deleted_photo_is_gone_from_every_read_and_a_replay_of_the_stream_does_not_bring_it_back()
{
    // Prepare: alice's photo, published, liked by bob and carol, and told to her
    let mut stage = stage("front-door-deletion").await;
    let mut api = stage.api();
    let tiff =
        render::testing::exif_block(&[(0x0110, "X100V")], &[(0x9003, "2025:06:21 21:14:00")]);
    let image = api
        .upload(
            "alice",
            render::testing::jpeg_with_exif(800, 600, &tiff),
            "image/jpeg",
        )
        .await
        .unwrap();
    stage.test.wait_for_messages("ImageUploadsQueue", 2).await;
    stage.drain().await;
    for user in ["bob", "carol"] {
        assert_eq!(api.like(user, &image, true).await.unwrap().status, 200);
    }
    stage.drain().await;
    let (path, alice) = (
        format!("/images/{image}"),
        api.user_id("alice").await.unwrap(),
    );
    let original = format!("uploads/{alice}/{image}");
    let renditions = format!("renditions/{image}/");
    let seen = api.request("bob", "GET", &path, None).await.unwrap();
    assert_eq!(seen.body["likes"], 2, "{}", seen.body);
    let inbox = stage.test.inbox_reader();
    let told = inbox.inbox(&alice).await.unwrap();
    assert!(told.iter().any(|n| n.image_id == image), "{told:?}");
    assert_eq!(
        stage
            .test
            .keys_under("UploadsBucket", &original)
            .await
            .len(),
        1
    );
    assert_eq!(
        stage
            .test
            .keys_under("RenditionsBucket", &renditions)
            .await
            .len(),
        3
    );

    // Act: bob tries to delete it, alice deletes it (twice: her client retries), carol takes
    // her like back after it is gone
    let by_bob = api.request("bob", "DELETE", &path, None).await.unwrap();
    let by_alice = api.request("alice", "DELETE", &path, None).await.unwrap();
    let again = api.request("alice", "DELETE", &path, None).await.unwrap();
    let late = api.like("carol", &image, false).await.unwrap();
    stage.drain().await;

    // Assess: only the owner deleted it; it is gone from every read, its count, its
    // notifications, its files and its like items; only the tombstones that keep replays from
    // bringing it back are left
    assert_eq!(
        (by_bob.status, by_alice.status, again.status, late.status),
        (404, 204, 204, 404)
    );
    let gone = async |api: &mut ApiClient| {
        for user in ["alice", "bob"] {
            let answer = api.request(user, "GET", &path, None).await.unwrap();
            assert_eq!(answer.status, 404, "{user}: {}", answer.body);
        }
        let feed = api.request("bob", "GET", "/feed", None).await.unwrap();
        let mine = api
            .request("alice", "GET", "/me/images", None)
            .await
            .unwrap();
        for listing in [feed.body, mine.body] {
            let items = listing["items"].as_array().unwrap();
            assert!(
                items.iter().all(|i| i["image_id"] != image.as_str()),
                "{listing}"
            );
        }
    };
    let erased = async |test: &TestStack| {
        assert_eq!(test.like_counts().count(&image).await.unwrap(), 0);
        let told = test.inbox_reader().inbox(&alice).await.unwrap();
        assert!(told.iter().all(|n| n.image_id != image), "{told:?}");
        assert_eq!(
            test.keys_under("UploadsBucket", &original).await,
            Vec::<String>::new()
        );
        assert_eq!(
            test.keys_under("RenditionsBucket", &renditions).await,
            Vec::<String>::new()
        );
        let pk = format!("IMAGE#{image}");
        assert_eq!(test.sort_keys("ImagesTable", &pk).await, ["IMAGE"]);
        assert_eq!(test.sort_keys("LikesTable", &pk).await, ["COUNT"]);
        // ... and the tombstone keeps nothing of what the photo showed
        let tombstone = (test.clients.dynamodb.get_item())
            .table_name(test.name("ImagesTable"))
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.clone()))
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("IMAGE".into()),
            )
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        for shown in [
            "renditions",
            "placeholder",
            "taken_at",
            "camera_make",
            "camera_model",
        ] {
            assert!(!tombstone.contains_key(shown), "{shown}: {tombstone:?}");
        }
    };
    gone(&mut api).await;
    erased(&stage.test).await;

    // Act: the whole stream, and the images table's, delivered again from their start
    use snapglow_local::triggers::MappingOptions;
    let logs = stage.test.state_dir("front-door-deletion-replay");
    let options = MappingOptions {
        checkpoints_dir: Some(logs.join("checkpoints")),
        ..Default::default()
    };
    let mut replay = mappings(&stage.test.stack, &stage.test.binaries(), &logs, &options)
        .await
        .unwrap();
    let replayed = run_until_idle(&mut replay, Duration::from_secs(120))
        .await
        .unwrap();

    // Assess: the relay put every event again (the outbox replayed), every event reached
    // like-counter and notifier again (the deletions the eraser too), and nothing came back
    let events = stage.test.stream_events().await;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        ["ImagePublished", "ImageLiked", "ImageLiked", "ImageDeleted"].repeat(2)
    );
    assert!(replayed.delivered > 2 * events.len(), "{replayed:?}");
    assert_eq!(replayed.failed, 0, "{replayed:?}");
    gone(&mut api).await;
    erased(&stage.test).await;
    assert_eq!(stage.test.quarantined().await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_deleted_account_leaves_no_photo_like_or_user_and_its_old_token_writes_nothing() {
    // Prepare: alice's two photos, one liked by bob; carol's photo, liked by alice
    let mut stage = stage("front-door-account").await;
    let mut api = stage.api();
    let mut hers = Vec::new();
    for _ in 0..2 {
        hers.push(
            api.upload("alice", sample_jpeg(64, 48), "image/jpeg")
                .await
                .unwrap(),
        );
    }
    let carols = api
        .upload("carol", sample_jpeg(64, 48), "image/jpeg")
        .await
        .unwrap();
    stage.test.wait_for_messages("ImageUploadsQueue", 4).await; // the s3:TestEvent and 3 uploads
    stage.drain().await;
    assert_eq!(api.like("bob", &hers[0], true).await.unwrap().status, 200);
    assert_eq!(api.like("carol", &hers[1], true).await.unwrap().status, 200);
    assert_eq!(api.like("alice", &carols, true).await.unwrap().status, 200);
    stage.drain().await;
    let counts = stage.test.like_counts();
    assert_eq!(counts.count(&carols).await.unwrap(), 1);
    let (alice, carol) = (
        api.user_id("alice").await.unwrap(),
        api.user_id("carol").await.unwrap(),
    );
    let reader = stage.test.inbox_reader();
    let names = async |user: &str| -> Vec<String> {
        let inbox = reader.inbox(user).await.unwrap();
        inbox.into_iter().flat_map(|n| n.actors).collect()
    };
    assert!(names(&carol).await.contains(&alice));

    // Act: alice deletes her account, calling again while the API answers 202 (as her client
    // does, after Retry-After), within a deadline
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut answers = Vec::new();
    loop {
        let answer = api.request("alice", "DELETE", "/me", None).await.unwrap();
        answers.push(answer.status);
        if answer.status != 202 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stage.drain().await;
    let again = api.request("alice", "DELETE", "/me", None).await.unwrap();
    let upload = json!({ "content_type": "image/jpeg", "content_length": 10 });
    let after = api
        .request("alice", "POST", "/uploads", Some(upload))
        .await
        .unwrap();

    // Assess: done (204), and a repeat finds nothing left; her still-valid token writes nothing
    assert_eq!(answers.last(), Some(&204), "{answers:?}");
    assert_eq!(again.status, 204);
    assert_eq!(after.status, 403, "{}", after.body);
    assert_eq!(after.body["type"], "urn:snapglow:problem:account-erased");
    // ... her photos are gone, with their files, counts and notifications
    for id in &hers {
        let seen = api
            .request("bob", "GET", &format!("/images/{id}"), None)
            .await
            .unwrap();
        assert_eq!(seen.status, 404, "{id}");
        let renditions = format!("renditions/{id}/");
        assert_eq!(
            stage.test.keys_under("RenditionsBucket", &renditions).await,
            Vec::<String>::new()
        );
        assert_eq!(counts.count(id).await.unwrap(), 0);
    }
    let originals = format!("uploads/{alice}/");
    assert_eq!(
        stage.test.keys_under("UploadsBucket", &originals).await,
        Vec::<String>::new()
    );
    assert_eq!(
        stage.test.inbox_reader().inbox(&alice).await.unwrap().len(),
        0
    );
    // ... her like was taken back (carol's count fell, her name left carol's notifications)
    // and left the likes she gave: its item only waits for TTL
    assert_eq!(counts.count(&carols).await.unwrap(), 0);
    assert!(!names(&carol).await.contains(&alice));
    let given = (stage.test.clients.dynamodb.query())
        .table_name(stage.test.name("ImagesTable"))
        .index_name("by-liker")
        .key_condition_expression("user_id = :user")
        .expression_attribute_values(
            ":user",
            aws_sdk_dynamodb::types::AttributeValue::S(alice.clone()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(given.count(), 0);
    // ... her name is gone (the profile item waits for TTL without it) ...
    let profile = (stage.test.clients.dynamodb.get_item())
        .table_name(stage.test.name("ImagesTable"))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ACCOUNT#{alice}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()),
        )
        .send()
        .await
        .unwrap();
    let profile = profile.item.expect("the erased profile until TTL");
    assert!(!profile.contains_key("display_name"), "{profile:?}");
    assert!(profile.contains_key("expires_at"), "{profile:?}");
    // ... and her user is gone from the pool
    let pool = stage.test.stack.resources["UserPool"].name.clone();
    let user = (stage.test.clients.cognito.admin_get_user())
        .user_pool_id(pool)
        .username("alice")
        .send()
        .await;
    assert!(
        user.as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_user_not_found_exception()),
        "{user:?}"
    );
}

#[tokio::test]
async fn people_are_shown_by_the_names_they_gave_and_a_rename_shows_everywhere_at_once() {
    // Prepare: alice, bob and carol gave names at sign-up (the pool's `name`); dave gave
    // none. Signing in reads each one's profile, as the web client does.
    let mut stage = stage("front-door-people").await;
    let mut api = stage.api();
    // ... and alice's photo says when and with what it was taken (and where: a GPS block)
    let tiff = render::testing::exif_block(
        &[(0x010F, "FUJIFILM"), (0x0110, "X100V")],
        &[(0x9003, "2025:06:21 21:14:00"), (0x9011, "+01:00")],
    );
    let photo = render::testing::jpeg_with_exif(640, 480, &tiff);
    let image = api.upload("alice", photo, "image/jpeg").await.unwrap();
    stage.test.wait_for_messages("ImageUploadsQueue", 2).await;
    stage.drain().await;
    for liker in ["bob", "carol"] {
        assert_eq!(api.like(liker, &image, true).await.unwrap().status, 200);
    }
    stage.drain().await;

    // Act
    let bob = api
        .request("bob", "GET", "/me/profile", None)
        .await
        .unwrap();
    let dave = api
        .request("dave", "GET", "/me/profile", None)
        .await
        .unwrap();
    let feed = api.request("dave", "GET", "/feed", None).await.unwrap();
    let page = format!("/images/{image}");
    let photo = api.request("dave", "GET", &page, None).await.unwrap();
    let likers = format!("/images/{image}/likes");
    let liked_by = api.request("dave", "GET", &likers, None).await.unwrap();
    let inbox = (api.request("alice", "GET", "/me/notifications", None))
        .await
        .unwrap();

    // Assess: names from sign-up, none for dave; no answer shows a sign-in username
    assert_eq!(bob.body["display_name"], "Bob Okafor", "{}", bob.body);
    assert_eq!(bob.body["user_id"], api.user_id("bob").await.unwrap());
    assert_eq!(
        (dave.status, &dave.body["display_name"]),
        (200, &Value::Null)
    );
    assert_eq!(feed.body["items"][0]["owner_name"], "Alice Moreau");
    assert_eq!(photo.body["owner_name"], "Alice Moreau");
    // ... the photo's page says when and with what, never where; the feed paints its
    // placeholder (a 4 x 3 BlurHash) while the thumbnail loads
    assert_eq!(photo.body["taken_at"], "2025-06-21T21:14:00+01:00");
    assert_eq!(photo.body["camera"], "FUJIFILM X100V");
    let placeholder = feed.body["items"][0]["placeholder"].as_str().unwrap();
    assert_eq!(
        (placeholder.len(), &placeholder[..1]),
        (28, "L"),
        "{placeholder}"
    );
    assert_eq!(photo.body["placeholder"], placeholder);
    let published = (stage.test.stream_events().await.into_iter())
        .find(|e| e["type"] == "ImagePublished")
        .unwrap();
    assert_eq!(published["version"], 2);
    assert_eq!(published["data"]["camera_model"], "X100V");
    assert!(!published.to_string().to_lowercase().contains("gps"));
    let mut names: Vec<&str> = (liked_by.body["items"].as_array().unwrap().iter())
        .map(|l| l["display_name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["Bob Okafor", "Carol Nguyen"], "{}", liked_by.body);
    let likes_text = |inbox: &Value| {
        (inbox["items"].as_array().unwrap().iter())
            .find(|n| n["kind"] == "likes")
            .map(|n| n["text"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(
        likes_text(&inbox.body),
        "Carol Nguyen and Bob Okafor liked your photo"
    );
    for answer in [&feed, &photo, &liked_by, &inbox] {
        let text = answer.body.to_string();
        for username in ["alice", "bob", "carol"] {
            assert!(!text.contains(username), "{username} in {text}");
        }
    }

    // Act: bob renames himself; dave asks for names no page may show
    let rename = |name: &str| Some(json!({ "display_name": name }));
    let renamed = api
        .request("bob", "PUT", "/me/profile", rename("  Bob   O. "))
        .await
        .unwrap();
    let refused = api
        .request("dave", "PUT", "/me/profile", rename("dave\u{202e}evad"))
        .await
        .unwrap();
    let inbox = (api.request("alice", "GET", "/me/notifications", None))
        .await
        .unwrap();
    let liked_by = api.request("alice", "GET", &likers, None).await.unwrap();

    // Assess: the next read of every page shows the new name
    assert_eq!(renamed.body["display_name"], "Bob O.", "{}", renamed.body);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        likes_text(&inbox.body),
        "Carol Nguyen and Bob O. liked your photo"
    );
    assert!(liked_by.body.to_string().contains("Bob O."));
}

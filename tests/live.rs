//! Live push through the local WebSocket API, as a browser uses it: a one-time ticket from the
//! HTTP API, the handshake through the real authorizer and `$connect`, each inbox change pushed
//! by the real pusher from the notifications table's stream, and API Gateway's ways of closing
//! a connection (a client's close, the idle limit) and of answering a push to one that is gone.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use snapglow_local::scenarios::client::ApiClient;
use snapglow_local::stack::presigned::PresignedGate;
use snapglow_local::triggers::http::HttpApiServer;
use snapglow_local::triggers::pipeline::run_until_idle;
use snapglow_local::triggers::websocket::{Limits, LiveServer};
use snapglow_local::triggers::{Mapping, MappingOptions, mappings};
use snapglow_tests::{TestStack, sample_jpeg};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Stage {
    test: TestStack,
    http: HttpApiServer,
    live: LiveServer,
    gate_url: String,
    _gate: PresignedGate,
    pipeline: Vec<Mapping>,
}

async fn stage(purpose: &str, limits: Limits) -> Stage {
    let test = TestStack::start().await;
    let logs = test.state_dir(purpose);
    let root = snapglow_local::stack::project::project_root();
    let template = snapglow_local::template::Template::load(
        &snapglow_local::stack::project::template_path(&root),
    )
    .unwrap();
    let guard = snapglow_local::guard::Guard::Programs;
    let live = LiveServer::start(
        &test.stack,
        &template,
        &test.binaries(),
        &logs,
        0,
        limits,
        guard,
    )
    .await
    .unwrap();
    let gate = PresignedGate::for_stack(&test.stack).await.unwrap();
    let http = HttpApiServer::start_with(
        &test.stack,
        &test.binaries(),
        &logs,
        0,
        &gate.url,
        &live.api_environment(),
    )
    .await
    .unwrap();
    let options = live.mapping_options(&gate.url, MappingOptions::default());
    let pipeline = mappings(&test.stack, &test.binaries(), &logs, &options)
        .await
        .unwrap();
    Stage {
        test,
        http,
        live,
        gate_url: gate.url.clone(),
        _gate: gate,
        pipeline,
    }
}

impl Stage {
    fn api(&self) -> ApiClient {
        ApiClient::new(&self.http.url, &self.test.clients, &self.test.stack)
    }

    async fn drain(&mut self) {
        run_until_idle(&mut self.pipeline, Duration::from_secs(120))
            .await
            .unwrap();
    }

    /// A published photo of `owner`'s.
    async fn published(&mut self, api: &mut ApiClient, owner: &str) -> String {
        let image = api
            .upload(owner, sample_jpeg(640, 480), "image/jpeg")
            .await
            .unwrap();
        self.test.wait_for_messages("ImageUploadsQueue", 2).await;
        self.drain().await;
        image
    }
}

/// The URL (with its ticket) `user` connects with.
async fn ticket_url(api: &mut ApiClient, user: &str) -> String {
    let issued = api
        .request(user, "POST", "/me/live-ticket", None)
        .await
        .unwrap();
    assert_eq!(issued.status, 201, "{}", issued.body);
    issued.body["url"].as_str().unwrap().to_owned()
}

/// The handshake's status: 101 and the socket, or the refusal's status.
async fn connect(url: &str) -> Result<Socket, u16> {
    match tokio_tungstenite::connect_async(url).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("{url}: {other}"),
    }
}

/// The next text message within `within`, as JSON.
async fn next_push(socket: &mut Socket, within: Duration) -> Value {
    loop {
        let message = tokio::time::timeout(within, socket.next())
            .await
            .expect("a push within the deadline")
            .expect("the socket open")
            .expect("a readable message");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// How many connections of `user`'s the connections table lists (its `USER#` items), polled
/// until `wanted` holds (deadline 10 s).
async fn connections_until(test: &TestStack, user: &str, wanted: impl Fn(usize) -> bool) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = (test.clients.dynamodb.query())
            .table_name(test.name("ConnectionsTable"))
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{user}")),
            )
            .send()
            .await
            .unwrap()
            .count() as usize;
        if wanted(found) || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_like_reaches_the_owners_open_socket_as_her_inbox_shows_it_and_a_ticket_opens_one_socket_once()
 {
    // Prepare: carol's published photo; carol connects with a ticket
    let mut stage = stage("live-push", Limits::default()).await;
    let mut api = stage.api();
    let image = stage.published(&mut api, "carol").await;
    let carol = api.user_id("carol").await.unwrap();
    let url = ticket_url(&mut api, "carol").await;
    let mut socket = connect(&url).await.expect("carol's handshake");
    assert_eq!(connections_until(&stage.test, &carol, |n| n == 1).await, 1);

    // Act: the same ticket again, none, a forged one; then bob likes her photo
    let reused = connect(&url).await.err();
    let bare = connect(&stage.live.url).await.err();
    let forged = connect(&format!("{}?ticket={}", stage.live.url, "0".repeat(64)))
        .await
        .err();
    assert_eq!(api.like("bob", &image, true).await.unwrap().status, 200);
    stage.drain().await;
    let pushed = next_push(&mut socket, Duration::from_secs(10)).await;

    // Assess: one socket per ticket; the like pushed as GET /me/notifications shows it, with
    // bob's name and the photo's thumbnail
    assert_eq!((reused, bare, forged), (Some(403), Some(401), Some(403)));
    assert_eq!(pushed["type"], "notifications", "{pushed}");
    let note = (pushed["items"].as_array().unwrap().iter())
        .find(|n| n["kind"] == "likes")
        .unwrap_or_else(|| panic!("a likes notification in {pushed}"))
        .clone();
    assert_eq!(note["text"], "Bob Okafor liked your photo");
    assert_eq!(note["image_id"], image.as_str());
    let thumbnail = note["thumbnail"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{note}"));
    let (status, _, _) = snapglow_local::lambda::http::call("GET", thumbnail, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 200, "the pushed thumbnail loads: {thumbnail}");
    assert!(thumbnail.starts_with(&stage.gate_url), "{thumbnail}");
    let inbox = api
        .request("carol", "GET", "/me/notifications", None)
        .await
        .unwrap();
    let listed = (inbox.body["items"].as_array().unwrap().iter())
        .find(|n| n["id"] == note["id"])
        .cloned()
        .unwrap();
    assert_eq!(
        (listed["text"].clone(), listed["unread"].clone()),
        (note["text"].clone(), note["unread"].clone())
    );

    // Act: carol closes her socket
    socket.close(None).await.unwrap();

    // Assess: $disconnect forgot the connection (both of its items)
    assert_eq!(connections_until(&stage.test, &carol, |n| n == 0).await, 0);
}

#[tokio::test]
async fn a_connection_gone_without_a_disconnect_is_forgotten_at_the_next_push_and_an_idle_one_is_closed()
 {
    // Prepare: API Gateway's idle limit shortened to 2 s; carol connected, plus a connection
    // of hers whose $disconnect was missed (its items remain)
    let limits = Limits {
        idle: Duration::from_secs(2),
        lifetime: Duration::from_secs(3600),
    };
    let mut stage = stage("live-gone-idle", limits).await;
    let mut api = stage.api();
    let image = stage.published(&mut api, "carol").await;
    let carol = api.user_id("carol").await.unwrap();
    let url = ticket_url(&mut api, "carol").await;
    let socket = connect(&url).await.expect("carol's handshake");
    let table = stage.test.name("ConnectionsTable").to_owned();
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    (stage.test.clients.dynamodb.put_item())
        .table_name(&table)
        .item("pk", s(&format!("USER#{carol}")))
        .item("sk", s("CONN#stale="))
        .item("connection_id", s("stale="))
        .item(
            "expires_at",
            aws_sdk_dynamodb::types::AttributeValue::N("9999999999".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(connections_until(&stage.test, &carol, |n| n == 2).await, 2);

    // Act: carol's client sends a heartbeat every 500 ms while bob likes her photo, the
    // pipeline runs, and for longer than the idle limit (2 s) in all
    let (mut sink, mut stream) = socket.split();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let beats = tokio::spawn(async move {
        let mut sent = 0;
        loop {
            if sink
                .send(Message::Text(r#"{"action":"ping"}"#.into()))
                .await
                .is_err()
            {
                return sent;
            }
            sent += 1;
            tokio::select! {
                _ = &mut stopped => return sent,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });
    let started = tokio::time::Instant::now();
    assert_eq!(api.like("bob", &image, true).await.unwrap().status, 200);
    stage.drain().await;
    let pushed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str::<Value>(text.as_str()).unwrap();
                }
                Some(Ok(_)) => continue,
                other => panic!("the socket closed before the push: {other:?}"),
            }
        }
    })
    .await
    .expect("a push within the deadline");
    // The heartbeats keep the socket open past the idle limit, however fast the push came:
    // until then anything may arrive but a close.
    let past_idle = started + Duration::from_secs(3);
    while let Ok(next) = tokio::time::timeout_at(past_idle, stream.next()).await {
        assert!(
            matches!(
                next,
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))
            ),
            "the socket closed while its heartbeats went: {next:?}"
        );
    }
    let open_for = started.elapsed();

    // Assess: the live socket got the push; the stale one answered 410 and was forgotten
    assert!(
        pushed["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{pushed}"
    );
    assert_eq!(connections_until(&stage.test, &carol, |n| n == 1).await, 1);

    // Act: carol's heartbeats stop
    stop.send(()).unwrap();
    let beats = beats.await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed within the deadline");

    // Assess: heartbeats had kept it open; closed as API Gateway closes an idle connection
    // (1001 Going Away), and forgotten
    assert!(beats >= 2, "{beats} heartbeats over {open_for:?}");
    assert_eq!(closed, Some(1001));
    assert_eq!(connections_until(&stage.test, &carol, |n| n == 0).await, 0);
}

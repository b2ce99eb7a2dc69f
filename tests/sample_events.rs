//! Every sample event in events/ is an event AWS could send: it parses as the Lambda event
//! type, survives a round trip unchanged, and its payloads are what its name says.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;
use snapglow::contracts::{Decoded, Envelope};
use snapglow_local::stack::project::project_root;

fn files(folder: &str) -> Vec<(String, Value)> {
    let dir = project_root().join("events").join(folder);
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!found.is_empty(), "no sample events in {}", dir.display());
    found
}

/// Parsing, writing and parsing again gives the same event.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug>(
    name: &str,
    json: &Value,
) -> T {
    let parsed: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{name} is not a valid event: {e}"));
    let again: T = serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
    assert_eq!(parsed, again, "{name} does not round-trip");
    parsed
}

#[test]
fn sqs_samples_are_s3_notifications_or_say_what_they_are_not() {
    for (name, json) in files("sqs") {
        let event: SqsEvent = round_trips(&name, &json);
        for message in event.records {
            let parsed = resize::upload::parse(message.body.as_deref().unwrap_or_default());
            match name.as_str() {
                "not-an-s3-notification" => assert!(parsed.is_err(), "{name}"),
                "s3-test-event" => assert_eq!(parsed.unwrap(), resize::upload::Notification::Test),
                _ => assert!(
                    matches!(parsed, Ok(resize::upload::Notification::Created(_))),
                    "{name}"
                ),
            }
        }
    }
}

#[test]
fn kinesis_samples_carry_the_envelopes_their_names_promise() {
    for (name, json) in files("kinesis") {
        let event: KinesisEvent = round_trips(&name, &json);
        let decoded: Vec<_> = event
            .records
            .iter()
            .map(|r| Envelope::decode(&r.kinesis.data.0))
            .collect();
        match name.as_str() {
            "malformed-record" => {
                assert_eq!(decoded.iter().filter(|d| d.is_err()).count(), 1, "{name}")
            }
            "unknown-type" => assert!(
                decoded
                    .iter()
                    .all(|d| matches!(d, Ok(Decoded::UnknownType { .. }))),
                "{name}"
            ),
            _ => {
                let expected_type: String = name
                    .split('-')
                    .map(|w| w[..1].to_uppercase() + &w[1..])
                    .collect();
                for d in decoded {
                    let Ok(Decoded::Known(envelope)) = d else {
                        panic!("{name}: {d:?}")
                    };
                    assert_eq!(envelope.event.type_name(), expected_type, "{name}");
                }
            }
        }
        for record in &event.records {
            // The partition key is the image id, as producers must set it.
            if let Ok(Decoded::Known(envelope)) = Envelope::decode(&record.kinesis.data.0) {
                assert_eq!(
                    record.kinesis.partition_key,
                    envelope.partition_key(),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn http_samples_are_payload_v2_requests_the_api_reads_as_their_user() {
    use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
    for (name, json) in files("http") {
        let request: ApiGatewayV2httpRequest = round_trips(&name, &json);
        let claims = &request
            .request_context
            .authorizer
            .as_ref()
            .expect("an authorizer")
            .jwt
            .as_ref()
            .expect("a JWT")
            .claims;
        assert!(
            claims.contains_key("sub"),
            "{name}: the API identifies the caller by sub"
        );
        assert_eq!(
            request.route_key.as_deref().map(|r| r.split(' ').count()),
            Some(2),
            "{name}"
        );
    }
}

#[test]
fn dynamodb_samples_are_changes_the_relay_publishes() {
    use aws_lambda_events::event::dynamodb::Event;
    for (name, json) in files("dynamodb") {
        let event: Event = round_trips(&name, &json);
        for record in &event.records {
            assert!(
                matches!(
                    relay::outbox::classify(record),
                    relay::outbox::Change::Publish { .. }
                ),
                "{name}: {:?}",
                relay::outbox::classify(record)
            );
        }
    }
}

#[test]
fn notifications_samples_are_inbox_changes_the_pusher_sends_or_items_it_leaves() {
    use aws_lambda_events::event::dynamodb::Event;
    use live::push::{Change, changes};
    // Before the samples' items expire (their `expires_at`).
    let now_s = 1_795_946_500;
    for (name, json) in files("notifications") {
        let event: Event = round_trips(&name, &json);
        let found = changes(&event.records, now_s);
        let kinds: Vec<_> = (found.values().flat_map(|user| &user.changes))
            .map(|c| match c {
                Change::Now(n) => format!("now {}", n.kind.as_str()),
                Change::Gone(_) => "gone".to_owned(),
            })
            .collect();
        match name.as_str() {
            "inbox-changed" => assert_eq!(kinds, ["now likes", "now published"], "{name}"),
            "notification-removed" => assert_eq!(kinds, ["gone"], "{name}"),
            "not-a-notification" => assert!(kinds.is_empty(), "{name}: {kinds:?}"),
            _ => panic!("{name}: say what this sample is in this test"),
        }
    }
}

#[tokio::test]
async fn websocket_samples_are_what_the_live_function_answers_by_their_names() {
    use live::connections::{Connections, MemoryConnections};
    use live::gateway::{Incoming, handle};
    let store = MemoryConnections::default();
    for (name, json) in files("websocket") {
        let incoming: Incoming = serde_json::from_value(json)
            .unwrap_or_else(|e| panic!("{name} is not an event API Gateway sends: {e}"));
        let answer = handle(&store, incoming).await.unwrap();
        match name.as_str() {
            "authorize-with-a-forged-ticket" => assert_eq!(
                answer["policyDocument"]["Statement"][0]["Effect"], "Deny",
                "{name}: {answer}"
            ),
            "connect" => {
                assert_eq!(answer["statusCode"], 200, "{name}: {answer}");
                let user = "3f9a1c2e-5b7d-4e8f-a1b2-c3d4e5f60718";
                assert_eq!(store.of_user(user, 0).await.unwrap().len(), 1, "{name}");
            }
            "disconnect" | "heartbeat" => {
                assert_eq!(answer["statusCode"], 200, "{name}: {answer}")
            }
            _ => panic!("{name}: say what this sample is in this test"),
        }
    }
}

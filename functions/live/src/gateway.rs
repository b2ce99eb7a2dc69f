//! The WebSocket API's side: its REQUEST authorizer, which takes a ticket back, and its
//! routes. `$connect` records the connection as its user's, `$disconnect` forgets it, and
//! `$default` answers the client's heartbeat (any message resets API Gateway's 10-minute idle
//! timer; nothing else is read from clients).

use serde::Deserialize;
use serde_json::{Value, json};
use snapglow::contracts::Timestamp;
use snapglow::live::{CONNECTION_MAX, CONNECTION_SLACK, is_ticket};
use snapglow::table::TableError;
use std::collections::HashMap;

use crate::connections::Connections;

/// What API Gateway sends the function: an authorizer request (`type` `REQUEST`, with the
/// `methodArn` to allow) or a route's event (its `requestContext.routeKey`). Only the fields
/// used are read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incoming {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub method_arn: Option<String>,
    #[serde(default)]
    pub query_string_parameters: Option<HashMap<String, String>>,
    #[serde(default)]
    pub request_context: Option<RequestContext>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub route_key: Option<String>,
    pub connection_id: Option<String>,
    /// On routes after `$connect`: what the authorizer returned (`principalId` and its
    /// `context`'s keys).
    pub authorizer: Option<Value>,
}

/// Answers one invocation: the authorizer's policy, or a route's `{"statusCode": …}`.
/// Errors are the table's; the caller fails the invocation with them (API Gateway then
/// refuses the handshake, or the client's message, with a 500).
pub async fn handle(store: &impl Connections, event: Incoming) -> Result<Value, TableError> {
    if event.kind.as_deref() == Some("REQUEST") {
        return authorize(store, &event).await;
    }
    let context = event.request_context.unwrap_or_default();
    let connection = context.connection_id.unwrap_or_default();
    let status = match context.route_key.as_deref() {
        Some("$connect") => {
            let user = (context.authorizer.as_ref())
                .and_then(|a| a.get("user_id").or_else(|| a.get("principalId")))
                .and_then(Value::as_str);
            match user {
                Some(user) if !connection.is_empty() => {
                    let now = Timestamp::now().millis();
                    let expires = now / 1000 + (CONNECTION_MAX + CONNECTION_SLACK).as_secs() as i64;
                    store.open(user, &connection, now, expires).await?;
                    tracing::info!(user, connection, "connected");
                    200
                }
                // The authorizer always names the user: a route without one was deployed
                // without it, and must not accept anyone.
                _ => 403,
            }
        }
        Some("$disconnect") => {
            let user = store.close(&connection).await?;
            tracing::info!(
                user = user.as_deref().unwrap_or("-"),
                connection,
                "disconnected"
            );
            200
        }
        // The heartbeat, or anything else a client sends: nothing to do.
        _ => 200,
    };
    Ok(json!({ "statusCode": status }))
}

/// The REQUEST authorizer: the `ticket` query parameter taken back (once) gives the user;
/// anything else is denied, which API Gateway answers with a 403 before `$connect` runs.
async fn authorize(store: &impl Connections, event: &Incoming) -> Result<Value, TableError> {
    let resource = event.method_arn.clone().unwrap_or_else(|| "*".to_owned());
    let ticket = (event.query_string_parameters.as_ref())
        .and_then(|q| q.get("ticket"))
        .filter(|t| is_ticket(t));
    let user = match ticket {
        Some(ticket) => {
            let now_s = Timestamp::now().millis() / 1000;
            store.take_ticket(ticket, now_s).await?
        }
        None => None,
    };
    Ok(match user {
        Some(user) => policy(&user, "Allow", &resource, Some(&user)),
        None => {
            tracing::info!("a WebSocket handshake without a valid ticket was denied");
            policy("anonymous", "Deny", &resource, None)
        }
    })
}

fn policy(principal: &str, effect: &str, resource: &str, user: Option<&str>) -> Value {
    let mut answer = json!({
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{ "Action": "execute-api:Invoke", "Effect": effect, "Resource": resource }],
        },
    });
    if let Some(user) = user {
        answer["context"] = json!({ "user_id": user });
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::MemoryConnections;

    fn authorizer_event(ticket: Option<&str>) -> Incoming {
        serde_json::from_value(json!({
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:eu-west-1:1:api/prod/$connect",
            "queryStringParameters": ticket.map(|t| json!({ "ticket": t })),
            "requestContext": { "routeKey": "$connect", "connectionId": "c1=" },
        }))
        .unwrap()
    }

    fn route_event(route: &str, connection: &str, authorizer: Value) -> Incoming {
        serde_json::from_value(json!({
            "requestContext": { "routeKey": route, "connectionId": connection, "authorizer": authorizer },
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_ticket_opens_one_connection_once_and_nothing_else_does() {
        // Prepare: carol's ticket, good for a minute
        let store = MemoryConnections::default();
        let ticket = snapglow::live::new_ticket();
        let later = Timestamp::now().millis() / 1000 + 60;
        (store.tickets.lock().unwrap()).insert(ticket.clone(), ("carol".into(), later));

        // Act
        let first = handle(&store, authorizer_event(Some(&ticket)))
            .await
            .unwrap();
        let second = handle(&store, authorizer_event(Some(&ticket)))
            .await
            .unwrap();
        let none = handle(&store, authorizer_event(None)).await.unwrap();
        let forged = handle(&store, authorizer_event(Some("x' OR 1=1")))
            .await
            .unwrap();

        // Assess: allowed once, for carol, with her id in the context; denied after
        let effect = |answer: &Value| answer["policyDocument"]["Statement"][0]["Effect"].clone();
        assert_eq!(effect(&first), "Allow");
        assert_eq!(first["context"]["user_id"], "carol");
        assert_eq!(
            first["policyDocument"]["Statement"][0]["Resource"],
            "arn:aws:execute-api:eu-west-1:1:api/prod/$connect"
        );
        for denied in [&second, &none, &forged] {
            assert_eq!(effect(denied), "Deny", "{denied}");
            assert!(denied.get("context").is_none());
        }
    }

    #[tokio::test]
    async fn an_expired_ticket_is_denied() {
        let store = MemoryConnections::default();
        let ticket = snapglow::live::new_ticket();
        (store.tickets.lock().unwrap()).insert(ticket.clone(), ("carol".into(), 1));
        let answer = handle(&store, authorizer_event(Some(&ticket)))
            .await
            .unwrap();
        assert_eq!(answer["policyDocument"]["Statement"][0]["Effect"], "Deny");
    }

    #[tokio::test]
    async fn connect_records_the_authorized_user_and_disconnect_forgets_the_connection() {
        // Prepare
        let store = MemoryConnections::default();
        let carol = json!({ "principalId": "carol", "user_id": "carol" });

        // Act
        let connected = handle(&store, route_event("$connect", "c1=", carol))
            .await
            .unwrap();
        let nobody = handle(&store, route_event("$connect", "c2=", Value::Null))
            .await
            .unwrap();
        let listed = store.of_user("carol", 0).await.unwrap();
        let beat = handle(&store, route_event("$default", "c1=", Value::Null))
            .await
            .unwrap();
        let gone = handle(&store, route_event("$disconnect", "c1=", Value::Null))
            .await
            .unwrap();
        let again = handle(&store, route_event("$disconnect", "c1=", Value::Null))
            .await
            .unwrap();

        // Assess
        assert_eq!(connected["statusCode"], 200);
        assert_eq!(
            nobody["statusCode"], 403,
            "a route without an authorizer admits no one"
        );
        assert_eq!(listed, ["c1="]);
        assert_eq!(beat["statusCode"], 200);
        assert_eq!(
            (gone["statusCode"].clone(), again["statusCode"].clone()),
            (200.into(), 200.into())
        );
        assert!(store.of_user("carol", 0).await.unwrap().is_empty());
    }
}

//! `POST /me/live-ticket`: a one-time ticket to open the live WebSocket with. Browsers cannot
//! send an `Authorization` header on a WebSocket, and an access token in a URL would land in
//! logs and histories for its hour: the JWT-protected API issues a ticket good once, for a
//! minute, which the WebSocket API's authorizer takes back on `$connect`.

use snapglow::contracts::Timestamp;
use snapglow::live::{TICKET_TTL, new_ticket, ticket_key};

use super::Api;
use crate::error::HandlerError;
use crate::http::ApiResponse;
use crate::problem::Problem;
use crate::store::Store;
use crate::views::LiveTicketView;

impl<S: Store> Api<S> {
    /// One PutItem.
    pub(super) async fn live_ticket(&self, sub: &str) -> Result<ApiResponse, HandlerError> {
        let Some(live_url) = &self.live_url else {
            return Err(Problem::not_found("this stack has no live push").into());
        };
        let ticket = new_ticket();
        let (key, _) = ticket_key(&ticket);
        let expires = Timestamp::now().millis() / 1000 + TICKET_TTL.as_secs() as i64;
        self.store.issue_ticket(&key, sub, expires).await?;
        Ok(ApiResponse::json(
            201,
            &LiveTicketView {
                url: format!("{live_url}?ticket={ticket}"),
                expires_in_seconds: TICKET_TTL.as_secs(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::handlers::tests::{api, json, request};

    #[test]
    fn a_ticket_route_is_a_write() {
        assert!(crate::routes::Route::LiveTicket.writes());
    }

    #[tokio::test]
    async fn a_ticket_is_stored_by_its_hash_for_a_minute_and_only_the_url_carries_it() {
        // Prepare
        let api = api();

        // Act
        let issued = (api.handle(request("POST", "/me/live-ticket", Some("carol"), ""))).await;
        let again = (api.handle(request("POST", "/me/live-ticket", Some("carol"), ""))).await;

        // Assess: a fresh ticket each time, in the URL; the store holds its hash for carol
        assert_eq!(issued.status, 201);
        let url = json(&issued)["url"].as_str().unwrap().to_owned();
        let ticket = url.split_once("?ticket=").unwrap().1.to_owned();
        assert!(url.starts_with("wss://live.example/prod?ticket="));
        assert!(snapglow::live::is_ticket(&ticket));
        assert_ne!(json(&again)["url"], json(&issued)["url"]);
        assert_eq!(json(&issued)["expires_in_seconds"], 60);
        let tickets = api.store.tickets.lock().unwrap();
        let (key, _) = snapglow::live::ticket_key(&ticket);
        let (user, expires) = tickets.get(&key).cloned().unwrap();
        assert_eq!(user, "carol");
        let now = snapglow::contracts::Timestamp::now().millis() / 1000;
        assert!(
            (now + 55..=now + 61).contains(&expires),
            "{expires} vs {now}"
        );
        assert!(tickets.keys().all(|k| !k.contains(&ticket)));
    }
}

//! A request and its response in plain types: what `main.rs` makes of lambda_http's request
//! (payload format 2.0) and turns back into its response. Also what every handler reads the
//! same way: a JSON body, a page's `limit` and `cursor`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::problem::Problem;
use crate::store::{Cursor, Listing};

/// Request bodies are small JSON documents; anything larger is refused unread.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A listing's page size, unless the client asks for another.
const PAGE_DEFAULT: i32 = 20;

#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// The verified token's `sub`; `None` only if the authorizer was bypassed.
    pub sub: Option<String>,
    /// The token's `username` claim: shown beside the caller's photos, never used to decide
    /// anything.
    pub username: Option<String>,
    /// The token's `token_use` claim (Cognito's: `access` or `id`); `None` for an issuer that
    /// sets none.
    pub token_use: Option<String>,
    pub correlation_id: String,
    pub body: Vec<u8>,
    /// When the invocation ends (epoch ms, the Lambda context's deadline); `None` outside
    /// Lambda: the function's 10 s timeout from now.
    pub deadline_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json(status: u16, value: &impl Serialize) -> ApiResponse {
        ApiResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).expect("responses serialize"),
        }
    }

    /// 202: accepted, not finished: the same request again after `retry_after` seconds goes
    /// on with it.
    pub fn accepted_retry(retry_after: u64) -> ApiResponse {
        ApiResponse {
            status: 202,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("retry-after".into(), retry_after.to_string()),
            ],
            body: br#"{"status":"erasing"}"#.to_vec(),
        }
    }

    /// 204: done, nothing to say.
    pub fn no_content() -> ApiResponse {
        ApiResponse {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
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

impl ApiRequest {
    /// The body as `T`, or the problem that tells the client what to fix.
    pub fn json_body<'a, T: Deserialize<'a>>(&'a self) -> Result<T, Problem> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(Problem::body_too_large(MAX_BODY_BYTES));
        }
        // serde's message names the unknown or missing field and what was expected.
        serde_json::from_slice(&self.body).map_err(|e| Problem::invalid_body(e.to_string()))
    }

    /// The page a listing asks for: `limit` (1 to `max`) and where to start (`cursor`).
    pub fn page(&self, max: i32, listing: &Listing) -> Result<(i32, Option<Cursor>), Problem> {
        let limit = match self.query.get("limit") {
            None => PAGE_DEFAULT.min(max),
            Some(text) => text
                .parse::<i32>()
                .ok()
                .filter(|l| (1..=max).contains(l))
                .ok_or_else(|| {
                    Problem::invalid_query(format!("limit must be a number from 1 to {max}"))
                })?,
        };
        let cursor =
            match self.query.get("cursor") {
                None => None,
                Some(text) => Some(Cursor::decode(text, listing).ok_or_else(|| {
                    Problem::invalid_query("cursor is not one this API handed out")
                })?),
            };
        Ok((limit, cursor))
    }
}

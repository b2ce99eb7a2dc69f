//! Errors as `application/problem+json` (RFC 9457). `type` is stable: clients branch on it,
//! never on `title` or `detail`, which are for people.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Seconds to wait, for 429 (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    fn new(slug: &str, title: &'static str, status: u16, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:snapglow:problem:{slug}"),
            title,
            status,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn unauthorized() -> Problem {
        Problem::new(
            "unauthorized",
            "Sign in first",
            401,
            "the request carries no verified user; send a bearer token from the sign-in",
        )
    }
    pub fn not_an_access_token() -> Problem {
        Problem::new(
            "unauthorized",
            "Sign in first",
            401,
            "send the access token from the sign-in, not the ID token",
        )
    }
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new("not-found", "Not found", 404, detail)
    }
    pub fn method_not_allowed(allowed: &str) -> Problem {
        Problem::new(
            "method-not-allowed",
            "Method not allowed",
            405,
            format!("this path takes {allowed}"),
        )
    }
    pub fn invalid_body(detail: impl Into<String>) -> Problem {
        Problem::new("invalid-body", "The request body is not valid", 400, detail)
    }
    pub fn invalid_query(detail: impl Into<String>) -> Problem {
        Problem::new(
            "invalid-query",
            "A query parameter is not valid",
            400,
            detail,
        )
    }
    pub fn body_too_large(limit: usize) -> Problem {
        Problem::new(
            "body-too-large",
            "The request body is too large",
            413,
            format!("request bodies are limited to {limit} bytes"),
        )
    }
    pub fn upload_too_large(detail: impl Into<String>) -> Problem {
        Problem::new(
            "upload-size",
            "The upload's size is not accepted",
            413,
            detail,
        )
    }
    pub fn unsupported_type(detail: impl Into<String>) -> Problem {
        Problem::new(
            "unsupported-media-type",
            "This type of file is not accepted",
            415,
            detail,
        )
    }
    pub fn too_many_uploads(limit: u64, retry_after: u64) -> Problem {
        let detail = format!("at most {limit} uploads an hour; try again in {retry_after} s");
        Problem::spent("too-many-uploads", "Too many uploads", detail, retry_after)
    }
    pub fn too_many_upload_bytes(limit: u64, retry_after: u64) -> Problem {
        let detail =
            format!("at most {limit} bytes of uploads a day (UTC); try again in {retry_after} s");
        Problem::spent(
            "too-many-upload-bytes",
            "Too many bytes uploaded today",
            detail,
            retry_after,
        )
    }
    pub fn too_many_requests(limit: u64, retry_after: u64) -> Problem {
        let detail = format!("at most {limit} requests a minute; try again in {retry_after} s");
        Problem::spent(
            "too-many-requests",
            "Too many requests",
            detail,
            retry_after,
        )
    }
    /// 429: one of the caller's limits is spent until `retry_after` seconds from now.
    fn spent(slug: &str, title: &'static str, detail: String, retry_after: u64) -> Problem {
        let mut problem = Problem::new(slug, title, 429, detail);
        problem.retry_after = Some(retry_after);
        problem
    }
    pub fn not_published(detail: impl Into<String>) -> Problem {
        Problem::new("not-published", "The image is not published", 409, detail)
    }
    pub fn account_erased() -> Problem {
        Problem::new(
            "account-erased",
            "This account was deleted",
            403,
            "the account this token was issued to is deleted; sign up again to use snapglow",
        )
    }
    pub fn still_pending(detail: impl Into<String>) -> Problem {
        Problem::new(
            "still-pending",
            "The upload is still being processed",
            409,
            detail,
        )
    }
    pub fn busy(detail: impl Into<String>) -> Problem {
        Problem::new("busy", "Try again", 503, detail)
    }
    pub fn internal() -> Problem {
        Problem::new(
            "internal",
            "Something went wrong on our side",
            500,
            "the error is logged with this request's correlation id",
        )
    }
}

//! CORS as API Gateway applies an HTTP API's `CorsConfiguration`: it answers preflights
//! itself, before any authorizer, and adds the allow and expose headers to every answer to an
//! allowed origin.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use crate::lambda::http::respond;
use crate::template::model::Cors;

pub(super) fn allowed_origin<'a>(cors: &Cors, origin: &'a str) -> Option<&'a str> {
    crate::guard::origin_listed(&cors.allow_origins, origin).then_some(origin)
}

/// API Gateway answers a CORS preflight itself, before any authorizer runs.
pub(super) fn preflight(cors: &Cors, origin: &str) -> Response<Full<Bytes>> {
    let mut response = respond(StatusCode::NO_CONTENT, Bytes::new());
    if let Some(origin) = allowed_origin(cors, origin) {
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        };
        set("access-control-allow-origin", origin.to_owned());
        set("access-control-allow-methods", cors.allow_methods.join(","));
        set("access-control-allow-headers", cors.allow_headers.join(","));
        if let Some(age) = cors.max_age {
            set("access-control-max-age", age.to_string());
        }
        if cors.allow_credentials == Some(true) {
            set("access-control-allow-credentials", "true".into());
        }
    }
    response
}

/// The CORS headers of an answer to `origin`, unless the function set its own.
pub(super) fn decorate(cors: &Cors, origin: &str, response: &mut Response<Full<Bytes>>) {
    let Some(origin) = allowed_origin(cors, origin) else {
        return;
    };
    if response
        .headers()
        .contains_key("access-control-allow-origin")
    {
        return;
    }
    let headers = response.headers_mut();
    if let Ok(value) = origin.parse() {
        headers.insert("access-control-allow-origin", value);
    }
    if let Ok(value) = cors.expose_headers.join(",").parse() {
        headers.insert("access-control-expose-headers", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preflight_names_only_an_allowed_origin() {
        let cors = Cors {
            allow_origins: vec!["http://127.0.0.1:3000".into()],
            allow_methods: vec!["GET".into(), "PUT".into()],
            allow_headers: vec!["authorization".into()],
            max_age: Some(600),
            ..Default::default()
        };
        let allowed = preflight(&cors, "http://127.0.0.1:3000");
        assert_eq!(
            allowed.headers()["access-control-allow-origin"],
            "http://127.0.0.1:3000"
        );
        assert_eq!(allowed.headers()["access-control-max-age"], "600");
        let other = preflight(&cors, "http://evil.example");
        assert!(!other.headers().contains_key("access-control-allow-origin"));
    }
}

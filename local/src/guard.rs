//! Who may reach the local stack's servers: this machine's programs, and browsers only from the
//! origins a server serves.
//!
//! HAZARD: every server here listens on 127.0.0.1, yet a web page the developer visits can
//! still send it requests (a form POST, a `no-cors` fetch) and, with a DNS name of its own
//! rebound to 127.0.0.1, read the answers as if they were its own. So each server refuses a
//! request whose `Host` is not a loopback name (rebinding) and one whose `Origin` is not an
//! origin it serves (a foreign page). The emulator does the same in
//! `local/emulator/moto_server.py`, and takes no browser at all: browsers reach the stack
//! through the fronts (the site, the HTTP API, the presigned gate, the Cognito endpoint),
//! which drop the browser's `Origin` when they forward.

use hyper::HeaderMap;
use hyper::StatusCode;

use crate::lambda::http::respond;

/// The names a loopback server answers to (with any port).
const LOOPBACK: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

/// Which requests a server takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Programs only: a request carrying an `Origin` (a browser's) is refused.
    Programs,
    /// Programs, and browsers from these origins (`http://127.0.0.1:3000`).
    Origins(Vec<String>),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "Host {0:?} is not this machine: the local stack answers only requests for 127.0.0.1 or localhost (a DNS name rebound to 127.0.0.1 is refused)"
    )]
    Host(String),
    #[error(
        "Origin {0:?} may not call this local server: only the local site's pages may, and only through the site, the HTTP API, the presigned gate and the Cognito endpoint"
    )]
    Origin(String),
}

impl Guard {
    /// The refusal for a request with these headers, if it is refused.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let text = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let host = text("host").unwrap_or_default();
        if !is_loopback(&host) {
            return Err(Refused::Host(host));
        }
        match (self, text("origin")) {
            (_, None) => Ok(()),
            (Guard::Origins(allowed), Some(origin)) if origin_listed(allowed, &origin) => Ok(()),
            (_, Some(origin)) => Err(Refused::Origin(origin)),
        }
    }

    /// 403 with the refusal's reason, or `None` for a request the server may answer.
    pub fn refusal(
        &self,
        headers: &HeaderMap,
    ) -> Option<hyper::Response<http_body_util::Full<hyper::body::Bytes>>> {
        let refused = self.check(headers).err()?;
        tracing::warn!(%refused, "refused a request to a local server");
        Some(respond(StatusCode::FORBIDDEN, refused.to_string()))
    }
}

/// Whether `origin` is one of `allowed`, as CORS rules match it: `*` is any origin, and the
/// comparison ignores case. The one match of the guards and of the HTTP API's CORS.
pub fn origin_listed(allowed: &[String], origin: &str) -> bool {
    allowed
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
}

/// Whether a `Host` header names this machine: a loopback name, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    LOOPBACK.contains(&name.to_ascii_lowercase().as_str())
}

/// Drops what a browser adds to a request, before a front forwards it to the emulator (which
/// refuses browsers): the front has checked it already.
pub fn strip_browser_headers(headers: &mut HeaderMap) {
    for name in ["origin", "referer"] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_loopback_hosts_and_the_servers_own_origins_pass() {
        let site = Guard::Origins(vec!["http://127.0.0.1:3000".into()]);
        let programs = Guard::Programs;
        for host in [
            "127.0.0.1:3001",
            "localhost:5000",
            "LOCALHOST",
            "[::1]:80",
            "127.0.0.1",
        ] {
            assert_eq!(
                programs.check(&headers(&[("host", host)])),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "evil.example:3001",
            "127.0.0.1.evil.example",
            "",
            "10.0.0.1:3001",
        ] {
            assert!(
                matches!(
                    programs.check(&headers(&[("host", host)])),
                    Err(Refused::Host(_))
                ),
                "{host}"
            );
        }
        let from = |origin: &str| headers(&[("host", "127.0.0.1:3001"), ("origin", origin)]);
        assert_eq!(site.check(&from("http://127.0.0.1:3000")), Ok(()));
        for origin in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:3000.evil.example",
        ] {
            assert!(
                matches!(site.check(&from(origin)), Err(Refused::Origin(_))),
                "{origin}"
            );
        }
        assert!(matches!(
            programs.check(&from("http://127.0.0.1:3000")),
            Err(Refused::Origin(_))
        ));
    }
}

//! The web client's site, as the template's CloudFront distribution serves it on AWS: the
//! files of `web/` (the page, its scripts and styles, exactly as committed) and a
//! `config.json` naming the API, the user pool's client and, locally only, the demo users
//! to sign in as. Loopback only.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use std::convert::Infallible;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::guard::Guard;
use crate::lambda::http::respond;
use crate::stack::StackInfo;
use crate::stack::clients::{LocalClients, REGION};
use crate::stack::cognito_endpoint::CognitoEndpoint;
use crate::stack::users::{self, UserError};

/// The users `make demo` creates; the site offers to sign in as them.
pub const DEMO_USERS: [&str; 3] = ["alice", "bob", "carol"];

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("serving the web client on 127.0.0.1:{port}; pick another port with --site-port")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} has no index.html: the web client lives in web/ of the checkout")]
    NoSite(String),
    #[error("creating the demo users of the local pool")]
    Users(#[source] UserError),
}

/// A running site; stops when dropped.
pub struct SiteServer {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
    /// Where the page signs in (Cognito's public endpoint, with its CORS).
    _cognito: CognitoEndpoint,
}

impl Drop for SiteServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Site {
    root: PathBuf,
    /// The Content-Security-Policy header of every answer.
    policy: String,
    config: Vec<u8>,
}

impl SiteServer {
    /// Serves `web_dir` on 127.0.0.1:`port` (0: any free port) with a config pointing at the
    /// HTTP API at `api_url`, under a Content-Security-Policy that lets its pages reach that
    /// API, the live WebSocket API at `live_url` (its tickets name it), the Cognito endpoint
    /// and S3 at `s3_url` (the presigned gate) only; the demo users exist in the pool once this
    /// returns.
    pub async fn start(
        stack: &StackInfo,
        clients: &LocalClients,
        web_dir: &Path,
        api_url: &str,
        live_url: Option<&str>,
        s3_url: &str,
        port: u16,
    ) -> Result<SiteServer, SiteError> {
        if !web_dir.join("index.html").is_file() {
            return Err(SiteError::NoSite(web_dir.display().to_string()));
        }
        let (pool_id, client_id) = users::pool_and_client(stack).map_err(SiteError::Users)?;
        let mut demo_users = Vec::new();
        for username in DEMO_USERS {
            let password = users::ensure(clients, stack, username)
                .await
                .map_err(SiteError::Users)?;
            demo_users.push(json!({ "username": username, "password": password }));
        }
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| SiteError::Bind { port, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| SiteError::Bind { port, source })?
            .port();
        let origin = format!("http://127.0.0.1:{bound}");
        let cognito = CognitoEndpoint::start(&stack.endpoint_url, &origin)
            .await
            .map_err(|source| SiteError::Bind { port: 0, source })?;
        let config = json!({
            "apiUrl": api_url.trim_end_matches('/'),
            // The page calls Cognito's JSON API itself; locally the emulator answers it.
            "cognito": {
                "endpoint": cognito.url,
                "clientId": client_id,
                // SRP signs over the pool's name (what follows the region and `_`)
                "userPoolId": pool_id,
                "region": REGION,
            },
            "demoUsers": demo_users,
        });
        let origin_of = |url: &str| url.trim_end_matches('/').to_owned();
        let site = Arc::new(Site {
            policy: content_security_policy(&Sources {
                api: origin_of(api_url),
                // ws://127.0.0.1:{port}: the socket's origin (its path is the stage).
                live: live_url
                    .map(|url| url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/"))
                    .unwrap_or_default(),
                cognito: origin_of(&cognito.url),
                uploads: origin_of(s3_url),
                renditions: origin_of(s3_url),
            }),
            root: web_dir.to_owned(),
            config: serde_json::to_vec_pretty(&config).expect("config serializes"),
        });
        // Pages of other origins may not read the site (its config names the demo users).
        let server =
            crate::lambda::http::serve(listener, Guard::Origins(vec![origin]), site, answer);
        Ok(SiteServer {
            url: format!("http://127.0.0.1:{bound}/"),
            server,
            _cognito: cognito,
        })
    }
}

async fn answer(
    site: Arc<Site>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
        return Ok(respond(StatusCode::METHOD_NOT_ALLOWED, "GET only"));
    }
    let path = request.uri().path();
    let (body, content_type) = if path == "/config.json" {
        (site.config.clone(), "application/json")
    } else {
        let Some(file) = file_of(&site.root, path) else {
            return Ok(respond(StatusCode::NOT_FOUND, "not found"));
        };
        match tokio::fs::read(&file).await {
            Ok(bytes) => (bytes, content_type_of(&file)),
            Err(_) => return Ok(respond(StatusCode::NOT_FOUND, "not found")),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    // What the distribution's response headers policy sets on AWS.
    if let Ok(policy) = hyper::header::HeaderValue::from_str(&site.policy) {
        headers.insert("content-security-policy", policy);
    }
    for (name, value) in [
        ("cache-control", "no-cache"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        ("x-frame-options", "DENY"),
    ] {
        headers.insert(name, hyper::header::HeaderValue::from_static(value));
    }
    Ok(response)
}

/// Where the web client's pages may connect and load images from, besides their own origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The HTTP API.
    pub api: String,
    /// The live WebSocket API (empty: none).
    pub live: String,
    /// Cognito's public endpoint (sign-in, refresh, revocation).
    pub cognito: String,
    /// Where upload URLs point (PUT).
    pub uploads: String,
    /// Where rendition URLs point (images).
    pub renditions: String,
}

/// The web client's Content-Security-Policy, the one policy of the site: here with local URLs,
/// on AWS in template.yaml's `WebSecurityHeaders` with the stack's (a test keeps them one).
/// Scripts and styles of the site only (no inline code, no `eval`), connections to the API,
/// Cognito and the uploads bucket only, images from the site, `data:` (the icon) and the
/// renditions bucket; no plugins, no frames, no forms posted anywhere, no `<base>`.
pub fn content_security_policy(sources: &Sources) -> String {
    let Sources {
        api,
        live,
        cognito,
        uploads,
        renditions,
    } = sources;
    let connect = ["'self'", api, live, cognito, uploads]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    [
        "default-src 'none'".to_owned(),
        "script-src 'self'".to_owned(),
        "style-src 'self'".to_owned(),
        format!("img-src 'self' data: {renditions}"),
        format!("connect-src {connect}"),
        "manifest-src 'self'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'none'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
    ]
    .join("; ")
}

/// The file a URL path names under `root`: `/` is index.html; nothing outside `root`, nothing
/// hidden, and not the test tooling (`node_modules/`, `tests/`).
fn file_of(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    let relative = Path::new(relative);
    let plain = relative.components().all(|c| match c {
        Component::Normal(part) => {
            let part = part.to_string_lossy();
            !part.starts_with('.') && part != "node_modules" && part != "tests"
        }
        _ => false,
    });
    let file = root.join(relative);
    (plain && file.is_file()).then_some(file)
}

fn content_type_of(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_files_under_the_root_are_served() {
        // Prepare
        let root = std::env::temp_dir().join(format!("site-test-{}", std::process::id()));
        std::fs::create_dir_all(root.join("node_modules")).unwrap();
        std::fs::write(root.join("index.html"), "<!doctype html>").unwrap();
        std::fs::write(root.join("app.js"), "").unwrap();
        std::fs::write(root.join("node_modules").join("x.js"), "").unwrap();

        // Act / Assess
        assert_eq!(file_of(&root, "/"), Some(root.join("index.html")));
        assert_eq!(file_of(&root, "/app.js"), Some(root.join("app.js")));
        assert_eq!(file_of(&root, "/../etc/passwd"), None);
        assert_eq!(file_of(&root, "/node_modules/x.js"), None);
        assert_eq!(file_of(&root, "/.git/config"), None);
        assert_eq!(file_of(&root, "/missing.js"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn the_local_site_and_the_distribution_send_one_content_security_policy() {
        // Prepare: the distribution's policy as template.yaml writes it (a !Sub of the stack's
        // URLs)
        let root = crate::stack::project::project_root();
        let template =
            crate::template::Template::load(&crate::stack::project::template_path(&root)).unwrap();
        let headers = &template.resources["WebSecurityHeaders"].properties;
        let policy = &headers["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"]
            ["ContentSecurityPolicy"]["Fn::Sub"];

        // Act: the local site's policy, with the distribution's URLs
        let bucket = |name: &str| {
            format!(
                "https://${{AWS::StackName}}-{name}-${{AWS::AccountId}}.s3.${{AWS::Region}}.${{AWS::URLSuffix}}"
            )
        };
        let local = content_security_policy(&Sources {
            api: "https://*.execute-api.${AWS::Region}.${AWS::URLSuffix}".into(),
            live: "wss://*.execute-api.${AWS::Region}.${AWS::URLSuffix}".into(),
            cognito: "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}".into(),
            uploads: bucket("uploads"),
            renditions: bucket("renditions"),
        });

        // Assess
        assert_eq!(policy.as_str(), Some(local.as_str()), "{headers}");
    }
}

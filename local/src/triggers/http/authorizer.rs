//! The JWT authorizer, as API Gateway's HTTP APIs run it: the token's signature against the
//! issuer's keys, `iss`, `exp`, `nbf`, and `aud` (ID tokens) or `client_id` (access tokens)
//! against the audience. Locally a Cognito issuer's keys come from the emulator
//! (`{endpoint}/{pool_id}/.well-known/jwks.json`).

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use tokio::sync::Mutex;

use crate::lambda::http::call;
use crate::template::model::JwtAuthorizer;

/// The issuers' keys, fetched once each.
pub(super) struct Authorizer {
    /// Where the emulator serves a Cognito pool's keys.
    endpoint_url: String,
    keys: Mutex<BTreeMap<String, jsonwebtoken::jwk::JwkSet>>,
}

/// Why the JWT authorizer refused a token (API Gateway answers every one with 401; the reason
/// is logged).
#[derive(Debug, thiserror::Error)]
pub(super) enum Refusal {
    #[error("not a JWT")]
    NotJwt(#[source] jsonwebtoken::errors::Error),
    #[error("the token names no key (kid)")]
    NoKeyId,
    #[error("the issuer has no key {0:?}")]
    UnknownKey(String),
    #[error("the issuer's key {kid:?} is unusable")]
    BadKey {
        kid: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error("invalid token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("audience {found:?} is not one of {wanted:?}")]
    Audience {
        found: Vec<String>,
        wanted: Vec<String>,
    },
    /// A valid token without any of the route's scopes (an ID token carries none): API
    /// Gateway answers 403.
    #[error("the token's scopes {found:?} hold none of {wanted:?}")]
    Scope {
        found: Vec<String>,
        wanted: Vec<String>,
    },
    #[error("only Cognito issuers can be checked locally, not {0}")]
    ForeignIssuer(String),
    #[error("fetching the issuer's keys from {url}")]
    Keys {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Authorizer {
    pub(super) fn new(endpoint_url: &str) -> Self {
        Self {
            endpoint_url: endpoint_url.to_owned(),
            keys: Mutex::new(BTreeMap::new()),
        }
    }

    /// The JWT authorizer's checks; returns the token's claims.
    pub(super) async fn verify(
        &self,
        authorizer: &JwtAuthorizer,
        token: &str,
    ) -> Result<Map<String, Value>, Refusal> {
        let jwt = &authorizer.jwt_configuration;
        use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
        let header = decode_header(token).map_err(Refusal::NotJwt)?;
        let kid = header.kid.ok_or(Refusal::NoKeyId)?;
        let keys = self.keys_of(&jwt.issuer).await?;
        let jwk = keys
            .find(&kid)
            .ok_or_else(|| Refusal::UnknownKey(kid.clone()))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|source| Refusal::BadKey {
            kid: kid.clone(),
            source,
        })?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[jwt.issuer.as_str()]);
        validation.validate_nbf = true;
        // `aud` (ID tokens) or `client_id` (Cognito access tokens), checked below as API Gateway does.
        validation.validate_aud = false;
        validation.leeway = 0;
        let data =
            decode::<Map<String, Value>>(token, &key, &validation).map_err(Refusal::Invalid)?;
        let claims = data.claims;
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => claims
                .get("client_id")
                .and_then(Value::as_str)
                .into_iter()
                .collect(),
        };
        if !audiences
            .iter()
            .any(|a| jwt.audience.iter().any(|wanted| wanted == a))
        {
            return Err(Refusal::Audience {
                found: audiences.iter().map(|a| (*a).to_owned()).collect(),
                wanted: jwt.audience.clone(),
            });
        }
        let wanted = &authorizer.authorization_scopes;
        if !wanted.is_empty() {
            let found: Vec<&str> = (claims.get("scope").or_else(|| claims.get("scp")))
                .map(|scopes| match scopes {
                    Value::String(text) => text.split_whitespace().collect(),
                    Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default();
            if !found.iter().any(|scope| wanted.iter().any(|w| w == scope)) {
                return Err(Refusal::Scope {
                    found: found.iter().map(|s| (*s).to_owned()).collect(),
                    wanted: wanted.clone(),
                });
            }
        }
        Ok(claims)
    }

    /// The issuer's signing keys, fetched once. A Cognito issuer's keys come from the emulator.
    async fn keys_of(&self, issuer: &str) -> Result<jsonwebtoken::jwk::JwkSet, Refusal> {
        let mut cache = self.keys.lock().await;
        if let Some(keys) = cache.get(issuer) {
            return Ok(keys.clone());
        }
        let pool = issuer
            .strip_prefix("https://cognito-idp.")
            .and_then(|rest| rest.split_once('/'))
            .map(|(_, pool)| pool.to_owned())
            .ok_or_else(|| Refusal::ForeignIssuer(issuer.to_owned()))?;
        let url = format!("{}/{pool}/.well-known/jwks.json", self.endpoint_url);
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| Refusal::Keys {
            url: url.clone(),
            source,
        };
        let (status, _, body) = call("GET", &url, &[], Vec::new())
            .await
            .map_err(|e| failed(e.into()))?;
        if status != 200 {
            return Err(failed(format!("the emulator answered {status}").into()));
        }
        let keys: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&body).map_err(|e| failed(e.into()))?;
        cache.insert(issuer.to_owned(), keys.clone());
        Ok(keys)
    }
}

//! The template's HTTP API on loopback, answered the way API Gateway's HTTP APIs do: routes
//! from the functions' `HttpApi` events, the JWT authorizer's checks (the token's signature
//! against the issuer's keys, `iss`, `exp`, `nbf`, and `aud` or `client_id` against the
//! audience; `401` otherwise), CORS preflights answered before authorization, payload format
//! 2.0 events to the real binary through the Runtime API, and API Gateway's limits (10 MB
//! request bodies, a 30 s integration timeout).
//!
//! Locally the Cognito issuer's keys come from the emulator
//! (`{endpoint}/{pool_id}/.well-known/jwks.json`); the issuer in the tokens is AWS's URL.
//!
//! One file per concern: [`server`] (start-up, the request path), `routes.rs` (which route a
//! request reaches), `cors.rs` (preflights and response headers), `payload.rs` (payload
//! format 2.0 both ways), `authorizer.rs` (the JWT authorizer).

mod authorizer;
mod cors;
mod payload;
mod routes;
pub mod server;

pub use server::{HttpApiError, HttpApiServer, api_binaries};

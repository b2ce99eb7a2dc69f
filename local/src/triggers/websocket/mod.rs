//! The template's WebSocket API on loopback, answered the way API Gateway's WebSocket APIs do
//! (moto's management API is only a sink: it never raises `GoneException` and serves no
//! socket):
//!
//! - the handshake runs the REQUEST authorizer (a missing identity source is `401`, a `Deny`
//!   `403`), then the `$connect` route (a non-2xx answer refuses the handshake with it), each
//!   through the real binary and the Runtime API;
//! - a client's message goes to its route by `$request.body.action`, else `$default`; a
//!   message over 128 KB closes the connection with 1009;
//! - `$disconnect` runs when either side closes, and when API Gateway's limits close the
//!   connection: 10 minutes idle and 2 hours in all ([`Limits`], shortened for tests);
//! - the `@connections` management API on `/{stage}/@connections/{id}`: `POST` sends a
//!   message, `GET` describes the connection, `DELETE` closes it; an unknown or closed
//!   connection is `410 GoneException`, a body over 128 KB `413`, an unsigned request `403`.
//!   Signatures are not verified (the emulator's IAM has no `execute-api` actions).
//!
//! One file per concern: `shape.rs` (the template's ApiGatewayV2 resources), `server.rs` (the
//! handshake, the connections, the management API).

mod server;
mod shape;

pub use server::{Limits, LiveError, LiveServer};
pub use shape::WebSocketShape;

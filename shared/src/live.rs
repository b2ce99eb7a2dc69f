//! The connections table of live push, which three parts share: the API issues one-time
//! tickets in it (`POST /me/live-ticket`), the WebSocket API's authorizer takes them back and
//! its `$connect` / `$disconnect` routes keep the open connections, and the pusher reads each
//! user's connections to send them what their inbox now shows.
//!
//! Its items (`pk` / `sk`, TTL on `expires_at`):
//! - `TICKET#{sha256 of the ticket}` / `TICKET`: a ticket for `user_id`, good once until
//!   `expires_at`. Only the hash is stored: a read of the table gives no usable ticket;
//! - `USER#{user}` / `CONN#{connection id}`: an open connection of the user (what the pusher
//!   queries), with `connected_at`;
//! - `CONN#{connection id}` / `CONN`: whose connection it is (`$disconnect` and a `410 Gone`
//!   carry only the connection id).
//!
//! A connection's two items are written together and expire together: API Gateway closes a
//! connection after two hours at most, and `$disconnect` is best-effort, so TTL removes what
//! a missed one leaves (TTL deletes lazily: readers skip expired items).

use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long a ticket may wait to be used: a client asks for one right before it connects.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// API Gateway's longest WebSocket connection (a quota that cannot be raised).
pub const CONNECTION_MAX: Duration = Duration::from_secs(2 * 3600);

/// How long a connection's items outlive its longest life: TTL may remove them only once
/// API Gateway has surely closed it.
pub const CONNECTION_SLACK: Duration = Duration::from_secs(300);

/// A new ticket: 244 random bits from the OS (two version-4 UUIDs), as 64 hex digits.
pub fn new_ticket() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether `text` can be a ticket [`new_ticket`] made: checked before any read, so a forged
/// value costs no table request.
pub fn is_ticket(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The key of `ticket`'s item.
pub fn ticket_key(ticket: &str) -> (String, &'static str) {
    let digest = Sha256::digest(ticket.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (format!("TICKET#{hex}"), "TICKET")
}

/// The key of `user`'s item for `connection_id`.
pub fn user_connection_key(user: &str, connection_id: &str) -> (String, String) {
    (user_pk(user), format!("CONN#{connection_id}"))
}

/// The partition holding `user`'s connections.
pub fn user_pk(user: &str) -> String {
    format!("USER#{user}")
}

/// The key of the item naming `connection_id`'s user.
pub fn connection_key(connection_id: &str) -> (String, &'static str) {
    (format!("CONN#{connection_id}"), "CONN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_random_hex_and_stored_by_hash_only() {
        let (a, b) = (new_ticket(), new_ticket());
        assert!(is_ticket(&a) && is_ticket(&b) && a != b);
        let (pk, sk) = ticket_key(&a);
        assert!(!pk.contains(&a), "the ticket itself is never stored");
        assert_eq!((pk.len(), sk), ("TICKET#".len() + 64, "TICKET"));
        assert_eq!(ticket_key(&a), ticket_key(&a));
        for forged in ["", "abc", &"g".repeat(64), &format!("{a}0")] {
            assert!(!is_ticket(forged), "{forged}");
        }
    }
}

//! The pure core of the notifier: what each event means for an owner's inbox, the keys that
//! make every write idempotent, and how a stored notification reads. No I/O here.

use serde::Serialize;
use snapglow::dedup::EventVersion;

/// The kinds of notification in an inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Published,
    Rejected,
    /// Held for review (the content scan, or people's reports): out of the feed until then.
    Held,
    Likes,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Published => "published",
            Kind::Rejected => "rejected",
            Kind::Held => "held",
            Kind::Likes => "likes",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "published" => Some(Kind::Published),
            "rejected" => Some(Kind::Rejected),
            "held" => Some(Kind::Held),
            "likes" => Some(Kind::Likes),
            _ => None,
        }
    }
}

/// Likes of one image whose `occurred_at` falls in one window share one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikeWindow {
    pub start_ms: i64,
}

impl LikeWindow {
    pub fn of(occurred_at_ms: i64, window_ms: i64) -> Self {
        Self {
            start_ms: occurred_at_ms.div_euclid(window_ms.max(1)) * window_ms.max(1),
        }
    }
}

/// A user's id: the sign-in token's `sub`.
pub type UserId = String;

pub fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// The notification's id; also the tail of its sort key.
pub fn notification_id(kind: Kind, image_id: &str, window: Option<LikeWindow>) -> String {
    match window {
        Some(window) => format!("{}-{image_id}-{}", kind.as_str(), window.start_ms),
        None => format!("{}-{image_id}", kind.as_str()),
    }
}

/// Sort keys order an inbox by creation time, so a reverse query is newest first.
pub fn notification_sk(created_ms: i64, id: &str) -> String {
    format!("N#{created_ms:013}#{id}")
}

/// Whether `text` can be a notification's sort key (as [`notification_sk`] makes them):
/// `N#`, 13 digits, `#`, a kind, `-`, then an image id (with a window's start for likes). An
/// id a client sends that cannot be one names no notification and is never looked up.
pub fn is_notification_sk(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("N#") else {
        return false;
    };
    let Some((millis, id)) = rest.split_once('#') else {
        return false;
    };
    let tail = [Kind::Published, Kind::Rejected, Kind::Held, Kind::Likes]
        .iter()
        .find_map(|kind| id.strip_prefix(kind.as_str())?.strip_prefix('-'));
    millis.len() == 13
        && millis.bytes().all(|b| b.is_ascii_digit())
        && tail.is_some_and(|tail| {
            // an image id (at most 128 bytes) and, for likes, `-` and a window's start
            (1..=150).contains(&tail.len())
                && tail
                    .bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'#' && b != b'/')
        })
}

/// One liker's latest fact inside a likes notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liker {
    pub user_id: String,
    pub liked: bool,
    pub version: EventVersion,
}

/// A notification as the inbox shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: String,
    /// Where it is stored in its owner's inbox (the item's sort key): what a reader names to
    /// mark it read.
    pub key: String,
    pub kind: Kind,
    pub image_id: String,
    /// Who did it, most recent first (the latest likers whose like still stands, at most 3).
    pub actors: Vec<String>,
    /// For likes: how many likes this notification counts (its window's, still standing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likes: Option<i64>,
    pub text: String,
    pub unread: bool,
    pub created_at: String,
    /// When its latest event happened: for likes, the newest like it counts (not its window's
    /// start); otherwise when it was created.
    pub updated_at: String,
}

/// The text of a likes notification of `count` likes whose latest likers are `names`, most
/// recent first: "A liked", "A and B liked", "A and 3 others liked".
pub fn likes_text(names: &[String], count: i64) -> String {
    match (names, count) {
        (_, ..=0) => String::new(),
        ([], 1) => "Someone liked your photo".to_owned(),
        ([], _) => format!("{count} people liked your photo"),
        ([one, ..], 1) => format!("{one} liked your photo"),
        ([first, second, ..], 2) => format!("{first} and {second} liked your photo"),
        ([first, ..], 2) => format!("{first} and 1 other liked your photo"),
        ([first, ..], _) => format!("{first} and {} others liked your photo", count - 1),
    }
}

/// The likers whose like stands, most recent first (notifications written before counts).
pub fn standing_likers(mut likers: Vec<Liker>) -> Vec<String> {
    likers.retain(|l| l.liked);
    likers.sort_by_key(|l| std::cmp::Reverse(l.version));
    likers.into_iter().map(|l| l.user_id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn liker(user: &str, liked: bool, at_ms: i64) -> Liker {
        Liker {
            user_id: user.into(),
            liked,
            version: EventVersion {
                revision: None,
                at_ms,
                event_id: Uuid::nil(),
            },
        }
    }

    #[test]
    fn texts_name_the_latest_liker_and_count_the_rest() {
        let actors = standing_likers(vec![
            liker("ann", true, 1),
            liker("bob", true, 3),
            liker("cy", false, 4),
            liker("dee", true, 2),
            liker("eve", true, 0),
        ]);
        assert_eq!(actors, ["bob", "dee", "ann", "eve"]);
        assert_eq!(
            likes_text(&actors[..3], 4),
            "bob and 3 others liked your photo"
        );
        assert_eq!(likes_text(&actors[..2], 2), "bob and dee liked your photo");
        assert_eq!(likes_text(&actors[..1], 1), "bob liked your photo");
        assert_eq!(
            likes_text(&actors[..1], 2),
            "bob and 1 other liked your photo"
        );
        assert_eq!(likes_text(&[], 1200), "1200 people liked your photo");
    }

    #[test]
    fn windows_are_aligned_and_keys_sort_by_time() {
        assert_eq!(LikeWindow::of(1_000_123, 900_000).start_ms, 900_000);
        assert_eq!(LikeWindow::of(1_800_000, 900_000).start_ms, 1_800_000);
        assert!(notification_sk(999, "a") < notification_sk(1000, "a"));
        assert_eq!(
            notification_id(Kind::Likes, "img", Some(LikeWindow { start_ms: 5 })),
            "likes-img-5"
        );
    }

    #[test]
    fn only_what_notification_sk_makes_passes_as_a_notification_id() {
        let window = Some(LikeWindow {
            start_ms: 1_795_000_000_000,
        });
        let made = [
            notification_sk(1, &notification_id(Kind::Published, "beach", None)),
            notification_sk(
                1_795_000_000_123,
                &notification_id(Kind::Likes, &Uuid::new_v4().to_string(), window),
            ),
            notification_sk(7, &notification_id(Kind::Rejected, &"x".repeat(128), None)),
        ];
        for sk in made {
            assert!(is_notification_sk(&sk), "{sk}");
        }
        let long = format!("N#0000000000001#likes-{}", "x".repeat(200));
        for text in [
            "",
            "N#",
            "N#1#published-beach",
            "N#000000000000a#published-beach",
            "N#0000000000001#shared-beach",
            "N#0000000000001#published-",
            "N#0000000000001#published-a#b",
            "N#0000000000001#published-a\u{7f}",
            "X#0000000000001#published-beach",
            long.as_str(),
        ] {
            assert!(!is_notification_sk(text), "{text:?}");
        }
    }
}

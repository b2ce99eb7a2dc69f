//! `GET` and `PUT /me/profile`: the caller's display name, what everyone else sees of them
//! instead of an id or their sign-in username; and how pages resolve the names of the people
//! they show.

use serde::Deserialize;
use snapglow::contracts::Timestamp;
use std::collections::HashMap;

use super::Api;
use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::problem::Problem;
use crate::store::{Profile, Store};
use crate::views::ProfileView;

/// The longest display name, in characters: a line of the feed on a phone.
pub const NAME_MAX_CHARS: usize = 50;

/// What a page shows for someone without a profile (an account from before profiles that
/// gave no name at sign-up, or one being erased): never their id or username.
pub const UNNAMED: &str = "Someone";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileRequest {
    display_name: String,
}

/// `raw` as a display name: trimmed, each run of whitespace one space, 1 to
/// [`NAME_MAX_CHARS`] characters with at least one letter or digit. Control characters and
/// the invisible ones that reorder or hide text (bidirectional overrides, zero-width spaces)
/// are refused: with them a name can pass for another or push text around it on a page.
pub fn display_name(raw: &str) -> Result<String, NameRefused> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(bad) = name.chars().find(|c| c.is_control() || invisible(*c)) {
        return Err(NameRefused::Hidden(bad));
    }
    let chars = name.chars().count();
    if !(1..=NAME_MAX_CHARS).contains(&chars) {
        return Err(NameRefused::Length(chars));
    }
    if !name.chars().any(char::is_alphanumeric) {
        return Err(NameRefused::NoLetterOrDigit);
    }
    Ok(name)
}

/// Why a display name is refused, in words the client can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameRefused {
    #[error("display_name may not contain U+{:04X}: use letters, digits, spaces and punctuation", u32::from(*.0))]
    Hidden(char),
    #[error("display_name must be 1 to {NAME_MAX_CHARS} characters, not {0}")]
    Length(usize),
    #[error("display_name needs at least one letter or digit")]
    NoLetterOrDigit,
}

/// Format characters that change how text around them shows, but not the zero-width joiner,
/// which emoji sequences need.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}' | '\u{200B}' | '\u{200C}'
        | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}')
}

/// Display names of a page's people, by user id.
pub struct Names(HashMap<String, String>);

impl Names {
    /// `user`'s name, or [`UNNAMED`].
    pub fn of(&self, user: &str) -> String {
        self.0
            .get(user)
            .cloned()
            .unwrap_or_else(|| UNNAMED.to_owned())
    }
}

impl<S: Store> Api<S> {
    /// The names of `users`: one BatchGetItem for the page (none when nobody is named).
    pub(super) async fn names(&self, users: &[String]) -> Result<Names, HandlerError> {
        if users.is_empty() {
            return Ok(Names(HashMap::new()));
        }
        Ok(Names(self.store.display_names(users).await?))
    }

    /// The caller's profile. The first read seeds it with the name given at sign-up (the user
    /// pool's `name`), so a new user is named everywhere without a step of their own.
    pub(super) async fn get_profile(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let mut profile = self.store.profile(sub).await?;
        // An erasing account is not given a profile again behind its erasure.
        if profile.is_none() && !self.store.erased(sub).await? {
            let username = request.username.as_deref().unwrap_or(sub);
            let given = self.store.signup_name(username).await?;
            if let Some(name) = given.as_deref().and_then(|n| display_name(n).ok()) {
                let seed = Profile {
                    display_name: name,
                    updated_at_ms: Timestamp::now().millis(),
                };
                profile = if self.store.put_profile(sub, &seed, true).await? {
                    Some(seed)
                } else {
                    // A PUT landed in between: its name stands.
                    self.store.profile(sub).await?
                };
            }
        }
        Ok(ApiResponse::json(200, &view(sub, profile)))
    }

    /// Sets the caller's display name (one PutItem); every page shows it from the next read.
    pub(super) async fn put_profile(
        &self,
        sub: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        let asked: ProfileRequest = request.json_body()?;
        let name = display_name(&asked.display_name)
            .map_err(|refused| Problem::invalid_body(refused.to_string()))?;
        let profile = Profile {
            display_name: name,
            updated_at_ms: Timestamp::now().millis(),
        };
        self.store.put_profile(sub, &profile, false).await?;
        Ok(ApiResponse::json(200, &view(sub, Some(profile))))
    }
}

fn view(sub: &str, profile: Option<Profile>) -> ProfileView {
    ProfileView {
        user_id: sub.to_owned(),
        display_name: profile.as_ref().map(|p| p.display_name.clone()),
        updated_at: profile.map(|p| Timestamp::from_millis(p.updated_at_ms).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_display_name_is_trimmed_to_single_spaces_and_bounded() {
        assert_eq!(display_name("  Alice   Moreau "), Ok("Alice Moreau".into()));
        assert_eq!(display_name("Zoë\tØ"), Ok("Zoë Ø".into()));
        assert_eq!(display_name("李小龍"), Ok("李小龍".into()));
        let longest = "é".repeat(NAME_MAX_CHARS);
        assert_eq!(display_name(&longest), Ok(longest.clone()));
        assert!(display_name(&format!("{longest}e")).is_err());
        assert!(display_name("   ").is_err());
        assert!(display_name("").is_err());
        assert!(display_name("!!! ...").is_err());
    }

    #[test]
    fn a_display_name_cannot_hide_or_reorder_text() {
        for bad in [
            "Bob\u{202E}rekaB",
            "Bob\u{200B}",
            "Al\u{0007}ice",
            "Bob\u{2066}x",
            "\u{FEFF}Bob",
            "Bob\nOkafor",
        ] {
            let refused = display_name(bad);
            // A newline is whitespace: folded into a space, not refused.
            if bad.contains('\n') {
                assert_eq!(refused, Ok("Bob Okafor".into()));
            } else {
                assert!(refused.is_err(), "{bad:?}");
            }
        }
        // The joiner of an emoji sequence stays.
        assert!(display_name("Ana 👩\u{200D}💻").is_ok());
    }
}

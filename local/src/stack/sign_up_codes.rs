//! Sign-up confirmation codes as Cognito issues them. On AWS, `SignUp` emails a six-digit code
//! and `ConfirmSignUp` accepts only that code (the newest one after a
//! `ResendConfirmationCode`) for 24 hours; moto sends nothing and confirms with any code, so a
//! client that skipped the check, or mistyped the code, would pass locally and fail on AWS.
//! The local Cognito endpoint ([`super::cognito_endpoint`]) issues the codes here, delivers
//! them to a mailbox file (the local stand-in for email) and refuses a wrong or expired one
//! with AWS's error before moto sees the call.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a code is good for (Cognito: 24 hours).
pub const CODE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What `ConfirmSignUp` may do with the code it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// The code this user was sent: forward the call (moto confirms the user).
    Matches,
    /// No code was issued here for this user (created by an administrator, or unknown):
    /// moto answers as it does.
    NotIssued,
    /// AWS's `CodeMismatchException`.
    Mismatch,
    /// AWS's `ExpiredCodeException`.
    Expired,
}

impl Check {
    /// The refusal AWS answers, as (`__type`, message); `None` when the call goes on.
    pub fn refusal(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Check::Mismatch => Some((
                "CodeMismatchException",
                "Invalid verification code provided, please try again.",
            )),
            Check::Expired => Some((
                "ExpiredCodeException",
                "Invalid code provided, please request a code again.",
            )),
            Check::Matches | Check::NotIssued => None,
        }
    }
}

struct Issued {
    code: String,
    at: Instant,
}

/// The codes issued, by username (the pool's usernames are case-insensitive), and where they
/// are delivered.
pub struct SignUpCodes {
    mailbox: PathBuf,
    issued: Mutex<HashMap<String, Issued>>,
}

impl SignUpCodes {
    pub fn new(mailbox: &Path) -> SignUpCodes {
        SignUpCodes {
            mailbox: mailbox.to_owned(),
            issued: Mutex::default(),
        }
    }

    /// Where the codes are delivered: one JSON line per message.
    pub fn mailbox(&self) -> &Path {
        &self.mailbox
    }

    /// A new code for `username` (replacing any before it), delivered to `to`.
    pub fn issue(&self, username: &str, to: &str) -> std::io::Result<String> {
        let code = format!("{:06}", fastrand::u32(0..1_000_000));
        self.deliver(username, to, &code)?;
        (self.issued.lock().expect("codes lock")).insert(
            username.to_lowercase(),
            Issued {
                code: code.clone(),
                at: Instant::now(),
            },
        );
        Ok(code)
    }

    /// Whether `code` confirms `username` now; a matching code is used up.
    pub fn check(&self, username: &str, code: &str) -> Check {
        self.check_at(username, code, Instant::now())
    }

    fn check_at(&self, username: &str, code: &str, now: Instant) -> Check {
        let mut issued = self.issued.lock().expect("codes lock");
        let key = username.to_lowercase();
        let Some(sent) = issued.get(&key) else {
            return Check::NotIssued;
        };
        if now.duration_since(sent.at) > CODE_LIFETIME {
            return Check::Expired;
        }
        if sent.code != code.trim() {
            return Check::Mismatch;
        }
        issued.remove(&key);
        Check::Matches
    }

    fn deliver(&self, username: &str, to: &str, code: &str) -> std::io::Result<()> {
        if let Some(dir) = self.mailbox.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let line = serde_json::json!({
            "at": chrono::Utc::now().to_rfc3339(),
            "to": to,
            "username": username,
            "subject": "Your verification code",
            "code": code,
        });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.mailbox)?;
        writeln!(file, "{line}")?;
        tracing::info!(username, to, mailbox = %self.mailbox.display(), "sign-up code delivered");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> (SignUpCodes, PathBuf) {
        let dir = std::env::temp_dir().join(format!("snapglow-codes-{}", uuid::Uuid::new_v4()));
        let mailbox = dir.join("mailbox.jsonl");
        (SignUpCodes::new(&mailbox), dir)
    }

    #[test]
    fn only_the_newest_code_sent_confirms_once_whatever_the_usernames_case() {
        // Prepare: a code, then a new one asked for
        let (codes, dir) = codes();
        let first = codes.issue("Dana", "dana@example.com").unwrap();
        let second = codes.issue("dana", "dana@example.com").unwrap();

        // Act / Assess
        if first != second {
            assert_eq!(codes.check("dana", &first), Check::Mismatch);
        }
        assert_eq!(codes.check("dana", "not-a-code"), Check::Mismatch);
        assert_eq!(codes.check("DANA", &second), Check::Matches);
        assert_eq!(codes.check("dana", &second), Check::NotIssued);
        assert_eq!(codes.check("erin", "123456"), Check::NotIssued);
        let mail = std::fs::read_to_string(codes.mailbox()).unwrap();
        let lines: Vec<serde_json::Value> = mail
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["code"], second.as_str());
        assert_eq!(lines[1]["to"], "dana@example.com");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_code_older_than_a_day_has_expired_and_says_so_as_aws_does() {
        let (codes, dir) = codes();
        let code = codes.issue("dana", "dana@example.com").unwrap();
        let later = Instant::now() + CODE_LIFETIME + Duration::from_secs(1);
        let check = codes.check_at("dana", &code, later);
        assert_eq!(check, Check::Expired);
        assert_eq!(check.refusal().unwrap().0, "ExpiredCodeException");
        assert_eq!(
            Check::Mismatch.refusal().unwrap().0,
            "CodeMismatchException"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! moderation: whether a rendered photo may be published, decided from the labels a
//! classifier gives it.
//!
//! - [`Label`] and [`Scan`]: what a classifier says, in Amazon Rekognition's moderation
//!   taxonomy (a top-level category such as `Explicit`, and its second-level labels);
//! - [`Policy`]: which labels, at which confidence, hold a photo for review (pure);
//! - [`open_nsfw`]: Yahoo's open_nsfw model run in tract, answering with the same labels: the
//!   local classifier, and what the local stack's emulator answers `DetectModerationLabels`
//!   with.

pub mod open_nsfw;

use serde::{Deserialize, Serialize};

/// One moderation label, as Rekognition's `ModerationLabel` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    /// The top-level category of a second-level label; empty for a top-level one.
    #[serde(default)]
    pub parent: String,
    /// 0 to 100.
    pub confidence: f32,
}

/// What a classifier said of one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    /// Which classifier and model: `rekognition:{ModerationModelVersion}` or `open_nsfw:1`.
    pub model: String,
    pub labels: Vec<Label>,
}

/// What the policy makes of a scan.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Publish,
    /// Held for review, because of this label: the most confident of those that hold (the
    /// last listed of equals, which for Rekognition's answers is the more specific).
    Hold {
        label: Label,
    },
}

/// Which labels hold a photo for review: a label holds when it, or its top-level category, is
/// one of `hold_labels` and its confidence is at least `min_confidence`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub hold_labels: Vec<String>,
    pub min_confidence: f32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    #[error(
        "the hold confidence {0} is not a number from 0 to 100 (set MODERATION_MIN_CONFIDENCE)"
    )]
    Confidence(String),
    #[error(
        "no label holds a photo: name at least one in MODERATION_HOLD_LABELS (comma-separated)"
    )]
    NoLabels,
}

impl Policy {
    /// From the template's parameters: labels separated by commas (names contain spaces and
    /// `&`), and a confidence from 0 to 100.
    pub fn parse(labels: &str, min_confidence: &str) -> Result<Policy, PolicyError> {
        let hold_labels: Vec<String> = labels
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if hold_labels.is_empty() {
            return Err(PolicyError::NoLabels);
        }
        let min_confidence = min_confidence
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|c| (0.0..=100.0).contains(c))
            .ok_or_else(|| PolicyError::Confidence(min_confidence.to_owned()))?;
        Ok(Policy {
            hold_labels,
            min_confidence,
        })
    }

    pub fn decide(&self, scan: &Scan) -> Decision {
        let holds = |label: &&Label| {
            label.confidence >= self.min_confidence
                && (self.hold_labels.iter()).any(|h| *h == label.name || *h == label.parent)
        };
        let strongest =
            (scan.labels.iter().filter(holds)).max_by(|a, b| a.confidence.total_cmp(&b.confidence));
        match strongest {
            Some(label) => Decision::Hold {
                label: label.clone(),
            },
            None => Decision::Publish,
        }
    }
}

/// The labels Rekognition would return at `min_confidence` (it leaves out those below).
pub fn at_least(labels: &[Label], min_confidence: f32) -> Vec<Label> {
    (labels.iter())
        .filter(|l| l.confidence >= min_confidence)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, parent: &str, confidence: f32) -> Label {
        Label {
            name: name.into(),
            parent: parent.into(),
            confidence,
        }
    }

    fn scan(labels: Vec<Label>) -> Scan {
        Scan {
            model: "test".into(),
            labels,
        }
    }

    #[test]
    fn a_label_holds_by_its_name_or_its_category_at_the_confidence_and_not_below() {
        // Prepare
        let policy = Policy::parse("Explicit, Violence", "80").unwrap();

        // Act / Assess
        let nudity = label("Explicit Nudity", "Explicit", 91.5);
        assert_eq!(
            policy.decide(&scan(vec![label("Alcohol", "", 99.0), nudity.clone()])),
            Decision::Hold { label: nudity }
        );
        assert_eq!(
            policy.decide(&scan(vec![label("Violence", "", 80.0)])),
            Decision::Hold {
                label: label("Violence", "", 80.0)
            }
        );
        assert_eq!(
            policy.decide(&scan(vec![label("Explicit", "", 79.9)])),
            Decision::Publish
        );
        assert_eq!(
            policy.decide(&scan(vec![label("Alcohol", "", 99.0)])),
            Decision::Publish
        );
        assert_eq!(policy.decide(&scan(Vec::new())), Decision::Publish);
    }

    #[test]
    fn a_policy_without_labels_or_with_a_confidence_outside_0_to_100_is_refused() {
        assert_eq!(Policy::parse(" , ", "80"), Err(PolicyError::NoLabels));
        for bad in ["101", "-1", "high", ""] {
            assert_eq!(
                Policy::parse("Explicit", bad),
                Err(PolicyError::Confidence(bad.into()))
            );
        }
        let names = Policy::parse("Drugs & Tobacco,Explicit", "0").unwrap();
        assert_eq!(names.hold_labels, ["Drugs & Tobacco", "Explicit"]);
    }

    #[test]
    fn labels_below_the_minimum_confidence_are_left_out_as_rekognition_does() {
        let labels = [label("Explicit", "", 40.0), label("Violence", "", 60.0)];
        assert_eq!(at_least(&labels, 50.0), [label("Violence", "", 60.0)]);
    }
}

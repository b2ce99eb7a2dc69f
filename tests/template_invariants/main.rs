//! template.yaml's promises that cfn-lint and `sam validate --lint` do not check (they accept
//! `StartingPosition: OLDEST` or `MaximumRetryAttempts: 99999` inside SAM events), so that a
//! change that would silently lose or block records fails here instead.
//!
//! Each promise is an [`Invariant`]: a name, the check that finds where the template breaks
//! it, and the mistakes it must catch. A mistake is made on the parsed template, which is then
//! written out and read back as any template is: the checks are proven able to fail, and no
//! mistake depends on how template.yaml happens to be laid out.

mod abuse;
mod delivery;
mod front_door;
mod operations;
mod privilege;
mod shape;
mod support;

use snapglow_local::stack::project::{project_root, template_path};
use snapglow_local::template::{Template, document};
use support::{Change, Yaml};

/// One promise of the template.
pub struct Invariant {
    pub name: &'static str,
    /// Where the template breaks the promise, in words; empty when it keeps it.
    pub check: fn(&Template, &Yaml) -> Vec<String>,
    /// Mistakes that break it, each of which the check must catch.
    pub mistakes: &'static [Mistake],
}

/// Changes to the parsed template that break one promise.
pub struct Mistake {
    pub what: &'static str,
    pub changes: &'static [Change],
    /// Words the check's finding must contain.
    pub caught_as: &'static str,
}

pub const fn mistake(
    what: &'static str,
    changes: &'static [Change],
    caught_as: &'static str,
) -> Mistake {
    Mistake {
        what,
        changes,
        caught_as,
    }
}

/// Every invariant: the template's shape, the delivery of records, least privilege,
/// operations (encryption, retention, alarms), the front door, and abuse and cost.
fn invariants() -> impl Iterator<Item = &'static Invariant> {
    [
        shape::INVARIANTS,
        delivery::INVARIANTS,
        privilege::INVARIANTS,
        operations::INVARIANTS,
        front_door::INVARIANTS,
        abuse::INVARIANTS,
    ]
    .into_iter()
    .flatten()
}

/// Why a mutated template no longer reads; the cause is kept.
#[derive(Debug, thiserror::Error)]
enum SubjectError {
    #[error("the template is not YAML")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("the template does not read as CloudFormation")]
    Template(#[from] snapglow_local::template::TemplateError),
}

/// A template as the checks read it: typed, and as YAML for what only the YAML holds
/// (`Transform`, `DeletionPolicy`).
struct Subject {
    text: String,
    template: Template,
    raw: Yaml,
}

impl Subject {
    fn parse(text: String) -> Result<Self, SubjectError> {
        let raw = serde_yaml_ng::from_str(&text)?;
        let template = Template::parse(&text)?;
        Ok(Self {
            text,
            template,
            raw,
        })
    }

    fn real() -> Self {
        let text = std::fs::read_to_string(template_path(&project_root()))
            .expect("template.yaml is readable");
        Self::parse(text).unwrap_or_else(|e| panic!("{}", snapglow_local::logging::chain(&e)))
    }

    /// `raw` written out as YAML and read back.
    fn written(raw: &Yaml) -> Result<Self, SubjectError> {
        Self::parse(serde_yaml_ng::to_string(raw)?)
    }

    /// Each broken invariant's name, with what its check found.
    fn broken(&self) -> Vec<(&'static str, Vec<String>)> {
        invariants()
            .map(|i| (i.name, (i.check)(&self.template, &self.raw)))
            .filter(|(_, found)| !found.is_empty())
            .collect()
    }
}

#[test]
fn the_template_keeps_every_promise() {
    // Prepare
    let template = Subject::real();

    // Act
    let broken = template.broken();

    // Assess
    assert_eq!(broken, Vec::new());
}

#[test]
fn every_check_catches_the_mistakes_linters_let_through() {
    let real = Subject::real();
    let mut missed = Vec::new();
    for invariant in invariants() {
        for mistake in invariant.mistakes {
            // Prepare: the template with one mistake
            let mut raw = real.raw.clone();
            for change in mistake.changes {
                change.apply(&mut raw);
            }
            let broken = match Subject::written(&raw) {
                Ok(broken) => broken,
                Err(e) => {
                    missed.push(format!(
                        "{:?}: the template no longer reads: {}",
                        mistake.what,
                        snapglow_local::logging::chain(&e)
                    ));
                    continue;
                }
            };

            // Act
            let found = broken.broken();

            // Assess: this invariant, by name, names the mistake
            let named = found
                .iter()
                .find(|(name, _)| *name == invariant.name)
                .is_some_and(|(_, words)| words.iter().any(|w| w.contains(mistake.caught_as)));
            if !named {
                missed.push(format!(
                    "{:?} missed {:?} (expected {:?}); found {found:?}",
                    invariant.name, mistake.what, mistake.caught_as
                ));
            }
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}

#[test]
fn every_invariant_has_its_own_name_and_a_mistake_it_catches() {
    // Prepare
    let mut names: Vec<&str> = invariants().map(|i| i.name).collect();
    let without_mistakes: Vec<&str> = invariants()
        .filter(|i| i.mistakes.is_empty())
        .map(|i| i.name)
        .collect();

    // Act
    let count = names.len();
    names.sort_unstable();
    names.dedup();

    // Assess
    assert_eq!(names.len(), count, "two invariants share a name");
    assert_eq!(
        without_mistakes,
        Vec::<&str>::new(),
        "no mistake proves these can fail"
    );
}

/// The mistakes are made on the parsed template and written back: writing it back unchanged
/// must change nothing, or a mistake "caught" could be the writing's doing.
#[test]
fn the_template_written_back_unchanged_is_the_same_template() {
    // Prepare
    let real = Subject::real();

    // Act
    let again = Subject::written(&real.raw).expect("the template reads back");

    // Assess
    assert_eq!(
        document(&again.text).expect("reads back"),
        document(&real.text).expect("reads")
    );
    assert_eq!(again.broken(), Vec::new());
}

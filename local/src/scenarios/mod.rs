//! What runs on top of the local stack: the one producer of contract events, the demo, the
//! fire drills, the photos they upload and the figures they report.

pub mod client;
pub mod demo;
pub mod drills;
pub mod measure;
pub mod photos;
pub mod producer;

use crate::lambda::FunctionError;
use crate::stack::clients::AwsError;
use crate::triggers::TriggerError;

/// How a scenario (demo, drill) failed; each variant keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    #[error(transparent)]
    Function(#[from] FunctionError),
    #[error("reading {what}")]
    Table {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("image {what}")]
    Image {
        what: String,
        #[source]
        source: image::ImageError,
    },
    #[error("{0}")]
    Failed(String),
}

impl ScenarioError {
    pub(crate) fn table(
        what: impl Into<String>,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> ScenarioError {
        let what = what.into();
        move |source| ScenarioError::Table { what, source }
    }

    pub(crate) fn file(
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> ScenarioError + '_ {
        move |source| ScenarioError::File {
            path: path.display().to_string(),
            source,
        }
    }
}

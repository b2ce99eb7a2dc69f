//! The one error a handler returns: a problem for the client to fix, or the store's failure.
//! Handlers write `?` on either; the router turns it into a problem once
//! ([`HandlerError::into_problem`]), logging what the client cannot see.

use crate::problem::Problem;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The client's request cannot be served as sent: answered as it is.
    #[error("{}: {}", .0.title, .0.detail)]
    Problem(Problem),
    /// A table or S3 failed under a valid request.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Problem> for HandlerError {
    fn from(problem: Problem) -> Self {
        HandlerError::Problem(problem)
    }
}

impl HandlerError {
    /// What the client is told: the problem itself, 503 for a busy dependency (with the
    /// failure logged as a warning), 500 for anything else (logged as an error). The log
    /// line carries the correlation id the response does.
    pub fn into_problem(self, correlation_id: &str) -> Problem {
        let error = match self {
            HandlerError::Problem(problem) => return problem,
            HandlerError::Store(error) => error,
        };
        let chain = snapglow::telemetry::error_chain(&error);
        match &error {
            StoreError::Table(snapglow::table::TableError::Transient { .. })
            | StoreError::Pool {
                transient: true, ..
            } => {
                tracing::warn!(error = %chain, correlation_id, "a dependency is unavailable");
                Problem::busy("a dependency is busy; retry with backoff")
            }
            _ => {
                tracing::error!(error = %chain, correlation_id, "request failed");
                Problem::internal()
            }
        }
    }
}

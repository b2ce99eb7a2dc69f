//! Faults on purpose, for fire drills, as layers around what they disturb: a function whose
//! process dies mid-batch ([`Crashing`]), and a DynamoDB that throttles ([`ThrottlingProxy`],
//! an endpoint the function is pointed at with `AWS_ENDPOINT_URL_DYNAMODB`). Both are seeded.

mod crash;
mod throttle;

pub use crash::Crashing;
pub use throttle::{Throttled, ThrottlingProxy};

//! Faults on purpose, for fire drills and tests, as layers around what they disturb: a function
//! whose process dies mid-batch ([`Crashing`]), a DynamoDB or Kinesis that throttles a share of
//! its requests ([`ThrottlingProxy`], seeded), and chosen requests answered with any failure
//! shape AWS documents ([`FaultProxy`]). The proxies are endpoints a function is pointed at
//! with `AWS_ENDPOINT_URL_<SERVICE>`.

mod answers;
mod crash;
mod shapes;
mod throttle;
mod wire;

pub use crash::Crashing;
pub use shapes::{Fault, Reasons, Service, Shape};
pub use throttle::{Throttled, ThrottlingProxy};
pub use wire::FaultProxy;

//! A throttling layer in front of DynamoDB or Kinesis: a seeded share of one service's requests
//! answered the way that service does when it throttles (a [`FaultProxy`] with one fault).

use super::shapes::{Fault, Service, Shape};
use super::wire::FaultProxy;

/// The service a proxy throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Point a function at the proxy with `AWS_ENDPOINT_URL_DYNAMODB`.
    DynamoDb,
    /// Point a function at the proxy with `AWS_ENDPOINT_URL_KINESIS`.
    Kinesis,
}

impl Throttled {
    fn service(self) -> Service {
        match self {
            Throttled::DynamoDb => Service::DynamoDb,
            Throttled::Kinesis => Service::Kinesis,
        }
    }
}

/// `ProvisionedThroughputExceededException` (HTTP 400, as DynamoDB and Kinesis answer it).
const THROTTLED: Shape = Shape::Error {
    status: 400,
    code: "ProvisionedThroughputExceededException",
    message: "Rate exceeded (fire drill)",
};

/// An HTTP proxy in front of the emulator that answers a share of one service's requests with
/// `ProvisionedThroughputExceededException` and forwards the rest, noting the trace header
/// each carried.
pub struct ThrottlingProxy {
    proxy: FaultProxy,
}

impl ThrottlingProxy {
    /// A proxy throttling DynamoDB; `upstream`: the emulator's `host:port`.
    pub async fn start(upstream: &str, percent: u64, seed: u64) -> std::io::Result<Self> {
        Self::start_for(Throttled::DynamoDb, upstream, percent, seed).await
    }

    pub async fn start_for(
        service: Throttled,
        upstream: &str,
        percent: u64,
        seed: u64,
    ) -> std::io::Result<Self> {
        let proxy = FaultProxy::start_seeded(upstream, seed).await?;
        proxy.inject(Fault::share(service.service(), None, percent, THROTTLED));
        Ok(ThrottlingProxy { proxy })
    }

    pub fn url(&self) -> String {
        self.proxy.url()
    }

    /// Changes the share of requests refused from now on (0: the service recovers).
    pub fn set_percent(&self, percent: u64) {
        self.proxy.set_percent(0, percent);
    }

    pub fn throttled(&self) -> u64 {
        self.proxy.injected().values().sum()
    }

    pub fn forwarded(&self) -> u64 {
        self.proxy.forwarded()
    }

    /// The trace headers the requests carried, in order.
    pub fn trace_ids(&self) -> Vec<String> {
        self.proxy.trace_ids()
    }
}

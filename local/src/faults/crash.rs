//! A crashing layer around a function: its process dies during a share of invocations.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::lambda::{Invoke, InvokeError, Outcome};

/// Kills a function's process during a share of its invocations.
///
/// The kill comes after a random delay: when it lands before the handler answers, the batch is
/// cut off mid-way (some writes done, some not); when the handler was quicker, its answer is
/// thrown away as if the process died just before the response reached Lambda (every write
/// done, the batch still counts as failed). Both are what a consumer must survive: the
/// mapping retries the whole batch. Seeded, so a failing drill can be run again the same way.
pub struct Crashing {
    function: Box<dyn Invoke>,
    percent: u64,
    /// The delay is uniform in `0..=window`.
    window: Duration,
    random: fastrand::Rng,
    crashes: Arc<AtomicU64>,
}

impl Crashing {
    pub fn new(function: Box<dyn Invoke>, percent: u64, window: Duration, seed: u64) -> Crashing {
        Crashing {
            function,
            percent,
            window,
            random: fastrand::Rng::with_seed(seed),
            crashes: Arc::default(),
        }
    }

    /// A live count of the crashes caused, readable after the layer is handed to a trigger.
    pub fn crashes(&self) -> Arc<AtomicU64> {
        self.crashes.clone()
    }

    /// When to kill the next invocation, if it is one of the unlucky ones.
    fn next_crash(&mut self) -> Option<Duration> {
        if self.random.u64(..100) >= self.percent {
            return None;
        }
        self.crashes.fetch_add(1, Ordering::Relaxed);
        let window_ms = self.window.as_millis() as u64;
        Some(Duration::from_millis(self.random.u64(..=window_ms)))
    }

    async fn invoke_or_crash(&mut self, payload: Vec<u8>) -> Outcome {
        let Some(delay) = self.next_crash() else {
            return self.function.invoke(payload).await;
        };
        let status = tokio::select! {
            _ = self.function.invoke(payload) => "killed by a fire drill after the handler answered; the answer is lost",
            _ = tokio::time::sleep(delay) => "killed mid-batch by a fire drill",
        };
        // The invocation above may have been cut off mid-way: reset kills the process, and
        // nothing it queued can answer later.
        self.function.reset().await;
        Err(InvokeError::Crashed {
            status: status.into(),
            log: String::new(),
        })
    }
}

impl Invoke for Crashing {
    fn name(&self) -> &str {
        self.function.name()
    }
    fn invoke(&mut self, payload: Vec<u8>) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(self.invoke_or_crash(payload))
    }

    fn reset(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.function.reset()
    }
}

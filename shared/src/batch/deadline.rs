use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The end of the current invocation, as a monotonic instant.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// From the runtime's `Lambda-Runtime-Deadline-Ms` (epoch milliseconds).
    pub fn from_epoch_millis(deadline_ms: u64) -> Self {
        let wall_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let left = Duration::from_millis(deadline_ms).saturating_sub(wall_now);
        Self(Instant::now() + left)
    }

    pub fn after(left: Duration) -> Self {
        Self(Instant::now() + left)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn instant(&self) -> Instant {
        self.0
    }
}

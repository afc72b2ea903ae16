//! Where servers get "now" from: the system clock in production, a manual clock in tests (so
//! certificates and CRLs made in tests have fixed times). Cores take time as a value; servers
//! read it here, once per operation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pki::UnixTime;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> UnixTime;
}

/// The system's wall clock, in whole seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        // A clock before 1970 is a broken machine; reading it as the epoch makes every
        // certificate look not yet valid rather than crashing the server.
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UnixTime(secs)
    }
}

/// A clock that moves only when told to: for tests. Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new(now: UnixTime) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(now.0)))
    }

    pub fn set(&self, now: UnixTime) {
        self.0.store(now.0, Ordering::SeqCst);
    }

    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

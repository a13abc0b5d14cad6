//! Configuration and health reporting.

use std::fmt;
use std::time::Duration;

use crate::sync::Arc;

/// Liveness and readiness of the cache, as reported to a [`HealthReporter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// The processing thread is running.
    pub live: bool,
    /// The last status received from the syncer is `InSync`.
    pub ready: bool,
}

/// Receives the cache's health: once at construction, once per status received, and every 10
/// seconds. A reporter that panics is caught and does not stop the cache.
pub trait HealthReporter: Send + Sync {
    /// Records `health` under `name` (the configured [`Config::health_name`]).
    fn report(&self, name: &str, health: Health);
}

/// Configuration of a [`Cache`](crate::Cache). A zero / empty field means "use the default".
///
/// ```
/// let config = snapcache::Config { max_batch_size: 10, ..Default::default() };
/// assert_eq!(config.wake_up_interval, std::time::Duration::from_secs(1));
/// ```
#[derive(Clone)]
pub struct Config {
    /// Most updates per breadcrumb (default 100). The input queue holds twice as many items
    /// (`usize::MAX` means no limit; the queue allocates as it fills).
    pub max_batch_size: usize,
    /// How often blocked followers are woken to notice cancellation even without news
    /// (default 1 s; anything over a year, such as `Duration::MAX`, counts as a year).
    /// Cancelling a [`CancelToken`](crate::CancelToken) wakes its follower at once regardless.
    pub wake_up_interval: Duration,
    /// The name health is reported under (default `"cache"`).
    pub health_name: String,
    /// Where health goes, if anywhere.
    pub health: Option<Arc<dyn HealthReporter>>,
}

/// Default [`Config::max_batch_size`].
pub const DEFAULT_MAX_BATCH_SIZE: usize = 100;
/// Default [`Config::wake_up_interval`].
pub const DEFAULT_WAKE_UP_INTERVAL: Duration = Duration::from_secs(1);
/// Default [`Config::health_name`].
pub const DEFAULT_HEALTH_NAME: &str = "cache";
/// How often health is reported without any status change.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(10);

impl Default for Config {
    fn default() -> Self {
        Config {
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            wake_up_interval: DEFAULT_WAKE_UP_INTERVAL,
            health_name: DEFAULT_HEALTH_NAME.to_string(),
            health: None,
        }
    }
}

impl Config {
    /// This configuration with zero / empty fields replaced by the defaults.
    pub fn normalized(mut self) -> Self {
        if self.max_batch_size == 0 {
            self.max_batch_size = DEFAULT_MAX_BATCH_SIZE;
        }
        if self.wake_up_interval.is_zero() {
            self.wake_up_interval = DEFAULT_WAKE_UP_INTERVAL;
        }
        if self.health_name.is_empty() {
            self.health_name = DEFAULT_HEALTH_NAME.to_string();
        }
        self
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_batch_size", &self.max_batch_size)
            .field("wake_up_interval", &self.wake_up_interval)
            .field("health_name", &self.health_name)
            .field(
                "health",
                &self.health.as_ref().map(|_| "dyn HealthReporter"),
            )
            .finish()
    }
}

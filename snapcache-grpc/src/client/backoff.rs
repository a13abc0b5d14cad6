//! Jittered exponential backoff between connection attempts.

use std::time::Duration;

/// Delays that double from `first` up to `max`, each jittered by ±50% so that many clients
/// cut off at once do not come back at once.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The next delay.
    pub(crate) fn delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(rand::random_range(0.5..1.5))
    }

    /// Back to the first delay (after a stream that got going).
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let bases = [100, 200, 400, 400];
        for base in bases {
            let d = b.delay().as_secs_f64() * 1000.0;
            assert!(
                (base as f64 * 0.5..=base as f64 * 1.5).contains(&d),
                "{d} for {base}"
            );
        }
        b.reset();
        assert!(b.delay() <= Duration::from_millis(150));
    }
}

//! Reconnect / retry delays.

use std::time::Duration;

/// A back-off policy with its attempt count. `next_delay` grows the delay;
/// `reset` starts over after a success.
#[derive(Clone, Debug)]
pub struct Backoff {
    kind: Kind,
    attempt: u32,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `initial * 2^n`, capped at `max`.
    Exponential { initial: Duration, max: Duration },
    /// `step * n` (so the first retry is immediate), capped at `max`.
    Linear { step: Duration, max: Duration },
}

impl Backoff {
    /// Doubling delays: `initial`, `2 * initial`, ... up to `max`.
    pub fn exponential(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            kind: Kind::Exponential { initial, max },
            attempt: 0,
        }
    }

    /// Linearly growing delays: 0, `step`, `2 * step`, ... up to `max`.
    pub fn linear(step: Duration, max: Duration) -> Backoff {
        Backoff {
            kind: Kind::Linear { step, max },
            attempt: 0,
        }
    }

    /// The delay before the next attempt; counts the attempt.
    pub fn next_delay(&mut self) -> Duration {
        let n = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        match self.kind {
            Kind::Exponential { initial, max } => initial
                .saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
                .min(max),
            Kind::Linear { step, max } => step.saturating_mul(n).min(max),
        }
    }

    /// Attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_up_to_max() {
        let mut b = Backoff::exponential(Duration::from_secs(5), Duration::from_secs(320));
        let got: Vec<u64> = (0..9).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(got, [5, 10, 20, 40, 80, 160, 320, 320, 320]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(5));
        // No overflow after many attempts.
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(320));
        }
    }

    #[test]
    fn linear_starts_immediately_and_caps() {
        let mut b = Backoff::linear(Duration::from_millis(250), Duration::from_secs(16));
        let got: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [0, 250, 500, 750]);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::from_secs(16));
    }
}

//! The one retry loop of the calls that retry in place: the Shopify Admin API client (throttling,
//! 429 and 5xx) and the DynamoDB batch deletes (unprocessed items). An attempt either succeeds,
//! fails for good ([`Failure::Fatal`], what `?` gives), or asks to be tried again after a wait it
//! chooses ([`Failure::Retry`]: `Retry-After`, Shopify's throttle cost, or [`exponential`]).
//!
//! Delivery to Pinterest does not retry here: the queue retries it, which survives the process.
//! The AWS SDK calls retry inside the SDK ([`crate::aws`]'s budgets).

use std::fmt::Display;
use std::time::Duration;

/// Why an attempt did not succeed.
#[derive(Debug)]
pub enum Failure<E> {
    /// No retry can cure it: [`retry`] returns it at once.
    Fatal(E),
    /// Worth another attempt after `wait`; `error` is what [`retry`] returns when no attempt is
    /// left.
    Retry {
        /// How long to wait before the next attempt.
        wait: Duration,
        /// The error if this was the last attempt.
        error: E,
    },
}

impl<E> From<E> for Failure<E> {
    fn from(error: E) -> Self {
        Self::Fatal(error)
    }
}

/// Runs `attempt` (given its number, from 1) until it succeeds, fails for good, or
/// `max_attempts` attempts (at least one) were made, sleeping the wait each failed attempt asks
/// for before the next one (never after the last). Each retry is logged as a warning naming
/// `what`, the attempt, the wait and the error.
///
/// # Errors
/// The [`Failure::Fatal`] error, or the error of the last [`Failure::Retry`].
pub async fn retry<T, E, F, Fut>(what: &str, max_attempts: u32, mut attempt: F) -> Result<T, E>
where
    E: Display,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure<E>>>,
{
    let mut n = 1;
    loop {
        match attempt(n).await {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(error)) => return Err(error),
            Err(Failure::Retry { error, .. }) if n >= max_attempts => return Err(error),
            Err(Failure::Retry { wait, error }) => {
                tracing::warn!(
                    attempt = n,
                    wait_ms = wait.as_millis() as u64,
                    error.message = %error,
                    "{what} retried"
                );
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

/// The backoff before retry `n` (from 1): `first * 2^(n-1)`, at most `max`.
pub fn exponential(first: Duration, n: u32, max: Duration) -> Duration {
    first
        .saturating_mul(1 << n.saturating_sub(1).min(16))
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn exponential_doubles_from_first_up_to_max() {
        let waits: Vec<_> = (1..=8)
            .map(|n| exponential(MS * 100, n, MS * 3200))
            .collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 3200, 3200].map(|ms| MS * ms)
        );
        assert_eq!(exponential(MS, 0, MS * 5), MS);
        assert_eq!(exponential(MS, u32::MAX, Duration::MAX), MS * 65_536);
    }

    #[tokio::test]
    async fn stops_after_max_attempts_with_the_last_error() {
        let mut calls = Vec::new();
        let started = std::time::Instant::now();
        let result: Result<(), String> = retry("test", 3, |n| {
            calls.push(n);
            async move {
                Err(Failure::Retry {
                    // The last attempt's wait is never slept.
                    wait: if n < 3 { MS * 5 * n } else { MS * 60_000 },
                    error: format!("attempt {n}"),
                })
            }
        })
        .await;
        assert_eq!(result, Err("attempt 3".to_owned()));
        assert_eq!(calls, [1, 2, 3]);
        let waited = started.elapsed();
        assert!(waited >= MS * 15, "waits 5 + 10 ms: {waited:?}");
        assert!(
            waited < MS * 30_000,
            "no wait after the last attempt: {waited:?}"
        );
    }

    #[tokio::test]
    async fn a_fatal_error_or_a_success_ends_at_once() {
        let mut calls = 0;
        let fatal: Result<(), &str> = retry("test", 5, |_| {
            calls += 1;
            async { Err("bad request".into()) }
        })
        .await;
        assert_eq!((fatal, calls), (Err("bad request"), 1));

        let ok: Result<u32, &str> = retry("test", 5, |n| async move {
            if n < 2 {
                Err(Failure::Retry {
                    wait: MS,
                    error: "busy",
                })
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(ok, Ok(2));
    }

    #[tokio::test]
    async fn zero_attempts_still_makes_one() {
        let result: Result<(), &str> = retry("test", 0, |_| async {
            Err(Failure::Retry {
                wait: MS,
                error: "busy",
            })
        })
        .await;
        assert_eq!(result, Err("busy"));
    }
}

//! Retries for Key Vault calls: exponential backoff with jitter, `Retry-After` honoured, a timeout
//! per attempt.
//!
//! dpwrap retries itself and turns the SDK's retry policy off (`RetryOptions::none()`), so no
//! request is ever retried twice over, each attempt has a deadline of its own (the SDK policy has
//! none; only its default transport's 60 s read timeout would end a silent server), and tests
//! can count attempts exactly. Retried: 408, 429, 500, 502, 503 and 504 answers, connection and I/O
//! failures, and attempts that timed out. Nothing else is retried: a 403 or 404 will not change.

use std::future::Future;
use std::time::Duration;

use azure_core::http::StatusCode;
use azure_core::http::headers::HeaderName;

/// How a Key Vault call is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 4, so at most 5 attempts).
    pub max_retries: u32,
    /// The first backoff (default 250 ms); each retry doubles it, up to `max_delay`.
    pub initial_delay: Duration,
    /// The largest computed backoff (default 10 s). Each wait is drawn at random between half of
    /// the backoff and the whole of it, so that concurrent callers spread out.
    pub max_delay: Duration,
    /// The longest wait a server may ask for with `Retry-After` (default 60 s). A longer request
    /// is shortened to this.
    pub max_retry_after: Duration,
    /// How long one attempt may take, connection included (default 10 s).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt, with the default timeout.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The backoff before retry number `retry` (1-based), jittered, ignoring `Retry-After`.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self
            .initial_delay
            .saturating_mul(factor)
            .min(self.max_delay);
        // Equal jitter: between half and all of the backoff.
        let half = full / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        let extra = if spread == 0 {
            0
        } else {
            rand::random_range(0..=spread)
        };
        half + Duration::from_micros(extra)
    }

    /// The wait before retry number `retry`: the server's `Retry-After` when it gave one (capped
    /// at `max_retry_after`, and never shorter than the backoff would be), else the backoff.
    pub(crate) fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(retry);
        match retry_after {
            Some(after) => after.min(self.max_retry_after).max(backoff / 2),
            None => backoff,
        }
    }
}

/// Why the last attempt failed, after the retries ran out or on an error not worth retrying.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The service answered with an error, or the transport failed.
    Service {
        error: azure_core::Error,
        attempts: u32,
    },
    /// Every attempt timed out (the last one, at least).
    TimedOut { attempts: u32 },
}

const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("retry-after-ms");
const X_MS_RETRY_AFTER_MS: HeaderName = HeaderName::from_static("x-ms-retry-after-ms");
const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");

/// Whether `error` is worth retrying, and how long the server asked us to wait.
pub(crate) fn classify(error: &azure_core::Error) -> (bool, Option<Duration>) {
    use azure_core::error::ErrorKind as K;
    match error.kind() {
        K::HttpResponse {
            status,
            raw_response,
            ..
        } => {
            let retry = matches!(
                *status,
                StatusCode::RequestTimeout
                    | StatusCode::TooManyRequests
                    | StatusCode::InternalServerError
                    | StatusCode::BadGateway
                    | StatusCode::ServiceUnavailable
                    | StatusCode::GatewayTimeout
            );
            let after = raw_response.as_ref().and_then(|r| retry_after(r.headers()));
            (retry, after)
        }
        K::Io | K::Connection => (true, None),
        _ => (false, None),
    }
}

/// The wait a response asks for: `x-ms-retry-after-ms` or `retry-after-ms` (milliseconds), or
/// `Retry-After` (seconds, or an HTTP date), in that order, as the Azure SDK reads them.
pub(crate) fn retry_after(headers: &azure_core::http::headers::Headers) -> Option<Duration> {
    for name in [X_MS_RETRY_AFTER_MS, RETRY_AFTER_MS] {
        if let Some(ms) = headers
            .get_optional_str(&name)
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    let value = headers.get_optional_str(&RETRY_AFTER)?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = azure_core::time::parse_rfc7231(value).ok()?;
    let now = azure_core::time::OffsetDateTime::now_utc();
    let wait = when - now;
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Runs `attempt` until it succeeds, fails in a way not worth retrying, or the policy runs out.
/// Each attempt is bounded by the policy's timeout; dropping the returned future cancels the
/// attempt in flight (the HTTP request is dropped with it).
pub(crate) async fn run<T, F, Fut>(policy: &RetryPolicy, mut attempt: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = azure_core::Result<T>>,
{
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (failure, after) = match tokio::time::timeout(policy.attempt_timeout, attempt()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => {
                let (retry, after) = classify(&error);
                let failure = Failure::Service { error, attempts };
                if !retry {
                    return Err(failure);
                }
                (failure, after)
            }
            Err(_) => (Failure::TimedOut { attempts }, None),
        };
        if attempts > policy.max_retries {
            return Err(failure);
        }
        tokio::time::sleep(policy.wait(attempts, after)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::headers::Headers;

    #[test]
    fn backoff_grows_and_is_capped_with_jitter() {
        let p = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            let b9 = p.backoff(9);
            assert!(b9 >= Duration::from_millis(350) && b9 <= Duration::from_millis(700));
        }
    }

    #[test]
    fn retry_after_headers() {
        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "3");
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER_MS, "1500");
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert(X_MS_RETRY_AFTER_MS, "20");
        assert_eq!(retry_after(&h), Some(Duration::from_millis(20)));
        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "soon");
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn server_waits_are_capped() {
        let p = RetryPolicy {
            max_retry_after: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }
}

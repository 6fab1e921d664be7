//! The call log the live view shows: the latest upstream calls
//! ([`CallRecord`]) and invocations ([`InvocationRecord`]), secrets
//! redacted and texts clipped when recorded.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use crate::shown::{clip, shown_header, shown_url, SHOWN_TEXT, SHOWN_VALUE};
use crate::sync::lock;

/// How many upstream calls the live view keeps.
const LOG_SIZE: usize = 200;
/// How many invocations the live view keeps.
const INVOCATION_LOG_SIZE: usize = 200;

/// One upstream call, as the live view shows it: secrets redacted and
/// every text clipped when it is made ([`CallRecord::new`]), so the log of
/// [`LOG_SIZE`] records has a bounded size.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallRecord {
    at: String,
    hub: String,
    connection_id: String,
    event: String,
    method: &'static str,
    url: String,
    request_headers: Vec<(String, String)>,
    pub(super) status: Option<u16>,
    error: Option<String>,
    pub(super) latency_ms: f64,
}

impl CallRecord {
    /// A call to `url` with `headers`, sent at `started`: no signature,
    /// token or connection state in it (see [`shown`](crate::shown)).
    pub(super) fn new(
        hub: &str,
        connection_id: &str,
        event: &str,
        method: &'static str,
        url: &str,
        headers: &HeaderMap,
        started: Instant,
    ) -> Self {
        Self {
            at: rfc3339(SystemTime::now()),
            hub: clip(hub, SHOWN_VALUE),
            connection_id: clip(connection_id, SHOWN_VALUE),
            event: clip(event, SHOWN_VALUE),
            method,
            url: shown_url(url),
            request_headers: headers
                .iter()
                .map(|(name, value)| shown_header(name, value))
                .collect(),
            status: None,
            error: None,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }

    /// Notes why the call failed; `url` in `reason` (as given or as
    /// `url::Url` prints it, as reqwest does) is shown as [`shown_url`] does.
    pub(super) fn failed(&mut self, reason: &str, url: &str) {
        let mut reason = reason.replace(url, &self.url);
        if let Ok(normalized) = url::Url::parse(url) {
            reason = reason.replace(normalized.as_str(), &self.url);
        }
        self.error = Some(clip(&reason, SHOWN_TEXT));
    }
}

/// What became of an invocation, as the live view shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Outcome {
    /// The upstream answered 2xx.
    Success,
    /// Refused by the emulator or the upstream (see `error`).
    Error,
    /// No answer within the upstream timeout.
    Timeout,
    /// The client sent `cancelInvocation`.
    Cancelled,
    /// The socket closed while it was pending.
    Closed,
}

/// One invocation, as the live view shows it: no payload, texts clipped
/// to [`SHOWN_VALUE`] bytes ([`InvocationRecord::new`]).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvocationRecord {
    at: String,
    hub: String,
    connection_id: String,
    invocation_id: String,
    event: String,
    outcome: Outcome,
    /// The error name, when the outcome is `error` or `timeout`.
    error: Option<&'static str>,
    latency_ms: f64,
}

impl InvocationRecord {
    /// Invocation `id` of `event` on connection `connection_id` of `hub`,
    /// started at `started`, with its outcome (and error name).
    pub(crate) fn new(
        hub: &str,
        connection_id: &str,
        id: &str,
        event: &str,
        outcome: Outcome,
        error: Option<&'static str>,
        started: Instant,
    ) -> Self {
        Self {
            at: rfc3339(SystemTime::now()),
            hub: clip(hub, SHOWN_VALUE),
            connection_id: clip(connection_id, SHOWN_VALUE),
            invocation_id: clip(id, SHOWN_VALUE),
            event: clip(event, SHOWN_VALUE),
            outcome,
            error,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }
}

/// The latest calls and invocations, oldest first, each list bounded.
#[derive(Debug, Default)]
pub(crate) struct CallLog {
    calls: Mutex<VecDeque<CallRecord>>,
    invocations: Mutex<VecDeque<InvocationRecord>>,
}

impl CallLog {
    /// The latest calls, newest first.
    pub(crate) fn recent(&self) -> Vec<CallRecord> {
        lock(&self.calls).iter().rev().cloned().collect()
    }

    /// The latest invocations, newest first.
    pub(crate) fn recent_invocations(&self) -> Vec<InvocationRecord> {
        lock(&self.invocations).iter().rev().cloned().collect()
    }

    /// Keeps an invocation's outcome (the last [`INVOCATION_LOG_SIZE`]).
    pub(crate) fn record_invocation(&self, record: InvocationRecord) {
        let mut log = lock(&self.invocations);
        if log.len() == INVOCATION_LOG_SIZE {
            log.pop_front();
        }
        log.push_back(record);
    }

    /// Keeps a call (the last [`LOG_SIZE`]).
    pub(crate) fn record(&self, record: CallRecord) {
        let mut log = lock(&self.calls);
        if log.len() == LOG_SIZE {
            log.pop_front();
        }
        log.push_back(record);
    }
}

/// `2024-01-01T00:00:00Z` (UTC, seconds). A clock outside 1970..=9999
/// (which RFC 3339 and humantime cannot write) reads as the nearest end.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799); // 9999-12-31T23:59:59Z
    humantime::format_rfc3339_seconds(time.clamp(UNIX_EPOCH, last)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_seconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_704_067_200_999)),
            "2024-01-01T00:00:00Z",
            "fractions are cut, not rounded"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00Z",
            "a clock before 1970 does not panic"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(300_000_000_000)),
            "9999-12-31T23:59:59Z",
            "nor one after 9999"
        );
    }
}

//! The abuse-protection handshake's request, as the service sends it
//! before delivering events: `OPTIONS` with `WebHook-Request-Origin`.

use http::{HeaderMap, HeaderValue, Method};

use super::headers::{CE_AWPS_VERSION, WEBHOOK_REQUEST_ORIGIN};

/// The handshake's method.
pub const PREFLIGHT_METHOD: Method = Method::OPTIONS;

/// The handshake's headers: `WebHook-Request-Origin: <origin>` (the
/// service's host) and `ce-awpsversion: 1.0`. An `origin` that is not a
/// valid header value (only possible for text a test chose) is left out.
///
/// ```
/// use webpubsub::wire::{headers, preflight_headers};
///
/// let map = preflight_headers("demo.webpubsub.azure.com");
/// assert_eq!(map[headers::WEBHOOK_REQUEST_ORIGIN], "demo.webpubsub.azure.com");
/// assert_eq!(map[headers::CE_AWPS_VERSION], "1.0");
/// ```
#[must_use]
pub fn preflight_headers(origin: &str) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(2);
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(WEBHOOK_REQUEST_ORIGIN, value);
    }
    headers.insert(CE_AWPS_VERSION, HeaderValue::from_static("1.0"));
    headers
}

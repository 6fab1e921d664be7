//! The bearer-token check of events, as the upstream sees it: a trait the
//! validation calls, implemented by [`entra`](crate::entra) (feature
//! `entra`), so the upstream does not depend on how tokens are checked.

use std::fmt;
use std::sync::Arc;

use http::HeaderMap;

use super::Rejection;
use crate::config::ConfigError;

/// A built check of the `Authorization` header of events.
#[async_trait::async_trait]
pub(crate) trait BearerCheck: fmt::Debug + Send + Sync {
    /// Checks the request's bearer token; the refusal otherwise.
    async fn check(&self, headers: &HeaderMap) -> Result<(), Rejection>;
}

/// The settings of a bearer check, built with the rest of the validation
/// (so a bad setting fails `build()` in its order).
pub(crate) trait BearerSetup: fmt::Debug + Send + Sync {
    /// The check, or what is wrong with the settings.
    fn build(&self) -> Result<Arc<dyn BearerCheck>, ConfigError>;
}

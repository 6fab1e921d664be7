//! Granting, revoking and checking a connection's permissions: calls with
//! options, configured then awaited.

use std::fmt;
use std::future::IntoFuture;

use http::{Method, StatusCode};

use super::paths::{check_group, Part};
use super::requests::ServiceFuture;
use super::transport::Call;
use super::{ServiceError, WebPubSubServiceClient};
use crate::client_access::Permission;

/// A grant or revoke of a permission; `.await` sends it.
///
/// Without [`target_group`](Self::target_group) the permission covers every group.
#[must_use = "a request does nothing until it is awaited"]
pub struct PermissionRequest {
    client: WebPubSubServiceClient,
    grant: bool,
    permission: Permission,
    connection_id: String,
    target: Option<String>,
}

impl PermissionRequest {
    pub(super) fn new(
        client: WebPubSubServiceClient,
        grant: bool,
        permission: Permission,
        connection_id: String,
    ) -> Self {
        Self {
            client,
            grant,
            permission,
            connection_id,
            target: None,
        }
    }

    /// Limits the grant or revoke to one group.
    pub fn target_group(mut self, group: impl Into<String>) -> Self {
        self.target = Some(group.into());
        self
    }
}

fn permission_call(
    client: &WebPubSubServiceClient,
    operation: &'static str,
    method: Method,
    permission: Permission,
    connection_id: &str,
    target: Option<&str>,
) -> Result<Call, ServiceError> {
    let path = [
        Part::Lit("permissions"),
        Part::Lit(permission.as_str()),
        Part::Lit("connections"),
        Part::Connection(connection_id),
    ];
    if let Some(group) = target {
        check_group(operation, group)?;
    }
    Ok(client
        .call_to(operation, method, &path)?
        .query_opt("targetName", target))
}

impl IntoFuture for PermissionRequest {
    type Output = Result<(), ServiceError>;
    type IntoFuture = ServiceFuture<()>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (operation, method, status) = if self.grant {
                ("grant_permission", Method::PUT, StatusCode::OK)
            } else {
                ("revoke_permission", Method::DELETE, StatusCode::NO_CONTENT)
            };
            let call = permission_call(
                &self.client,
                operation,
                method,
                self.permission,
                &self.connection_id,
                self.target.as_deref(),
            )?
            .expect(status);
            self.client.transport().send(call).await.map(drop)
        })
    }
}

impl fmt::Debug for PermissionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermissionRequest")
            .field("grant", &self.grant)
            .field("permission", &self.permission)
            .field("connection_id", &self.connection_id)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A permission check; `.await` gives `true` (`200`) or `false` (`404`).
#[must_use = "a request does nothing until it is awaited"]
pub struct PermissionCheck {
    client: WebPubSubServiceClient,
    permission: Permission,
    connection_id: String,
    target: Option<String>,
}

impl PermissionCheck {
    pub(super) fn new(
        client: WebPubSubServiceClient,
        permission: Permission,
        connection_id: String,
    ) -> Self {
        Self {
            client,
            permission,
            connection_id,
            target: None,
        }
    }

    /// Checks the permission over one group rather than all of them.
    pub fn target_group(mut self, group: impl Into<String>) -> Self {
        self.target = Some(group.into());
        self
    }
}

impl IntoFuture for PermissionCheck {
    type Output = Result<bool, ServiceError>;
    type IntoFuture = ServiceFuture<bool>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let call = permission_call(
                &self.client,
                "has_permission",
                Method::HEAD,
                self.permission,
                &self.connection_id,
                self.target.as_deref(),
            )?
            .exists();
            self.client.transport().send(call).await.map(|a| a.exists)
        })
    }
}

impl fmt::Debug for PermissionCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermissionCheck")
            .field("permission", &self.permission)
            .field("connection_id", &self.connection_id)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

//! The REST operations of a [`WebPubSubServiceClient`]: sending, groups,
//! closing connections, existence checks, permissions and health.

use http::{Method, StatusCode};

use super::list_connections::ListConnectionsRequest;
use super::paths::check_group;
use super::paths::Part::{Connection, Group, Lit, User};
use super::permissions::{PermissionCheck, PermissionRequest};
use super::requests::{CloseRequest, SendRequest, ToAll, ToConnection, ToGroup, ToUser};
use super::transport::Call;
use super::{Filter, Message, ServiceError, WebPubSubServiceClient};
use crate::client_access::Permission;

impl WebPubSubServiceClient {
    // ----- sending ---------------------------------------------------------

    /// Sends a message to every connection of the hub (`POST /api/hubs/{hub}/:send`, `202`).
    ///
    /// Options: [`exclude`](SendRequest::exclude), [`filter`](SendRequest::filter),
    /// [`ttl`](SendRequest::ttl). Never retried once sent.
    pub fn send_to_all(&self, message: impl Into<Message>) -> SendRequest<ToAll> {
        SendRequest::new(self.clone(), ToAll, message.into())
    }

    /// Sends a message to every connection in `group`.
    pub fn send_to_group(
        &self,
        group: impl Into<String>,
        message: impl Into<Message>,
    ) -> SendRequest<ToGroup> {
        SendRequest::new(self.clone(), ToGroup(group.into()), message.into())
    }

    /// Sends a message to every connection of `user_id`.
    pub fn send_to_user(
        &self,
        user_id: impl Into<String>,
        message: impl Into<Message>,
    ) -> SendRequest<ToUser> {
        SendRequest::new(self.clone(), ToUser(user_id.into()), message.into())
    }

    /// Sends a message to one connection.
    pub fn send_to_connection(
        &self,
        connection_id: impl Into<String>,
        message: impl Into<Message>,
    ) -> SendRequest<ToConnection> {
        SendRequest::new(
            self.clone(),
            ToConnection(connection_id.into()),
            message.into(),
        )
    }

    // ----- groups ----------------------------------------------------------

    /// Adds a connection to a group (`200`; `404` when the connection does not exist).
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `404` ([`ServiceError::is_not_found`]) for an unknown connection.
    pub async fn add_connection_to_group(
        &self,
        group: &str,
        connection_id: &str,
    ) -> Result<(), ServiceError> {
        let path = [
            Lit("groups"),
            Group(group),
            Lit("connections"),
            Connection(connection_id),
        ];
        let call = self.call_to("add_connection_to_group", Method::PUT, &path)?;
        self.run(call).await.map(drop)
    }

    /// Removes a connection from a group (`204`, also when it was not in it).
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn remove_connection_from_group(
        &self,
        group: &str,
        connection_id: &str,
    ) -> Result<(), ServiceError> {
        let path = [
            Lit("groups"),
            Group(group),
            Lit("connections"),
            Connection(connection_id),
        ];
        let call = self.call_to("remove_connection_from_group", Method::DELETE, &path)?;
        self.run(call.expect(StatusCode::NO_CONTENT))
            .await
            .map(drop)
    }

    /// Removes a connection from every group it is in (`204`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn remove_connection_from_all_groups(
        &self,
        connection_id: &str,
    ) -> Result<(), ServiceError> {
        let path = [Lit("connections"), Connection(connection_id), Lit("groups")];
        let call = self.call_to("remove_connection_from_all_groups", Method::DELETE, &path)?;
        self.run(call.expect(StatusCode::NO_CONTENT))
            .await
            .map(drop)
    }

    /// Adds every current connection of a user to a group (`200`; `404`
    /// when the user has no connection). Connections the user opens later
    /// are not added.
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `404` ([`ServiceError::is_not_found`]) when the user has no connection.
    pub async fn add_user_to_group(&self, group: &str, user_id: &str) -> Result<(), ServiceError> {
        let path = [Lit("users"), User(user_id), Lit("groups"), Group(group)];
        let call = self.call_to("add_user_to_group", Method::PUT, &path)?;
        self.run(call).await.map(drop)
    }

    /// Removes every connection of a user from a group (`204`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn remove_user_from_group(
        &self,
        group: &str,
        user_id: &str,
    ) -> Result<(), ServiceError> {
        let path = [Lit("users"), User(user_id), Lit("groups"), Group(group)];
        let call = self.call_to("remove_user_from_group", Method::DELETE, &path)?;
        self.run(call.expect(StatusCode::NO_CONTENT))
            .await
            .map(drop)
    }

    /// Removes every connection of a user from every group (`204`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`].
    pub async fn remove_user_from_all_groups(&self, user_id: &str) -> Result<(), ServiceError> {
        let path = [Lit("users"), User(user_id), Lit("groups")];
        let call = self.call_to("remove_user_from_all_groups", Method::DELETE, &path)?;
        self.run(call.expect(StatusCode::NO_CONTENT))
            .await
            .map(drop)
    }

    /// Adds every connection matching `filter` to every one of `groups`
    /// (`POST /api/hubs/{hub}/:addToGroups`, `200`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `InvalidArgument` for an empty or invalid group list.
    pub async fn add_connections_to_groups<I>(
        &self,
        groups: I,
        filter: impl Into<Filter>,
    ) -> Result<(), ServiceError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.bulk_groups(
            "add_connections_to_groups",
            ":addToGroups",
            groups,
            filter.into(),
        )
        .await
    }

    /// Removes every connection matching `filter` from every one of `groups`
    /// (`POST /api/hubs/{hub}/:removeFromGroups`, `200`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`]; `InvalidArgument` for an empty or invalid group list.
    pub async fn remove_connections_from_groups<I>(
        &self,
        groups: I,
        filter: impl Into<Filter>,
    ) -> Result<(), ServiceError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.bulk_groups(
            "remove_connections_from_groups",
            ":removeFromGroups",
            groups,
            filter.into(),
        )
        .await
    }

    async fn bulk_groups<I>(
        &self,
        op: &'static str,
        action: &str,
        groups: I,
        filter: Filter,
    ) -> Result<(), ServiceError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        if groups.is_empty() {
            return Err(ServiceError::invalid(op, "give at least one group"));
        }
        for group in &groups {
            check_group(op, group)?;
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            groups: &'a [String],
            filter: &'a str,
        }
        let body = serde_json::to_vec(&Body {
            groups: &groups,
            filter: filter.as_str(),
        })?;
        let call = self.call(op, Method::POST).literal(action).body(
            http::HeaderValue::from_static("application/json"),
            body.into(),
        );
        self.run(call).await.map(drop)
    }

    /// Lists the connections in a group, following every page
    /// (`GET /api/hubs/{hub}/groups/{group}/connections`).
    ///
    /// Options: [`max_page_size`](ListConnectionsRequest::max_page_size),
    /// [`top`](ListConnectionsRequest::top).
    pub fn list_connections_in_group(&self, group: impl Into<String>) -> ListConnectionsRequest {
        ListConnectionsRequest::new(self.clone(), group.into())
    }

    // ----- closing ---------------------------------------------------------

    /// Closes one connection (`DELETE`, `204`, also for an unknown connection).
    ///
    /// Option: [`reason`](CloseRequest::reason).
    pub fn close_connection(&self, connection_id: impl Into<String>) -> CloseRequest<ToConnection> {
        CloseRequest::new(self.clone(), ToConnection(connection_id.into()))
    }

    /// Closes every connection of the hub.
    ///
    /// Options: [`reason`](CloseRequest::reason), [`exclude`](CloseRequest::exclude).
    pub fn close_all_connections(&self) -> CloseRequest<ToAll> {
        CloseRequest::new(self.clone(), ToAll)
    }

    /// Closes every connection in a group.
    pub fn close_group_connections(&self, group: impl Into<String>) -> CloseRequest<ToGroup> {
        CloseRequest::new(self.clone(), ToGroup(group.into()))
    }

    /// Closes every connection of a user.
    pub fn close_user_connections(&self, user_id: impl Into<String>) -> CloseRequest<ToUser> {
        CloseRequest::new(self.clone(), ToUser(user_id.into()))
    }

    // ----- existence -------------------------------------------------------

    /// Whether a connection is open (`HEAD`, `200` yes, `404` no).
    ///
    /// # Errors
    ///
    /// [`ServiceError`] for any other answer.
    pub async fn connection_exists(&self, connection_id: &str) -> Result<bool, ServiceError> {
        let path = [Lit("connections"), Connection(connection_id)];
        let call = self.call_to("connection_exists", Method::HEAD, &path)?;
        self.run(call.exists()).await
    }

    /// Whether a group has at least one connection.
    ///
    /// # Errors
    ///
    /// [`ServiceError`] for any answer but `200` and `404`.
    pub async fn group_exists(&self, group: &str) -> Result<bool, ServiceError> {
        let call = self.call_to("group_exists", Method::HEAD, &[Lit("groups"), Group(group)])?;
        self.run(call.exists()).await
    }

    /// Whether a user has at least one connection.
    ///
    /// # Errors
    ///
    /// [`ServiceError`] for any answer but `200` and `404`.
    pub async fn user_exists(&self, user_id: &str) -> Result<bool, ServiceError> {
        let call = self.call_to("user_exists", Method::HEAD, &[Lit("users"), User(user_id)])?;
        self.run(call.exists()).await
    }

    // ----- permissions -----------------------------------------------------

    /// Grants a connection a permission, over every group or (with
    /// [`target_group`](PermissionRequest::target_group)) one (`PUT`, `200`).
    pub fn grant_permission(
        &self,
        permission: Permission,
        connection_id: impl Into<String>,
    ) -> PermissionRequest {
        PermissionRequest::new(self.clone(), true, permission, connection_id.into())
    }

    /// Revokes a permission from a connection (`DELETE`, `204`).
    pub fn revoke_permission(
        &self,
        permission: Permission,
        connection_id: impl Into<String>,
    ) -> PermissionRequest {
        PermissionRequest::new(self.clone(), false, permission, connection_id.into())
    }

    /// Whether a connection has a permission (`HEAD`, `200` yes, `404` no).
    pub fn has_permission(
        &self,
        permission: Permission,
        connection_id: impl Into<String>,
    ) -> PermissionCheck {
        PermissionCheck::new(self.clone(), permission, connection_id.into())
    }

    // ----- health ----------------------------------------------------------

    /// Checks that the service is up (`HEAD /api/health`, `200`).
    ///
    /// # Errors
    ///
    /// [`ServiceError`] when the service is unreachable or answers anything but `200`.
    pub async fn health(&self) -> Result<(), ServiceError> {
        let call = Call::root("health", Method::HEAD, "/api/health");
        self.run(call).await.map(drop)
    }
}

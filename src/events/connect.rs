//! The `connect` event: a client asks to connect; the answer accepts or refuses it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::client_maps::{ClientMaps, Which};
use super::context::ConnectionContext;
use crate::state::StateChanges;
use crate::wire::{
    ClientCertificate, ConnectBody, MqttConnectProperties, MqttConnectResponse, MqttUserProperty,
};

/// A client asks to connect (`azure.webpubsub.sys.connect`).
///
/// Answer with a [`ConnectEventResponse`] to accept (optionally setting the
/// user id, groups, roles and subprotocol) or an
/// [`EventErrorResponse`](crate::EventErrorResponse) to refuse.
///
/// ```
/// use webpubsub::testing;
/// use webpubsub::events::Event;
///
/// let (headers, body) = testing::connect("chat", "conn-1")
///     .claim("sub", "alice")
///     .query("room", "lobby")
///     .subprotocols(["json.webpubsub.azure.v1"])
///     .into_parts();
/// let Event::Connect(req) = webpubsub::upstream::decode_event(&headers, body)? else { unreachable!() };
/// assert_eq!(req.claim("sub"), Some("alice"));
/// assert_eq!(req.query_value("room"), Some("lobby"));
/// assert_eq!(req.subprotocols, ["json.webpubsub.azure.v1"]);
/// # Ok::<(), webpubsub::upstream::Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectEventRequest {
    /// The connection.
    pub context: ConnectionContext,
    /// `claims`, `query` and `headers`, read from the body when asked for.
    maps: ClientMaps,
    /// Subprotocols the client offered.
    pub subprotocols: Vec<String>,
    /// Client certificates presented by the client.
    pub client_certificates: Vec<ClientCertificate>,
    /// The MQTT CONNECT properties, for MQTT clients.
    pub mqtt: Option<MqttConnectProperties>,
}

impl ConnectEventRequest {
    pub(crate) fn from_body(context: ConnectionContext, body: ConnectBody) -> Self {
        Self::from_parts(
            context,
            ClientMaps::from_maps(body.claims, body.query, body.headers),
            body.subprotocols,
            body.client_certificates,
            body.mqtt,
        )
    }

    /// A request whose maps are read from `maps` when asked for.
    pub(crate) fn from_parts(
        context: ConnectionContext,
        maps: ClientMaps,
        subprotocols: Vec<String>,
        client_certificates: Vec<ClientCertificate>,
        mqtt: Option<MqttConnectProperties>,
    ) -> Self {
        Self {
            context,
            maps,
            subprotocols,
            client_certificates,
            mqtt,
        }
    }

    /// A request with no claims, query or headers, for calling a handler
    /// directly in tests.
    #[must_use]
    pub fn new(context: ConnectionContext) -> Self {
        Self::from_body(context, ConnectBody::default())
    }

    /// The first value of claim `name` (e.g. `sub`).
    ///
    /// Finds it in the event's body without building the whole map.
    #[must_use]
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.maps.first(Which::Claims, name)
    }

    /// The first value of query parameter `name`.
    ///
    /// Finds it in the event's body without building the whole map.
    #[must_use]
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.maps.first(Which::Query, name)
    }

    /// Claims of the client's access token (`sub`, `role`, …), each a list.
    ///
    /// The map is built from the event's body on first use; for one claim,
    /// [`claim`](Self::claim) is cheaper.
    #[must_use]
    pub fn claims(&self) -> &BTreeMap<String, Vec<String>> {
        self.maps.map(Which::Claims)
    }

    /// Query parameters of the client's request (without `access_token`),
    /// each a list; built on first use.
    #[must_use]
    pub fn query(&self) -> &BTreeMap<String, Vec<String>> {
        self.maps.map(Which::Query)
    }

    /// Headers of the client's request, as the service forwards them, each
    /// a list; built on first use.
    #[must_use]
    pub fn headers(&self) -> &BTreeMap<String, Vec<String>> {
        self.maps.map(Which::Headers)
    }

    /// The claims, to change (e.g. in a test).
    pub fn claims_mut(&mut self) -> &mut BTreeMap<String, Vec<String>> {
        self.maps.map_mut(Which::Claims)
    }

    /// The query parameters, to change (e.g. in a test).
    pub fn query_mut(&mut self) -> &mut BTreeMap<String, Vec<String>> {
        self.maps.map_mut(Which::Query)
    }

    /// The request headers, to change (e.g. in a test).
    pub fn headers_mut(&mut self) -> &mut BTreeMap<String, Vec<String>> {
        self.maps.map_mut(Which::Headers)
    }

    /// The first value of the client's request header `name`, compared
    /// case-insensitively.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }
}

/// Accepts a connection, optionally setting who it is and what it may do.
///
/// With nothing set the answer is `204 No Content` (accept, change
/// nothing); otherwise `200` with a JSON object holding only the fields that
/// were set.
///
/// ```
/// use webpubsub::ConnectEventResponse;
///
/// let accept = ConnectEventResponse::new()
///     .user_id("alice")
///     .groups(["lobby"])
///     .roles(["webpubsub.sendToGroup.lobby"])
///     .state("joined_at", 1_700_000_000);
/// assert_eq!(
///     serde_json::to_string(&accept)?,
///     r#"{"userId":"alice","groups":["lobby"],"roles":["webpubsub.sendToGroup.lobby"]}"#,
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
#[must_use]
pub struct ConnectEventResponse {
    /// The user id of the connection (overrides the token's `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Groups to join right away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Roles (permissions) of the connection, e.g. `webpubsub.joinLeaveGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The subprotocol to complete the handshake with; one the client offered.
    #[serde(default, skip_serializing_if = "is_none_or_empty")]
    pub subprotocol: Option<String>,
    /// MQTT-only fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttConnectResponse>,
    /// Changes to the connection's states.
    #[serde(skip)]
    pub states: StateChanges,
}

fn is_none_or_empty(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

impl ConnectEventResponse {
    /// Accept the connection and change nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the connection's user id.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the groups the connection joins right away.
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = Some(groups.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the connection's roles.
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = Some(roles.into_iter().map(Into::into).collect());
        self
    }

    /// Chooses the subprotocol (one the client offered).
    pub fn subprotocol(mut self, subprotocol: impl Into<String>) -> Self {
        self.subprotocol = Some(subprotocol.into());
        self
    }

    /// Adds an MQTT 5 user property to the CONNACK.
    pub fn mqtt_user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.mqtt
            .get_or_insert_with(MqttConnectResponse::default)
            .user_properties
            .push(MqttUserProperty::new(name, value));
        self
    }

    crate::state::state_builder_methods!();

    /// Whether the answer has a JSON body (anything but states was set).
    #[must_use]
    pub fn has_body(&self) -> bool {
        self.user_id.is_some()
            || self.groups.is_some()
            || self.roles.is_some()
            || !is_none_or_empty(&self.subprotocol)
            || self.mqtt.is_some()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::CONNECT_ANSWER_FIELDS;

    #[test]
    fn the_answer_field_names_are_the_ones_serde_writes() {
        let accept = ConnectEventResponse::new()
            .user_id("alice")
            .groups(["lobby"])
            .roles(["r"])
            .subprotocol("json.webpubsub.azure.v1")
            .mqtt_user_property("region", "eu");
        let json = serde_json::to_value(&accept).unwrap();
        // Spec (upstream.md §6.1, mqtt.md §4.1): the names the service reads.
        assert_eq!(
            json,
            serde_json::json!({
                "userId": "alice",
                "groups": ["lobby"],
                "roles": ["r"],
                "subprotocol": "json.webpubsub.azure.v1",
                "mqtt": {"userProperties": [{"name": "region", "value": "eu"}]},
            })
        );
        for name in CONNECT_ANSWER_FIELDS {
            assert!(json.get(name).is_some(), "{name}");
        }
        let back: ConnectEventResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back, accept);
    }
}

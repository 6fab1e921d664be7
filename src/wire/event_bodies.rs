//! The JSON bodies of the non-blocking system events: `connected`,
//! `disconnected` and group presence (`gp.joined` / `gp.left`).

use serde::{Deserialize, Serialize};

use super::mqtt::MqttDisconnectedProperties;

/// The body of a `connected` event: `{}` (upstream.md §6.2).
///
/// ```
/// use webpubsub::wire::ConnectedBody;
///
/// assert_eq!(serde_json::to_string(&ConnectedBody::new())?, "{}");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectedBody {}

impl ConnectedBody {
    /// The (empty) body.
    #[must_use]
    pub fn new() -> Self {
        Self {}
    }
}

/// The body of a `disconnected` event:
/// `{"reason":…,"mqtt":{"initiatedByClient":…,"disconnectPacket":…}}`,
/// `mqtt` for MQTT clients only. Read by the decoder, written by tools
/// that send events.
///
/// ```
/// use webpubsub::wire::DisconnectedBody;
///
/// let body = DisconnectedBody::new(Some("bye".into()));
/// assert_eq!(serde_json::to_string(&body)?, r#"{"reason":"bye"}"#);
///
/// // An MQTT client's, as the spec shows it (mqtt.md §4.4).
/// use webpubsub::wire::{MqttDisconnectPacket, MqttDisconnectedProperties};
/// let mut body = DisconnectedBody::new(None);
/// body.mqtt = Some(MqttDisconnectedProperties::new(true, Some(MqttDisconnectPacket::new(0, None))));
/// assert_eq!(
///     serde_json::to_string(&body)?,
///     r#"{"reason":null,"mqtt":{"initiatedByClient":true,"disconnectPacket":{"code":0,"userProperties":null}}}"#,
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DisconnectedBody {
    /// Why the connection ended; `null` for a normal close.
    #[serde(default)]
    pub reason: Option<String>,
    /// The MQTT details, for an MQTT client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttDisconnectedProperties>,
}

impl DisconnectedBody {
    /// The body of a connection that ended for `reason`, not an MQTT one.
    #[must_use]
    pub fn new(reason: Option<String>) -> Self {
        Self { reason, mqtt: None }
    }
}

/// The body of a group presence event: `{"group":"<group>"}`.
///
/// ```
/// use webpubsub::wire::GroupBody;
///
/// let body = GroupBody::new("lobby");
/// assert_eq!(serde_json::to_string(&body)?, r#"{"group":"lobby"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupBody {
    /// The group joined or left.
    pub group: String,
}

impl GroupBody {
    /// The body for `group`.
    #[must_use]
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::mqtt::{MqttDisconnectPacket, MqttUserProperty};
    use super::*;

    #[test]
    fn a_disconnected_body_reads_what_it_writes_with_the_spec_field_names() {
        let body = DisconnectedBody {
            reason: None,
            mqtt: Some(MqttDisconnectedProperties::new(
                true,
                Some(MqttDisconnectPacket::new(
                    0,
                    Some(vec![MqttUserProperty::new("n", "v")]),
                )),
            )),
        };
        let json = serde_json::to_value(&body).unwrap();
        // Spec (mqtt.md §4.4), literally.
        let spec = r#"{"reason":null,
         "mqtt":{"initiatedByClient":true,
                 "disconnectPacket":{"code":0,"userProperties":[{"name":"n","value":"v"}]}}}"#;
        assert_eq!(
            json,
            serde_json::from_str::<serde_json::Value>(spec).unwrap()
        );
        assert_eq!(
            serde_json::from_value::<DisconnectedBody>(json).unwrap(),
            body
        );

        let plain = DisconnectedBody::new(Some("gone".to_owned()));
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(json, r#"{"reason":"gone"}"#);
        assert_eq!(
            serde_json::from_str::<DisconnectedBody>(&json).unwrap(),
            plain
        );
    }

    #[test]
    fn a_connected_body_is_an_empty_object_both_ways() {
        let json = serde_json::to_string(&ConnectedBody::new()).unwrap();
        assert_eq!(json, "{}");
        assert_eq!(
            serde_json::from_str::<ConnectedBody>(&json).unwrap(),
            ConnectedBody::new()
        );
        // What the service may add later is ignored, not refused.
        assert!(serde_json::from_str::<ConnectedBody>(r#"{"extra":1}"#).is_ok());
    }

    #[test]
    fn a_group_body_reads_what_it_writes_with_the_spec_field_name() {
        let body = GroupBody::new("lobby");
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"group":"lobby"}"#);
        assert_eq!(serde_json::from_str::<GroupBody>(&json).unwrap(), body);
    }
}

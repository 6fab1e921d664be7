//! Refusals: the error answer to a blocking event.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::wire::{MqttConnectError, MqttUserProperty};

/// The kind of a refusal, which picks the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The client did something wrong: `400 Bad Request`.
    UserError,
    /// The client may not do this: `401 Unauthorized`.
    Unauthorized,
    /// The application failed: `500 Internal Server Error`.
    ServerError,
}

impl ErrorCode {
    /// The HTTP status for this code.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::UserError => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The MQTT CONNACK code for this error and MQTT protocol version
    /// (`4` = 3.1.1, `5` = 5.0); `1` (unacceptable protocol version) for any
    /// other version.
    #[must_use]
    pub fn mqtt_code(self, protocol_version: u8) -> u8 {
        match (protocol_version, self) {
            (4, Self::UserError) => 4,
            (4, Self::Unauthorized) => 5,
            (4, Self::ServerError) => 3,
            (5, Self::UserError) => 134,
            (5, Self::Unauthorized) => 135,
            (5, Self::ServerError) => 128,
            _ => 1,
        }
    }
}

/// Refuses a blocking event (`connect` or a user event).
///
/// The answer is the status of [`code`](Self::code) with the message as a
/// short `text/plain` body. For an MQTT client's `connect`, the body is the
/// JSON the service expects (`{"mqtt":{"code":…,"reason":…}}`), with the
/// CONNACK code set explicitly with [`mqtt`](Self::mqtt) or else mapped from
/// the error code for the client's protocol version when the answer is
/// written (see [`mqtt_answer`](Self::mqtt_answer)).
///
/// ```
/// use webpubsub::EventErrorResponse;
///
/// let refuse = EventErrorResponse::unauthorized("token has no room claim");
/// assert_eq!(refuse.status().as_u16(), 401);
///
/// // An explicit MQTT 5 reason code picks the status from the MQTT table:
/// let banned = EventErrorResponse::mqtt(138, "banned");
/// assert_eq!(banned.status().as_u16(), 403);
///
/// // User properties never change the status, nor the code of the version:
/// let refuse = EventErrorResponse::user_error("bad client id").mqtt_user_property("hint", "retry");
/// assert_eq!(refuse.status().as_u16(), 400);
/// assert_eq!(refuse.mqtt_answer(4).code, 4);
/// assert_eq!(refuse.mqtt_answer(5).code, 134);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventErrorResponse {
    /// What kind of refusal this is.
    pub code: ErrorCode,
    /// A short message for the service's logs.
    pub message: String,
    /// An explicit MQTT CONNACK answer, for MQTT clients; set by
    /// [`mqtt`](Self::mqtt). Without it, an MQTT client gets the code of
    /// [`code`](Self::code) for its protocol version.
    pub mqtt: Option<MqttConnectError>,
    /// MQTT 5 user properties for the CONNACK, added with
    /// [`mqtt_user_property`](Self::mqtt_user_property); sent after those of
    /// [`mqtt`](Self::mqtt).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mqtt_user_properties: Vec<MqttUserProperty>,
}

impl EventErrorResponse {
    /// A refusal with `code` and `message`.
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            mqtt: None,
            mqtt_user_properties: Vec::new(),
        }
    }

    /// A `400` refusal: the client's input is wrong.
    #[must_use]
    pub fn user_error(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UserError, message)
    }

    /// A `401` refusal: the client is not allowed.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// A `500` refusal: the application failed.
    #[must_use]
    pub fn server_error(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerError, message)
    }

    /// A refusal of an MQTT client with an explicit CONNACK `code` (MQTT 3.1.1
    /// return code 1–5, or MQTT 5 reason code ≥ 128) and `reason`.
    ///
    /// The HTTP status follows the service's table: 3.1.1 codes 1, 2 → 400,
    /// 3 → 503, 4, 5 → 401; MQTT 5 codes 134, 135 → 401; 129, 131–133, 140,
    /// 144, 149, 153–155 → 400; 151, 159 → 429; 138 → 403; anything else → 500.
    #[must_use]
    pub fn mqtt(code: u8, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let kind = match mqtt_status(code) {
            s if s == StatusCode::BAD_REQUEST => ErrorCode::UserError,
            s if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN => {
                ErrorCode::Unauthorized
            }
            _ => ErrorCode::ServerError,
        };
        Self {
            code: kind,
            message: reason.clone(),
            mqtt: Some(MqttConnectError {
                code,
                reason: (!reason.is_empty()).then_some(reason),
                user_properties: Vec::new(),
            }),
            mqtt_user_properties: Vec::new(),
        }
    }

    /// Adds an MQTT 5 user property to the CONNACK of an MQTT client.
    ///
    /// Neither the HTTP status nor the MQTT code changes: a generic refusal
    /// still gets the code of its [`ErrorCode`] for the client's protocol
    /// version (see [`mqtt_answer`](Self::mqtt_answer)).
    #[must_use]
    pub fn mqtt_user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.mqtt_user_properties
            .push(MqttUserProperty::new(name, value));
        self
    }

    /// The MQTT part of the answer to a client of MQTT `protocol_version`
    /// (`4` = 3.1.1, `5` = 5.0): the explicit [`mqtt`](Self::mqtt) answer, or
    /// the code of [`code`](Self::code) for that version
    /// ([`ErrorCode::mqtt_code`]) with the message as reason; then the
    /// [`mqtt_user_properties`](Self::mqtt_user_properties).
    ///
    /// ```
    /// use webpubsub::EventErrorResponse;
    ///
    /// let refuse = EventErrorResponse::unauthorized("expired").mqtt_user_property("a", "b");
    /// assert_eq!(refuse.mqtt_answer(4).code, 5);
    /// assert_eq!(refuse.mqtt_answer(5).code, 135);
    /// assert_eq!(refuse.mqtt_answer(5).user_properties.len(), 1);
    /// ```
    #[must_use]
    pub fn mqtt_answer(&self, protocol_version: u8) -> MqttConnectError {
        let mut answer = match &self.mqtt {
            Some(explicit) => explicit.clone(),
            None => MqttConnectError {
                code: self.code.mqtt_code(protocol_version),
                reason: (!self.message.is_empty()).then(|| self.message.clone()),
                user_properties: Vec::new(),
            },
        };
        answer
            .user_properties
            .extend(self.mqtt_user_properties.iter().cloned());
        answer
    }

    /// The HTTP status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match &self.mqtt {
            Some(mqtt) => mqtt_status(mqtt.code),
            None => self.code.status(),
        }
    }
}

/// HTTP status for an explicit MQTT CONNACK code.
fn mqtt_status(code: u8) -> StatusCode {
    match code {
        1 | 2 => StatusCode::BAD_REQUEST,
        3 => StatusCode::SERVICE_UNAVAILABLE,
        4 | 5 | 134 | 135 => StatusCode::UNAUTHORIZED,
        129 | 131 | 132 | 133 | 140 | 144 | 149 | 153 | 154 | 155 => StatusCode::BAD_REQUEST,
        151 | 159 => StatusCode::TOO_MANY_REQUESTS,
        138 => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl fmt::Display for EventErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status().as_u16(), self.message)
    }
}

impl std::error::Error for EventErrorResponse {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_codes_map_to_400_401_500() {
        assert_eq!(EventErrorResponse::user_error("x").status(), 400);
        assert_eq!(EventErrorResponse::unauthorized("x").status(), 401);
        assert_eq!(EventErrorResponse::server_error("x").status(), 500);
    }

    #[test]
    fn mqtt_codes_follow_the_service_table() {
        let table: &[(&[u8], u16)] = &[
            (&[1, 2], 400),
            (&[3], 503),
            (&[4, 5, 134, 135], 401),
            (&[129, 131, 132, 133, 140, 144, 149, 153, 154, 155], 400),
            (&[151, 159], 429),
            (&[138], 403),
            (&[128, 136, 137, 156, 157, 200], 500),
        ];
        for (codes, status) in table {
            for code in *codes {
                assert_eq!(
                    EventErrorResponse::mqtt(*code, "r").status(),
                    *status,
                    "code {code}"
                );
            }
        }
    }

    #[test]
    fn user_properties_change_neither_the_status_nor_the_code_of_the_version() {
        let cases = [
            (EventErrorResponse::user_error("x"), 400, 4, 134),
            (EventErrorResponse::unauthorized("x"), 401, 5, 135),
            (EventErrorResponse::server_error("x"), 500, 3, 128),
            (EventErrorResponse::mqtt(138, "x"), 403, 138, 138),
        ];
        for (refusal, status, v4, v5) in cases {
            let refusal = refusal.mqtt_user_property("a", "b");
            assert_eq!(refusal.status(), status, "{refusal:?}");
            assert_eq!(refusal.mqtt_answer(4).code, v4, "{refusal:?}");
            assert_eq!(refusal.mqtt_answer(5).code, v5, "{refusal:?}");
            assert_eq!(
                refusal.mqtt_answer(5).user_properties,
                [MqttUserProperty::new("a", "b")]
            );
        }
    }

    #[test]
    fn generic_errors_map_to_mqtt_codes_per_version() {
        assert_eq!(ErrorCode::UserError.mqtt_code(4), 4);
        assert_eq!(ErrorCode::Unauthorized.mqtt_code(4), 5);
        assert_eq!(ErrorCode::ServerError.mqtt_code(4), 3);
        assert_eq!(ErrorCode::UserError.mqtt_code(5), 134);
        assert_eq!(ErrorCode::Unauthorized.mqtt_code(5), 135);
        assert_eq!(ErrorCode::ServerError.mqtt_code(5), 128);
        assert_eq!(ErrorCode::Unauthorized.mqtt_code(3), 1);
    }
}

//! Connection state: small key/value data the service keeps per connection.
//!
//! The service stores one opaque string per connection (the last
//! `ce-connectionState` response header) and sends it back with every later
//! event. This crate uses the format of the documentation and of
//! `@azure/web-pubsub-express`: base64 of a JSON object of plain JSON values.

use std::collections::BTreeMap;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Standard alphabet; padding written, and optional when read.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The states attached to a connection, as received with an event.
///
/// ```
/// use webpubsub::state::ConnectionStates;
///
/// // `eyJjb3VudGVyIjoxLCJuYW1lIjoiYm9iIn0=` is base64 of {"counter":1,"name":"bob"}
/// let states = ConnectionStates::from_header("eyJjb3VudGVyIjoxLCJuYW1lIjoiYm9iIn0=")?;
/// assert_eq!(states.get::<u32>("counter")?, Some(1));
/// assert_eq!(states.get::<String>("name")?.as_deref(), Some("bob"));
/// assert_eq!(states.get::<u32>("missing")?, None);
/// assert!(states.get::<u32>("name").is_err()); // a string is not a number
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionStates {
    values: BTreeMap<String, Value>,
}

/// Why a `ce-connectionState` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidState {
    /// The value is not base64.
    #[error("header ce-connectionState is not base64")]
    NotBase64,
    /// The decoded bytes are not a JSON object.
    #[error("header ce-connectionState is not base64 of a JSON object")]
    NotJsonObject,
}

impl ConnectionStates {
    /// No states.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a `ce-connectionState` header value; an empty value means no state.
    ///
    /// # Errors
    ///
    /// [`InvalidState`] when the value is not base64 of a JSON object.
    pub fn from_header(value: &str) -> Result<Self, InvalidState> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Self::default());
        }
        let json = BASE64.decode(value).map_err(|_| InvalidState::NotBase64)?;
        let values = serde_json::from_slice::<BTreeMap<String, Value>>(&json)
            .map_err(|_| InvalidState::NotJsonObject)?;
        Ok(Self { values })
    }

    /// The header value that carries these states: base64 of their JSON
    /// object, or an empty string when there are none (which clears the
    /// state on the service).
    #[must_use]
    pub fn to_header(&self) -> String {
        if self.values.is_empty() {
            return String::new();
        }
        // A map of strings to JSON values always serialises.
        let json = serde_json::to_vec(&self.values).unwrap_or_default();
        BASE64.encode(json)
    }

    /// The state `key` deserialised as `T`; `Ok(None)` when it is not set.
    ///
    /// # Errors
    ///
    /// The deserialisation error when the stored value does not fit `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.values.get(key).map(|v| T::deserialize(v)).transpose()
    }

    /// The raw JSON value of `key`.
    #[must_use]
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Sets `key` to `value`, returning `self` for chaining.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.values.insert(key.into(), value.into())
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    /// Whether there are no states.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// How many states there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The states, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for ConnectionStates {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// The changes a response makes to the connection's states.
///
/// Built through the `state`, `remove_state` and `clear_states` methods of
/// [`ConnectEventResponse`](crate::ConnectEventResponse) and
/// [`UserEventResponse`](crate::UserEventResponse); applied to the states the
/// request carried, so unchanged keys are kept.
///
/// ```
/// use webpubsub::state::{ConnectionStates, StateChanges};
///
/// let before = ConnectionStates::new().with("a", 1).with("b", 2);
/// let changes = StateChanges::default().set("a", 10).remove("b");
/// let after = changes.apply(&before).expect("something changed");
/// assert_eq!(after, ConnectionStates::new().with("a", 10));
/// assert_eq!(StateChanges::default().apply(&before), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateChanges {
    clear: bool,
    set: BTreeMap<String, Option<Value>>,
}

impl StateChanges {
    /// Sets `key` to `value`.
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set.insert(key.into(), Some(value.into()));
        self
    }

    /// Removes `key`.
    #[must_use]
    pub fn remove(mut self, key: impl Into<String>) -> Self {
        self.set.insert(key.into(), None);
        self
    }

    /// Drops every state, including keys set earlier on this value.
    #[must_use]
    pub fn clear(mut self) -> Self {
        self.clear = true;
        self.set.clear();
        self
    }

    /// Replaces the whole state with `states`.
    #[must_use]
    pub fn replace(states: ConnectionStates) -> Self {
        let set = states
            .values
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        Self { clear: true, set }
    }

    /// Whether these changes change nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.clear && self.set.is_empty()
    }

    /// The states after these changes, or `None` when nothing changes (and so
    /// no `ce-connectionState` header is sent).
    #[must_use]
    pub fn apply(&self, before: &ConnectionStates) -> Option<ConnectionStates> {
        if self.is_empty() {
            return None;
        }
        let mut after = if self.clear {
            ConnectionStates::default()
        } else {
            before.clone()
        };
        for (key, value) in &self.set {
            match value {
                Some(value) => after.values.insert(key.clone(), value.clone()),
                None => after.values.remove(key),
            };
        }
        Some(after)
    }
}

/// The `state`, `remove_state` and `clear_states` builder methods of the
/// success responses, which keep their changes in a `states: StateChanges` field.
macro_rules! state_builder_methods {
    () => {
        /// Sets connection state `key` to `value`, kept for later events of
        /// the connection; other keys are left as they are.
        pub fn state(
            mut self,
            key: impl Into<String>,
            value: impl Into<serde_json::Value>,
        ) -> Self {
            self.states = self.states.set(key, value);
            self
        }

        /// Removes connection state `key`.
        pub fn remove_state(mut self, key: impl Into<String>) -> Self {
            self.states = self.states.remove(key);
            self
        }

        /// Removes every connection state (the service is sent an empty
        /// `ce-connectionState`, which drops it).
        pub fn clear_states(mut self) -> Self {
            self.states = self.states.clear();
            self
        }
    };
}
pub(crate) use state_builder_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_matches_the_express_format() {
        let states = ConnectionStates::new()
            .with("counter", 1)
            .with("name", "bob");
        assert_eq!(states.to_header(), "eyJjb3VudGVyIjoxLCJuYW1lIjoiYm9iIn0=");
        assert_eq!(
            ConnectionStates::from_header(&states.to_header()).unwrap(),
            states
        );
    }

    #[test]
    fn docs_example_decodes() {
        let s = ConnectionStates::from_header("eyJrZXkiOiJhIn0=").unwrap();
        assert_eq!(s.get::<String>("key").unwrap().as_deref(), Some("a"));
        let unpadded = ConnectionStates::from_header("eyJrZXkiOiJhIn0").unwrap();
        assert_eq!(unpadded, s);
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(
            ConnectionStates::from_header("%%%"),
            Err(InvalidState::NotBase64)
        );
        // base64 of `[1]` and of `nope`
        assert_eq!(
            ConnectionStates::from_header("WzFd"),
            Err(InvalidState::NotJsonObject)
        );
        assert_eq!(
            ConnectionStates::from_header("bm9wZQ=="),
            Err(InvalidState::NotJsonObject)
        );
    }

    #[test]
    fn floats_survive_the_header_round_trip_exactly() {
        // Found by the `connection_state` fuzz target: without correctly
        // rounded float parsing these drift a little on every trip.
        for value in [
            3.333_333_333_337_333_4e19,
            1.111_111_111_111_111e38,
            0.1,
            -2.5e-300,
        ] {
            let states = ConnectionStates::new().with("x", value);
            let back = ConnectionStates::from_header(&states.to_header()).unwrap();
            assert_eq!(back.get::<f64>("x").unwrap(), Some(value));
        }
    }

    #[test]
    fn empty_states_give_an_empty_header() {
        assert_eq!(ConnectionStates::new().to_header(), "");
        assert!(ConnectionStates::from_header("").unwrap().is_empty());
    }

    #[test]
    fn clear_then_set_keeps_only_the_new_key() {
        let before = ConnectionStates::new().with("a", 1);
        let after = StateChanges::default()
            .clear()
            .set("b", 2)
            .apply(&before)
            .unwrap();
        assert_eq!(after, ConnectionStates::new().with("b", 2));
    }
}

//! Hub and group names: the service's rules, written once.
//!
//! [`HubName`] and [`GroupName`] can only hold names the service accepts,
//! so a value of either type never needs checking again. The router, the
//! service client, client access URLs and the emulator all check names here;
//! a name they refuse is an [`InvalidName`].
//!
//! ```
//! use webpubsub::names::{GroupName, HubName, InvalidName};
//!
//! let hub: HubName = "chat".parse()?;
//! assert_eq!(hub.as_str(), "chat");
//! assert!("2chat".parse::<HubName>().is_err());
//!
//! let group = GroupName::new("room 1")?;
//! assert_eq!(group, "room 1");
//! let err = GroupName::new("   ").unwrap_err();
//! assert_eq!(err.to_string(), "group name `   ` is invalid: use 1 to 1024 characters, not only white space");
//! # Ok::<(), InvalidName>(())
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// The longest hub name, in bytes (all its characters are ASCII).
pub const MAX_HUB_NAME: usize = 128;
/// The longest group name, in UTF-16 code units (the service counts them so).
pub const MAX_GROUP_NAME: usize = 1024;

/// Which kind of name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// A hub name ([`HubName`]).
    Hub,
    /// A group name ([`GroupName`]).
    Group,
}

/// A name the service would refuse, with the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} name `{name}` is invalid: {}", kind_word(*.kind), rule(*.kind))]
pub struct InvalidName {
    kind: NameKind,
    name: String,
}

fn kind_word(kind: NameKind) -> &'static str {
    match kind {
        NameKind::Hub => "hub",
        NameKind::Group => "group",
    }
}

fn rule(kind: NameKind) -> &'static str {
    match kind {
        NameKind::Hub => "use a letter followed by letters, digits or `_`",
        NameKind::Group => "use 1 to 1024 characters, not only white space",
    }
}

impl InvalidName {
    /// Whether a hub or a group name was refused.
    #[must_use]
    pub fn kind(&self) -> NameKind {
        self.kind
    }

    /// The refused name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rule the name breaks, as a short sentence.
    #[must_use]
    pub fn rule(&self) -> &'static str {
        rule(self.kind)
    }

    /// The refused name, given back.
    #[must_use]
    pub fn into_name(self) -> String {
        self.name
    }
}

/// A hub name: a letter, then letters, digits and `_` (and the few marks the
/// REST API also allows: `` ` ``, `,`, `.`, `[`, `]`), at most 128 characters.
///
/// Hub names are case-insensitive for the service; this type keeps the
/// spelling it was given.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HubName(Box<str>);

impl HubName {
    /// Whether `name` follows the hub-name rule.
    #[must_use]
    pub fn is_valid(name: &str) -> bool {
        let mut bytes = name.bytes();
        matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
            && name.len() <= MAX_HUB_NAME
            && bytes.all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'`' | b',' | b'.' | b'[' | b']')
            })
    }
}

/// A group name: 1 to 1024 characters (counted in UTF-16 code units, as the
/// service counts them), not only white space.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(Box<str>);

impl GroupName {
    /// Whether `name` follows the group-name rule.
    #[must_use]
    pub fn is_valid(name: &str) -> bool {
        !name.trim().is_empty() && name.encode_utf16().count() <= MAX_GROUP_NAME
    }
}

/// What both name types share: the checked constructor, reading them as
/// text, parsing, serde.
macro_rules! name_impls {
    ($name:ident, $kind:ident) => {
        impl $name {
            #[doc = concat!("Checks `name` against the rule above.\n\n# Errors\n\n[`InvalidName`] (kind [`NameKind::", stringify!($kind), "`]) when the service would refuse it.")]
            pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
                let name = name.into();
                if Self::is_valid(&name) {
                    Ok(Self(name.into_boxed_str()))
                } else {
                    Err(InvalidName {
                        kind: NameKind::$kind,
                        name,
                    })
                }
            }

            /// The name.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;

            fn from_str(name: &str) -> Result<Self, InvalidName> {
                Self::new(name)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidName;

            fn try_from(name: &str) -> Result<Self, InvalidName> {
                Self::new(name)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;

            fn try_from(name: String) -> Result<Self, InvalidName> {
                Self::new(name)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0.into_string()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                Self::new(name).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_impls!(HubName, Hub);
name_impls!(GroupName, Group);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hub_names_follow_the_service_rule() {
        for good in ["chat", "Chat_2", "a", "a.b[1],`x`", &"a".repeat(128)] {
            assert!(HubName::is_valid(good), "{good}");
            assert_eq!(HubName::new(good).unwrap(), good);
        }
        for bad in ["", "2chat", "chat room", "chat/x", "chät", &"a".repeat(129)] {
            let err = HubName::new(bad).unwrap_err();
            assert_eq!(err.kind(), NameKind::Hub);
            assert_eq!(err.name(), bad);
        }
    }

    #[test]
    fn group_names_count_utf16_units_and_refuse_blank_ones() {
        for good in ["g", "room 1", "ü", &"a".repeat(1024), &"😀".repeat(512)] {
            assert!(GroupName::new(good).is_ok(), "{good}");
        }
        for bad in ["", " ", "\t\n", &"a".repeat(1025), &"😀".repeat(513)] {
            assert_eq!(GroupName::new(bad).unwrap_err().kind(), NameKind::Group);
        }
    }

    #[test]
    fn names_deserialize_only_when_valid() {
        let hub: HubName = serde_json::from_str(r#""chat""#).unwrap();
        assert_eq!(serde_json::to_string(&hub).unwrap(), r#""chat""#);
        assert!(serde_json::from_str::<HubName>(r#""2chat""#).is_err());
        assert!(serde_json::from_str::<GroupName>(r#""  ""#).is_err());
    }

    #[test]
    fn errors_name_the_value_and_the_rule() {
        assert_eq!(
            HubName::new("2chat").unwrap_err().to_string(),
            "hub name `2chat` is invalid: use a letter followed by letters, digits or `_`"
        );
    }
}

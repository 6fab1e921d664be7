//! OData filter expressions that choose which connections a call applies to.

use std::fmt;

/// An OData filter over connections (`userId`, `connectionId`, `groups`).
///
/// Build common filters with the constructors, which quote values
/// correctly (`'` doubled), combine them with [`and`](Self::and),
/// [`or`](Self::or) and `!`, or write any expression the service
/// understands with [`Filter::new`] (or a `&str`).
///
/// ```
/// use webpubsub::client::Filter;
///
/// let filter = Filter::in_group("admins").or(Filter::user_id_in(["o'k", "bob"]));
/// assert_eq!(filter.as_str(), "('admins' in groups) or (userId in ('o''k','bob'))");
/// assert_eq!((!Filter::user_id_eq("bot")).as_str(), "not (userId eq 'bot')");
/// assert_eq!(Filter::from("startswith(userId, 'listener-')").as_str(), "startswith(userId, 'listener-')");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter(String);

impl Filter {
    /// A filter written out by hand, sent as it is (the service checks it and answers `400` if invalid).
    #[must_use]
    pub fn new(expression: impl Into<String>) -> Self {
        Self(expression.into())
    }

    /// An empty filter: every connection (for the bulk group calls).
    #[must_use]
    pub fn all() -> Self {
        Self(String::new())
    }

    /// `value` as an OData string literal: in single quotes, `'` doubled.
    #[must_use]
    pub fn quote(value: &str) -> String {
        format!("'{}'", value.replace('\'', "''"))
    }

    /// Connections of this user: `userId eq '…'`.
    #[must_use]
    pub fn user_id_eq(user_id: &str) -> Self {
        Self(format!("userId eq {}", Self::quote(user_id)))
    }

    /// Connections not of this user (anonymous ones included): `userId ne '…'`.
    #[must_use]
    pub fn user_id_ne(user_id: &str) -> Self {
        Self(format!("userId ne {}", Self::quote(user_id)))
    }

    /// Connections of any of these users: `userId in ('…','…')`.
    #[must_use]
    pub fn user_id_in<I>(user_ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Self(format!("userId in ({})", quote_list(user_ids)))
    }

    /// This connection: `connectionId eq '…'`.
    #[must_use]
    pub fn connection_id_eq(connection_id: &str) -> Self {
        Self(format!("connectionId eq {}", Self::quote(connection_id)))
    }

    /// Any connection but this one: `connectionId ne '…'`.
    #[must_use]
    pub fn connection_id_ne(connection_id: &str) -> Self {
        Self(format!("connectionId ne {}", Self::quote(connection_id)))
    }

    /// Connections in this group: `'…' in groups`.
    #[must_use]
    pub fn in_group(group: &str) -> Self {
        Self(format!("{} in groups", Self::quote(group)))
    }

    /// Both filters hold.
    #[must_use]
    pub fn and(self, other: impl Into<Filter>) -> Self {
        Self(format!("({}) and ({})", self.0, other.into().0))
    }

    /// Either filter holds.
    #[must_use]
    pub fn or(self, other: impl Into<Filter>) -> Self {
        Self(format!("({}) or ({})", self.0, other.into().0))
    }

    /// The expression as sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn quote_list<I>(values: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    values
        .into_iter()
        .map(|v| Filter::quote(v.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

impl std::ops::Not for Filter {
    type Output = Filter;

    /// The filter does not hold: `not (…)`.
    fn not(self) -> Filter {
        Filter(format!("not ({})", self.0))
    }
}

impl From<&str> for Filter {
    fn from(expression: &str) -> Self {
        Self::new(expression)
    }
}

impl From<String> for Filter {
    fn from(expression: String) -> Self {
        Self::new(expression)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

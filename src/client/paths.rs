//! The path of a REST call under `/api/hubs/{hub}`: the segments it is made
//! of, and the checks that keep a caller's group names and ids from
//! changing it.

use super::transport::Call;
use super::ServiceError;

/// A segment of a REST path under `/api/hubs/{hub}`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part<'a> {
    /// A fixed segment, such as `groups` or `:send`.
    Lit(&'static str),
    /// A group name: checked, then percent-encoded.
    Group(&'a str),
    /// A connection id: checked, then percent-encoded.
    Connection(&'a str),
    /// A user id: checked, then percent-encoded.
    User(&'a str),
}

/// Appends `path` to `call`, its caller-supplied parts checked and encoded.
pub(super) fn append(
    mut call: Call,
    operation: &'static str,
    path: &[Part<'_>],
) -> Result<Call, ServiceError> {
    for part in path {
        call = match *part {
            Part::Lit(segment) => call.literal(segment),
            Part::Group(group) => {
                check_group(operation, group)?;
                call.segment(group)
            }
            Part::Connection(id) => {
                check_id(operation, "connection id", id)?;
                call.segment(id)
            }
            Part::User(id) => {
                check_id(operation, "user id", id)?;
                call.segment(id)
            }
        };
    }
    Ok(call)
}

/// Refuses group names the API does not take (the rule of
/// [`GroupName`](crate::names::GroupName)), or a dot segment that a URL
/// would swallow.
pub(super) fn check_group(operation: &'static str, group: &str) -> Result<(), ServiceError> {
    if let Err(invalid) = crate::names::GroupName::new(group) {
        return Err(ServiceError::invalid(
            operation,
            format!("the group name is invalid: {}", invalid.rule()),
        ));
    }
    check_dots(operation, "group name", group)
}

/// Refuses empty ids and dot segments.
fn check_id(operation: &'static str, what: &str, id: &str) -> Result<(), ServiceError> {
    if id.is_empty() {
        return Err(ServiceError::invalid(
            operation,
            format!("the {what} is empty"),
        ));
    }
    check_dots(operation, what, id)
}

fn check_dots(operation: &'static str, what: &str, value: &str) -> Result<(), ServiceError> {
    if value == "." || value == ".." {
        return Err(ServiceError::invalid(
            operation,
            format!("the {what} `{value}` cannot be sent in a URL path"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_measured_in_utf16_units_like_the_service() {
        assert!(check_group("op", &"a".repeat(1024)).is_ok());
        // 512 emoji = 1024 UTF-16 units: the limit; one more is over it.
        assert!(check_group("op", &"😀".repeat(512)).is_ok());
        assert!(check_group("op", &"😀".repeat(513)).is_err());
    }
}

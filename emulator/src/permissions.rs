//! What a connection may do with groups: roles from its token or `connect`
//! answer, and grants and revocations made through the REST API.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashSet;

/// An action on groups that needs a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    JoinLeave,
    Send,
}

impl Action {
    fn role(self) -> &'static str {
        match self {
            Self::JoinLeave => "webpubsub.joinLeaveGroup",
            Self::Send => "webpubsub.sendToGroup",
        }
    }

    /// The 2026 wildcard role prefix (`webpubsub.joinLeaveGroups.<pattern>`).
    fn pattern_role(self) -> &'static str {
        match self {
            Self::JoinLeave => "webpubsub.joinLeaveGroups.",
            Self::Send => "webpubsub.sendToGroups.",
        }
    }

    /// The REST path name, `joinLeaveGroup` or `sendToGroup`.
    pub(crate) fn from_rest(name: &str) -> Option<Self> {
        match name {
            "joinLeaveGroup" => Some(Self::JoinLeave),
            "sendToGroup" => Some(Self::Send),
            _ => None,
        }
    }
}

/// REST grants for one action: an override of "all groups" plus literal exceptions.
#[derive(Debug, Clone, Default)]
struct Grants {
    all: Option<bool>,
    allow: HashSet<String>,
    deny: HashSet<String>,
}

/// Permissions of one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Permissions {
    roles: Vec<String>,
    join_leave: Grants,
    send: Grants,
}

/// Most literal grants kept per action (as the service's emulator caps them).
const MAX_LITERALS: usize = 1000;

impl Permissions {
    pub(crate) fn new(roles: Vec<String>) -> Self {
        Self {
            roles,
            ..Self::default()
        }
    }

    pub(crate) fn roles(&self) -> &[String] {
        &self.roles
    }

    fn grants(&self, action: Action) -> &Grants {
        match action {
            Action::JoinLeave => &self.join_leave,
            Action::Send => &self.send,
        }
    }

    fn grants_mut(&mut self, action: Action) -> &mut Grants {
        match action {
            Action::JoinLeave => &mut self.join_leave,
            Action::Send => &mut self.send,
        }
    }

    /// Whether the roles alone allow `action` on every group.
    fn role_allows_all(&self, action: Action) -> bool {
        self.roles.iter().any(|r| r == action.role())
    }

    fn role_allows(&self, action: Action, group: &str) -> bool {
        let literal = action.role();
        self.roles.iter().any(|role| {
            if role == literal {
                return true;
            }
            if let Some(target) = role.strip_prefix(literal).and_then(|r| r.strip_prefix('.')) {
                return target == group;
            }
            role.strip_prefix(action.pattern_role())
                .is_some_and(|pattern| glob_match(pattern, group))
        })
    }

    /// Whether the connection may perform `action` on `group`.
    pub(crate) fn allows(&self, action: Action, group: &str) -> bool {
        let grants = self.grants(action);
        if grants.deny.contains(group) {
            return false;
        }
        if grants.allow.contains(group) {
            return true;
        }
        match grants.all {
            Some(all) => all,
            None => self.role_allows(action, group),
        }
    }

    /// The REST check: on one group, or (without a target) on all of them.
    pub(crate) fn check(&self, action: Action, target: Option<&str>) -> bool {
        match target {
            Some(group) => self.allows(action, group),
            None => {
                let grants = self.grants(action);
                grants.deny.is_empty() && grants.all.unwrap_or_else(|| self.role_allows_all(action))
            }
        }
    }

    pub(crate) fn grant(&mut self, action: Action, target: Option<&str>) {
        let grants = self.grants_mut(action);
        match target {
            None => {
                grants.all = Some(true);
                grants.deny.clear();
            }
            Some(group) => {
                grants.deny.remove(group);
                if grants.allow.len() < MAX_LITERALS {
                    grants.allow.insert(group.to_owned());
                }
            }
        }
    }

    pub(crate) fn revoke(&mut self, action: Action, target: Option<&str>) {
        let grants = self.grants_mut(action);
        match target {
            None => {
                grants.all = Some(false);
                grants.allow.clear();
            }
            Some(group) => {
                grants.allow.remove(group);
                if grants.deny.len() < MAX_LITERALS {
                    grants.deny.insert(group.to_owned());
                }
            }
        }
    }
}

/// Wildcard group patterns: `?` one character but `.`, `*` a run without
/// `.`, `**` any run, `\` escapes the next character.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Patterns carry at most five `*`, so plain backtracking stays small;
    // a step budget guards against anything larger.
    let mut budget = 100_000u32;
    matches(&pattern, &text, &mut budget)
}

fn matches(p: &[char], t: &[char], budget: &mut u32) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match p {
        [] => t.is_empty(),
        ['*', '*', rest @ ..] => {
            (0..=t.len()).any(|i| t.get(i..).is_some_and(|tail| matches(rest, tail, budget)))
        }
        ['*', rest @ ..] => {
            let run = t.iter().take_while(|c| **c != '.').count();
            (0..=run).any(|i| t.get(i..).is_some_and(|tail| matches(rest, tail, budget)))
        }
        ['?', rest @ ..] => match t {
            [c, tail @ ..] if *c != '.' => matches(rest, tail, budget),
            _ => false,
        },
        ['\\', escaped, rest @ ..] => match t {
            [c, tail @ ..] if c == escaped => matches(rest, tail, budget),
            _ => false,
        },
        [literal, rest @ ..] => match t {
            [c, tail @ ..] if c == literal => matches(rest, tail, budget),
            _ => false,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_all_groups_one_group_or_a_pattern() {
        let p = Permissions::new(vec![
            "webpubsub.sendToGroup".into(),
            "webpubsub.joinLeaveGroup.room.1".into(),
            "webpubsub.joinLeaveGroups.team-*".into(),
        ]);
        assert!(p.allows(Action::Send, "anything"));
        assert!(p.allows(Action::JoinLeave, "room.1"));
        assert!(!p.allows(Action::JoinLeave, "room.2"));
        assert!(p.allows(Action::JoinLeave, "team-red"));
        assert!(!p.allows(Action::JoinLeave, "team-red.sub"));
        assert!(!Permissions::new(vec![]).allows(Action::Send, "g"));
    }

    #[test]
    fn rest_grants_and_revokes_override_roles() {
        let mut p = Permissions::new(vec!["webpubsub.sendToGroup".into()]);
        p.revoke(Action::Send, Some("secret"));
        assert!(!p.allows(Action::Send, "secret"));
        assert!(p.allows(Action::Send, "other"));
        assert!(!p.check(Action::Send, None));
        p.revoke(Action::Send, None);
        assert!(!p.allows(Action::Send, "other"));
        p.grant(Action::Send, Some("other"));
        assert!(p.allows(Action::Send, "other"));
        p.grant(Action::JoinLeave, None);
        assert!(p.check(Action::JoinLeave, None));
    }

    #[test]
    fn glob_patterns_follow_the_documented_syntax() {
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "a.c"));
        assert!(glob_match("a.*", "a.b"));
        assert!(!glob_match("a.*", "a.b.c"));
        assert!(glob_match("a.**", "a.b.c"));
        assert!(glob_match(r"a\*", "a*"));
        assert!(!glob_match(r"a\*", "ab"));
        assert!(glob_match("*-*-*", "a-b-c"));
        assert!(!glob_match("*-*-*", "a-b"));
    }
}

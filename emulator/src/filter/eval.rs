//! The evaluator: a typed tree and one connection give true or false.
//! Total: every operand combination the type rules let through has a value
//! (null where the specification is silent), so evaluation never panics.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::ast::{CmpOp, Expr, Func, Lit};
use super::FilterSubject;

/// A run-time value; `Groups` stands for the connection's groups.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    Groups,
}

/// Whether `expr` is true for `subject`.
pub(super) fn matches(expr: &Expr, subject: &dyn FilterSubject) -> bool {
    truthy(&eval(expr, subject))
}

/// Whether a value counts as true: only `true` does.
fn truthy(value: &Value<'_>) -> bool {
    matches!(value, Value::Bool(true))
}

fn lit_value(lit: &Lit) -> Value<'_> {
    match lit {
        Lit::Null => Value::Null,
        Lit::Bool(b) => Value::Bool(*b),
        Lit::Int(i) => Value::Int(*i),
        Lit::Str(s) => Value::Str(Cow::Borrowed(s)),
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn equal(left: &Value<'_>, right: &Value<'_>) -> bool {
    match (left, right) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Str(a), Value::Str(b)) => a == b,
        _ => false,
    }
}

fn compare(op: CmpOp, left: &Value<'_>, right: &Value<'_>) -> bool {
    let ordering = match (left, right) {
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::Str(a), Value::Str(b)) => a.as_ref().cmp(b.as_ref()),
        _ => Ordering::Equal,
    };
    let ordered = matches!(
        (left, right),
        (Value::Int(_), Value::Int(_)) | (Value::Str(_), Value::Str(_))
    );
    match op {
        CmpOp::Eq => equal(left, right),
        CmpOp::Ne => !equal(left, right),
        CmpOp::Gt => ordered && ordering == Ordering::Greater,
        CmpOp::Ge => ordered && ordering != Ordering::Less,
        CmpOp::Lt => ordered && ordering == Ordering::Less,
        CmpOp::Le => ordered && ordering != Ordering::Greater,
    }
}

/// The value of `expr` for `subject`.
fn eval<'a>(expr: &'a Expr, subject: &'a dyn FilterSubject) -> Value<'a> {
    match expr {
        Expr::Lit(lit) => lit_value(lit),
        Expr::UserId => subject
            .user_id()
            .map_or(Value::Null, |u| Value::Str(Cow::Borrowed(u))),
        Expr::ConnectionId => Value::Str(Cow::Borrowed(subject.connection_id())),
        Expr::Groups => Value::Groups,
        Expr::Not(inner) => Value::Bool(!truthy(&eval(inner, subject))),
        Expr::And(items) => Value::Bool(eval_junction(items, subject, false)),
        Expr::Or(items) => Value::Bool(eval_junction(items, subject, true)),
        Expr::Cmp(op, left, right) => eval_cmp(*op, left, right, subject),
        Expr::InList(left, items) => {
            let value = eval(left, subject);
            Value::Bool(items.iter().any(|item| equal(&value, &lit_value(item))))
        }
        Expr::InGroups(left) => match eval(left, subject) {
            Value::Str(group) => Value::Bool(subject.in_group(&group)),
            _ => Value::Bool(false),
        },
        Expr::Call(func, args) => eval_call(*func, args, subject),
    }
}

/// `and` (`stop_at` = false) or `or` (`stop_at` = true), short-circuiting.
fn eval_junction(items: &[Expr], subject: &dyn FilterSubject, stop_at: bool) -> bool {
    for item in items {
        if truthy(&eval(item, subject)) == stop_at {
            return stop_at;
        }
    }
    !stop_at
}

fn eval_cmp<'a>(
    op: CmpOp,
    left: &'a Expr,
    right: &'a Expr,
    subject: &'a dyn FilterSubject,
) -> Value<'a> {
    let left = eval(left, subject);
    let right = eval(right, subject);
    Value::Bool(compare(op, &left, &right))
}

fn eval_call<'a>(func: Func, args: &'a [Expr], subject: &'a dyn FilterSubject) -> Value<'a> {
    let mut values = Vec::with_capacity(args.len());
    for arg in args {
        values.push(eval(arg, subject));
    }
    call(func, &values, subject)
}

/// Characters of `text` from `start` (clamped), at most `length` of them.
fn substring(text: &str, start: i64, length: Option<i64>) -> String {
    let skip = usize::try_from(start.max(0)).unwrap_or(usize::MAX);
    let rest = text.chars().skip(skip);
    match length {
        None => rest.collect(),
        Some(length) => rest
            .take(usize::try_from(length.max(0)).unwrap_or(usize::MAX))
            .collect(),
    }
}

#[inline(never)]
fn call<'a>(func: Func, args: &[Value<'a>], subject: &dyn FilterSubject) -> Value<'a> {
    use Value::{Int, Null, Str};
    let owned = |s: String| Str(Cow::Owned(s));
    match (func, args) {
        (Func::ToLower, [Str(s)]) => owned(s.to_lowercase()),
        (Func::ToUpper, [Str(s)]) => owned(s.to_uppercase()),
        (Func::Trim, [Str(s)]) => owned(s.trim().to_owned()),
        (Func::Length, [Str(s)]) => Int(count(s.chars().count())),
        (Func::Length, [Value::Groups]) => Int(count(subject.group_count())),
        (Func::Substring, [Str(s), Int(start)]) => owned(substring(s, *start, None)),
        (Func::Substring, [Str(s), Int(start), Int(length)]) => {
            owned(substring(s, *start, Some(*length)))
        }
        (Func::Concat, [Str(a), Str(b)]) => owned(format!("{a}{b}")),
        (Func::Concat, [Str(a), _]) => Str(a.clone()),
        (Func::Concat, [_, Str(b)]) => Str(b.clone()),
        (Func::StartsWith, [Str(s), Str(p)]) => Value::Bool(s.starts_with(p.as_ref())),
        (Func::EndsWith, [Str(s), Str(p)]) => Value::Bool(s.ends_with(p.as_ref())),
        (Func::Contains, [Str(s), Str(p)]) => Value::Bool(s.contains(p.as_ref())),
        (Func::StartsWith | Func::EndsWith | Func::Contains, _) => Value::Bool(false),
        (Func::IndexOf, [Str(s), Str(p)]) => Int(s.find(p.as_ref()).map_or(-1, |at| {
            count(s.get(..at).map_or(0, |head| head.chars().count()))
        })),
        (Func::IndexOf, _) => Int(-1),
        _ => Null,
    }
}

#[cfg(test)]
mod tests {
    use crate::filter::fixtures::{check, error, parse, ALL, ANON, U1};

    #[test]
    fn spec_examples() {
        check(&[
            (
                "'g1' in groups or 'g2' in groups",
                [true, true, false, true, false, false],
            ),
            (
                "userId in ('u1','u2') and 'g1' in groups",
                [true, false, false, false, false, false],
            ),
            (
                "userId eq 'u1' and connectionId ne 'c9'",
                [true, false, false, false, false, false],
            ),
            ("userId eq 'u1' and (not ('g1' in groups))", [false; 6]),
            (
                "userId eq 'u2' and (not ('g1' in groups))",
                [false, true, false, false, false, false],
            ),
            (
                "userId eq 'user''1'",
                [false, false, false, false, true, false],
            ),
            (
                "startswith(userId, 'listener-')",
                [false, false, false, false, false, true],
            ),
            (
                "tolower(userId) eq 'user1'",
                [false, false, false, true, false, false],
            ),
            (
                "not (length(userId) gt 5)",
                [true, true, true, true, false, false],
            ),
        ]);
        let refused = error("not length(userId) gt 5");
        assert_eq!(refused.expression, "length(userId)");
        assert_eq!(refused.reason, "Type 'int', expect 'bool'.");
    }

    #[test]
    fn null_user() {
        // Expected on [U1, ANON] (positions 0 and 2 of the table are the ones that matter).
        let rows: &[(&str, bool, bool)] = &[
            ("userId eq null", false, true),
            ("userId ne null", true, false),
            ("null eq null", true, true),
            ("userId ne 'u1'", false, true),
            ("startswith(userId, '')", true, false),
            ("endswith(userId, '')", true, false),
            ("contains(userId, '')", true, false),
            ("startswith('abc', userId)", false, false),
            ("tolower(userId) eq null", false, true),
            ("toupper(userId) eq null", false, true),
            ("trim(userId) eq null", false, true),
            ("substring(userId, 0) eq null", false, true),
            ("substring(userId, 0, 1) eq null", false, true),
            ("indexof(userId, 'u') eq -1", false, true),
            ("indexof('xu1', userId) eq 1", true, false),
            ("indexof('xu1', userId) eq -1", false, true),
            ("length(userId) eq null", false, true),
            ("length(userId) gt 0", true, false),
            ("length(userId) le 0", false, false),
            ("userId gt 'a'", true, false),
            ("userId le 'a'", false, false),
            ("userId gt null", false, false),
            ("null lt null", false, false),
            ("userId in ('u1', null)", true, true),
            ("userId in ('x')", false, false),
            ("userId in groups", false, false),
            ("null in groups", false, false),
            ("concat(userId, 'x') eq 'u1x'", true, false),
            ("concat(userId, 'x') eq 'x'", false, true),
            ("concat(userId, userId) eq null", false, true),
            ("substring('abc', length(userId)) eq null", false, true),
            ("length(groups) eq 0", false, true),
        ];
        for (filter, on_user, on_anon) in rows {
            let parsed = parse(filter);
            assert_eq!(parsed.matches(&U1), *on_user, "{filter} on a user");
            assert_eq!(parsed.matches(&ANON), *on_anon, "{filter} on anonymous");
        }
    }

    #[test]
    fn functions_literals_and_identifiers() {
        let always = [
            "substring('héllo', 1) eq 'éllo'",
            "substring('héllo', 1, 3) eq 'éll'",
            "substring('héllo', 5) eq ''",
            "substring('héllo', 99) eq ''",
            "substring('héllo', -2) eq 'héllo'",
            "substring('héllo', 1, -1) eq ''",
            "substring('héllo', 3, 99) eq 'lo'",
            "substring('abc', 9223372036854775807, 9223372036854775807) eq ''",
            "substring('abc', -9223372036854775808, 1) eq 'a'",
            "length('héllo') eq 5",
            "length('😀') eq 1",
            "indexof('héllo', 'l') eq 2",
            "indexof('héllo', 'z') eq -1",
            "indexof('abc', '') eq 0",
            "concat('a', 'b') eq 'ab'",
            "trim('  a ') eq 'a'",
            "toupper('abc') eq 'ABC'",
            "tolower('ÀB') eq 'àb'",
            "contains('abc', 'b') and endswith('abc', 'bc') and not startswith('abc', 'b')",
            "'B' gt 'A' and 'a' gt 'B' and 'a' ge 'a' and 'a' lt 'ab'",
            "not ('a' eq 'A')",
            "-1 lt +1 and 0 eq -0",
            "-9223372036854775808 lt 9223372036854775807",
            "1 in (2, 1) and true in (false, true) and not (1 in (2))",
            "true eq not false",
            "'it''s' eq concat('it', '''s')",
            "(((true)))",
            "length(trim(concat(toupper(substring('  xyz', 0, 3)), ' '))) eq 1",
            "connectionId ne ''",
        ];
        for filter in always {
            assert!(
                ALL.iter().all(|conn| parse(filter).matches(*conn)),
                "{filter}"
            );
        }
        check(&[
            (
                "USERID eq 'u2' and ConnectionID eq 'c9'",
                [false, true, false, false, false, false],
            ),
            (
                "'g3' in GROUPS and 'g3' in (groups) and 'g3' in ((Groups))",
                [false, true, false, false, false, false],
            ),
            (
                "length(groups) eq 2 and length((groups)) ge 2",
                [false, true, false, true, false, false],
            ),
            ("'G2' in groups", [false; 6]),
            (
                "userId ge 'u2' and userId le 'u2'",
                [false, true, false, false, false, false],
            ),
            (
                "  userId\teq\n'u1'  ",
                [true, false, false, false, false, false],
            ),
            (
                "userId in ('u1')",
                [true, false, false, false, false, false],
            ),
        ]);
    }
}

//! The OData `filter` language of the data-plane REST API (`service.md` §3):
//! a tokenizer, a recursive-descent parser that type-checks while it builds
//! the tree, and a total evaluator over one connection.
//!
//! One step a file, in the order text flows through them:
//!
//! * `lexer.rs`: text → tokens with their byte spans;
//! * `parser.rs`: tokens → the tree, by recursive descent over the grammar;
//! * `typing.rs`: the type rules (types, function signatures, what compares);
//! * `reduce.rs`: the parser's reduce steps, which combine nodes when the
//!   type rules allow it;
//! * `ast.rs`: the typed tree the parser builds and the evaluator walks;
//! * `eval.rs`: the tree and one connection → true or false, never a panic;
//! * `fuzz.rs`: the entry point for `fuzz/`.
//!
//! Choices where the specification is silent:
//!
//! * Nesting (`(`, `not`, function calls, parenthesised `groups`) is limited
//!   to [`MAX_DEPTH`] levels; `and`/`or` chains are n-ary nodes, so long
//!   chains do not deepen the tree.
//! * Type errors name the offending sub-expression in
//!   [`FilterError::expression`]; syntax errors name the whole filter.
//! * `eq`/`ne` need equal types or a `null` on one side; `bool` values are
//!   never null. Ordering (`gt ge lt le`) works on two ints or two strings
//!   (ordinal, by code point); a null operand makes it `false`. Comparing
//!   booleans by order, or anything with `groups`, is a type error.
//! * `x in (…)` takes literals only and means "`x eq` one of them"
//!   (`userId in (null)` matches anonymous connections). `x in groups` needs
//!   a string (or null, which is never a member).
//! * `length(null)` is null (like the Microsoft emulator); `concat` with one
//!   null side gives the other side (like the Microsoft emulator and .NET
//!   `string.Concat`), with two null sides null.
//! * Strings are measured in Unicode scalar values (.NET counts UTF-16 units).
//!   `substring` clamps instead of failing: a negative start counts as 0, a
//!   start at or past the end gives `''`, a negative length gives `''`, a
//!   length past the end takes the rest. `tolower`/`toupper`/`trim` use
//!   Rust's full Unicode mappings.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod ast;
mod eval;
#[cfg(test)]
mod fixtures;
pub(crate) mod fuzz;
mod lexer;
mod parser;
mod reduce;
mod typing;

use ast::Expr;

/// Deepest nesting of parentheses, `not` and function calls accepted.
pub(crate) const MAX_DEPTH: usize = 100;

/// What a filter is evaluated against: one connection.
pub(crate) trait FilterSubject {
    /// The connection's user id; `None` for anonymous connections.
    fn user_id(&self) -> Option<&str>;
    /// The connection id.
    fn connection_id(&self) -> &str;
    /// Whether the connection is currently in `group` (exact, case-sensitive).
    fn in_group(&self, group: &str) -> bool;
    /// How many groups the connection is currently in.
    fn group_count(&self) -> usize;
}

/// A connection given by plain values: the filter's tests and the fuzz
/// entry point evaluate filters against these.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlainSubject<'a> {
    pub(crate) user: Option<&'a str>,
    pub(crate) id: &'a str,
    pub(crate) groups: &'a [&'a str],
}

impl FilterSubject for PlainSubject<'_> {
    fn user_id(&self) -> Option<&str> {
        self.user
    }
    fn connection_id(&self) -> &str {
        self.id
    }
    fn in_group(&self, group: &str) -> bool {
        self.groups.contains(&group)
    }
    fn group_count(&self) -> usize {
        self.groups.len()
    }
}

/// A parsed and type-checked filter; evaluate it with [`ODataFilter::matches`].
#[derive(Debug, Clone)]
pub(crate) struct ODataFilter {
    root: Expr,
}

/// A filter that does not parse or does not type-check (answer 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid syntax for '{expression}': {reason} (Parameter 'filter')")]
pub(crate) struct FilterError {
    /// The filter text, or for a type error the offending sub-expression.
    pub(crate) expression: String,
    /// Why it was refused, one sentence.
    pub(crate) reason: String,
}

impl ODataFilter {
    /// Parses and type-checks; empty or whitespace-only text is an error here (callers treat empty as "all" themselves).
    pub(crate) fn parse(text: &str) -> Result<Self, FilterError> {
        let tokens = lexer::tokenize(text)?;
        parser::parse(text, tokens).map(|root| Self { root })
    }

    /// Whether the filter is true for `subject`. Never panics.
    pub(crate) fn matches(&self, subject: &dyn FilterSubject) -> bool {
        eval::matches(&self.root, subject)
    }
}

#[cfg(test)]
mod tests;

//! The OData `filter` language of the data-plane REST API (`service.md` §3):
//! a tokenizer, a recursive-descent parser that type-checks while it builds
//! the tree, and a total evaluator over one connection.
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

use std::borrow::Cow;
use std::cmp::Ordering;

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
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            text,
            tokens,
            pos: 0,
            depth: 0,
            nodes: Vec::new(),
        };
        parser.parse_filter().map_err(|error| *error)
    }

    /// Whether the filter is true for `subject`. Never panics.
    pub(crate) fn matches(&self, subject: &dyn FilterSubject) -> bool {
        truthy(&eval(&self.root, subject))
    }
}

/// Static types. Strings and ints may be null at run time; bools never are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Null,
    Bool,
    Int,
    Str,
    Groups,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Null => "null",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Str => "string",
            Ty::Groups => "collection",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    ToLower,
    ToUpper,
    Trim,
    Substring,
    Concat,
    StartsWith,
    EndsWith,
    Contains,
    IndexOf,
    Length,
}

/// A parameter kind: string (or null), int, or string/null/`groups`.
#[derive(Debug, Clone, Copy)]
enum Param {
    Str,
    Int,
    StrOrGroups,
}

impl Param {
    fn accepts(self, ty: Ty) -> bool {
        match self {
            Param::Str => matches!(ty, Ty::Str | Ty::Null),
            Param::Int => ty == Ty::Int,
            Param::StrOrGroups => matches!(ty, Ty::Str | Ty::Null | Ty::Groups),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Param::Str => "string",
            Param::Int => "int",
            Param::StrOrGroups => "string' or 'collection",
        }
    }
}

impl Func {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "tolower" => Self::ToLower,
            "toupper" => Self::ToUpper,
            "trim" => Self::Trim,
            "substring" => Self::Substring,
            "concat" => Self::Concat,
            "startswith" => Self::StartsWith,
            "endswith" => Self::EndsWith,
            "contains" => Self::Contains,
            "indexof" => Self::IndexOf,
            "length" => Self::Length,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::ToLower => "tolower",
            Self::ToUpper => "toupper",
            Self::Trim => "trim",
            Self::Substring => "substring",
            Self::Concat => "concat",
            Self::StartsWith => "startswith",
            Self::EndsWith => "endswith",
            Self::Contains => "contains",
            Self::IndexOf => "indexof",
            Self::Length => "length",
        }
    }

    fn params(self, count: usize) -> Option<&'static [Param]> {
        use Param::{Int, Str, StrOrGroups};
        match (self, count) {
            (Self::ToLower | Self::ToUpper | Self::Trim, 1) => Some(&[Str]),
            (Self::Length, 1) => Some(&[StrOrGroups]),
            (Self::Substring, 2) => Some(&[Str, Int]),
            (Self::Substring, 3) => Some(&[Str, Int, Int]),
            (
                Self::Concat | Self::StartsWith | Self::EndsWith | Self::Contains | Self::IndexOf,
                2,
            ) => Some(&[Str, Str]),
            _ => None,
        }
    }

    fn arity(self) -> &'static str {
        match self {
            Self::ToLower | Self::ToUpper | Self::Trim | Self::Length => "1 argument",
            Self::Substring => "2 or 3 arguments",
            _ => "2 arguments",
        }
    }

    fn result(self) -> Ty {
        match self {
            Self::ToLower | Self::ToUpper | Self::Trim | Self::Substring | Self::Concat => Ty::Str,
            Self::StartsWith | Self::EndsWith | Self::Contains => Ty::Bool,
            Self::IndexOf | Self::Length => Ty::Int,
        }
    }
}

/// The typed tree. `And`/`Or` are n-ary so long chains stay shallow.
#[derive(Debug, Clone)]
enum Expr {
    Lit(Lit),
    UserId,
    ConnectionId,
    Groups,
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    InList(Box<Expr>, Vec<Lit>),
    InGroups(Box<Expr>),
    Call(Func, Vec<Expr>),
}

// ---------------------------------------------------------------- tokenizer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'t> {
    LParen,
    RParen,
    Comma,
    Str(String),
    Int(i64),
    Word(&'t str),
}

#[derive(Debug, Clone)]
struct Token<'t> {
    kind: Tok<'t>,
    start: usize,
    end: usize,
}

/// Character (not byte) position of `byte` in `text`, for messages.
fn position(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(0, |head| head.chars().count())
}

fn tokenize(text: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let syntax = |reason: String| FilterError {
        expression: text.to_owned(),
        reason,
    };
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let kind = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '\'' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(syntax(format!(
                                "Unterminated string literal at position {}.",
                                position(text, start)
                            )))
                        }
                        Some((_, '\'')) if chars.next_if(|&(_, n)| n == '\'').is_some() => {
                            value.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, other)) => value.push(other),
                    }
                }
                Tok::Str(value)
            }
            '+' | '-' | '0'..='9' => {
                while chars.next_if(|&(_, n)| n.is_ascii_digit()).is_some() {}
                let end = chars.peek().map_or(text.len(), |&(i, _)| i);
                let literal = text.get(start..end).unwrap_or_default();
                match literal.parse::<i64>() {
                    Ok(value) => Tok::Int(value),
                    Err(_) if literal.len() > 1 => {
                        return Err(syntax(format!(
                            "Integer literal '{literal}' is out of range."
                        )))
                    }
                    Err(_) => {
                        return Err(syntax(format!(
                            "Unexpected character '{c}' at position {}.",
                            position(text, start)
                        )))
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while chars
                    .next_if(|&(_, n)| n.is_ascii_alphanumeric() || n == '_')
                    .is_some()
                {}
                let end = chars.peek().map_or(text.len(), |&(i, _)| i);
                Tok::Word(text.get(start..end).unwrap_or_default())
            }
            other => {
                return Err(syntax(format!(
                    "Unexpected character '{other}' at position {}.",
                    position(text, start)
                )))
            }
        };
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        tokens.push(Token { kind, start, end });
    }
    Ok(tokens)
}

// ------------------------------------------------------------------- parser

/// A typed node with the byte span of its source text.
struct Node {
    expr: Expr,
    ty: Ty,
    start: usize,
    end: usize,
}

const KEYWORDS: &[&str] = &["and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "in"];

fn is_groups(word: &str) -> bool {
    word.eq_ignore_ascii_case("groups")
}

/// Whether `op` may compare values of types `left` and `right`.
fn comparable(op: CmpOp, left: Ty, right: Ty) -> bool {
    if left == Ty::Groups || right == Ty::Groups {
        return false;
    }
    if !matches!(op, CmpOp::Eq | CmpOp::Ne) && (left == Ty::Bool || right == Ty::Bool) {
        return false;
    }
    left == right || left == Ty::Null || right == Ty::Null
}

/// Recursive descent over the token list. Parsed nodes go onto an operand
/// stack (`nodes`) and every parse step returns only `Result<(), Box<_>>`,
/// so the functions on the recursion path (`parse_expr` → `parse_cmp` →
/// `parse_unary` → `parse_atom` → `parse_parens`/`parse_call` → …) have
/// small frames; combining nodes and building errors happen in
/// non-recursive, never-inlined helpers. `not` and `and`/`or` are loops.
/// The deepest accepted filter needs about 128 KiB of stack in a debug
/// build and less in release.
struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token<'t>>,
    pos: usize,
    depth: usize,
    nodes: Vec<Node>,
}

type Step = Result<(), Box<FilterError>>;

impl<'t> Parser<'t> {
    #[cold]
    #[inline(never)]
    fn syntax(&self, reason: String) -> Box<FilterError> {
        Box::new(FilterError {
            expression: self.text.to_owned(),
            reason,
        })
    }

    #[cold]
    #[inline(never)]
    fn error_at(&self, start: usize, end: usize, reason: String) -> Box<FilterError> {
        let expression = self.text.get(start..end).unwrap_or(self.text).to_owned();
        Box::new(FilterError { expression, reason })
    }

    #[cold]
    #[inline(never)]
    fn type_error(&self, node: &Node, expected: &str) -> Box<FilterError> {
        let reason = format!("Type '{}', expect '{expected}'.", node.ty.name());
        self.error_at(node.start, node.end, reason)
    }

    #[cold]
    #[inline(never)]
    fn compare_error(&self, left: &Node, right: (Ty, usize), op: &str) -> Box<FilterError> {
        let (l, r) = (left.ty.name(), right.0.name());
        let reason = format!("Cannot compare '{l}' with '{r}' using '{op}'.");
        self.error_at(left.start, right.1, reason)
    }

    #[cold]
    #[inline(never)]
    fn unexpected(&self, token: Option<&Token<'t>>, expected: &str) -> Box<FilterError> {
        self.syntax(match token {
            None => format!("Unexpected end of filter, expected {expected}."),
            Some(token) => {
                let source = self.text.get(token.start..token.end).unwrap_or_default();
                let mut shown: String = source.chars().take(40).collect();
                if shown.len() < source.len() {
                    shown.push('…');
                }
                let at = position(self.text, token.start);
                format!("Unexpected '{shown}' at position {at}, expected {expected}.")
            }
        })
    }

    /// The node's expression if it has type `ty`, else a type error.
    fn want(&self, node: Node, ty: Ty) -> Result<Expr, Box<FilterError>> {
        if node.ty == ty {
            Ok(node.expr)
        } else {
            Err(self.type_error(&node, ty.name()))
        }
    }

    fn push(&mut self, expr: Expr, ty: Ty, start: usize, end: usize) -> Step {
        self.nodes.push(Node {
            expr,
            ty,
            start,
            end,
        });
        Ok(())
    }

    fn pop(&mut self) -> Result<Node, Box<FilterError>> {
        match self.nodes.pop() {
            Some(node) => Ok(node),
            None => Err(self.syntax("Internal error: missing operand.".to_owned())),
        }
    }

    /// The last `count` nodes, in source order.
    fn pop_many(&mut self, count: usize) -> Result<Vec<Node>, Box<FilterError>> {
        match self.nodes.len().checked_sub(count) {
            Some(at) => Ok(self.nodes.split_off(at)),
            None => Err(self.syntax("Internal error: missing operands.".to_owned())),
        }
    }

    fn peek(&self) -> Option<&Token<'t>> {
        self.tokens.get(self.pos)
    }

    fn peek_kind(&self, ahead: usize) -> Option<&Tok<'t>> {
        self.tokens.get(self.pos + ahead).map(|t| &t.kind)
    }

    fn peek_word(&self) -> Option<&'t str> {
        match self.peek_kind(0) {
            Some(Tok::Word(word)) => Some(word),
            _ => None,
        }
    }

    fn bump(&mut self) -> Option<Token<'t>> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn expect_rparen(&mut self) -> Result<usize, Box<FilterError>> {
        match self.bump() {
            Some(Token {
                kind: Tok::RParen,
                end,
                ..
            }) => Ok(end),
            other => Err(self.unexpected(other.as_ref(), "')'")),
        }
    }

    fn enter(&mut self) -> Step {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.syntax(format!(
                "The filter is nested deeper than {MAX_DEPTH} levels."
            )));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The whole filter: one boolean expression and nothing after it.
    fn parse_filter(&mut self) -> Result<ODataFilter, Box<FilterError>> {
        if self.tokens.is_empty() {
            return Err(self.syntax("The filter is empty.".to_owned()));
        }
        self.parse_expr()?;
        if let Some(extra) = self.peek() {
            return Err(self.unexpected(Some(extra), "'and', 'or' or the end"));
        }
        let root = self.pop()?;
        Ok(ODataFilter {
            root: self.want(root, Ty::Bool)?,
        })
    }

    /// `cmp (("and" | "or") cmp)*`, `and` binding tighter; chains become n-ary nodes.
    fn parse_expr(&mut self) -> Step {
        let (mut alternatives, mut conjuncts) = (0, 1);
        self.parse_cmp()?;
        loop {
            match self.peek_word() {
                Some("and") => {}
                Some("or") => {
                    self.reduce_junction(conjuncts, Expr::And)?;
                    (alternatives, conjuncts) = (alternatives + 1, 0);
                }
                _ => break,
            }
            self.pos += 1;
            self.parse_cmp()?;
            conjuncts += 1;
        }
        self.reduce_junction(conjuncts, Expr::And)?;
        self.reduce_junction(alternatives + 1, Expr::Or)
    }

    /// Joins the last `count` nodes (all bool) with `build`; one node stays as is.
    #[inline(never)]
    fn reduce_junction(&mut self, count: usize, build: fn(Vec<Expr>) -> Expr) -> Step {
        if count < 2 {
            return Ok(());
        }
        let nodes = self.pop_many(count)?;
        let start = nodes.first().map_or(0, |n| n.start);
        let end = nodes.last().map_or(0, |n| n.end);
        let mut exprs = Vec::with_capacity(nodes.len());
        for node in nodes {
            exprs.push(self.want(node, Ty::Bool)?);
        }
        self.push(build(exprs), Ty::Bool, start, end)
    }

    /// `unary ((eq|ne|gt|ge|lt|le) unary | in (list | collection))?`
    fn parse_cmp(&mut self) -> Step {
        self.parse_unary()?;
        let Some(word) = self.peek_word() else {
            return Ok(());
        };
        if word == "in" {
            self.pos += 1;
            return self.parse_in();
        }
        let Some(op) = CmpOp::from_word(word) else {
            return Ok(());
        };
        self.pos += 1;
        self.parse_unary()?;
        self.reduce_cmp(op, word)
    }

    #[inline(never)]
    fn reduce_cmp(&mut self, op: CmpOp, word: &str) -> Step {
        let right = self.pop()?;
        let left = self.pop()?;
        if !comparable(op, left.ty, right.ty) {
            return Err(self.compare_error(&left, (right.ty, right.end), word));
        }
        let (start, end) = (left.start, right.end);
        self.push(
            Expr::Cmp(op, Box::new(left.expr), Box::new(right.expr)),
            Ty::Bool,
            start,
            end,
        )
    }

    /// After `in`: `groups` (possibly parenthesised) or a literal list.
    fn parse_in(&mut self) -> Step {
        let collection = match (self.peek_kind(0), self.peek_kind(1)) {
            (Some(Tok::Word(_)), _) | (Some(Tok::LParen), Some(Tok::LParen)) => true,
            (Some(Tok::LParen), Some(Tok::Word(word))) => is_groups(word),
            _ => false,
        };
        if !collection {
            return self.parse_in_list();
        }
        let end = self.parse_collection()?;
        let left = self.pop()?;
        if !matches!(left.ty, Ty::Str | Ty::Null) {
            return Err(self.type_error(&left, "string"));
        }
        self.push(
            Expr::InGroups(Box::new(left.expr)),
            Ty::Bool,
            left.start,
            end,
        )
    }

    /// `groups` or `( collection )`; returns the end of its span.
    fn parse_collection(&mut self) -> Result<usize, Box<FilterError>> {
        match self.bump() {
            Some(Token {
                kind: Tok::Word(word),
                end,
                ..
            }) if is_groups(word) => Ok(end),
            Some(Token {
                kind: Tok::LParen, ..
            }) => {
                self.enter()?;
                self.parse_collection()?;
                let end = self.expect_rparen()?;
                self.leave();
                Ok(end)
            }
            other => Err(self.unexpected(other.as_ref(), "'groups'")),
        }
    }

    /// `( literal (, literal)* )` after `in` (not recursive).
    #[inline(never)]
    fn parse_in_list(&mut self) -> Step {
        let left = self.pop()?;
        match self.bump() {
            Some(Token {
                kind: Tok::LParen, ..
            }) => {}
            other => return Err(self.unexpected(other.as_ref(), "'(' or 'groups'")),
        }
        let mut items = Vec::new();
        let end = loop {
            let token = self.bump();
            let (lit, ty) = match token.as_ref().map(|t| &t.kind) {
                Some(Tok::Str(value)) => (Lit::Str(value.clone()), Ty::Str),
                Some(Tok::Int(value)) => (Lit::Int(*value), Ty::Int),
                Some(Tok::Word("true")) => (Lit::Bool(true), Ty::Bool),
                Some(Tok::Word("false")) => (Lit::Bool(false), Ty::Bool),
                Some(Tok::Word("null")) => (Lit::Null, Ty::Null),
                _ => return Err(self.unexpected(token.as_ref(), "a literal")),
            };
            if !comparable(CmpOp::Eq, left.ty, ty) {
                let end = token.map_or(left.end, |t| t.end);
                return Err(self.compare_error(&left, (ty, end), "in"));
            }
            items.push(lit);
            match self.bump() {
                Some(Token {
                    kind: Tok::Comma, ..
                }) => {}
                Some(Token {
                    kind: Tok::RParen,
                    end,
                    ..
                }) => break end,
                other => return Err(self.unexpected(other.as_ref(), "',' or ')'")),
            }
        };
        self.push(
            Expr::InList(Box::new(left.expr), items),
            Ty::Bool,
            left.start,
            end,
        )
    }

    /// `not* atom`; each `not` counts as one nesting level and needs a bool.
    fn parse_unary(&mut self) -> Step {
        let mut nots = Vec::new();
        while let Some(token) = self.peek().filter(|t| t.kind == Tok::Word("not")) {
            nots.push(token.start);
            self.pos += 1;
            self.enter()?;
        }
        self.parse_atom()?;
        self.reduce_nots(nots)
    }

    #[inline(never)]
    fn reduce_nots(&mut self, mut nots: Vec<usize>) -> Step {
        while let Some(start) = nots.pop() {
            self.leave();
            let node = self.pop()?;
            let end = node.end;
            let inner = self.want(node, Ty::Bool)?;
            self.push(Expr::Not(Box::new(inner)), Ty::Bool, start, end)?;
        }
        Ok(())
    }

    fn parse_atom(&mut self) -> Step {
        match (self.peek_kind(0), self.peek_kind(1)) {
            (Some(Tok::LParen), _) => self.parse_parens(),
            (Some(Tok::Word(word)), Some(Tok::LParen)) => match Func::from_name(word) {
                Some(func) => self.parse_call(func),
                None => self.parse_leaf(),
            },
            _ => self.parse_leaf(),
        }
    }

    fn parse_parens(&mut self) -> Step {
        let start = self.bump().map_or(0, |t| t.start);
        self.enter()?;
        self.parse_expr()?;
        let end = self.expect_rparen()?;
        self.leave();
        if let Some(inner) = self.nodes.last_mut() {
            (inner.start, inner.end) = (start, end);
        }
        Ok(())
    }

    /// A literal or an identifier (not recursive).
    #[inline(never)]
    fn parse_leaf(&mut self) -> Step {
        let Some(token) = self.bump() else {
            return Err(self.unexpected(None, "an expression"));
        };
        let (expr, ty) = match &token.kind {
            Tok::Str(value) => (Expr::Lit(Lit::Str(value.clone())), Ty::Str),
            Tok::Int(value) => (Expr::Lit(Lit::Int(*value)), Ty::Int),
            Tok::Word("true") => (Expr::Lit(Lit::Bool(true)), Ty::Bool),
            Tok::Word("false") => (Expr::Lit(Lit::Bool(false)), Ty::Bool),
            Tok::Word("null") => (Expr::Lit(Lit::Null), Ty::Null),
            Tok::Word(w) if w.eq_ignore_ascii_case("userId") => (Expr::UserId, Ty::Str),
            Tok::Word(w) if w.eq_ignore_ascii_case("connectionId") => (Expr::ConnectionId, Ty::Str),
            Tok::Word(w) if is_groups(w) => (Expr::Groups, Ty::Groups),
            Tok::Word(w) if !KEYWORDS.contains(w) => {
                let call = self.peek_kind(0) == Some(&Tok::LParen);
                let what = if call { "function" } else { "identifier" };
                return Err(self.syntax(format!("Unknown {what} '{w}'.")));
            }
            _ => return Err(self.unexpected(Some(&token), "an expression")),
        };
        self.push(expr, ty, token.start, token.end)
    }

    /// `name ( args )` with `name` a known function and `(` next.
    fn parse_call(&mut self, func: Func) -> Step {
        let start = self.bump().map_or(0, |t| t.start);
        self.pos += 1;
        self.enter()?;
        let base = self.nodes.len();
        if self.peek_kind(0) != Some(&Tok::RParen) {
            loop {
                self.parse_expr()?;
                if self.peek_kind(0) != Some(&Tok::Comma) {
                    break;
                }
                self.pos += 1;
            }
        }
        let end = self.expect_rparen()?;
        self.leave();
        self.reduce_call(func, self.nodes.len().saturating_sub(base), (start, end))
    }

    #[inline(never)]
    fn reduce_call(&mut self, func: Func, count: usize, (start, end): (usize, usize)) -> Step {
        let args = self.pop_many(count)?;
        let Some(params) = func.params(args.len()) else {
            let (name, arity, got) = (func.name(), func.arity(), args.len());
            let reason = format!("Function '{name}' takes {arity}, got {got}.");
            return Err(self.error_at(start, end, reason));
        };
        let mut exprs = Vec::with_capacity(args.len());
        for (arg, param) in args.into_iter().zip(params) {
            if !param.accepts(arg.ty) {
                return Err(self.type_error(&arg, param.name()));
            }
            exprs.push(arg.expr);
        }
        self.push(Expr::Call(func, exprs), func.result(), start, end)
    }
}

// ---------------------------------------------------------------- evaluator

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    Groups,
}

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
    use super::*;

    struct Conn {
        user: Option<&'static str>,
        id: &'static str,
        groups: &'static [&'static str],
    }

    impl FilterSubject for Conn {
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

    const U1: Conn = Conn {
        user: Some("u1"),
        id: "c1",
        groups: &["g1"],
    };
    const U2: Conn = Conn {
        user: Some("u2"),
        id: "c9",
        groups: &["g2", "g3"],
    };
    const ANON: Conn = Conn {
        user: None,
        id: "c3",
        groups: &[],
    };
    const MIXED: Conn = Conn {
        user: Some("User1"),
        id: "c4",
        groups: &["g1", "g2"],
    };
    const QUOTE: Conn = Conn {
        user: Some("user'1"),
        id: "c5",
        groups: &[],
    };
    const LISTENER: Conn = Conn {
        user: Some("listener-7"),
        id: "c6",
        groups: &[],
    };
    const ALL: [&Conn; 6] = [&U1, &U2, &ANON, &MIXED, &QUOTE, &LISTENER];

    fn parse(filter: &str) -> ODataFilter {
        match ODataFilter::parse(filter) {
            Ok(parsed) => parsed,
            Err(error) => panic!("{filter:?} should parse: {error}"),
        }
    }

    fn error(filter: &str) -> FilterError {
        match ODataFilter::parse(filter) {
            Ok(parsed) => panic!("{filter:?} should be refused, got {parsed:?}"),
            Err(error) => error,
        }
    }

    /// Each filter with its expected result on [U1, U2, ANON, MIXED, QUOTE, LISTENER].
    fn check(table: &[(&str, [bool; 6])]) {
        for (filter, expected) in table {
            let parsed = parse(filter);
            let actual = ALL.map(|conn| parsed.matches(conn));
            assert_eq!(&actual, expected, "{filter}");
        }
    }

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

    #[test]
    fn precedence() {
        check(&[
            ("true or false and false", [true; 6]),
            ("false and false or true", [true; 6]),
            ("not false and false", [false; 6]),
            ("(true or false) and false", [false; 6]),
            (
                "userId eq 'x' or userId eq 'u1' and connectionId eq 'c1'",
                [true, false, false, false, false, false],
            ),
            (
                "userId eq 'u2' or userId eq 'u1' and connectionId eq 'nope'",
                [false, true, false, false, false, false],
            ),
        ]);
    }

    #[rustfmt::skip]
    const INVALID: &[&str] = &[
        "", "   ", "\t\n", "'abc", "userId eq 'abc", "userId eq 'it''s", "foo(userId)",
        "TOLOWER(userId) eq 'a'", "protocol eq 'json'", "bogus eq 'a'", "length eq 1",
        "length(userId, 'a') eq 1", "substring(userId) eq 'a'", "substring(userId, 1, 2, 3) eq 'a'",
        "startswith(userId)", "length() eq 0", "concat(userId) eq 'a'", "userId eq 'a' garbage",
        "userId eq 'a')", "true true", "userId(1)", "userId eq 1", "length(userId) eq 'a'",
        "groups eq 'a'", "groups eq groups", "'a' in (1, 2)", "1 in groups", "true in groups",
        "groups in ('a')", "true gt false", "userId gt true", "userId", "length(userId)", "null",
        "groups", "1", "'text'", "()", "userId in ()", "userId in ('a',)", "userId in ('a'",
        "userId in ('a' 'b')", "userId in (userId)", "userId in 'a'", "'a' in userId",
        "'a' in (('a'))", "length(userId) gt ()", "not length(userId) gt 5", "not userId",
        "not 'g1' in groups", "userId and true", "true or 1", "userId EQ 'u1'",
        "userId eq 'u1' AND true", "True", "NOT true", "99999999999999999999 eq 1",
        "-99999999999999999999 eq 1", "-", "+ 1 eq 1", "1.5 eq 1", "userId eq \"u1\"",
        "userId eq 'a' or", "and", "or true", "(true", "true)", "tolower(1) eq 'a'",
        "substring(userId, '1') eq 'a'", "substring(userId, null) eq 'a'", "userId eq eq 'a'",
        "'a' eq 'a' eq true", "userId eq 'a' $", "userId eq 'é' é", "length(,) eq 0",
        "startswith(userId, 'a',)", "not", "not not", "in groups", "$filter=true",
    ];

    #[test]
    fn invalid_filters() {
        for filter in INVALID {
            let refused = error(filter);
            assert!(!refused.reason.is_empty(), "{filter}");
            assert!(
                refused.to_string().starts_with("Invalid syntax for '"),
                "{refused}"
            );
            assert!(
                refused.to_string().ends_with(" (Parameter 'filter')"),
                "{refused}"
            );
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error("userId").to_string(),
            "Invalid syntax for 'userId': Type 'string', expect 'bool'. (Parameter 'filter')"
        );
        assert_eq!(
            error("null").to_string(),
            "Invalid syntax for 'null': Type 'null', expect 'bool'. (Parameter 'filter')"
        );
        let comparison = error("true and userId eq 1");
        assert_eq!(comparison.expression, "userId eq 1");
        assert_eq!(
            comparison.reason,
            "Cannot compare 'string' with 'int' using 'eq'."
        );
        let arity = error("startswith(userId) or true");
        assert_eq!(arity.expression, "startswith(userId)");
        assert_eq!(
            arity.reason,
            "Function 'startswith' takes 2 arguments, got 1."
        );
        let syntax = error("userId eq 'u1' xor true");
        assert_eq!(syntax.expression, "userId eq 'u1' xor true");
        assert_eq!(
            syntax.reason,
            "Unexpected 'xor' at position 15, expected 'and', 'or' or the end."
        );
        assert_eq!(
            error("é eq 'x'").reason,
            "Unexpected character 'é' at position 0."
        );
        assert_eq!(
            error("'é' eq 'x").reason,
            "Unterminated string literal at position 7."
        );
        assert_eq!(
            error("protocol eq null").reason,
            "Unknown identifier 'protocol'."
        );
        assert_eq!(
            error("Length(userId) eq 1").reason,
            "Unknown function 'Length'."
        );
        assert_eq!(
            error("1 eq 9223372036854775808").reason,
            "Integer literal '9223372036854775808' is out of range."
        );
    }

    #[test]
    fn nesting_depth_is_limited() {
        let nested = |n: usize| format!("{}true{}", "(".repeat(n), ")".repeat(n));
        let nots = |n: usize| format!("{}true", "not ".repeat(n));
        let calls = |n: usize| {
            format!(
                "length({}'x'{}) eq 1",
                "trim(".repeat(n - 1),
                ")".repeat(n - 1)
            )
        };
        let collections = |n: usize| format!("'g1' in {}groups{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(MAX_DEPTH)).matches(&U1));
        assert!(parse(&nots(MAX_DEPTH)).matches(&U1));
        assert!(parse(&calls(MAX_DEPTH)).matches(&U1));
        assert!(parse(&collections(MAX_DEPTH)).matches(&U1));
        for n in [MAX_DEPTH + 1, 10_000] {
            for filter in [nested(n), nots(n), calls(n), collections(n)] {
                assert!(error(&filter).reason.contains("nested deeper"));
            }
        }
        // Unbalanced and mixed deep input.
        let _ = error(&"(".repeat(10_000));
        let _ = error(&"not (".repeat(10_000));
        let _ = error(&"length(".repeat(10_000));
        // The deepest accepted filters parse and evaluate on a small stack
        // (debug builds need about 128 KiB; threads usually have 2 MiB).
        let mut mixed = "'g1' in ((groups))".to_owned();
        for _ in 0..(MAX_DEPTH - 2) / 3 {
            mixed = format!("(not (length(trim('x')) gt 0 and {mixed}))");
        }
        for filter in [
            mixed,
            nested(MAX_DEPTH),
            nots(MAX_DEPTH),
            calls(MAX_DEPTH),
            collections(MAX_DEPTH),
        ] {
            let small = std::thread::Builder::new().stack_size(256 * 1024);
            let handle = small.spawn(move || parse(&filter).matches(&U1));
            assert!(handle.is_ok_and(|h| h.join().is_ok()));
        }
    }

    #[test]
    fn long_chains_are_flat() {
        let ors = vec!["userId eq 'nobody'"; 10_000].join(" or ") + " or 'g1' in groups";
        let ands = vec!["connectionId ne 'x'"; 10_000].join(" and ");
        assert!(parse(&ors).matches(&U1));
        assert!(!parse(&ors).matches(&U2));
        assert!(parse(&ands).matches(&ANON));
    }

    /// xorshift64*, deterministic.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let value = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33;
            usize::try_from(value).unwrap_or(0) % n.max(1)
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items.get(self.below(items.len())).copied().unwrap_or("")
        }
    }

    fn gen_bool(rng: &mut Rng, depth: usize) -> String {
        if depth == 0 {
            return rng
                .pick(&[
                    "true",
                    "false",
                    "'g1' in groups",
                    "userId eq null",
                    "connectionId ne 'c1'",
                ])
                .to_owned();
        }
        let d = depth - 1;
        match rng.below(10) {
            0 => format!("{} and {}", gen_bool(rng, d), gen_bool(rng, d)),
            1 => format!("{} or {}", gen_bool(rng, d), gen_bool(rng, d)),
            2 => format!("not ({})", gen_bool(rng, d)),
            3 => format!(
                "{} {} {}",
                gen_str(rng, d),
                rng.pick(&["eq", "ne", "gt", "ge", "lt", "le"]),
                gen_str(rng, d)
            ),
            4 => format!(
                "{} {} {}",
                gen_int(rng, d),
                rng.pick(&["eq", "ne", "gt", "ge", "lt", "le"]),
                gen_int(rng, d)
            ),
            5 => format!(
                "{}({}, {})",
                rng.pick(&["startswith", "endswith", "contains"]),
                gen_str(rng, d),
                gen_str(rng, d)
            ),
            6 => format!("{} in groups", gen_str(rng, d)),
            7 => format!("{} in ('u1', null, 'g2')", gen_str(rng, d)),
            8 => format!("({}) eq ({})", gen_bool(rng, d), gen_bool(rng, d)),
            _ => format!("({})", gen_bool(rng, d)),
        }
    }

    fn gen_str(rng: &mut Rng, depth: usize) -> String {
        if depth == 0 {
            return rng
                .pick(&[
                    "userId",
                    "connectionId",
                    "'u1'",
                    "'g1'",
                    "''",
                    "null",
                    "'é''😀'",
                ])
                .to_owned();
        }
        let d = depth - 1;
        match rng.below(6) {
            0 => format!(
                "{}({})",
                rng.pick(&["tolower", "toupper", "trim"]),
                gen_str(rng, d)
            ),
            1 => format!("substring({}, {})", gen_str(rng, d), gen_int(rng, d)),
            2 => format!(
                "substring({}, {}, {})",
                gen_str(rng, d),
                gen_int(rng, d),
                gen_int(rng, d)
            ),
            3 => format!("concat({}, {})", gen_str(rng, d), gen_str(rng, d)),
            _ => gen_str(rng, 0),
        }
    }

    fn gen_int(rng: &mut Rng, depth: usize) -> String {
        if depth == 0 {
            return rng
                .pick(&[
                    "0",
                    "1",
                    "-1",
                    "+7",
                    "9223372036854775807",
                    "-9223372036854775808",
                ])
                .to_owned();
        }
        let d = depth - 1;
        match rng.below(4) {
            0 => format!("length({})", gen_str(rng, d)),
            1 => format!("indexof({}, {})", gen_str(rng, d), gen_str(rng, d)),
            2 => "length(groups)".to_owned(),
            _ => gen_int(rng, 0),
        }
    }

    #[test]
    fn generated_valid_filters_parse_and_evaluate() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..3_000 {
            let filter = gen_bool(&mut rng, 5);
            let parsed = parse(&filter);
            let negated = parse(&format!("not ({filter})"));
            let tautology = parse(&format!("({filter}) or not ({filter})"));
            for conn in ALL {
                assert_ne!(parsed.matches(conn), negated.matches(conn), "{filter}");
                assert!(tautology.matches(conn), "{filter}");
            }
        }
    }

    #[rustfmt::skip]
    const FRAGMENTS: &[&str] = &[
        "userId", "connectionId", "groups", "protocol", "'a'", "'b''c'", "'", "''", "(", ")", ",",
        "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "in", "true", "false", "null", "0",
        "-1", "+5", "99999999999999999999", "-", "tolower", "toupper", "trim", "substring",
        "concat", "startswith", "endswith", "contains", "indexof", "length", "é", "😀", "$", " ",
        "'ü'", "USERID", "\u{0}", "\u{301}", "1.5",
    ];

    fn try_all(filter: &str) {
        if let Ok(parsed) = ODataFilter::parse(filter) {
            for conn in ALL {
                let _ = parsed.matches(conn);
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let mut filter = String::new();
            for _ in 0..rng.below(24) {
                filter.push_str(rng.pick(FRAGMENTS));
                if rng.below(3) != 0 {
                    filter.push(' ');
                }
            }
            try_all(&filter);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
            try_all(&text);
        }

        #[test]
        fn arbitrary_fragments_never_panic(parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..32)) {
            try_all(&parts.join(" "));
            try_all(&parts.concat());
        }
    }
}

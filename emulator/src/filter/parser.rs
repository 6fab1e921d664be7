//! The grammar, by recursive descent over the tokens:
//!
//! ```text
//! filter     := expr                                (a bool, nothing after it)
//! expr       := cmp (("and" | "or") cmp)*            (and binds tighter)
//! cmp        := unary (op unary | "in" (list | collection))?
//! list       := "(" literal ("," literal)* ")"
//! collection := "groups" | "(" collection ")"
//! unary      := "not"* atom
//! atom       := "(" expr ")" | function "(" (expr ("," expr)*)? ")" | literal | identifier
//! ```
//!
//! Keywords and function names are lower case; `userId`, `connectionId` and
//! `groups` are not case-sensitive.

use super::ast::{CmpOp, Expr, Func, Lit};
use super::lexer::{position, Tok, Token};
use super::typing::{comparable, Node, Ty};
use super::{FilterError, MAX_DEPTH};

const KEYWORDS: &[&str] = &["and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "in"];

fn is_groups(word: &str) -> bool {
    word.eq_ignore_ascii_case("groups")
}

/// Parses the tokens of `text`: the tree of a filter whose value is a bool.
pub(super) fn parse<'t>(text: &'t str, tokens: Vec<Token<'t>>) -> Result<Expr, FilterError> {
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        depth: 0,
        nodes: Vec::new(),
    };
    parser.parse_filter().map_err(|error| *error)
}

/// Recursive descent over the token list. Parsed nodes go onto an operand
/// stack (`nodes`) and every parse step returns only `Result<(), Box<_>>`,
/// so the functions on the recursion path (`parse_expr` → `parse_cmp` →
/// `parse_unary` → `parse_atom` → `parse_parens`/`parse_call` → …) have
/// small frames; combining nodes and building errors happen in
/// non-recursive, never-inlined helpers (the `reduce_*` steps of
/// `typing.rs`). `not` and `and`/`or` are loops.
/// The deepest accepted filter needs about 128 KiB of stack in a debug
/// build and less in release.
pub(super) struct Parser<'t> {
    pub(super) text: &'t str,
    tokens: Vec<Token<'t>>,
    pos: usize,
    depth: usize,
    nodes: Vec<Node>,
}

/// What a parse step returns: its node is on the operand stack.
pub(super) type Step = Result<(), Box<FilterError>>;

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

    pub(super) fn push(&mut self, expr: Expr, ty: Ty, start: usize, end: usize) -> Step {
        self.nodes.push(Node {
            expr,
            ty,
            start,
            end,
        });
        Ok(())
    }

    pub(super) fn pop(&mut self) -> Result<Node, Box<FilterError>> {
        match self.nodes.pop() {
            Some(node) => Ok(node),
            None => Err(self.syntax("Internal error: missing operand.".to_owned())),
        }
    }

    /// The last `count` nodes, in source order.
    pub(super) fn pop_many(&mut self, count: usize) -> Result<Vec<Node>, Box<FilterError>> {
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

    pub(super) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The whole filter: one boolean expression and nothing after it.
    fn parse_filter(&mut self) -> Result<Expr, Box<FilterError>> {
        if self.tokens.is_empty() {
            return Err(self.syntax("The filter is empty.".to_owned()));
        }
        self.parse_expr()?;
        if let Some(extra) = self.peek() {
            return Err(self.unexpected(Some(extra), "'and', 'or' or the end"));
        }
        let root = self.pop()?;
        self.want(root, Ty::Bool)
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
}

#[cfg(test)]
mod tests {
    use crate::filter::fixtures::{check, error, parse, ANON, U1, U2};
    use crate::filter::MAX_DEPTH;

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

    #[test]
    fn syntax_errors_name_the_whole_filter() {
        let syntax = error("userId eq 'u1' xor true");
        assert_eq!(syntax.expression, "userId eq 'u1' xor true");
        assert_eq!(
            syntax.reason,
            "Unexpected 'xor' at position 15, expected 'and', 'or' or the end."
        );
        assert_eq!(
            error("protocol eq null").reason,
            "Unknown identifier 'protocol'."
        );
        assert_eq!(
            error("Length(userId) eq 1").reason,
            "Unknown function 'Length'."
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
}

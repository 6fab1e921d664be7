//! The typed tree a filter parses to, and the names of its operators and
//! functions. The parser only builds an `Expr` whose types check, so the
//! evaluator never meets an ill-typed one.

/// A literal: `null`, `true`/`false`, an `i64` or a `'quoted'` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
}

/// A comparison operator (`eq ne gt ge lt le`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    /// The operator spelled `word` (lower case only), if any.
    pub(super) fn from_word(word: &str) -> Option<Self> {
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

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
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

impl Func {
    /// The function spelled `name` (lower case only), if any.
    pub(super) fn from_name(name: &str) -> Option<Self> {
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

    /// Its name, as written in filters.
    pub(super) fn name(self) -> &'static str {
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
}

/// The typed tree. `And`/`Or` are n-ary so long chains stay shallow.
#[derive(Debug, Clone)]
pub(super) enum Expr {
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

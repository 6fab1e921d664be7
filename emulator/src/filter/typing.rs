//! The type rules: every node on the parser's operand stack has a static
//! type; which arguments each function takes and what it gives; which
//! types compare. The parser's reduce steps (`reduce.rs`) apply them.

use super::ast::{CmpOp, Expr, Func};

/// Static types. Strings and ints may be null at run time; bools never are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Null,
    Bool,
    Int,
    Str,
    Groups,
}

impl Ty {
    /// The type's name in messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Ty::Null => "null",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Str => "string",
            Ty::Groups => "collection",
        }
    }
}

/// A parameter kind: string (or null), int, or string/null/`groups`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Param {
    Str,
    Int,
    StrOrGroups,
}

impl Param {
    /// Whether an argument of type `ty` fits.
    pub(super) fn accepts(self, ty: Ty) -> bool {
        match self {
            Param::Str => matches!(ty, Ty::Str | Ty::Null),
            Param::Int => ty == Ty::Int,
            Param::StrOrGroups => matches!(ty, Ty::Str | Ty::Null | Ty::Groups),
        }
    }

    /// The parameter's type in messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Param::Str => "string",
            Param::Int => "int",
            Param::StrOrGroups => "string' or 'collection",
        }
    }
}

/// Function signatures.
impl Func {
    /// The parameters of a call with `count` arguments, if that count is allowed.
    pub(super) fn params(self, count: usize) -> Option<&'static [Param]> {
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

    /// The allowed argument counts, in messages.
    pub(super) fn arity(self) -> &'static str {
        match self {
            Self::ToLower | Self::ToUpper | Self::Trim | Self::Length => "1 argument",
            Self::Substring => "2 or 3 arguments",
            _ => "2 arguments",
        }
    }

    /// The type of the call's value.
    pub(super) fn result(self) -> Ty {
        match self {
            Self::ToLower | Self::ToUpper | Self::Trim | Self::Substring | Self::Concat => Ty::Str,
            Self::StartsWith | Self::EndsWith | Self::Contains => Ty::Bool,
            Self::IndexOf | Self::Length => Ty::Int,
        }
    }
}

/// A typed node with the byte span of its source text.
pub(super) struct Node {
    pub(super) expr: Expr,
    pub(super) ty: Ty,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Whether `op` may compare values of types `left` and `right`.
pub(super) fn comparable(op: CmpOp, left: Ty, right: Ty) -> bool {
    if left == Ty::Groups || right == Ty::Groups {
        return false;
    }
    if !matches!(op, CmpOp::Eq | CmpOp::Ne) && (left == Ty::Bool || right == Ty::Bool) {
        return false;
    }
    left == right || left == Ty::Null || right == Ty::Null
}

//! The parser's reduce steps: each `reduce_*` builds a bigger node only if
//! its operands' types fit (`typing.rs`), or names the offending
//! sub-expression in the error. These steps are not on the parser's
//! recursion path and never inlined, so recursion frames stay small.

use super::ast::{CmpOp, Expr, Func};
use super::parser::{Parser, Step};
use super::typing::{comparable, Node, Ty};
use super::FilterError;

impl Parser<'_> {
    #[cold]
    #[inline(never)]
    pub(super) fn error_at(&self, start: usize, end: usize, reason: String) -> Box<FilterError> {
        let expression = self.text.get(start..end).unwrap_or(self.text).to_owned();
        Box::new(FilterError { expression, reason })
    }

    #[cold]
    #[inline(never)]
    pub(super) fn type_error(&self, node: &Node, expected: &str) -> Box<FilterError> {
        let reason = format!("Type '{}', expect '{expected}'.", node.ty.name());
        self.error_at(node.start, node.end, reason)
    }

    #[cold]
    #[inline(never)]
    pub(super) fn compare_error(
        &self,
        left: &Node,
        right: (Ty, usize),
        op: &str,
    ) -> Box<FilterError> {
        let (l, r) = (left.ty.name(), right.0.name());
        let reason = format!("Cannot compare '{l}' with '{r}' using '{op}'.");
        self.error_at(left.start, right.1, reason)
    }

    /// The node's expression if it has type `ty`, else a type error.
    pub(super) fn want(&self, node: Node, ty: Ty) -> Result<Expr, Box<FilterError>> {
        if node.ty == ty {
            Ok(node.expr)
        } else {
            Err(self.type_error(&node, ty.name()))
        }
    }

    /// Joins the last `count` nodes (all bool) with `build`; one node stays as is.
    #[inline(never)]
    pub(super) fn reduce_junction(&mut self, count: usize, build: fn(Vec<Expr>) -> Expr) -> Step {
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

    /// Joins the last two nodes with `op` (spelled `word`).
    #[inline(never)]
    pub(super) fn reduce_cmp(&mut self, op: CmpOp, word: &str) -> Step {
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

    /// Wraps the last node in one `not` per start in `nots`, innermost last.
    #[inline(never)]
    pub(super) fn reduce_nots(&mut self, mut nots: Vec<usize>) -> Step {
        while let Some(start) = nots.pop() {
            self.leave();
            let node = self.pop()?;
            let end = node.end;
            let inner = self.want(node, Ty::Bool)?;
            self.push(Expr::Not(Box::new(inner)), Ty::Bool, start, end)?;
        }
        Ok(())
    }

    /// Applies `func` to the last `count` nodes; the call spans `start..end`.
    #[inline(never)]
    pub(super) fn reduce_call(
        &mut self,
        func: Func,
        count: usize,
        (start, end): (usize, usize),
    ) -> Step {
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

#[cfg(test)]
mod tests {
    use crate::filter::fixtures::error;

    #[test]
    fn type_errors_name_the_offending_sub_expression() {
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
    }
}

//! Model: which method answers which event, with the rule of one method
//! per event. This is all that expansion needs to know.

use std::collections::BTreeSet;

use proc_macro2::Span;
use quote::ToTokens;
use syn::{Ident, LitStr, ReturnType, Type};

use crate::errors::Errors;
use crate::parse::{Role, Route, SystemEvent};

/// A checked method that handles an event.
#[derive(Clone)]
pub(crate) struct EventMethod {
    pub(crate) ident: Ident,
    /// Argument types, without the receiver.
    pub(crate) args: Vec<Type>,
    pub(crate) output: ReturnType,
    /// The method's `#[cfg]`/`#[cfg_attr]` attributes, repeated on the
    /// generated code so that a configured-out method is not called.
    pub(crate) cfgs: Vec<syn::Attribute>,
}

/// Every event the block handles, and the methods that do.
///
/// An event has one method per set of `#[cfg]` attributes: methods under
/// different conditions (`feature = "x"` / `not(feature = "x")`) are each
/// compiled under their own, and [`conflicts`](Self::conflicts) lists the
/// pairs that would clash if both conditions held.
#[derive(Default)]
pub(crate) struct Model {
    /// System-event methods, in source order. Two methods for one system
    /// event share its name, so rustc refuses them if both are enabled.
    system: Vec<(SystemEvent, EventMethod)>,
    /// Named user events, in source order.
    pub(crate) user_events: Vec<(LitStr, EventMethod)>,
    /// Fallback methods, in source order, with the span of their route.
    fallbacks: Vec<(Span, EventMethod)>,
}

/// Two methods for one event under different `#[cfg]`s: an error when both
/// are enabled.
pub(crate) struct Conflict<'a> {
    pub(crate) first: &'a EventMethod,
    pub(crate) second: &'a EventMethod,
    /// The error, at the second method's route.
    pub(crate) error: syn::Error,
}

impl Model {
    /// Builds the model from the checked methods, in source order; a method
    /// that failed parsing or checking adds its errors and nothing else.
    pub(crate) fn build(
        methods: impl IntoIterator<Item = syn::Result<(Role, EventMethod)>>,
    ) -> syn::Result<Self> {
        let mut model = Self::default();
        let mut errors = Errors::default();
        for method in methods {
            match method {
                Ok((Role::System(event), method)) => model.system.push((event, method)),
                Ok((Role::User(routes), method)) => {
                    for route in routes {
                        if let Err(e) = model.route(route, &method) {
                            errors.push(e);
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors.finish(model)
    }

    /// The methods for system event `event`, each under its own `#[cfg]`s.
    pub(crate) fn system(&self, event: SystemEvent) -> impl Iterator<Item = &EventMethod> {
        self.system
            .iter()
            .filter(move |(e, _)| *e == event)
            .map(|(_, method)| method)
    }

    /// The fallback methods, each under its own `#[cfg]`s.
    pub(crate) fn fallbacks(&self) -> impl Iterator<Item = &EventMethod> {
        self.fallbacks.iter().map(|(_, method)| method)
    }

    /// Whether the block handles any user event.
    pub(crate) fn has_user_events(&self) -> bool {
        !self.user_events.is_empty() || !self.fallbacks.is_empty()
    }

    /// Gives `method` the user events of `route`, unless another method
    /// under the same `#[cfg]`s has them.
    fn route(&mut self, route: Route, method: &EventMethod) -> syn::Result<()> {
        let cfgs = cfg_set(method);
        match route {
            Route::Name(lit) => {
                let value = lit.value();
                if let Some((_, first)) = self
                    .user_events
                    .iter()
                    .find(|(n, m)| n.value() == value && cfg_set(m) == cfgs)
                {
                    return Err(already_handled(&lit, &value, &first.ident));
                }
                self.user_events.push((lit, method.clone()));
            }
            Route::Fallback(span) => {
                if let Some((_, first)) = self.fallbacks.iter().find(|(_, m)| cfg_set(m) == cfgs) {
                    return Err(second_fallback(span, &first.ident));
                }
                self.fallbacks.push((span, method.clone()));
            }
        }
        Ok(())
    }

    /// Every pair of methods for one user event (or two fallbacks) under
    /// different `#[cfg]`s: a duplicate when both are enabled.
    pub(crate) fn conflicts(&self) -> Vec<Conflict<'_>> {
        let mut conflicts = Vec::new();
        for (i, (lit, second)) in self.user_events.iter().enumerate() {
            let value = lit.value();
            for (_, first) in self
                .user_events
                .iter()
                .take(i)
                .filter(|(n, _)| n.value() == value)
            {
                let error = syn::Error::new(
                    lit.span(),
                    format!(
                        "user event \"{value}\" has two enabled handlers (`{}` and `{}`): \
                         {BOTH_ENABLED}",
                        first.ident, second.ident
                    ),
                );
                conflicts.push(Conflict {
                    first,
                    second,
                    error,
                });
            }
        }
        for (i, (span, second)) in self.fallbacks.iter().enumerate() {
            for (_, first) in self.fallbacks.iter().take(i) {
                let error = syn::Error::new(
                    *span,
                    format!(
                        "two enabled fallbacks (`{}` and `{}`): {BOTH_ENABLED}",
                        first.ident, second.ident
                    ),
                );
                conflicts.push(Conflict {
                    first,
                    second,
                    error,
                });
            }
        }
        conflicts
    }
}

/// The `#[cfg]`/`#[cfg_attr]` attributes of `method` as a set, so that two
/// methods under the same conditions written in another order still collide.
fn cfg_set(method: &EventMethod) -> BTreeSet<String> {
    method
        .cfgs
        .iter()
        .map(|attr| attr.to_token_stream().to_string())
        .collect()
}

const BOTH_ENABLED: &str = "their `#[cfg]` conditions both hold; \
     make them exclude each other, e.g. `feature = \"x\"` / `not(feature = \"x\")`";

fn already_handled(lit: &LitStr, value: &str, first: &Ident) -> syn::Error {
    syn::Error::new(
        lit.span(),
        format!(
            "user event \"{value}\" already has a handler (`{first}`): \
             give each event name to one method"
        ),
    )
}

fn second_fallback(span: Span, first: &Ident) -> syn::Error {
    syn::Error::new(
        span,
        format!(
            "only one method may be the fallback (`{first}` already is): \
             remove this `#[user_event(fallback)]` / `#[user_event(\"*\")]`"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn method(name: &str, cfgs: Vec<syn::Attribute>) -> EventMethod {
        EventMethod {
            ident: Ident::new(name, Span::call_site()),
            args: Vec::new(),
            output: ReturnType::Default,
            cfgs,
        }
    }

    fn route(name: &str) -> Role {
        Role::User(vec![Route::Name(LitStr::new(name, Span::call_site()))])
    }

    #[test]
    fn methods_for_one_event_under_the_same_cfgs_in_any_order_collide() {
        let first = method("a", vec![parse_quote!(#[cfg(x)]), parse_quote!(#[cfg(y)])]);
        let second = method(
            "b",
            vec![parse_quote!(#[cfg(y)]), parse_quote!(#[cfg( x )])],
        );
        let model = Model::build([Ok((route("e"), first)), Ok((route("e"), second))]);
        assert!(model.is_err());
    }

    #[test]
    fn methods_for_one_event_under_different_cfgs_are_kept_as_a_conflict() {
        let first = method("a", vec![parse_quote!(#[cfg(x)])]);
        let second = method("b", vec![parse_quote!(#[cfg(not(x))])]);
        let model = Model::build([Ok((route("e"), first)), Ok((route("e"), second))]);
        let model = model.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(model.user_events.len(), 2);
        let conflicts = model.conflicts();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(
            (
                conflicts[0].first.ident.to_string(),
                conflicts[0].second.ident.to_string()
            ),
            ("a".into(), "b".into())
        );
    }
}

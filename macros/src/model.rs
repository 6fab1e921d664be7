//! Model: which method answers which event, with the rule of one method
//! per event. This is all that expansion needs to know.

use proc_macro2::Span;
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

/// Every event the block handles, and the method that does.
#[derive(Default)]
pub(crate) struct Model {
    connect: Option<EventMethod>,
    connected: Option<EventMethod>,
    disconnected: Option<EventMethod>,
    group_joined: Option<EventMethod>,
    group_left: Option<EventMethod>,
    /// Named user events, in source order.
    pub(crate) user_events: Vec<(LitStr, EventMethod)>,
    pub(crate) fallback: Option<EventMethod>,
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
                Ok((Role::System(event), method)) => *model.slot(event) = Some(method),
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

    /// The method for system event `event`, if the block has one.
    pub(crate) fn system(&self, event: SystemEvent) -> Option<&EventMethod> {
        match event {
            SystemEvent::Connect => self.connect.as_ref(),
            SystemEvent::Connected => self.connected.as_ref(),
            SystemEvent::Disconnected => self.disconnected.as_ref(),
            SystemEvent::GroupJoined => self.group_joined.as_ref(),
            SystemEvent::GroupLeft => self.group_left.as_ref(),
        }
    }

    fn slot(&mut self, event: SystemEvent) -> &mut Option<EventMethod> {
        match event {
            SystemEvent::Connect => &mut self.connect,
            SystemEvent::Connected => &mut self.connected,
            SystemEvent::Disconnected => &mut self.disconnected,
            SystemEvent::GroupJoined => &mut self.group_joined,
            SystemEvent::GroupLeft => &mut self.group_left,
        }
    }

    /// Whether the block handles any user event.
    pub(crate) fn has_user_events(&self) -> bool {
        !self.user_events.is_empty() || self.fallback.is_some()
    }

    /// Gives `method` the user events of `route`, unless another method has them.
    fn route(&mut self, route: Route, method: &EventMethod) -> syn::Result<()> {
        match route {
            Route::Name(lit) => {
                let value = lit.value();
                if let Some((_, first)) = self.user_events.iter().find(|(n, _)| n.value() == value)
                {
                    return Err(already_handled(&lit, &value, &first.ident));
                }
                self.user_events.push((lit, method.clone()));
            }
            Route::Fallback(span) => {
                if let Some(first) = &self.fallback {
                    return Err(second_fallback(span, &first.ident));
                }
                self.fallback = Some(method.clone());
            }
        }
        Ok(())
    }
}

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

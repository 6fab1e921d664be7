//! Parse: the macro's input read as syntax. The `impl` block, and for each
//! event method its `#[user_event(…)]` routes (removed from the block, which
//! is emitted again) or the system event its name stands for.

use proc_macro2::{Span, TokenStream};
use syn::{Attribute, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, Signature, Token};

use crate::errors::Errors;

/// The item under the attribute, which must be an `impl` block.
pub(crate) fn impl_block(item: TokenStream) -> syn::Result<ItemImpl> {
    syn::parse2(item.clone()).map_err(|_| {
        syn::Error::new_spanned(
            &item,
            "#[event_handler] goes on an `impl` block: `#[event_handler] impl Chat { … }`",
        )
    })
}

/// A system event, handled by the method of the same name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SystemEvent {
    Connect,
    Connected,
    Disconnected,
    GroupJoined,
    GroupLeft,
}

impl SystemEvent {
    /// Every system event, in the order of the trait's methods.
    pub(crate) const ALL: [Self; 5] = [
        Self::Connect,
        Self::Connected,
        Self::Disconnected,
        Self::GroupJoined,
        Self::GroupLeft,
    ];

    /// The method name (in the user's block and in the trait).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::GroupJoined => "group_joined",
            Self::GroupLeft => "group_left",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.name() == name)
    }
}

/// Which user events a method handles, as one `#[user_event(…)]` says.
pub(crate) enum Route {
    /// `#[user_event("name")]`.
    Name(LitStr),
    /// `#[user_event(fallback)]` or `#[user_event("*")]`, at its argument.
    Fallback(Span),
}

/// What an event method handles.
pub(crate) enum Role {
    /// The system event its name stands for.
    System(SystemEvent),
    /// The user events of its `#[user_event(…)]` attributes (at least one).
    User(Vec<Route>),
}

/// A method that handles events, as written.
pub(crate) struct EventFn {
    pub(crate) sig: Signature,
    /// The method's `#[cfg]`/`#[cfg_attr]` attributes, repeated on the
    /// generated code so that a configured-out method is not called.
    pub(crate) cfgs: Vec<Attribute>,
    pub(crate) role: Role,
}

/// Removes every `#[user_event(…)]` attribute from `block` and returns, in
/// source order, each event method or the errors in its attributes.
/// Ordinary methods (no route, not named after a system event) are skipped.
pub(crate) fn event_fns(block: &mut ItemImpl) -> Vec<syn::Result<EventFn>> {
    let mut found = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let routes = match take_routes(method) {
            Ok(routes) => routes,
            Err(e) => {
                found.push(Err(e));
                continue;
            }
        };
        let role = if routes.is_empty() {
            match SystemEvent::from_name(&method.sig.ident.to_string()) {
                Some(event) => Role::System(event),
                None => continue, // an ordinary method
            }
        } else {
            Role::User(routes)
        };
        found.push(Ok(EventFn {
            sig: method.sig.clone(),
            cfgs: cfgs(&method.attrs),
            role,
        }));
    }
    found
}

fn cfgs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
        .cloned()
        .collect()
}

/// Removes the method's `#[user_event(…)]` attributes and returns what they say.
fn take_routes(method: &mut ImplItemFn) -> syn::Result<Vec<Route>> {
    let mut routes = Vec::new();
    let mut errors = Errors::default();
    let mut kept = Vec::with_capacity(method.attrs.len());
    for attr in method.attrs.drain(..) {
        if !attr.path().is_ident("user_event") {
            kept.push(attr);
            continue;
        }
        match parse_route(&attr) {
            Ok(route) => routes.push(route),
            Err(e) => errors.push(e),
        }
    }
    method.attrs = kept;
    errors.finish(routes)
}

const ROUTE_HELP: &str =
    "expected `#[user_event(\"name\")]`, or `#[user_event(fallback)]` for every other event";

fn parse_route(attr: &Attribute) -> syn::Result<Route> {
    let syn::Meta::List(list) = &attr.meta else {
        return Err(syn::Error::new_spanned(attr, ROUTE_HELP));
    };
    list.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        let route = if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            match lit.value().as_str() {
                "" => {
                    return Err(syn::Error::new(
                        lit.span(),
                        "the event name is empty: name the user event, e.g. \"message\"",
                    ))
                }
                "*" => Route::Fallback(lit.span()),
                _ => Route::Name(lit),
            }
        } else if input.peek(Ident) {
            let ident: Ident = input.parse()?;
            if ident != "fallback" {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("unknown argument `{ident}`: {ROUTE_HELP}"),
                ));
            }
            Route::Fallback(ident.span())
        } else {
            return Err(input.error(ROUTE_HELP));
        };
        if input.peek(Token![,]) {
            return Err(input.error(
                "one event per attribute: write one `#[user_event(\"name\")]` line for each name",
            ));
        }
        if !input.is_empty() {
            return Err(input.error(ROUTE_HELP));
        }
        Ok(route)
    })
}

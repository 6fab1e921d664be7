//! Procedural macros for [`webpubsub`](https://docs.rs/webpubsub): the
//! `#[event_handler]` attribute. Use it through `webpubsub::event_handler`;
//! its documentation lives there.
//!
//! The macro is thin on purpose: it reads an inherent `impl` block, checks
//! the event methods, and writes an `EventHandler` impl that calls them
//! through the conversion traits of the main crate
//! (`FromUserEvent`, `FromEventData`, `IntoUserEventResponse`,
//! `IntoConnectEventResponse`). Parse → model → check → expand.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{
    parse_quote, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, ReturnType, Token, Type,
};

/// Derives `webpubsub::EventHandler` from an inherent `impl` block; see
/// `webpubsub::event_handler` for the full documentation.
#[proc_macro_attribute]
pub fn event_handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr.into(), item.into()).into()
}

fn expand(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut block: ItemImpl = match syn::parse2(item.clone()) {
        Ok(block) => block,
        Err(_) => {
            let err = syn::Error::new_spanned(
                &item,
                "#[event_handler] goes on an `impl` block: `#[event_handler] impl Chat { … }`",
            );
            return with_error(item, err);
        }
    };
    // Always take our helper attributes out, so that on error the user's
    // block still compiles and the IDE keeps working.
    let model = read(&mut block);
    let mut errors: Option<syn::Error> = None;
    if !attr.is_empty() {
        push(
            &mut errors,
            syn::Error::new_spanned(
                &attr,
                "#[event_handler] takes no arguments: write `#[event_handler]`",
            ),
        );
    }
    if let Some((_, path, _)) = &block.trait_ {
        push(
            &mut errors,
            syn::Error::new_spanned(
                path,
                "#[event_handler] goes on an inherent impl block (`impl Chat { … }`), not on a trait impl",
            ),
        );
    }
    let model = match model {
        Ok(model) if errors.is_none() => model,
        Ok(_) => {
            return with_error(
                block.into_token_stream(),
                errors.unwrap_or_else(|| unreachable!()),
            )
        }
        Err(e) => {
            push(&mut errors, e);
            return with_error(
                block.into_token_stream(),
                errors.unwrap_or_else(|| unreachable!()),
            );
        }
    };
    let handler = generate(&block, &model);
    quote! { #block #handler }
}

fn with_error(tokens: TokenStream2, err: syn::Error) -> TokenStream2 {
    let err = err.to_compile_error();
    quote! { #tokens #err }
}

fn push(errors: &mut Option<syn::Error>, err: syn::Error) {
    match errors {
        Some(existing) => existing.combine(err),
        None => *errors = Some(err),
    }
}

// ---------------------------------------------------------------- model ---

/// A method that handles an event.
#[derive(Clone)]
struct EventMethod {
    ident: Ident,
    /// Argument types, without the receiver.
    args: Vec<Type>,
    output: ReturnType,
    /// The method's `#[cfg]`/`#[cfg_attr]` attributes, repeated on the
    /// generated code so that a configured-out method is not called.
    cfgs: Vec<syn::Attribute>,
}

/// Which user events a method handles.
enum Route {
    Name(LitStr),
    Fallback(Span),
}

#[derive(Default)]
struct Model {
    connect: Option<EventMethod>,
    connected: Option<EventMethod>,
    disconnected: Option<EventMethod>,
    group_joined: Option<EventMethod>,
    group_left: Option<EventMethod>,
    user_events: Vec<(LitStr, EventMethod)>,
    fallback: Option<EventMethod>,
}

const SYSTEM: [&str; 5] = [
    "connect",
    "connected",
    "disconnected",
    "group_joined",
    "group_left",
];

/// Reads the block into a model, removing `#[user_event]` attributes, and
/// checks every event method.
fn read(block: &mut ItemImpl) -> syn::Result<Model> {
    let mut model = Model::default();
    let mut errors: Option<syn::Error> = None;
    let mut seen: Vec<(String, Ident)> = Vec::new();
    let mut fallback_of: Option<Ident> = None;

    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let routes = match take_routes(method) {
            Ok(routes) => routes,
            Err(e) => {
                push(&mut errors, e);
                continue;
            }
        };
        let name = method.sig.ident.to_string();
        let system = SYSTEM.contains(&name.as_str());
        if routes.is_empty() && !system {
            continue; // an ordinary method
        }
        let event = match check(method, routes.is_empty().then_some(name.as_str())) {
            Ok(event) => event,
            Err(e) => {
                push(&mut errors, e);
                continue;
            }
        };
        if routes.is_empty() {
            let slot = match name.as_str() {
                "connect" => &mut model.connect,
                "connected" => &mut model.connected,
                "disconnected" => &mut model.disconnected,
                "group_joined" => &mut model.group_joined,
                _ => &mut model.group_left,
            };
            *slot = Some(event);
            continue;
        }
        for route in routes {
            let event = event.clone();
            match route {
                Route::Name(lit) => {
                    let value = lit.value();
                    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == value) {
                        push(
                            &mut errors,
                            syn::Error::new(
                                lit.span(),
                                format!(
                                    "user event \"{value}\" already has a handler (`{first}`): \
                                     give each event name to one method"
                                ),
                            ),
                        );
                        continue;
                    }
                    seen.push((value, method.sig.ident.clone()));
                    model.user_events.push((lit, event));
                }
                Route::Fallback(span) => {
                    if let Some(first) = &fallback_of {
                        push(
                            &mut errors,
                            syn::Error::new(
                                span,
                                format!(
                                    "only one method may be the fallback (`{first}` already is): \
                                     remove this `#[user_event(fallback)]` / `#[user_event(\"*\")]`"
                                ),
                            ),
                        );
                        continue;
                    }
                    fallback_of = Some(method.sig.ident.clone());
                    model.fallback = Some(event);
                }
            }
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(model),
    }
}

/// Removes the method's `#[user_event(…)]` attributes and returns what they say.
fn take_routes(method: &mut ImplItemFn) -> syn::Result<Vec<Route>> {
    let mut routes = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut kept = Vec::with_capacity(method.attrs.len());
    for attr in method.attrs.drain(..) {
        if !attr.path().is_ident("user_event") {
            kept.push(attr);
            continue;
        }
        match parse_route(&attr) {
            Ok(route) => routes.push(route),
            Err(e) => push(&mut errors, e),
        }
    }
    method.attrs = kept;
    match errors {
        Some(errors) => Err(errors),
        None => Ok(routes),
    }
}

const ROUTE_HELP: &str =
    "expected `#[user_event(\"name\")]`, or `#[user_event(fallback)]` for every other event";

fn parse_route(attr: &syn::Attribute) -> syn::Result<Route> {
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

/// Checks an event method's shape. `system` names the system event it
/// handles, `None` for a user event.
fn check(method: &ImplItemFn, system: Option<&str>) -> syn::Result<EventMethod> {
    let sig = &method.sig;
    let mut errors: Option<syn::Error> = None;
    if sig.asyncness.is_none() {
        push(
            &mut errors,
            syn::Error::new_spanned(
                sig.fn_token,
                "event methods must be `async fn`: add `async` before `fn`",
            ),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        push(
            &mut errors,
            syn::Error::new_spanned(
                &sig.generics,
                "event methods cannot be generic: remove the type parameters",
            ),
        );
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
        Some(FnArg::Receiver(r)) => push(
            &mut errors,
            syn::Error::new_spanned(r, "event methods take `&self`: handlers are shared between requests (use a Mutex or atomics inside for state)"),
        ),
        _ => push(
            &mut errors,
            syn::Error::new_spanned(&sig.ident, "event methods take `&self` first: write `async fn name(&self, …)`"),
        ),
    }
    let args: Vec<Type> = inputs
        .filter_map(|arg| match arg {
            FnArg::Typed(t) => Some((*t.ty).clone()),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let arity_error = match (system, args.len()) {
        (Some("connect"), 1) => None,
        (Some("connect"), _) => Some("`connect` takes one argument: `req: ConnectEventRequest`".to_owned()),
        (Some(_), 0 | 1) | (None, 0..=2) => None,
        (Some(name), _) => Some(format!("`{name}` takes at most one argument: the event's request")),
        (None, _) => Some(
            "user event methods take the whole `UserEventRequest`, one payload (`Json<T>`, `String`, …), \
             or `ctx: ConnectionContext` then one payload"
                .to_owned(),
        ),
    };
    if let Some(message) = arity_error {
        push(&mut errors, syn::Error::new_spanned(&sig.inputs, message));
    }
    if let (Some(name), ReturnType::Type(_, ty)) = (system, &sig.output) {
        let unit = matches!(&**ty, Type::Tuple(t) if t.elems.is_empty());
        if name != "connect" && !unit {
            push(
                &mut errors,
                syn::Error::new_spanned(
                    ty,
                    format!("`{name}` returns nothing: the service ignores answers to it; remove `-> …`"),
                ),
            );
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(EventMethod {
            ident: sig.ident.clone(),
            args,
            output: sig.output.clone(),
            cfgs: method
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
                .cloned()
                .collect(),
        }),
    }
}

// --------------------------------------------------------------- expand ---

fn generate(block: &ItemImpl, model: &Model) -> TokenStream2 {
    let self_ty = &block.self_ty;
    let mut generics = block.generics.clone();
    generics
        .make_where_clause()
        .predicates
        .push(parse_quote!(Self: ::core::marker::Send + ::core::marker::Sync + 'static));
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let wps = quote!(::webpubsub);

    let mut methods = Vec::new();
    if let Some(m) = &model.connect {
        let (ident, cfgs) = (&m.ident, &m.cfgs);
        let req = request_arg(
            m.args.first(),
            quote!(#wps::ConnectEventRequest),
            quote!(__req),
        );

        let answer = returned(
            &m.output,
            Answer::Connect,
            quote!(<#self_ty>::#ident(self, #req).await),
        );
        methods.push(quote! {
            #(#cfgs)*
            async fn connect(&self, __req: #wps::ConnectEventRequest)
                -> ::core::result::Result<#wps::ConnectEventResponse, #wps::EventErrorResponse>
            {
                #answer
            }
        });
    }
    for (event, request, method) in [
        ("connected", quote!(ConnectedEventRequest), &model.connected),
        (
            "disconnected",
            quote!(DisconnectedEventRequest),
            &model.disconnected,
        ),
        (
            "group_joined",
            quote!(GroupJoinedEventRequest),
            &model.group_joined,
        ),
        (
            "group_left",
            quote!(GroupLeftEventRequest),
            &model.group_left,
        ),
    ] {
        let Some(m) = method else { continue };
        let name = format_ident!("{}", event);
        let (ident, cfgs) = (&m.ident, &m.cfgs);
        let call = match m.args.first() {
            Some(ty) => {
                let req = request_arg(Some(ty), quote!(#wps::#request), quote!(__req));
                quote!(<#self_ty>::#ident(self, #req).await)
            }
            None => quote!({ let _ = __req; <#self_ty>::#ident(self).await }),
        };
        methods.push(quote! {
            #(#cfgs)*
            async fn #name(&self, __req: #wps::#request) { #call }
        });
    }
    if !model.user_events.is_empty() || model.fallback.is_some() {
        let arms = model.user_events.iter().map(|(name, m)| {
            let (call, cfgs) = (user_call(self_ty, m), &m.cfgs);
            quote!(#(#cfgs)* #name => #call,)
        });
        let none = quote!(::core::result::Result::Ok(#wps::UserEventResponse::none()));
        let otherwise = match &model.fallback {
            Some(m) if m.cfgs.is_empty() => {
                let call = user_call(self_ty, m);
                quote!(_ => #call,)
            }
            Some(m) => {
                let (call, cfgs) = (user_call(self_ty, m), &m.cfgs);
                quote! {
                    #(#cfgs)* _ => #call,
                    #[allow(unreachable_patterns)]
                    _ => #none,
                }
            }
            None => quote!(_ => #none,),
        };
        methods.push(quote! {
            async fn user_event(&self, __req: #wps::UserEventRequest)
                -> ::core::result::Result<#wps::UserEventResponse, #wps::EventErrorResponse>
            {
                match __req.context.event_name.as_str() {
                    #(#arms)*
                    #otherwise
                }
            }
        });
    }
    // async-trait writes a bare `Box`; a user's own `Box` must not capture it.
    quote! {
        const _: () = {
            use ::std::boxed::Box;
            #[::webpubsub::__private::async_trait]
            impl #impl_generics #wps::EventHandler for #self_ty #where_clause {
                #(#methods)*
            }
        };
    }
}

/// `value` passed as the argument of type `ty`, which must be `expected`;
/// a mismatch is reported at `ty` by the main crate's `EventArg` trait.
fn request_arg(ty: Option<&Type>, expected: TokenStream2, value: TokenStream2) -> TokenStream2 {
    match ty {
        Some(ty) => quote_spanned!(ty.span()=>
            <#ty as ::webpubsub::__private::EventArg<#expected>>::from_request(#value)),
        None => value,
    }
}

/// The call of a user-event method, its arguments made from `__req` and its
/// result turned into the answer.
fn user_call(self_ty: &Type, m: &EventMethod) -> TokenStream2 {
    let ident = &m.ident;
    let answer = |value: TokenStream2| returned(&m.output, Answer::UserEvent, value);
    match m.args.as_slice() {
        [] => {
            let answer = answer(quote!(<#self_ty>::#ident(self).await));
            quote!({ let _ = __req; #answer })
        }
        [ty] => {
            let arg = quote_spanned!(ty.span()=>
                <#ty as ::webpubsub::__private::FromUserEvent>::from_user_event(__req)?);
            let answer = answer(quote!(<#self_ty>::#ident(self, __arg).await));
            quote!({ let __arg = #arg; #answer })
        }
        [ctx, payload, ..] => {
            let ctx = request_arg(
                Some(ctx),
                quote!(::webpubsub::ConnectionContext),
                quote!(__req.context),
            );
            let payload = quote_spanned!(payload.span()=>
                <#payload as ::webpubsub::__private::FromEventData>::from_event_data(__req.data)?);
            let answer = answer(quote!(<#self_ty>::#ident(self, #ctx, __payload).await));
            quote!({
                let __payload = #payload;
                #answer
            })
        }
    }
}

/// Which answer a method's result becomes.
#[derive(Clone, Copy)]
enum Answer {
    Connect,
    UserEvent,
}

/// `value` (the method's result) turned into the answer, the conversion
/// spanned at the method's return type so that a wrong type is reported there.
fn returned(output: &ReturnType, answer: Answer, value: TokenStream2) -> TokenStream2 {
    let span = match output {
        ReturnType::Default => Span::call_site(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let convert = match answer {
        Answer::Connect => quote_spanned!(span=>
            ::webpubsub::__private::IntoConnectEventResponse::into_connect_event_response(__ret)),
        Answer::UserEvent => quote_spanned!(span=>
            ::webpubsub::__private::IntoUserEventResponse::into_user_event_response(__ret)),
    };
    let ret = quote_spanned!(span=> __ret);
    quote!({ let #ret = #value; #convert })
}

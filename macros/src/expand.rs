//! Expand: the model written as an `EventHandler` impl whose methods call the
//! user's, through the conversion traits of the main crate. Generated code
//! names everything by absolute path (`::webpubsub::__private::…`), and the
//! trait checks are spanned at the user's types so that a wrong type is
//! reported there.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_quote, ItemImpl, ReturnType, Type};

use crate::model::{Conflict, EventMethod, Model};
use crate::parse::SystemEvent;

/// The `EventHandler` impl for `block`, whose events `model` describes.
pub(crate) fn event_handler(block: &ItemImpl, model: &Model) -> TokenStream {
    let self_ty = &block.self_ty;
    let mut generics = block.generics.clone();
    generics
        .make_where_clause()
        .predicates
        .push(parse_quote!(Self: ::core::marker::Send + ::core::marker::Sync + 'static));
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let wps = quote!(::webpubsub);

    let mut methods = Vec::new();
    for event in SystemEvent::ALL {
        for m in model.system(event) {
            methods.push(match event {
                SystemEvent::Connect => connect(self_ty, m),
                _ => notification(self_ty, event, m),
            });
        }
    }
    if model.has_user_events() {
        methods.push(user_event(self_ty, model));
    }
    let conflicts = model.conflicts().into_iter().map(|c| conflict(&c));
    // async-trait writes a bare `Box`; a user's own `Box` must not capture it.
    quote! {
        const _: () = {
            use ::std::boxed::Box;
            #[::webpubsub::__private::async_trait]
            impl #impl_generics #wps::EventHandler for #self_ty #where_clause {
                #(#methods)*
            }
        };
        #(#conflicts)*
    }
}

/// The conflict's error, compiled only where the `#[cfg]`s of both of its
/// methods hold.
fn conflict(conflict: &Conflict<'_>) -> TokenStream {
    let (first, second) = (&conflict.first.cfgs, &conflict.second.cfgs);
    let error = conflict.error.to_compile_error();
    quote! {
        #(#first)*
        const _: () = {
            #(#second)*
            #error
        };
    }
}

/// The trait's `connect`, calling `m`.
fn connect(self_ty: &Type, m: &EventMethod) -> TokenStream {
    let wps = quote!(::webpubsub);
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
    quote! {
        #(#cfgs)*
        async fn connect(&self, __req: #wps::ConnectEventRequest)
            -> ::core::result::Result<#wps::ConnectEventResponse, #wps::EventErrorResponse>
        {
            #answer
        }
    }
}

/// The trait's method for a notification (`connected`, `disconnected`,
/// `group_joined`, `group_left`), calling `m`.
fn notification(self_ty: &Type, event: SystemEvent, m: &EventMethod) -> TokenStream {
    let wps = quote!(::webpubsub);
    let request = match event {
        SystemEvent::Connect => quote!(ConnectEventRequest),
        SystemEvent::Connected => quote!(ConnectedEventRequest),
        SystemEvent::Disconnected => quote!(DisconnectedEventRequest),
        SystemEvent::GroupJoined => quote!(events::GroupJoinedEventRequest),
        SystemEvent::GroupLeft => quote!(events::GroupLeftEventRequest),
    };
    let name = format_ident!("{}", event.name());
    let (ident, cfgs) = (&m.ident, &m.cfgs);
    let call = match m.args.first() {
        Some(ty) => {
            let req = request_arg(Some(ty), quote!(#wps::#request), quote!(__req));
            quote!(<#self_ty>::#ident(self, #req).await)
        }
        None => quote!({ let _ = __req; <#self_ty>::#ident(self).await }),
    };
    quote! {
        #(#cfgs)*
        async fn #name(&self, __req: #wps::#request) { #call }
    }
}

/// The trait's `user_event`: a `match` on the event name.
fn user_event(self_ty: &Type, model: &Model) -> TokenStream {
    let wps = quote!(::webpubsub);
    // An event with several methods (under different `#[cfg]`s) is a
    // conflict if two are enabled, reported as such: not as an unreachable arm.
    let shared = |name: &syn::LitStr| {
        let count = model
            .user_events
            .iter()
            .filter(|(n, _)| n.value() == name.value());
        count.take(2).count() > 1
    };
    let arms = model.user_events.iter().map(|(name, m)| {
        let (call, cfgs) = (user_call(self_ty, m), &m.cfgs);
        let allow = shared(name).then(|| quote!(#[allow(unreachable_patterns)]));
        quote!(#(#cfgs)* #allow #name => #call,)
    });
    let several_fallbacks = model.fallbacks().take(2).count() > 1;
    let fallbacks = model.fallbacks().map(|m| {
        let (call, cfgs) = (user_call(self_ty, m), &m.cfgs);
        let allow = several_fallbacks.then(|| quote!(#[allow(unreachable_patterns)]));
        quote!(#(#cfgs)* #allow _ => #call,)
    });
    // Without a fallback compiled in every configuration, other events get
    // no answer.
    let none = quote!(::core::result::Result::Ok(#wps::UserEventResponse::none()));
    let otherwise = if model.fallbacks().next().is_none() {
        quote!(_ => #none,)
    } else if model.fallbacks().any(|m| m.cfgs.is_empty()) {
        quote!()
    } else {
        quote! {
            #[allow(unreachable_patterns)]
            _ => #none,
        }
    };
    quote! {
        async fn user_event(&self, __req: #wps::UserEventRequest)
            -> ::core::result::Result<#wps::UserEventResponse, #wps::EventErrorResponse>
        {
            match __req.context.event_name.as_str() {
                #(#arms)*
                #(#fallbacks)*
                #otherwise
            }
        }
    }
}

/// `value` passed as the argument of type `ty`, which must be `expected`;
/// a mismatch is reported at `ty` by the main crate's `EventArg` trait.
fn request_arg(ty: Option<&Type>, expected: TokenStream, value: TokenStream) -> TokenStream {
    match ty {
        Some(ty) => quote_spanned!(ty.span()=>
            <#ty as ::webpubsub::__private::EventArg<#expected>>::from_request(#value)),
        None => value,
    }
}

/// The call of a user-event method, its arguments made from `__req` and its
/// result turned into the answer.
fn user_call(self_ty: &Type, m: &EventMethod) -> TokenStream {
    let ident = &m.ident;
    let answer = |value: TokenStream| returned(&m.output, Answer::UserEvent, value);
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
fn returned(output: &ReturnType, answer: Answer, value: TokenStream) -> TokenStream {
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

//! Check: the attribute and the block's header, and each event method's
//! signature against what its event accepts. A method that passes becomes
//! the model's [`EventMethod`].

use proc_macro2::TokenStream;
use syn::{FnArg, GenericArgument, ItemImpl, PathArguments, ReturnType, Type, TypeReference};

use crate::errors::Errors;
use crate::model::EventMethod;
use crate::parse::{EventFn, Role, SystemEvent};

/// The mistakes in the attribute's arguments and the block's header.
pub(crate) fn header(attr: &TokenStream, block: &ItemImpl) -> Errors {
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.push(syn::Error::new_spanned(
            attr,
            "#[event_handler] takes no arguments: write `#[event_handler]`",
        ));
    }
    if let Some((_, path, _)) = &block.trait_ {
        errors.push(syn::Error::new_spanned(
            path,
            "#[event_handler] goes on an inherent impl block (`impl Chat { … }`), not on a trait impl",
        ));
    }
    errors
}

/// Checks an event method's shape: `async fn`, not generic, `&self` first,
/// the arguments and the return type its event takes.
pub(crate) fn event_fn(method: EventFn) -> syn::Result<(Role, EventMethod)> {
    let EventFn { sig, cfgs, role } = method;
    let system = match &role {
        Role::System(event) => Some(*event),
        Role::User(_) => None,
    };
    let mut errors = Errors::default();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            "event methods must be `async fn`: add `async` before `fn`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "event methods cannot be generic: remove the type parameters",
        ));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
        Some(FnArg::Receiver(r)) => errors.push(
            syn::Error::new_spanned(r, "event methods take `&self`: handlers are shared between requests (use a Mutex or atomics inside for state)"),
        ),
        _ => errors.push(
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
        (Some(SystemEvent::Connect), 1) => None,
        (Some(SystemEvent::Connect), _) => Some("`connect` takes one argument: `req: ConnectEventRequest`".to_owned()),
        (Some(_), 0 | 1) | (None, 0..=2) => None,
        (Some(event), _) => Some(format!("`{}` takes at most one argument: the event's request", event.name())),
        (None, _) => Some(
            "user event methods take the whole `UserEventRequest`, one payload (`Json<T>`, `String`, …), \
             or `ctx: ConnectionContext` then one payload"
                .to_owned(),
        ),
    };
    if let Some(message) = arity_error {
        errors.push(syn::Error::new_spanned(&sig.inputs, message));
    }
    if let (Some(event), ReturnType::Type(_, ty)) = (system, &sig.output) {
        let unit = matches!(&**ty, Type::Tuple(t) if t.elems.is_empty());
        if event != SystemEvent::Connect && !unit {
            errors.push(syn::Error::new_spanned(
                ty,
                format!(
                    "`{}` returns nothing: the service ignores answers to it; remove `-> …`",
                    event.name()
                ),
            ));
        }
    }
    if let (None | Some(SystemEvent::Connect), ReturnType::Type(_, ty)) = (system, &sig.output) {
        for borrowed in borrowed_references(ty) {
            errors.push(borrowed_reply(borrowed));
        }
    }
    let method = EventMethod {
        ident: sig.ident,
        args,
        output: sig.output,
        cfgs,
    };
    errors.finish((role, method))
}

/// The references in `ty` whose lifetime is elided or not `'static`, as in
/// `&str`, `Option<&str>` or `Result<&'a [u8], E>`: a reply borrowed from
/// `self` or the request, which the answer cannot keep.
fn borrowed_references(ty: &Type) -> Vec<&TypeReference> {
    let mut found = Vec::new();
    collect_borrowed(ty, &mut found);
    found
}

fn collect_borrowed<'a>(ty: &'a Type, found: &mut Vec<&'a TypeReference>) {
    match ty {
        Type::Reference(r) => {
            if r.lifetime.as_ref().is_some_and(|l| l.ident == "static") {
                collect_borrowed(&r.elem, found);
            } else {
                found.push(r);
            }
        }
        Type::Path(path) => {
            let args = path
                .path
                .segments
                .iter()
                .filter_map(|s| match &s.arguments {
                    PathArguments::AngleBracketed(args) => Some(&args.args),
                    _ => None,
                });
            for arg in args.flatten() {
                if let GenericArgument::Type(ty) = arg {
                    collect_borrowed(ty, found);
                }
            }
        }
        Type::Tuple(tuple) => tuple.elems.iter().for_each(|t| collect_borrowed(t, found)),
        Type::Array(array) => collect_borrowed(&array.elem, found),
        Type::Slice(slice) => collect_borrowed(&slice.elem, found),
        Type::Paren(paren) => collect_borrowed(&paren.elem, found),
        Type::Group(group) => collect_borrowed(&group.elem, found),
        _ => {}
    }
}

/// The error at a borrowed reply type, saying what to return instead.
fn borrowed_reply(r: &TypeReference) -> syn::Error {
    let is_str = matches!(&*r.elem, Type::Path(p) if p.qself.is_none() && p.path.is_ident("str"));
    let instead = if is_str {
        "return `String` or `&'static str`"
    } else {
        "return an owned value (e.g. with `.clone()`)"
    };
    syn::Error::new_spanned(
        r,
        format!(
            "{instead}: a reply cannot borrow from `self` or the request, \
             because it is turned into an owned answer"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;
    use syn::parse_quote;

    #[test]
    fn references_with_an_elided_or_non_static_lifetime_are_borrowed_replies() {
        let borrowed: [Type; 6] = [
            parse_quote!(&str),
            parse_quote!(&'_ str),
            parse_quote!(&'a [u8]),
            parse_quote!(Option<&str>),
            parse_quote!(Result<Option<&str>, EventErrorResponse>),
            parse_quote!((u8, &'static &str)),
        ];
        for ty in &borrowed {
            assert_eq!(borrowed_references(ty).len(), 1, "{}", ty.to_token_stream());
        }
    }

    #[test]
    fn owned_and_static_replies_are_not_borrowed() {
        let owned: [Type; 5] = [
            parse_quote!(String),
            parse_quote!(&'static str),
            parse_quote!(Option<&'static str>),
            parse_quote!(Result<Json<Vec<u8>>, EventErrorResponse>),
            parse_quote!(()),
        ];
        for ty in &owned {
            assert!(
                borrowed_references(ty).is_empty(),
                "{}",
                ty.to_token_stream()
            );
        }
    }
}

//! Procedural macros for [`webpubsub`](https://docs.rs/webpubsub): the
//! `#[event_handler]` attribute. Use it through `webpubsub::event_handler`;
//! its documentation lives there.
//!
//! The macro is thin on purpose: it reads an inherent `impl` block and
//! writes an `EventHandler` impl that calls its event methods through the
//! conversion traits of the main crate (`FromUserEvent`, `FromEventData`,
//! `IntoUserEventResponse`, `IntoConnectEventResponse`). One step per module:
//!
//! - `parse`: the block, and each event method's routes or system event;
//! - `check`: the attribute, the block's header and each method's signature;
//! - `model`: which method answers which event, one method per event;
//! - `expand`: the `EventHandler` impl;
//! - `errors`: every mistake reported at once, the user's block kept.

mod check;
mod errors;
mod expand;
mod model;
mod parse;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, ToTokens};

/// Derives `webpubsub::EventHandler` from an inherent `impl` block; see
/// `webpubsub::event_handler` for the full documentation.
#[proc_macro_attribute]
pub fn event_handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    event_handler2(&attr.into(), item.into()).into()
}

/// Parse → check → model → expand, on `proc_macro2`. On error: the user's
/// block without our helper attributes, then the errors.
fn event_handler2(attr: &TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut block = match parse::impl_block(item.clone()) {
        Ok(block) => block,
        Err(err) => return errors::with_error(item, &err),
    };
    // Always take our helper attributes out, so that on error the user's
    // block still compiles and the IDE keeps working.
    let methods = parse::event_fns(&mut block);
    let header = check::header(attr, &block);
    let model = model::Model::build(
        methods
            .into_iter()
            .map(|method| method.and_then(check::event_fn)),
    );
    match header.and(model) {
        Ok(model) => {
            let handler = expand::event_handler(&block, &model);
            quote! { #block #handler }
        }
        Err(err) => errors::with_error(block.into_token_stream(), &err),
    }
}

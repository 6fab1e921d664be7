//! Errors: collected across the whole block, so that one expansion reports
//! every mistake, each at its own tokens.

use proc_macro2::TokenStream;
use quote::quote;

/// Every error found so far, combined into one [`syn::Error`].
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds `err` after the errors found so far.
    pub(crate) fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(err),
            None => self.0 = Some(err),
        }
    }

    /// `result` when no error was found before it; otherwise every error,
    /// those of `result` last.
    pub(crate) fn and<T>(self, result: syn::Result<T>) -> syn::Result<T> {
        match (self.0, result) {
            (None, result) => result,
            (Some(errors), Ok(_)) => Err(errors),
            (Some(mut errors), Err(err)) => {
                errors.combine(err);
                Err(errors)
            }
        }
    }

    /// `value` when no error was found, otherwise every error.
    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        self.and(Ok(value))
    }
}

/// `tokens` unchanged, followed by the `compile_error!`s of `err`: the
/// user's code keeps compiling, so the IDE keeps working.
pub(crate) fn with_error(tokens: TokenStream, err: &syn::Error) -> TokenStream {
    let err = err.to_compile_error();
    quote! { #tokens #err }
}

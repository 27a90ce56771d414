//! What to emit when the input is invalid: the errors, and the function untouched, so the user
//! sees one error instead of a cascade of "cannot find function" errors.

use proc_macro2::TokenStream;
use quote::quote;

pub(crate) fn emit(error: syn::Error, item: TokenStream) -> TokenStream {
    let error = error.to_compile_error();
    quote! {
        #error
        #item
    }
}

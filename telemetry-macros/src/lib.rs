//! Attribute macros for `telemetry-core`. Use them through `telemetry-core`, which re-exports
//! them and documents them: `use telemetry_core::{count_usage, timed};`.
//!
//! Pipeline (as in thiserror): [`attr`] parses the arguments, [`valid`] checks the rules,
//! [`expand`] generates code, [`fallback`] emits the untouched function next to the errors.

mod attr;
mod expand;
mod fallback;
mod valid;

use proc_macro::TokenStream;

/// Counts every call of the function. Documented in `telemetry_core::count_usage`.
#[proc_macro_attribute]
pub fn count_usage(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::instrument(attr::Macro::CountUsage, args.into(), item.into()).into()
}

/// Times every call of the function. Documented in `telemetry_core::timed`.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::instrument(attr::Macro::Timed, args.into(), item.into()).into()
}

//! Attribute macros for `telemetry-core`. Use them through `telemetry-core`, which re-exports
//! them and documents them: `use telemetry_core::{count_usage, timed};`.
//!
//! One front end for both attributes and every argument (as in thiserror): `ast` reads the
//! function from its tokens (the body is never walked; the signature is parsed only when a
//! rule needs it), `attr` parses the arguments, `valid` and `rules` check them (the naming
//! rules are `telemetry-rules`', shared with `telemetry-core`), `expand` writes the code
//! (`errors` for `#[count_usage(errors)]`, `site` for the call site's `static`), and
//! `fallback` emits the untouched function next to the errors.
//! The plain API's `counter!`, `gauge!` and `histogram!` are in `metric`.
//! The derives: `derive_label` (`LabelValue`) and `derive_telemetry` (`Telemetry`, the PII
//! guard, with the name list in `pii_names`).

mod ast;
mod attr;
mod crate_path;
mod derive_label;
mod derive_telemetry;
mod errors;
mod expand;
mod fallback;
mod label_types;
mod metric;
mod pii_names;
mod refused_labels;
mod rules;
mod site;
mod type_text;
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

/// Declares a counter of the plain API. Documented in `telemetry_core::counter`.
#[proc_macro]
pub fn counter(input: TokenStream) -> TokenStream {
    metric::expand(metric::Kind::Counter, input.into()).into()
}

/// Declares a gauge of the plain API. Documented in `telemetry_core::gauge`.
#[proc_macro]
pub fn gauge(input: TokenStream) -> TokenStream {
    metric::expand(metric::Kind::Gauge, input.into()).into()
}

/// Declares a histogram of the plain API. Documented in `telemetry_core::histogram`.
#[proc_macro]
pub fn histogram(input: TokenStream) -> TokenStream {
    metric::expand(metric::Kind::Histogram, input.into()).into()
}

/// Makes an enum without fields a label value. Documented in `telemetry_core::LabelValue`.
#[proc_macro_derive(LabelValue, attributes(label))]
pub fn derive_label_value(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    crate_path::derived(&input, "label", |i| derive_label::derive(i.clone())).into()
}

/// The PII guard for report sections. Documented in `telemetry_core::Telemetry`.
#[proc_macro_derive(Telemetry, attributes(telemetry, pii))]
pub fn derive_telemetry(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    crate_path::derived(&input, "telemetry", |i| derive_telemetry::derive(i.clone())).into()
}

/// Names an error enum's kinds for `#[count_usage(errors)]`. Documented in
/// `telemetry_core::ErrorKind`.
#[proc_macro_derive(ErrorKind, attributes(error_kind))]
pub fn derive_error_kind(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    crate_path::derived(&input, "error_kind", |i| {
        derive_label::derive_error_kind(i.clone())
    })
    .into()
}

/// The PII name list as documentation text, so `telemetry_core`'s docs show the list the
/// derive uses instead of a copy. Not a stable API.
#[doc(hidden)]
#[proc_macro]
pub fn __pii_names_doc(_: TokenStream) -> TokenStream {
    let text = pii_names::doc_text();
    quote::quote!(#text).into()
}

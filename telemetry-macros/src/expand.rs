//! Code generation: one `static` call site per use, and one statement at the top of the body.

use crate::ast::{Function, doc_summary};
use crate::attr::{self, Args, Macro};
use crate::{fallback, valid};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::LitStr;
use syn::spanned::Spanned;

pub(crate) fn instrument(which: Macro, args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = attr::parse(which, args);
    let function = match valid::function(which, item.clone()) {
        Ok(function) => function,
        Err(error) => {
            let error = match parsed {
                Err(mut e) => {
                    e.combine(error);
                    e
                }
                Ok(_) => error,
            };
            return fallback::emit(error, item);
        }
    };
    let args = match parsed {
        Ok(args) => args,
        Err(error) => return fallback::emit(error, item),
    };
    if let Err(error) = valid::check(which, &function, &args) {
        return fallback::emit(error, item);
    }
    expand(which, function, &args)
}

fn expand(which: Macro, function: Function, args: &Args) -> TokenStream {
    let name = match &args.name {
        Some(name) => quote!(#name),
        None => {
            let ident = function.sig.ident.to_string();
            let ident = ident.strip_prefix("r#").unwrap_or(&ident);
            let tail = format!("::{ident}{}", which.suffix());
            quote!(::core::concat!(::core::module_path!(), #tail))
        }
    };
    let description = args
        .description
        .clone()
        .unwrap_or_else(|| LitStr::new(&doc_summary(&function.attrs), attr::call_site()));
    let label_names: Vec<String> = args.labels.iter().map(|(k, _)| k.to_string()).collect();
    // Each value goes through a function whose bound names `LabelValue`, spanned at the
    // user's expression, so a `String` label is reported there with the trait's message.
    let label_values = args.labels.iter().map(|(_, value)| {
        quote_spanned!(value.span()=> ::telemetry_core::__private::label_value(&(#value)))
    });
    let label_tuple = quote!((#(#label_values,)*));
    let max_series = match &args.max_series {
        Some(n) => quote!(#n),
        None => quote!(::telemetry_core::__private::DEFAULT_MAX_SERIES),
    };
    let labeled = !args.labels.is_empty();
    let (kind, unit, prelude) = match (which, labeled) {
        (Macro::CountUsage, false) => (
            quote!(Counter),
            quote!(None),
            quote!(__TELEMETRY_SITE.increment()),
        ),
        (Macro::CountUsage, true) => (
            quote!(Counter),
            quote!(None),
            quote!(__TELEMETRY_SITE.increment_labeled(#label_tuple)),
        ),
        // A synchronous call starts and ends on one thread: its timer finds the thread's
        // cells before the clock starts. An `async fn` may resume elsewhere: its timer is `Send`.
        (Macro::Timed, false) if function.sig.asyncness.is_none() => (
            quote!(Histogram),
            quote!(Nanoseconds),
            quote!(__TELEMETRY_SITE.start_local_timer()),
        ),
        (Macro::Timed, false) => (
            quote!(Histogram),
            quote!(Nanoseconds),
            quote!(__TELEMETRY_SITE.start_timer()),
        ),
        (Macro::Timed, true) => (
            quote!(Histogram),
            quote!(Nanoseconds),
            quote!(__TELEMETRY_SITE.start_timer_labeled(#label_tuple)),
        ),
    };
    let local = match which {
        Macro::CountUsage => quote!(_),
        Macro::Timed => quote!(__telemetry_timer),
    };
    let statement = quote! {
        #[allow(unused_qualifications)]
        let #local = {
            #[::telemetry_core::__private::linkme::distributed_slice(::telemetry_core::__private::CALL_SITES)]
            #[linkme(crate = ::telemetry_core::__private::linkme)]
            static __TELEMETRY_SITE: ::telemetry_core::__private::CallSite =
                ::telemetry_core::__private::CallSite::new(
                    ::telemetry_core::__private::MetricKind::#kind,
                    #name,
                    #description,
                    ::telemetry_core::__private::Unit::#unit,
                    &[#(#label_names),*],
                    #max_series,
                    ::core::module_path!(),
                    ::core::file!(),
                    ::core::line!(),
                );
            #prelude
        };
    };
    let body = if args.errors.is_some() {
        wrap_errors(&function, args, &description)
    } else {
        function.body.clone()
    };
    function.with_body(statement, body)
}

/// `#[count_usage(errors)]`: runs the original body as a closure (or an `async` block) to see
/// its result, counts an `Err` by kind in `{name}.errors`, and returns the result unchanged.
fn wrap_errors(function: &Function, args: &Args, description: &LitStr) -> TokenStream {
    let name = match &args.name {
        Some(name) => {
            let errors = format!("{}.errors", name.value());
            quote!(#errors)
        }
        None => {
            let ident = function.sig.ident.to_string();
            let tail = format!("::{}.errors", ident.strip_prefix("r#").unwrap_or(&ident));
            quote!(::core::concat!(::core::module_path!(), #tail))
        }
    };
    let description = format!("Errors by kind: {}", description.value());
    let Some(ret) = crate::valid::result_type(function).cloned() else {
        return function.body.clone();
    };
    let block = function.body_block();
    let run = if function.sig.asyncness.is_some() {
        quote!(::telemetry_core::__private::typed_future::<#ret, _>(async move #block).await)
    } else {
        quote!((move || -> #ret #block)())
    };
    quote! {
        #[allow(unused_qualifications)]
        let __telemetry_result = #run;
        {
            #[::telemetry_core::__private::linkme::distributed_slice(::telemetry_core::__private::CALL_SITES)]
            #[linkme(crate = ::telemetry_core::__private::linkme)]
            static __TELEMETRY_ERRORS: ::telemetry_core::__private::CallSite =
                ::telemetry_core::__private::CallSite::new(
                    ::telemetry_core::__private::MetricKind::Counter,
                    #name,
                    #description,
                    ::telemetry_core::__private::Unit::None,
                    &["kind"],
                    ::telemetry_core::__private::DEFAULT_MAX_SERIES,
                    ::core::module_path!(),
                    ::core::file!(),
                    ::core::line!(),
                );
            __TELEMETRY_ERRORS.observe_result(&__telemetry_result);
        }
        __telemetry_result
    }
}

//! Code generation: one `static` call site per use, and one statement at the top of the body.

use crate::ast::{Function, doc_summary};
use crate::attr::{self, Args, Macro};
use crate::label_types::{self, LabelKind};
use crate::site::{Site, SiteName};
use crate::{fallback, valid};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::LitStr;
use syn::spanned::Spanned;

pub(crate) fn instrument(which: Macro, args: TokenStream, item: TokenStream) -> TokenStream {
    let item = crate::ast::with_visible_body(item);
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
    let expanded = expand(which, function, &args);
    match &args.krate {
        Some(root) => crate::crate_path::rebase(expanded, root),
        None => expanded,
    }
}

fn expand(which: Macro, function: Function, args: &Args) -> TokenStream {
    let ident = function.sig.ident.to_string();
    let ident = ident.strip_prefix("r#").unwrap_or(&ident);
    let given = args.name.as_ref().map(LitStr::value);
    let description = match &args.description {
        Some(description) => description.value(),
        None => doc_summary(&function.attrs),
    };
    let label_names: Vec<String> = args.labels.iter().map(|l| l.name.to_string()).collect();
    // `valid::check` has reported any label whose type cannot be seen.
    let kinds: Vec<LabelKind> = args
        .labels
        .iter()
        .filter_map(|l| label_types::kind(l, &function.sig).ok())
        .collect();
    let domains: Vec<String> = kinds.iter().map(LabelKind::domain).collect();
    let max_series = args
        .max_series
        .as_ref()
        .and_then(|n| n.base10_parse::<usize>().ok())
        .map(|n| n.to_string());
    let site = Site {
        which,
        ident: "__TELEMETRY_SITE",
        name: match &given {
            Some(name) => SiteName::Given(name),
            None => SiteName::Derived {
                function: ident,
                suffix: which.suffix(),
            },
        },
        description: &description,
        labels: &label_names,
        domains: &domains,
        max_series: max_series.as_deref(),
    };
    let site = parse(&site.static_item());
    // Each value goes through a function whose bound names `LabelValue`, spanned at the
    // user's expression, so a `String` label is reported there with the trait's message.
    // Each value is checked against the type the call site lists, spanned at the user's
    // expression, so a `String` label is reported there with the trait's message.
    let label_values = args.labels.iter().zip(&kinds).map(|(label, kind)| {
        let value = kind.value(&label.value);
        quote_spanned!(label.value.span()=> #value)
    });
    let label_tuple = quote!((#(#label_values,)*));
    let labeled = !args.labels.is_empty();
    let prelude = match (which, labeled) {
        (Macro::CountUsage, false) => quote!(__TELEMETRY_SITE.increment()),
        (Macro::CountUsage, true) => quote!(__TELEMETRY_SITE.increment_labeled(#label_tuple)),
        // A synchronous call starts and ends on one thread: its timer finds the thread's
        // cells before the clock starts. An `async fn` may resume elsewhere: its timer is `Send`.
        (Macro::Timed, false)
            if function.sig.asyncness.is_none() && !returns_impl_future(&function) =>
        {
            quote!(__TELEMETRY_SITE.start_local_timer())
        }
        (Macro::Timed, false) => quote!(__TELEMETRY_SITE.start_timer()),
        (Macro::Timed, true) => quote!(__TELEMETRY_SITE.start_timer_labeled(#label_tuple)),
    };
    let local = match which {
        Macro::CountUsage => quote!(_),
        Macro::Timed => quote!(__telemetry_timer),
    };
    let statement = quote! {
        #[allow(unused_qualifications)]
        let #local = {
            #site
            #prelude
        };
    };
    let body = if args.errors.is_some() {
        wrap_errors(&function, ident, given.as_deref(), &description)
    } else if which == Macro::Timed && returns_impl_future(&function) {
        // Timed to the future's completion, not only while it is built.
        let block = function.body_block();
        quote! {
            #[allow(unused_braces)]
            let __telemetry_future = #block;
            ::telemetry_core::__private::TimedFuture::new(__telemetry_timer, __telemetry_future)
        }
    } else {
        function.body.clone()
    };
    function.with_body(statement, body)
}

/// Whether the function returns `impl Future<..>` (written so): `#[timed]` then times the
/// future it returns.
pub(crate) fn returns_impl_future(function: &Function) -> bool {
    let syn::ReturnType::Type(_, ty) = &function.sig.output else {
        return false;
    };
    let syn::Type::ImplTrait(bounds) = &**ty else {
        return false;
    };
    bounds.bounds.iter().any(|bound| {
        matches!(bound, syn::TypeParamBound::Trait(t)
            if t.path.segments.last().is_some_and(|s| s.ident == "Future"))
    })
}

/// Source text generated by this crate as tokens; it always parses.
fn parse(text: &str) -> TokenStream {
    text.parse()
        .unwrap_or_else(|e| syn::Error::new(attr::call_site(), e).to_compile_error())
}

/// `#[count_usage(errors)]`: the body's value (every way out of it, see [`crate::errors`]) is
/// the result; an `Err` is counted by kind in `{name}.errors`, and the result is returned
/// unchanged.
fn wrap_errors(
    function: &Function,
    ident: &str,
    given: Option<&str>,
    description: &str,
) -> TokenStream {
    let Some(ret) = crate::valid::result_type(function).cloned() else {
        return function.body.clone();
    };
    let Some(block) = crate::errors::result_block(&function.body, function.body_span) else {
        return function.body.clone();
    };
    let errors_name = given.map(|name| format!("{name}.errors"));
    let description = format!("Errors by kind: {description}");
    let site = Site {
        which: Macro::CountUsage,
        ident: "__TELEMETRY_ERRORS",
        name: match &errors_name {
            Some(name) => SiteName::Given(name),
            None => SiteName::Derived {
                function: ident,
                suffix: ".errors",
            },
        },
        description: &description,
        labels: &["kind".to_owned()],
        domains: &["__TELEMETRY_ERROR_KINDS.domain()".to_owned()],
        max_series: None,
    };
    // `valid::check` has refused an error type the `static` cannot name.
    let error = label_types::error_type(&ret, &function.sig).unwrap_or_default();
    let site = parse(&format!(
        "static __TELEMETRY_ERROR_KINDS: ::telemetry_core::__private::ErrorKinds<{error}> = \
            ::telemetry_core::__private::ErrorKinds::new(); {}",
        site.static_item()
    ));
    let ty = crate::errors::let_type(&ret);
    quote! {
        let __telemetry_result: #ty = #block;
        {
            #[allow(unused_qualifications)]
            #site
            __TELEMETRY_ERROR_KINDS.observe(&__TELEMETRY_ERRORS, &__telemetry_result);
        }
        __telemetry_result
    }
}

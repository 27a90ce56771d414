//! Code generation: one `static` call site per use, and one statement at the top of the body.

use crate::ast::Function;
use crate::attr::{self, Args, Macro};
use crate::label_types::{self, LabelKind};
use crate::site::{Site, SiteName, tokens};
use crate::{fallback, valid};
use proc_macro2::{Delimiter, Group, Punct, Spacing, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::LitStr;
use syn::spanned::Spanned;

/// The one front end of `#[count_usage]` and `#[timed]`: reads the function from its tokens
/// and the arguments, checks the rules, and writes the instrumented function, or the errors
/// next to the function untouched.
pub(crate) fn instrument(which: Macro, args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = attr::parse(which, args);
    let Some(function) = Function::read(item.clone()) else {
        let mut error = valid::not_a_function(which, &item);
        if let Err(args_error) = parsed {
            error.combine(args_error);
        }
        return fallback::emit(error, item);
    };
    let args = match parsed {
        Ok(args) => args,
        Err(error) => return fallback::emit(error, item),
    };
    if let Err(error) = valid::check(which, &function, &args) {
        return fallback::emit(error, item);
    }
    let expanded = expand(which, &function, &args);
    match &args.krate {
        Some(root) => crate::crate_path::rebase(expanded, root),
        None => expanded,
    }
}

fn expand(which: Macro, function: &Function, args: &Args) -> TokenStream {
    let ident = function.ident.as_str();
    let given = args.name.as_ref().map(LitStr::value);
    let description = match &args.description {
        Some(description) => description.value(),
        None => function.doc_summary(),
    };
    let label_names: Vec<String> = args.labels.iter().map(|l| l.name.to_string()).collect();
    // `valid::check` has reported any label whose type cannot be seen.
    let signature = (!args.labels.is_empty())
        .then(|| function.signature())
        .flatten();
    let kinds: Vec<LabelKind> = match signature {
        Some(signature) => args
            .labels
            .iter()
            .filter_map(|l| label_types::kind(l, signature).ok())
            .collect(),
        None => Vec::new(),
    };
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
        sample: args.sample,
    };
    // The statement is written as text and parsed once: each token built through `quote!`
    // is a call across the compiler's proc-macro bridge, which is most of an unoptimized
    // macro's time. Only label values, which keep the user's spans, are tokens.
    let local = match which {
        Macro::CountUsage => "_",
        Macro::Timed => "__telemetry_timer",
    };
    let sampled = if args.sample.is_some() {
        "sampled_"
    } else {
        ""
    };
    let method = match (which, args.labels.is_empty()) {
        (Macro::CountUsage, true) => "increment".to_owned(),
        (Macro::CountUsage, false) => "increment_labeled".to_owned(),
        // A synchronous call starts and ends on one thread: its timer finds the thread's
        // cells before the clock starts. An `async fn` may resume elsewhere: its timer is `Send`.
        (Macro::Timed, true) if !function.is_async && !returns_impl_future(function) => {
            format!("start_{sampled}local_timer")
        }
        (Macro::Timed, true) => format!("start_{sampled}timer"),
        (Macro::Timed, false) => format!("start_{sampled}timer_labeled"),
    };
    // `sample = N` is the first argument of the sampled starts.
    let sample = args.sample.map(|n| format!("{n}u32")).unwrap_or_default();
    let site = site.static_item();
    let statement = if args.labels.is_empty() {
        tokens(&format!(
            "#[allow(unused_qualifications)] let {local} = {{ {site} __TELEMETRY_SITE.{method}({sample}) }};"
        ))
    } else {
        // Each value is checked against the type the call site lists, spanned at the user's
        // expression, so a wrong type is reported there.
        let label_values = args.labels.iter().zip(&kinds).map(|(label, kind)| {
            let value = kind.value(&label.value);
            quote_spanned!(label.value.span()=> #value)
        });
        let mut call = tokens(&format!("{site} __TELEMETRY_SITE.{method}"));
        let sample = args.sample.map(|n| quote!(#n,));
        call.extend([TokenTree::Group(Group::new(
            Delimiter::Parenthesis,
            quote!(#sample (#(#label_values,)*)),
        ))]);
        let mut statement = tokens(&format!("#[allow(unused_qualifications)] let {local} ="));
        statement.extend([
            TokenTree::Group(Group::new(Delimiter::Brace, call)),
            TokenTree::Punct(Punct::new(';', Spacing::Alone)),
        ]);
        statement
    };
    let body = if args.errors.is_some() {
        wrap_errors(function, ident, given.as_deref(), &description)
    } else if which == Macro::Timed && returns_impl_future(function) {
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
    if !function.mentions_future() {
        return false;
    }
    let Some(syn::ReturnType::Type(_, ty)) = function.signature().map(|sig| &sig.output) else {
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

/// `#[count_usage(errors)]`: the body's value (every way out of it, see [`crate::errors`]) is
/// the result; an `Err` is counted by kind in `{name}.errors`, and the result is returned
/// unchanged.
fn wrap_errors(
    function: &Function,
    ident: &str,
    given: Option<&str>,
    description: &str,
) -> TokenStream {
    let Some(signature) = function.signature() else {
        return function.body.clone();
    };
    let Some(ret) = crate::valid::result_type(signature).cloned() else {
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
        sample: None,
    };
    // `valid::check` has refused an error type the `static` cannot name.
    let error = label_types::error_type(&ret, signature).unwrap_or_default();
    let site = tokens(&format!(
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

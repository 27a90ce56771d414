//! The rules: what the attributes may be put on, and what a metric name may be.

use crate::ast::Function;
use crate::attr::{Args, Macro};
use proc_macro2::TokenStream;

/// The error for an item that is not a function with a body: what it is, and where the
/// attribute goes.
pub(crate) fn not_a_function(which: Macro, item: &TokenStream) -> syn::Error {
    let found = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Struct(_)) => "a struct",
        Ok(syn::Item::Enum(_)) => "an enum",
        Ok(syn::Item::Impl(_)) => "an impl block",
        Ok(syn::Item::Trait(_)) => "a trait",
        Ok(syn::Item::Mod(_)) => "a module",
        Ok(syn::Item::Const(_)) => "a const",
        Ok(syn::Item::Static(_)) => "a static",
        Ok(syn::Item::Type(_)) => "a type alias",
        Ok(syn::Item::Use(_)) => "a use declaration",
        _ if syn::parse2::<syn::TraitItemFn>(item.clone()).is_ok() => {
            "a function without a body (put the attribute on the implementations)"
        }
        _ => "something that is not a function",
    };
    syn::Error::new_spanned(
        item,
        format!(
            "{} can only be applied to a function with a body; found {found}: put it on the `fn`s you want instrumented",
            which.attr()
        ),
    )
}

/// Checks the function and the arguments, collecting every error.
pub(crate) fn check(which: Macro, function: &Function, args: &Args) -> Result<(), syn::Error> {
    let mut errors: Vec<syn::Error> = Vec::new();
    if let Some(constness) = function.constness {
        errors.push(syn::Error::new(
            constness,
            format!(
                "{} cannot be used on a `const fn`: recording a call needs run-time state that \
                 const evaluation cannot touch; remove `const` or the attribute",
                which.attr()
            ),
        ));
    }
    if let Some(name) = &args.name {
        errors.extend(crate::rules::metric_name(name, "store.insert"));
        if let Some((other, sibling)) = crate::attr::sibling_name(which, function)
            && sibling.value() == name.value()
        {
            let span = name.span();
            let name = name.value();
            errors.push(syn::Error::new(
                span,
                format!(
                    "{} and {} on one function need different names: a counter and a \
                         histogram cannot share `{name}`; e.g. name = \"{name}.calls\" and \
                         name = \"{name}.duration\"",
                    which.attr(),
                    other.attr(),
                ),
            ));
        }
    }
    errors.extend(crate::rules::label_names(
        args.labels.iter().map(|l| &l.name),
    ));
    // Parsed only when a rule needs it; one `syn` cannot read is left to the compiler to
    // report, and the rules that read it are skipped (the other errors are still reported).
    let needs_signature = !args.labels.is_empty() || args.errors.is_some();
    let signature = needs_signature.then(|| function.signature()).flatten();
    for label in &args.labels {
        if let Some(signature) = signature
            && let Err(error) = crate::label_types::kind(label, signature)
        {
            errors.push(error);
        }
    }
    if args.max_series.is_some() && args.labels.is_empty() {
        errors.push(syn::Error::new_spanned(
            args.max_series.as_ref(),
            "`max_series` caps the series of a labeled metric: add `labels(...)` or remove it",
        ));
    }
    let result = signature.and_then(result_type);
    if let (Some(span), Some(ret), Some(signature)) = (args.errors, result, signature)
        && crate::label_types::error_type(ret, signature).is_none()
    {
        errors.push(syn::Error::new(
            span,
            "`errors` lists the error type's kinds in the manifest before the program runs: \
             the error type must be concrete, not a generic parameter of the function",
        ));
    }
    if let (Some(span), Some(_)) = (args.errors, signature)
        && result.is_none()
    {
        errors.push(syn::Error::new(
            span,
            "`errors` counts the `Err` outcomes of a function returning `Result<T, E>` (written \
             as `Result<..>`), with `E: telemetry_core::ErrorKind`; this function returns something else",
        ));
    }
    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            for e in errors {
                first.combine(e);
            }
            Err(first)
        }
    }
}

/// The function's return type if it is written as `Result<..>` (any path ending in `Result`).
pub(crate) fn result_type(signature: &syn::Signature) -> Option<&syn::Type> {
    let syn::ReturnType::Type(_, ty) = &signature.output else {
        return None;
    };
    let syn::Type::Path(path) = &**ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    (last.ident == "Result" && matches!(last.arguments, syn::PathArguments::AngleBracketed(_)))
        .then_some(&**ty)
}

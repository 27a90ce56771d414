//! The rules: what the attributes may be put on, and what a metric name may be.

use crate::ast::Function;
use crate::attr::{Args, Macro, sibling_name};
use proc_macro2::TokenStream;

/// Parses the item as a function with a body, or explains what the attribute applies to.
pub(crate) fn function(which: Macro, item: TokenStream) -> Result<Function, syn::Error> {
    if let Ok(function) = syn::parse2::<Function>(item.clone()) {
        return Ok(function);
    }
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
    Err(syn::Error::new_spanned(
        item,
        format!(
            "{} can only be applied to a function with a body; found {found}: put it on the `fn`s you want instrumented",
            which.attr()
        ),
    ))
}

/// Checks the function and the arguments, collecting every error.
pub(crate) fn check(which: Macro, function: &Function, args: &Args) -> Result<(), syn::Error> {
    let mut errors: Vec<syn::Error> = Vec::new();
    if let Some(constness) = &function.sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            format!(
                "{} cannot be used on a `const fn`: recording a call needs run-time state that \
                 const evaluation cannot touch; remove `const` or the attribute",
                which.attr()
            ),
        ));
    }
    if let Some(name) = &args.name {
        if let Err(reason) = metric_name(&name.value()) {
            errors.push(syn::Error::new(
                name.span(),
                format!(
                    "invalid metric name `{}`: {reason}; write segments of ASCII letters, digits \
                     and `_` (not starting with a digit) joined by `.` or `::`, e.g. \"store.insert\"",
                    name.value()
                ),
            ));
        }
        if let Some((other, sibling)) = sibling_name(which, &function.attrs)
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
    if args.labels.len() > 8 {
        errors.push(syn::Error::new_spanned(
            &args.labels[8].name,
            "at most 8 labels: every label multiplies the number of series",
        ));
    }
    for label in &args.labels {
        let text = label.name.to_string();
        if !text.is_ascii() || text.starts_with("r#") {
            errors.push(syn::Error::new_spanned(
                &label.name,
                "a label name is ASCII letters, digits and `_`",
            ));
        }
        if let Err(error) = crate::label_types::kind(label, &function.sig) {
            errors.push(error);
        }
    }
    if args.max_series.is_some() && args.labels.is_empty() {
        errors.push(syn::Error::new_spanned(
            args.max_series.as_ref(),
            "`max_series` caps the series of a labeled metric: add `labels(...)` or remove it",
        ));
    }
    if let (Some(span), Some(ret)) = (args.errors, result_type(function))
        && crate::label_types::error_type(ret, &function.sig).is_none()
    {
        errors.push(syn::Error::new(
            span,
            "`errors` lists the error type's kinds in the manifest before the program runs: \
             the error type must be concrete, not a generic parameter of the function",
        ));
    }
    if let Some(span) = args.errors
        && result_type(function).is_none()
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
pub(crate) fn result_type(function: &Function) -> Option<&syn::Type> {
    let syn::ReturnType::Type(_, ty) = &function.sig.output else {
        return None;
    };
    let syn::Type::Path(path) = &**ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    (last.ident == "Result" && matches!(last.arguments, syn::PathArguments::AngleBracketed(_)))
        .then_some(&**ty)
}

/// The metric naming rule (the same as `telemetry_core::validate_name`, checked at compile time).
pub(crate) fn metric_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > 200 {
        return Err("the name is longer than 200 bytes");
    }
    for segment in name.split("::").flat_map(|s| s.split('.')) {
        let Some(first) = segment.chars().next() else {
            return Err("a segment is empty");
        };
        if first.is_ascii_digit() {
            return Err("a segment starts with a digit");
        }
        if !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(
                "it contains a character other than ASCII letters, digits, `_`, `.` and `::`",
            );
        }
    }
    Ok(())
}

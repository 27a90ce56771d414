//! The naming rules as compile errors, for the attributes and `counter!`/`gauge!`/
//! `histogram!`. The rules themselves are `telemetry-rules`', which `telemetry-core` checks
//! at run time.

use syn::{Ident, LitStr};
use telemetry_rules::MAX_LABELS;

/// The error for a metric name that breaks the rule; `example` is a good name for the
/// message.
pub(crate) fn metric_name(name: &LitStr, example: &str) -> Option<syn::Error> {
    let reason = telemetry_rules::metric_name(&name.value()).err()?;
    Some(syn::Error::new(
        name.span(),
        format!(
            "invalid metric name `{}`: {reason}; write segments of ASCII letters, digits and `_` \
             (not starting with a digit) joined by `.` or `::`, e.g. \"{example}\"",
            name.value()
        ),
    ))
}

/// The errors for label names: too many, or a name that breaks the rule.
pub(crate) fn label_names<'a>(names: impl IntoIterator<Item = &'a Ident>) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        if i == MAX_LABELS {
            errors.push(syn::Error::new(
                name.span(),
                format!("at most {MAX_LABELS} labels: every label multiplies the number of series"),
            ));
        }
        let text = name.to_string();
        if let Err(reason) = telemetry_rules::label_name(&text) {
            errors.push(syn::Error::new(name.span(), reason));
        }
    }
    errors
}

//! The `static` call site each use of an attribute emits, written as source text.
//!
//! Text parsed once by the compiler is the cheapest way for a proc macro (itself usually built
//! without optimizations) to emit tokens, and the shape of the item is chosen for the user's
//! compile time: one `static` with one `&str` of metadata (see `telemetry_core`'s
//! `CallSite::new` for the layout) collected by the linker through `telemetry_core`'s
//! `call_site!` (one `macro_rules!` hop that writes the section attribute, no second proc macro
//! per use). `scripts/compile-time.sh` measures it.

use crate::attr::Macro;
use std::fmt::Write;

/// The name a site records under.
pub(crate) enum SiteName<'a> {
    /// `name = "..."`, already checked.
    Given(&'a str),
    /// Derived: `{module_path}::{function}{suffix}`, e.g. `.calls`.
    Derived { function: &'a str, suffix: &'a str },
}

/// Everything a site's metadata holds besides what `module_path!`, `file!` and `line!` give.
pub(crate) struct Site<'a> {
    pub(crate) which: Macro,
    /// The `static`'s identifier.
    pub(crate) ident: &'a str,
    pub(crate) name: SiteName<'a>,
    pub(crate) description: &'a str,
    pub(crate) labels: &'a [String],
    /// Each label's `LabelDomain`, as source text (empty for an unlabeled site).
    pub(crate) domains: &'a [String],
    /// `max_series = N` as written (checked), or `None` for the default.
    pub(crate) max_series: Option<&'a str>,
}

/// The field separator of the metadata string (ASCII unit separator).
const SEP: char = '\x1f';
/// [`SEP`] as a string literal.
const SEP_LITERAL: &str = "\"\\u{1f}\"";

impl Site<'_> {
    /// `static IDENT: CallSite = CallSite::new(concat!(...));`, registered with the linker.
    pub(crate) fn static_item(&self) -> String {
        let kind = match self.which {
            Macro::CountUsage => "counter",
            Macro::Timed => "histogram",
        };
        let head = format!(
            "{kind}{SEP}{}{SEP}{}{SEP}",
            self.max_series.unwrap_or(""),
            self.labels.join(",")
        );
        let mut name = String::new();
        match self.name {
            SiteName::Given(given) => write!(name, "{given:?}").unwrap(),
            SiteName::Derived { function, suffix } => {
                let tail = format!("::{function}{suffix}");
                write!(name, "::core::module_path!(), {tail:?}").unwrap();
            }
        }
        // The separator cannot appear inside a field; a doc comment is free text.
        let description = format!("{SEP}{}{SEP}", self.description.replace(SEP, " "));
        let ident = self.ident;
        let (constructor, domains) = if self.domains.is_empty() {
            ("new", String::new())
        } else {
            ("labeled", format!(", &[{}]", self.domains.join(", ")))
        };
        format!(
            "::telemetry_core::__private::call_site! {{ \
                static {ident}: ::telemetry_core::__private::CallSite = \
                    ::telemetry_core::__private::CallSite::{constructor}(::core::concat!(\
                        {head:?}, {name}, {description:?}, ::core::module_path!(), {SEP_LITERAL}, \
                        ::core::file!(), {SEP_LITERAL}, ::core::line!()){domains}); \
            }}"
        )
    }
}

//! Parsing the attribute's arguments: `name = "..."`, `description = "..."`.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr};

/// Which macro is expanding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    CountUsage,
    Timed,
}

impl Macro {
    /// The attribute as the user writes it, for messages.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Macro::CountUsage => "#[count_usage]",
            Macro::Timed => "#[timed]",
        }
    }

    /// The identifier of the attribute.
    pub(crate) fn ident(self) -> &'static str {
        match self {
            Macro::CountUsage => "count_usage",
            Macro::Timed => "timed",
        }
    }

    /// The other attribute of this crate.
    pub(crate) fn sibling(self) -> Macro {
        match self {
            Macro::CountUsage => Macro::Timed,
            Macro::Timed => Macro::CountUsage,
        }
    }

    /// The suffix of a derived name.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Macro::CountUsage => ".calls",
            Macro::Timed => ".duration",
        }
    }
}

/// The parsed arguments.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    /// `labels(name = expr, ...)` or `labels(name: Type = expr, ...)`, in order.
    pub(crate) labels: Vec<Label>,
    pub(crate) max_series: Option<syn::LitInt>,
    /// `errors`: also count `Err` outcomes by kind.
    pub(crate) errors: Option<proc_macro2::Span>,
    /// `crate = "..."`: where `telemetry_core` is (a renamed dependency).
    pub(crate) krate: Option<TokenStream>,
    /// `sample = N` (`#[timed]` only): time 1 call in N, checked to be 2 or more.
    pub(crate) sample: Option<u32>,
}

/// One label: its name, its value type if written, and the value.
pub(crate) struct Label {
    pub(crate) name: syn::Ident,
    pub(crate) ty: Option<syn::Type>,
    pub(crate) value: Expr,
}

/// What the unknown-key message lists.
const ACCEPTED: &str = "`name = \"...\"`, `description = \"...\"`, `labels(key = value, ...)`, \
     `max_series = N`, `crate = \"...\"` and";

/// Parses the arguments, collecting every error.
pub(crate) fn parse(which: Macro, tokens: TokenStream) -> Result<Args, syn::Error> {
    let mut args = Args::default();
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let slot = match key.as_str() {
            "name" => &mut args.name,
            "description" => &mut args.description,
            "labels" => {
                if !args.labels.is_empty() {
                    push(meta.error("`labels(...)` is given twice: list every label in one"));
                }
                return meta.parse_nested_meta(|label| {
                    let Some(ident) = label.path.get_ident().cloned() else {
                        return Err(label.error(
                            "a label name is one identifier, e.g. `labels(backend = backend)`",
                        ));
                    };
                    let ty = if label.input.peek(syn::Token![:]) {
                        label.input.parse::<syn::Token![:]>()?;
                        Some(label.input.parse::<syn::Type>()?)
                    } else {
                        None
                    };
                    let value: Expr = label.value()?.parse()?;
                    if args.labels.iter().any(|seen| seen.name == ident) {
                        push(syn::Error::new(
                            ident.span(),
                            format!("label `{ident}` is given twice"),
                        ));
                    }
                    args.labels.push(Label {
                        name: ident,
                        ty,
                        value,
                    });
                    Ok(())
                });
            }
            "crate" => {
                let value: LitStr = meta.value()?.parse()?;
                args.krate = Some(crate::crate_path::parse(&value)?);
                return Ok(());
            }
            "sample" if which == Macro::Timed => {
                let lit: syn::LitInt = meta.value()?.parse()?;
                match lit.base10_parse::<u32>() {
                    Ok(n) if n >= 2 => args.sample = Some(n),
                    _ => push(syn::Error::new(
                        lit.span(),
                        "`sample = N` times 1 call in N: a whole number from 2 to 4294967295, \
                         e.g. `sample = 16`",
                    )),
                }
                return Ok(());
            }
            "sample" => {
                return Err(meta.error(
                    "`sample = N` is for #[timed]: #[count_usage] counts every call exactly, \
                     for about a nanosecond each",
                ));
            }
            "errors" if which == Macro::CountUsage => {
                args.errors = Some(meta.path.span());
                return Ok(());
            }
            "max_series" => {
                let lit: syn::LitInt = meta.value()?.parse()?;
                if lit.base10_parse::<usize>().map_or(true, |n| n == 0) {
                    push(syn::Error::new(
                        lit.span(),
                        "`max_series` is a positive whole number, e.g. `max_series = 100`",
                    ));
                }
                args.max_series = Some(lit);
                return Ok(());
            }
            _ => {
                let shown = quote::ToTokens::to_token_stream(&meta.path)
                    .to_string()
                    .replace(' ', "");
                let own = match which {
                    Macro::CountUsage => "`errors`",
                    Macro::Timed => "`sample = N`",
                };
                return Err(meta.error(format!(
                    "unknown key `{shown}`: {} accepts {ACCEPTED} {own}",
                    which.attr()
                )));
            }
        };
        let value = meta.value()?;
        // The common case, read directly (also through a `macro_rules!` `$name:literal`'s
        // invisible group, which `syn` looks through).
        if value.peek(LitStr) {
            let lit: LitStr = value.parse()?;
            if slot.is_some() {
                push(syn::Error::new(
                    lit.span(),
                    format!("`{key}` is given twice: keep one"),
                ));
            }
            *slot = Some(lit);
            return Ok(());
        }
        let mut expr: Expr = value.parse()?;
        // A `macro_rules!` `$name:literal` arrives in an invisible group.
        while let Expr::Group(group) = expr {
            expr = *group.expr;
        }
        let Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) = expr
        else {
            push(syn::Error::new_spanned(
                &expr,
                format!("`{key}` must be a string literal, e.g. `{key} = \"store.insert\"`"),
            ));
            return Ok(());
        };
        if slot.is_some() {
            push(syn::Error::new(
                lit.span(),
                format!("`{key}` is given twice: keep one"),
            ));
        }
        *slot = Some(lit);
        Ok(())
    });
    if let Err(e) = parser.parse2(tokens) {
        push(e);
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(args),
    }
}

/// The explicit name of a sibling attribute (`#[timed(name = "...")]` next to
/// `#[count_usage]`), if it has one and it parses.
pub(crate) fn sibling_name(
    which: Macro,
    function: &crate::ast::Function,
) -> Option<(Macro, LitStr)> {
    let other = which.sibling();
    let tokens = function.attribute_arguments(other.ident())?;
    let name = parse(other, tokens).ok()?.name?;
    Some((other, name))
}

//! `counter!`, `gauge!` and `histogram!`: the plain API's declarations.
//!
//! Each use becomes one `static` declaration, collected by the linker like the attributes'
//! call sites, so every metric a program can record is listed in the manifest before it runs.
//! Everything a declaration holds is fixed in the code: the name and description are string
//! literals, label names are identifiers and label values are types.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Token, Type};

/// Which macro is expanding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn macro_name(self) -> &'static str {
        match self {
            Kind::Counter => "counter!",
            Kind::Gauge => "gauge!",
            Kind::Histogram => "histogram!",
        }
    }

    fn variant(self) -> Ident {
        format_ident!(
            "{}",
            match self {
                Kind::Counter => "Counter",
                Kind::Gauge => "Gauge",
                Kind::Histogram => "Histogram",
            }
        )
    }
}

/// One `labels(name: Type, ...)` entry.
struct Label {
    name: Ident,
    ty: Type,
}

/// The parsed arguments.
struct Args {
    name: LitStr,
    description: Option<LitStr>,
    unit: Option<Expr>,
    labels: Vec<Label>,
    max_series: Option<Expr>,
    callback: Option<Expr>,
    /// `crate = "..."`: where `telemetry_core` is (a renamed dependency).
    krate: Option<TokenStream>,
    /// Problems that do not stop parsing, reported together.
    errors: Vec<syn::Error>,
}

const ACCEPTED: &str = "`description = \"...\"`, `unit = Bytes`, `labels(name: Type, ...)`, \
    `max_series = N`, `crate = \"...\"` and, for `gauge!`, `callback = || value`";

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name = match input.parse::<LitStr>() {
            Ok(name) => name,
            Err(_) => {
                let found: TokenStream = input.fork().parse::<Expr>().map_or_else(
                    |_| input.cursor().token_stream(),
                    quote::ToTokens::into_token_stream,
                );
                return Err(syn::Error::new_spanned(
                    found,
                    "the metric name must be a string literal, e.g. `counter!(\"store.exports\")`: \
                     names are fixed in the code so that the manifest lists every metric before \
                     the program runs; for something that varies, add a label with a closed set \
                     of values, `labels(kind: MyEnum)`",
                ));
            }
        };
        let mut args = Args {
            name,
            description: None,
            unit: None,
            labels: Vec::new(),
            max_series: None,
            callback: None,
            krate: None,
            errors: Vec::new(),
        };
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = syn::ext::IdentExt::parse_any(input)?;
            let text = key.to_string();
            if text == "labels" {
                let content;
                syn::parenthesized!(content in input);
                let entries = Punctuated::<LabelEntry, Token![,]>::parse_terminated(&content)?;
                if !args.labels.is_empty() {
                    args.errors.push(syn::Error::new(
                        key.span(),
                        "`labels(...)` is given twice: list every label in one",
                    ));
                }
                for entry in entries {
                    if args.labels.iter().any(|l| l.name == entry.0.name) {
                        args.errors.push(syn::Error::new(
                            entry.0.name.span(),
                            format!("label `{}` is given twice", entry.0.name),
                        ));
                    }
                    args.labels.push(entry.0);
                }
                continue;
            }
            input.parse::<Token![=]>()?;
            let twice = |present: bool| {
                present.then(|| {
                    syn::Error::new(key.span(), format!("`{text}` is given twice: keep one"))
                })
            };
            match text.as_str() {
                "description" => {
                    let Ok(lit) = input.parse::<LitStr>() else {
                        let expr: Expr = input.parse()?;
                        args.errors.push(syn::Error::new_spanned(
                            expr,
                            "`description` must be a string literal, e.g. `description = \
                             \"Exports written\"`: it is shown in the manifest as written",
                        ));
                        continue;
                    };
                    args.errors.extend(twice(args.description.is_some()));
                    args.description = Some(lit);
                }
                "unit" => {
                    args.errors.extend(twice(args.unit.is_some()));
                    args.unit = Some(input.parse()?);
                }
                "max_series" => {
                    args.errors.extend(twice(args.max_series.is_some()));
                    args.max_series = Some(input.parse()?);
                }
                "crate" => {
                    let value: LitStr = input.parse()?;
                    args.krate = Some(crate::crate_path::parse(&value)?);
                }
                "callback" => {
                    args.errors.extend(twice(args.callback.is_some()));
                    args.callback = Some(input.parse()?);
                }
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown key `{text}`: accepted are {ACCEPTED}"),
                    ));
                }
            }
        }
        Ok(args)
    }
}

struct LabelEntry(Label);

impl Parse for LabelEntry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        if !input.peek(Token![:]) {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "write the type of label `{name}`, `labels({name}: MyEnum)`: the type's \
                     closed set of values is listed in the manifest"
                ),
            ));
        }
        input.parse::<Token![:]>()?;
        let ty: Type = input.parse()?;
        Ok(LabelEntry(Label { name, ty }))
    }
}

/// Expands one use of `counter!`, `gauge!` or `histogram!`.
pub(crate) fn expand(kind: Kind, tokens: TokenStream) -> TokenStream {
    match syn::parse2::<Args>(tokens).and_then(|args| check(kind, args)) {
        Ok(expanded) => expanded,
        Err(error) => error.to_compile_error(),
    }
}

fn check(kind: Kind, mut args: Args) -> syn::Result<TokenStream> {
    let mut errors = std::mem::take(&mut args.errors);
    errors.extend(crate::rules::metric_name(&args.name, "store.exports"));
    if kind == Kind::Gauge && !args.labels.is_empty() {
        errors.push(syn::Error::new(
            args.labels[0].name.span(),
            "a gauge has no labels: declare one gauge per value you want to show",
        ));
    }
    if let (Some(callback), false) = (&args.callback, kind == Kind::Gauge) {
        errors.push(syn::Error::new_spanned(
            callback,
            format!(
                "`callback` is for `gauge!` (a value read when a snapshot is taken); {} records \
                 through the handle it returns",
                kind.macro_name()
            ),
        ));
    }
    errors.extend(crate::rules::label_names(
        args.labels.iter().map(|l| &l.name),
    ));
    for label in &args.labels {
        if let Some(message) = crate::refused_labels::refusal(&label.name.to_string(), &label.ty) {
            errors.push(syn::Error::new_spanned(&label.ty, message));
        }
    }
    if let (Some(max), true) = (&args.max_series, args.labels.is_empty()) {
        errors.push(syn::Error::new_spanned(
            max,
            "`max_series` caps the series of a labeled metric: add `labels(...)` or remove it",
        ));
    }
    if let Some(mut first) = errors.pop() {
        for e in errors {
            first.combine(e);
        }
        return Err(first);
    }
    let expanded = expansion(kind, &args);
    Ok(match &args.krate {
        Some(root) => crate::crate_path::rebase(expanded, root),
        None => expanded,
    })
}

fn expansion(kind: Kind, args: &Args) -> TokenStream {
    let name = &args.name;
    let description = args
        .description
        .clone()
        .unwrap_or_else(|| LitStr::new("", name.span()));
    let unit = match &args.unit {
        None => quote!(::telemetry_core::Unit::None),
        Some(Expr::Path(path)) if path.path.get_ident().is_some() => {
            quote!(::telemetry_core::Unit::#path)
        }
        Some(unit) => quote!(#unit),
    };
    let variant = kind.variant();
    let label_names = args.labels.iter().map(|l| l.name.to_string());
    let label_types: Vec<&Type> = args.labels.iter().map(|l| &l.ty).collect();
    let max_series = match &args.max_series {
        Some(max) => quote!(#max),
        None => quote!(::telemetry_core::__private::DEFAULT_MAX_SERIES),
    };
    let callback = args.callback.is_some();
    let register = match (kind, &args.callback, args.labels.is_empty()) {
        (Kind::Gauge, Some(read), _) => quote!(__TELEMETRY_DECLARATION.gauge_callback(#read)),
        (Kind::Gauge, None, _) => quote!(__TELEMETRY_DECLARATION.gauge()),
        (Kind::Counter, _, true) => quote!(__TELEMETRY_DECLARATION.counter()),
        (Kind::Histogram, _, true) => quote!(__TELEMETRY_DECLARATION.histogram()),
        (Kind::Counter, _, false) => {
            quote!(__TELEMETRY_DECLARATION.labeled_counter::<(#(#label_types,)*)>())
        }
        (Kind::Histogram, _, false) => {
            quote!(__TELEMETRY_DECLARATION.labeled_histogram::<(#(#label_types,)*)>())
        }
    };
    quote! {
        {
            #[::telemetry_core::__private::linkme::distributed_slice(::telemetry_core::__private::DECLARATIONS)]
            #[linkme(crate = ::telemetry_core::__private::linkme)]
            static __TELEMETRY_DECLARATION: ::telemetry_core::__private::Declaration =
                ::telemetry_core::__private::Declaration::new(
                    ::telemetry_core::MetricKind::#variant,
                    #name,
                    #description,
                    #unit,
                    &[#(#label_names),*],
                    &[#(::telemetry_core::__private::LabelDomain::of::<#label_types>()),*],
                    #max_series,
                    #callback,
                    ::core::module_path!(),
                    ::core::file!(),
                    ::core::line!(),
                );
            #register
        }
    }
}

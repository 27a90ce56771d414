//! `crate = "path"`: where `telemetry_core` is, for a crate that renamed the dependency
//! (`tc = { package = "telemetry-core", .. }`). The expansions name `::telemetry_core::...`;
//! with a path given, every such path in the generated code starts at it instead.

use proc_macro2::{Group, Spacing, TokenStream, TokenTree};
use quote::ToTokens;

/// What a `crate = "..."` value must look like, for messages.
pub(crate) const CRATE_EXAMPLE: &str = "`crate = \"tc\"` for a dependency renamed `tc`, or a path to a re-export, e.g. `crate = \"my_crate::telemetry\"`";

/// Parses a `crate = "..."` value.
pub(crate) fn parse(value: &syn::LitStr) -> syn::Result<TokenStream> {
    let path: syn::Path = value.parse().map_err(|_| {
        syn::Error::new(
            value.span(),
            format!("`crate` is the path of telemetry_core, {CRATE_EXAMPLE}"),
        )
    })?;
    // A bare name is a dependency: `::name`, so a local module cannot shadow it.
    Ok(
        if path.leading_colon.is_none() && path.segments.len() == 1 {
            quote::quote!(::#path)
        } else {
            path.into_token_stream()
        },
    )
}

/// Whether `previous` makes a following `::telemetry_core` a path's later segment (`a::b`)
/// rather than its start (`as ::telemetry_core::..`, `<::telemetry_core::..>`).
fn follows_a_path_segment(previous: Option<&TokenTree>) -> bool {
    const KEYWORDS: &[&str] = &[
        "as", "in", "return", "let", "mut", "ref", "move", "dyn", "impl", "for", "where", "break",
        "else", "match", "if", "while", "unsafe", "async", "await", "static", "const", "type",
        "use", "pub", "fn", "struct", "enum", "trait", "loop", "yield",
    ];
    match previous {
        Some(TokenTree::Ident(ident)) => !KEYWORDS.contains(&ident.to_string().as_str()),
        _ => false,
    }
}

/// `tokens` with each `::telemetry_core` replaced by `root`.
pub(crate) fn rebase(tokens: TokenStream, root: &TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(trees.len());
    let mut i = 0;
    while i < trees.len() {
        if let (
            Some(TokenTree::Punct(first)),
            Some(TokenTree::Punct(second)),
            Some(TokenTree::Ident(name)),
        ) = (trees.get(i), trees.get(i + 1), trees.get(i + 2))
            && first.as_char() == ':'
            && first.spacing() == Spacing::Joint
            && second.as_char() == ':'
            && name == "telemetry_core"
            && !follows_a_path_segment(out.last())
        {
            out.extend(root.clone());
            i += 3;
            continue;
        }
        match &trees[i] {
            TokenTree::Group(group) => {
                let mut rebased = Group::new(group.delimiter(), rebase(group.stream(), root));
                rebased.set_span(group.span());
                out.push(TokenTree::Group(rebased));
            }
            other => out.push(other.clone()),
        }
        i += 1;
    }
    out.into_iter().collect()
}

/// The `crate = "..."` of an item's `#[<attr>(...)]` attributes (a derive's), if given; the
/// attributes' other keys are left to the derive.
pub(crate) fn of_item(attrs: &[syn::Attribute], attr: &str) -> syn::Result<Option<TokenStream>> {
    let mut root = None;
    for a in attrs.iter().filter(|a| a.path().is_ident(attr)) {
        if !matches!(a.meta, syn::Meta::List(_)) {
            continue;
        }
        a.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let value: syn::LitStr = meta.value()?.parse().map_err(|_| {
                    meta.error(format!("`crate` is a string literal, {CRATE_EXAMPLE}"))
                })?;
                root = Some(parse(&value)?);
            } else if meta.input.peek(syn::Token![=]) {
                // Another key, for the derive to read.
                meta.value()?.parse::<syn::Expr>()?;
            } else if meta.input.peek(syn::token::Paren) {
                meta.parse_nested_meta(|nested| {
                    if nested.input.peek(syn::Token![=]) {
                        nested.value()?.parse::<syn::Expr>()?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    }
    Ok(root)
}

/// A derive's output, rebased on the item's `crate = "..."` if it gives one.
pub(crate) fn derived(
    input: &syn::DeriveInput,
    attr: &str,
    expand: impl FnOnce(&syn::DeriveInput) -> TokenStream,
) -> TokenStream {
    match of_item(&input.attrs, attr) {
        Ok(Some(root)) => rebase(expand(input), &root),
        Ok(None) => expand(input),
        Err(e) => e.to_compile_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn root(text: &str) -> TokenStream {
        parse(&syn::LitStr::new(text, proc_macro2::Span::call_site())).unwrap()
    }

    #[test]
    fn every_start_of_a_path_is_rebased_and_nothing_else() {
        let generated = quote! {
            let _ = ::telemetry_core::snapshot();
            let _ = <R as ::telemetry_core::__private::ResultError>::Error;
            fn f() -> ::telemetry_core::Counter { todo!() }
            { ::telemetry_core::x(some::telemetry_core::y) }
        };
        let rebased = rebase(generated, &root("tc")).to_string();
        assert_eq!(rebased.matches("telemetry_core").count(), 1, "{rebased}");
        assert_eq!(rebased.matches(":: tc ::").count(), 4, "{rebased}");
        assert!(rebased.contains("some :: telemetry_core :: y"), "{rebased}");
        assert_eq!(
            root("my_crate::telemetry").to_string(),
            "my_crate :: telemetry"
        );
    }

    #[test]
    fn the_attributes_expand_to_the_given_crate_only() {
        let out = crate::expand::instrument(
            crate::attr::Macro::CountUsage,
            quote!(crate = "tc", errors, labels(ok = n == 0)),
            quote!(
                fn f(n: u8) -> Result<(), E> {
                    Err(E)
                }
            ),
        )
        .to_string();
        assert!(!out.contains("telemetry_core"), "{out}");
        assert!(out.contains(":: tc :: __private"), "{out}");
    }
}

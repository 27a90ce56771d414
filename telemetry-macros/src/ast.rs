//! The function as the attribute macros see it: attributes, visibility and signature parsed,
//! the body kept as tokens. The body is never parsed or printed again, so a large function
//! costs the macro no more than a small one, and every error inside it keeps its own span.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Signature, Visibility};

pub(crate) struct Function {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// `#![...]` attributes at the top of the body, which must stay first.
    pub(crate) inner_attrs: TokenStream,
    /// The rest of the body.
    pub(crate) body: TokenStream,
    /// The span of the body's braces.
    pub(crate) body_span: Span,
}

impl Parse for Function {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        let group: Group = input.parse()?;
        if group.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(
                group.span(),
                "expected the function's body",
            ));
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the function's body"));
        }
        let (inner_attrs, body) = split_inner_attributes(group.stream());
        Ok(Function {
            attrs,
            vis,
            sig,
            inner_attrs,
            body,
            body_span: group.span(),
        })
    }
}

/// The item with its body's invisible group removed: a `macro_rules!` `$body:block` arrives
/// as a brace group inside an invisible (`None`-delimited) one, which the signature's parser
/// would otherwise take for part of the return type.
pub(crate) fn with_visible_body(item: TokenStream) -> TokenStream {
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    if let Some(TokenTree::Group(last)) = tokens.last() {
        let mut group = last.clone();
        while group.delimiter() == Delimiter::None {
            let mut inner = group.stream().into_iter();
            match (inner.next(), inner.next()) {
                (Some(TokenTree::Group(only)), None) => group = only,
                _ => break,
            }
        }
        if group.delimiter() == Delimiter::Brace {
            *tokens
                .last_mut()
                .unwrap_or_else(|| unreachable!("checked above")) = TokenTree::Group(group);
        }
    }
    tokens.into_iter().collect()
}

/// Splits leading `#![...]` attributes from the rest of a body.
fn split_inner_attributes(body: TokenStream) -> (TokenStream, TokenStream) {
    let tokens: Vec<TokenTree> = body.into_iter().collect();
    let mut end = 0;
    while let [
        TokenTree::Punct(hash),
        TokenTree::Punct(bang),
        TokenTree::Group(group),
        ..,
    ] = &tokens[end..]
    {
        if hash.as_char() != '#' || bang.as_char() != '!' || group.delimiter() != Delimiter::Bracket
        {
            break;
        }
        end += 3;
    }
    let inner = tokens[..end].iter().cloned().collect();
    let rest = tokens[end..].iter().cloned().collect();
    (inner, rest)
}

impl Function {
    /// The function with `prelude` (statements) before its body, or with its body replaced.
    pub(crate) fn with_body(&self, prelude: TokenStream, body: TokenStream) -> TokenStream {
        let Function {
            attrs,
            vis,
            sig,
            inner_attrs,
            body_span,
            ..
        } = self;
        let mut block = Group::new(Delimiter::Brace, quote::quote!(#inner_attrs #prelude #body));
        block.set_span(*body_span);
        quote::quote!(#(#attrs)* #vis #sig #block)
    }

    /// The original body as a block, for wrapping.
    pub(crate) fn body_block(&self) -> TokenStream {
        let body = &self.body;
        let mut block = Group::new(Delimiter::Brace, body.clone());
        block.set_span(self.body_span);
        TokenStream::from(TokenTree::Group(block))
    }
}

/// The first non-empty line of the doc comment, trimmed.
pub(crate) fn doc_summary(attrs: &[syn::Attribute]) -> String {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|doc| doc.lines().map(|l| l.trim().to_owned()).collect::<Vec<_>>())
        .find(|line| !line.is_empty())
        .unwrap_or_default()
}

//! The function as the attribute macros see it, read from its tokens: the outer attributes,
//! the qualifiers and the name before the body, and the body itself. Neither the body nor (in
//! the common case) the signature is parsed: a large function costs the macro no more than a
//! small one, every error inside it keeps its own span, and proc macros, usually built without
//! optimizations, stay cheap. The signature is parsed with `syn` only when a rule needs it
//! (labels read from parameters, `errors`, a `Future` in the return type).

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use std::cell::OnceCell;
use syn::Signature;

pub(crate) struct Function {
    /// Everything before the body, as written.
    head: Vec<TokenTree>,
    /// Where the signature (qualifiers, `fn`, ...) starts in `head`.
    signature_start: usize,
    /// The outer attributes' bracket groups.
    pub(crate) attrs: Vec<Group>,
    /// The name, without `r#`.
    pub(crate) ident: String,
    pub(crate) is_async: bool,
    /// The span of `const`, for a `const fn`.
    pub(crate) constness: Option<Span>,
    /// `#![...]` attributes at the top of the body, which must stay first.
    pub(crate) inner_attrs: TokenStream,
    /// The rest of the body.
    pub(crate) body: TokenStream,
    /// The span of the body's braces.
    pub(crate) body_span: Span,
    signature: OnceCell<Option<Signature>>,
}

impl Function {
    /// Reads a function with a body, or `None` if `item` is something else (the caller says
    /// what it is).
    pub(crate) fn read(item: TokenStream) -> Option<Function> {
        let mut head: Vec<TokenTree> = item.into_iter().collect();
        let body = match head.pop()? {
            TokenTree::Group(group) => without_invisible_group(group)?,
            _ => return None,
        };
        let mut attrs = Vec::new();
        let mut i = 0;
        while let (Some(TokenTree::Punct(hash)), Some(TokenTree::Group(attr))) =
            (head.get(i), head.get(i + 1))
        {
            if hash.as_char() != '#' || attr.delimiter() != Delimiter::Bracket {
                return None;
            }
            attrs.push(attr.clone());
            i += 2;
        }
        // Visibility: `pub`, `pub(crate)`, `pub(in path)`, or a `macro_rules!` `$vis:vis`
        // (an invisible group).
        match head.get(i) {
            Some(TokenTree::Ident(ident)) if ident == "pub" => {
                i += 1;
                if let Some(TokenTree::Group(scope)) = head.get(i)
                    && scope.delimiter() == Delimiter::Parenthesis
                {
                    i += 1;
                }
            }
            Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::None => i += 1,
            _ => {}
        }
        let signature_start = i;
        let (mut is_async, mut constness) = (false, None);
        loop {
            match head.get(i)? {
                TokenTree::Ident(ident) => match ident.to_string().as_str() {
                    "fn" => break,
                    "async" => is_async = true,
                    "const" => constness = Some(ident.span()),
                    "unsafe" | "safe" | "default" => {}
                    "extern" => {
                        if let Some(TokenTree::Literal(_)) = head.get(i + 1) {
                            i += 1;
                        }
                    }
                    _ => return None,
                },
                _ => return None,
            }
            i += 1;
        }
        let TokenTree::Ident(ident) = head.get(i + 1)? else {
            return None;
        };
        let ident = ident.to_string();
        let ident = ident.strip_prefix("r#").unwrap_or(&ident).to_owned();
        let (inner_attrs, rest) = split_inner_attributes(body.stream());
        Some(Function {
            head,
            signature_start,
            attrs,
            ident,
            is_async,
            constness,
            inner_attrs,
            body: rest,
            body_span: body.span(),
            signature: OnceCell::new(),
        })
    }

    /// The signature, parsed on first use; `None` if `syn` cannot read it (the compiler then
    /// reports it on the function as written).
    pub(crate) fn signature(&self) -> Option<&Signature> {
        self.signature
            .get_or_init(|| {
                let tokens: TokenStream =
                    self.head[self.signature_start..].iter().cloned().collect();
                syn::parse2(tokens).ok()
            })
            .as_ref()
    }

    /// Whether the tokens before the body name `Future` (a return type `impl Future<..>`), a
    /// cheap test before the signature is parsed.
    pub(crate) fn mentions_future(&self) -> bool {
        fn mentions(tokens: impl IntoIterator<Item = TokenTree>) -> bool {
            tokens.into_iter().any(|tree| match tree {
                TokenTree::Ident(ident) => ident == "Future",
                TokenTree::Group(group) => mentions(group.stream()),
                _ => false,
            })
        }
        mentions(self.head[self.signature_start..].iter().cloned())
    }

    /// The first non-empty line of the doc comment, trimmed.
    pub(crate) fn doc_summary(&self) -> String {
        first_line(self.attrs.iter().filter_map(doc_text))
    }

    /// The arguments of the outer attribute whose path ends in `ident`, if there is one (empty
    /// for a bare attribute).
    pub(crate) fn attribute_arguments(&self, ident: &str) -> Option<TokenStream> {
        self.attrs.iter().find_map(|attr| {
            let tokens: Vec<TokenTree> = attr.stream().into_iter().collect();
            let path_end = tokens
                .iter()
                .position(|t| matches!(t, TokenTree::Group(_)))
                .unwrap_or(tokens.len());
            let last = tokens[..path_end].iter().rev().find_map(|t| match t {
                TokenTree::Ident(ident) => Some(ident.to_string()),
                _ => None,
            })?;
            (last == ident).then(|| match tokens.get(path_end) {
                Some(TokenTree::Group(args)) => args.stream(),
                _ => TokenStream::new(),
            })
        })
    }

    /// The function with `prelude` (statements) before its body, or with its body replaced.
    pub(crate) fn with_body(&self, prelude: TokenStream, body: TokenStream) -> TokenStream {
        let mut inner = self.inner_attrs.clone();
        inner.extend([prelude, body]);
        let mut block = Group::new(Delimiter::Brace, inner);
        block.set_span(self.body_span);
        let mut out: TokenStream = self.head.iter().cloned().collect();
        out.extend([TokenTree::Group(block)]);
        out
    }

    /// The original body as a block, for wrapping.
    pub(crate) fn body_block(&self) -> TokenStream {
        let mut block = Group::new(Delimiter::Brace, self.body.clone());
        block.set_span(self.body_span);
        TokenStream::from(TokenTree::Group(block))
    }
}

/// The first non-empty line of a parsed item's doc comment, trimmed (for the derives).
pub(crate) fn doc_summary(attrs: &[syn::Attribute]) -> String {
    first_line(attrs.iter().filter_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }))
}

/// The first non-empty line of doc texts, trimmed.
fn first_line(docs: impl Iterator<Item = String>) -> String {
    docs.flat_map(|doc| doc.lines().map(|l| l.trim().to_owned()).collect::<Vec<_>>())
        .find(|line| !line.is_empty())
        .unwrap_or_default()
}

/// The text of a `#[doc = "..."]` attribute (a doc comment).
fn doc_text(attr: &Group) -> Option<String> {
    let tokens: Vec<TokenTree> = attr.stream().into_iter().collect();
    match tokens.as_slice() {
        [
            TokenTree::Ident(doc),
            TokenTree::Punct(eq),
            TokenTree::Literal(text),
        ] if eq.as_char() == '=' && doc == "doc" => string_value(&text.to_string()),
        _ => None,
    }
}

/// The value of a string literal as a doc attribute holds it: plain, raw (`r"..."`,
/// `r#"..."#`), or with escapes (decoded by `syn`).
fn string_value(literal: &str) -> Option<String> {
    if let Some(inner) = literal.strip_prefix('"').and_then(|l| l.strip_suffix('"'))
        && !inner.contains(['\\', '"'])
    {
        return Some(inner.to_owned());
    }
    if let Some(raw) = literal.strip_prefix('r') {
        let hashes = raw.len() - raw.trim_start_matches('#').len();
        let raw = raw.get(hashes..raw.len().checked_sub(hashes)?)?;
        return Some(raw.strip_prefix('"')?.strip_suffix('"')?.to_owned());
    }
    syn::parse_str::<syn::LitStr>(literal)
        .ok()
        .map(|lit| lit.value())
}

/// The body's brace group, also when a `macro_rules!` `$body:block` wrapped it in invisible
/// groups.
fn without_invisible_group(mut group: Group) -> Option<Group> {
    while group.delimiter() == Delimiter::None {
        let mut inner = group.stream().into_iter();
        match (inner.next(), inner.next()) {
            (Some(TokenTree::Group(only)), None) => group = only,
            _ => return None,
        }
    }
    (group.delimiter() == Delimiter::Brace).then_some(group)
}

/// Splits leading `#![...]` attributes from the rest of a body. A body without them (the
/// common case) is returned as it is, never walked: rebuilding a stream token by token is a
/// call across the compiler's proc-macro bridge per token.
fn split_inner_attributes(body: TokenStream) -> (TokenStream, TokenStream) {
    let mut first = body.clone().into_iter();
    let starts_with_inner = matches!(
        (first.next(), first.next()),
        (Some(TokenTree::Punct(hash)), Some(TokenTree::Punct(bang)))
            if hash.as_char() == '#' && bang.as_char() == '!'
    );
    if !starts_with_inner {
        return (TokenStream::new(), body);
    }
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

//! The common case without `syn`: an attribute with no arguments or only `name`/`description`
//! on an ordinary function.
//!
//! Proc macros usually run unoptimized, and `syn` walks every token of the item, the body's
//! included, so on this path the macro only looks at the tokens before the body, never enters
//! it, and nests the untouched body inside the new one. Anything unusual (other arguments,
//! `const fn`, inner attributes, a metric name that fails the rules, a sibling attribute when
//! a name is given) returns `None`, and the full path (`expand`) handles it with the same
//! output and every error message.

use crate::attr::Macro;
use crate::site::{Site, SiteName};
use crate::valid::metric_name;
use proc_macro::{Delimiter, Group, TokenStream, TokenTree};

/// The instrumented function, or `None` to take the full path.
pub(crate) fn instrument(
    which: Macro,
    args: &TokenStream,
    item: &TokenStream,
) -> Option<TokenStream> {
    let args = Args::scan(args)?;
    let mut trees: Vec<TokenTree> = item.clone().into_iter().collect();
    let body = match trees.pop()? {
        TokenTree::Group(group) => without_invisible_group(group)?,
        _ => return None,
    };
    if body.delimiter() != Delimiter::Brace || starts_with_inner_attribute(&body) {
        return None;
    }
    let header = Header::scan(which, &trees)?;
    // `-> impl Future`: the full path times the future it returns.
    if which == Macro::Timed && mentions_future(&trees) {
        return None;
    }
    if args.name.is_some() && header.has_sibling {
        return None;
    }
    let name = match &args.name {
        Some(name) => SiteName::Given(name),
        None => SiteName::Derived {
            function: &header.function,
            suffix: which.suffix(),
        },
    };
    let description = match &args.description {
        Some(description) => description.clone(),
        None => header.doc_summary.unwrap_or_default(),
    };
    let site = Site {
        which,
        ident: "__TELEMETRY_SITE",
        name,
        description: &description,
        labels: &[],
        domains: &[],
        max_series: None,
    }
    .static_item();
    let statement = match (which, header.is_async) {
        (Macro::CountUsage, _) => format!("let _ = {{ {site} __TELEMETRY_SITE.increment() }};"),
        (Macro::Timed, false) => {
            format!("let __telemetry_timer = {{ {site} __TELEMETRY_SITE.start_local_timer() }};")
        }
        (Macro::Timed, true) => {
            format!("let __telemetry_timer = {{ {site} __TELEMETRY_SITE.start_timer() }};")
        }
    };
    let mut inner: TokenStream = format!("#[allow(unused_qualifications)] {statement}")
        .parse()
        .ok()?;
    // The original body's statements, untouched, follow: its tail is the new body's, and the
    // timer (a local declared first) is dropped after it. Not nested as a block, which would
    // make a one-line body's braces look unnecessary to the compiler's lint.
    inner.extend(body.stream());
    let mut new_body = Group::new(Delimiter::Brace, inner);
    new_body.set_span(body.span());
    trees.push(TokenTree::Group(new_body));
    Some(trees.into_iter().collect())
}

/// `name = "..."` and `description = "..."`, each at most once, plain string literals.
#[derive(Default)]
struct Args {
    name: Option<String>,
    description: Option<String>,
}

impl Args {
    fn scan(tokens: &TokenStream) -> Option<Args> {
        let mut args = Args::default();
        let mut tokens = tokens.clone().into_iter();
        while let Some(key) = tokens.next() {
            let (TokenTree::Ident(key), Some(TokenTree::Punct(eq)), Some(value)) =
                (key, tokens.next(), tokens.next().map(without_invisible))
            else {
                return None;
            };
            let TokenTree::Literal(value) = value else {
                return None;
            };
            if eq.as_char() != '=' {
                return None;
            }
            let value = plain_string(&value.to_string())?;
            let slot = match key.to_string().as_str() {
                "name" => &mut args.name,
                "description" => &mut args.description,
                _ => return None,
            };
            if slot.replace(value).is_some() {
                return None;
            }
            match tokens.next() {
                None => break,
                Some(TokenTree::Punct(comma)) if comma.as_char() == ',' => {}
                Some(_) => return None,
            }
        }
        if let Some(name) = &args.name {
            metric_name(name).ok()?;
        }
        Some(args)
    }
}

/// What the macro needs from the tokens before the body.
struct Header {
    function: String,
    is_async: bool,
    doc_summary: Option<String>,
    /// The other attribute of this crate is on the function too.
    has_sibling: bool,
}

impl Header {
    /// Outer attributes, visibility, qualifiers, `fn` and the name; the rest of the signature
    /// is left to the compiler.
    fn scan(which: Macro, trees: &[TokenTree]) -> Option<Header> {
        let sibling = match which {
            Macro::CountUsage => Macro::Timed.ident(),
            Macro::Timed => Macro::CountUsage.ident(),
        };
        let mut header = Header {
            function: String::new(),
            is_async: false,
            doc_summary: None,
            has_sibling: false,
        };
        let mut i = 0;
        while let (Some(TokenTree::Punct(hash)), Some(TokenTree::Group(attr))) =
            (trees.get(i), trees.get(i + 1))
        {
            if hash.as_char() != '#' || attr.delimiter() != Delimiter::Bracket {
                return None;
            }
            header.read_attribute(attr, sibling)?;
            i += 2;
        }
        if let Some(TokenTree::Ident(ident)) = trees.get(i)
            && ident.to_string() == "pub"
        {
            i += 1;
            if let Some(TokenTree::Group(scope)) = trees.get(i)
                && scope.delimiter() == Delimiter::Parenthesis
            {
                i += 1;
            }
        }
        loop {
            match trees.get(i)? {
                TokenTree::Ident(ident) => match ident.to_string().as_str() {
                    "fn" => break,
                    "async" => header.is_async = true,
                    "unsafe" => {}
                    "extern" => {
                        if let Some(TokenTree::Literal(_)) = trees.get(i + 1) {
                            i += 1;
                        }
                    }
                    // `const fn` is an error, and anything else is for the full path to judge.
                    _ => return None,
                },
                _ => return None,
            }
            i += 1;
        }
        let TokenTree::Ident(function) = trees.get(i + 1)? else {
            return None;
        };
        let function = function.to_string();
        header.function = function.strip_prefix("r#").unwrap_or(&function).to_owned();
        Some(header)
    }

    /// Notes a doc comment's first line and whether the sibling attribute is present.
    fn read_attribute(&mut self, attr: &Group, sibling: &str) -> Option<()> {
        let tokens: Vec<TokenTree> = attr.stream().into_iter().collect();
        match tokens.as_slice() {
            [
                TokenTree::Ident(doc),
                TokenTree::Punct(eq),
                TokenTree::Literal(text),
            ] if eq.as_char() == '=' && doc.to_string() == "doc" => {
                if self.doc_summary.is_none() {
                    let text = string_value(&text.to_string())?;
                    self.doc_summary = text
                        .lines()
                        .map(str::trim)
                        .find(|line| !line.is_empty())
                        .map(str::to_owned);
                }
            }
            path => {
                // The attribute's path is the identifiers and `::` before any arguments.
                let last = path
                    .iter()
                    .take_while(|t| !matches!(t, TokenTree::Group(_)))
                    .filter_map(|t| match t {
                        TokenTree::Ident(ident) => Some(ident.to_string()),
                        _ => None,
                    })
                    .last();
                if last.as_deref() == Some(sibling) {
                    self.has_sibling = true;
                }
            }
        }
        Some(())
    }
}

/// A token a `macro_rules!` fragment (`$name:literal`, `$body:block`) wraps in an invisible
/// group, unwrapped.
fn without_invisible(token: TokenTree) -> TokenTree {
    match &token {
        TokenTree::Group(group) if group.delimiter() == Delimiter::None => {
            let mut inner = group.stream().into_iter();
            match (inner.next(), inner.next()) {
                (Some(only), None) => without_invisible(only),
                _ => token,
            }
        }
        _ => token,
    }
}

/// The body's brace group, also when a `macro_rules!` `$body:block` wrapped it.
fn without_invisible_group(group: Group) -> Option<Group> {
    match without_invisible(TokenTree::Group(group)) {
        TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => Some(group),
        _ => None,
    }
}

/// Whether the tokens before the body name `Future` (a return type `impl Future<..>`).
fn mentions_future(trees: &[TokenTree]) -> bool {
    trees.iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident.to_string() == "Future",
        TokenTree::Group(group) => mentions_future(&group.stream().into_iter().collect::<Vec<_>>()),
        _ => false,
    })
}

/// Whether a body begins with `#!`: inner attributes must stay first, so the full path splits them.
fn starts_with_inner_attribute(body: &Group) -> bool {
    let mut tokens = body.stream().into_iter();
    matches!(
        (tokens.next(), tokens.next()),
        (Some(TokenTree::Punct(hash)), Some(TokenTree::Punct(bang)))
            if hash.as_char() == '#' && bang.as_char() == '!'
    )
}

/// The value of a `"..."` literal without escapes.
fn plain_string(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains(['\\', '"'])).then(|| inner.to_owned())
}

/// The value of a string literal as a doc attribute holds it: plain, raw (`r"..."`,
/// `r#"..."#`), or with escapes (decoded by `syn`).
fn string_value(literal: &str) -> Option<String> {
    if let Some(plain) = plain_string(literal) {
        return Some(plain);
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

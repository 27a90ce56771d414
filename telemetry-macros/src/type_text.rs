//! Types as text for the manifest and for checks on what a `static` can name.

use proc_macro2::{Spacing, TokenStream, TokenTree};
use quote::ToTokens;

/// The type as written: `Option<&'static str>`, `Vec<u8>`, `dyn Fn() -> u32`.
pub(crate) fn type_text(ty: &syn::Type) -> String {
    let mut out = String::new();
    write_tokens(ty.to_token_stream(), &mut out);
    out
}

fn write_tokens(tokens: TokenStream, out: &mut String) {
    let mut after_word = false;
    let mut joint_punct = false;
    for token in tokens {
        match token {
            TokenTree::Ident(ident) => {
                // A word after a word or a lifetime needs a space: `&'static str`, `dyn Fn`.
                if after_word {
                    out.push(' ');
                }
                out.push_str(&ident.to_string());
                after_word = true;
                joint_punct = false;
            }
            TokenTree::Punct(punct) => {
                let c = punct.as_char();
                if c == '\'' {
                    out.push(c);
                    after_word = false;
                    joint_punct = true;
                    continue;
                }
                if c == ',' || c == ';' {
                    out.push(c);
                    out.push(' ');
                } else if c == '>' && out.ends_with('-') {
                    out.push_str("> ");
                } else if c == '-' && !joint_punct {
                    out.push_str(" -");
                } else {
                    out.push(c);
                }
                after_word = false;
                joint_punct = punct.spacing() == Spacing::Joint;
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    proc_macro2::Delimiter::Parenthesis => ("(", ")"),
                    proc_macro2::Delimiter::Bracket => ("[", "]"),
                    proc_macro2::Delimiter::Brace => ("{", "}"),
                    proc_macro2::Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(group.stream(), out);
                out.push_str(close);
                after_word = false;
                joint_punct = false;
            }
            TokenTree::Literal(literal) => {
                if after_word {
                    out.push(' ');
                }
                out.push_str(&literal.to_string());
                after_word = false;
                joint_punct = false;
            }
        }
    }
}

/// Whether `tokens` name one of `names`, a lifetime, `impl` or `Self`: none of which a
/// `static` can name.
pub(crate) fn mentions(tokens: TokenStream, names: &[String]) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => {
            let text = ident.to_string();
            text == "impl" || text == "Self" || names.contains(&text)
        }
        TokenTree::Punct(p) => p.as_char() == '\'',
        TokenTree::Group(group) => mentions(group.stream(), names),
        TokenTree::Literal(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_as_written() {
        for text in [
            "Option<&'static str>",
            "Vec<u8>",
            "BTreeMap<Backend, u64>",
            "[u8; 4]",
            "std::time::Duration",
            "&'a mut T",
        ] {
            let ty: syn::Type = syn::parse_str(text).unwrap();
            assert_eq!(type_text(&ty), text);
        }
    }
}

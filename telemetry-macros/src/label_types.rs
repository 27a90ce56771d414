//! The type of each label value, seen from the attribute, so the call site can list every
//! value the label can take before the program runs (the manifest's closed world).
//!
//! A type is written (`labels(first_page: bool = page == 0)`) or seen: a parameter of the
//! function (`labels(backend = backend)`), a string literal, a comparison or `!`/`&&`/`||`
//! (a `bool`), a suffixed integer (`7u8`), an enum variant (`Backend::Sqlite`), or a constructor call
//! (`Bounded::<599>::new(code)`, `Pow2Bucket::new(n)`). Anything else must be written.

use crate::attr::Label;
use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::{BinOp, Expr, ExprLit, FnArg, Lit, Pat, Signature, Type, UnOp};

/// What the call site records about a label's values.
pub(crate) enum LabelKind {
    /// A string literal: its one value.
    Literal(syn::LitStr),
    /// A value of this type; `deref` if the parameter is a reference to it.
    Typed { ty: Box<Type>, deref: bool },
    /// A type that names the function's generic parameters: refused by [`kind`], since a
    /// `static` cannot name it and its values could not be listed before the program runs.
    Generic,
}

/// The label's kind, or an error that says to write the type.
pub(crate) fn kind(label: &Label, sig: &Signature) -> Result<LabelKind, syn::Error> {
    let kind = match &label.ty {
        Some(ty) => checked(ty.clone(), false, sig),
        None => infer(&label.value, sig).ok_or_else(|| not_seen(label))?,
    };
    if let LabelKind::Typed { ty, .. } = &kind
        && let Some(message) = crate::refused_labels::refusal(&label.name.to_string(), ty)
    {
        // At the type where it is written (the attribute or the parameter), else at the value.
        return Err(match &label.value {
            Expr::Lit(_) => syn::Error::new_spanned(&label.value, message),
            _ => syn::Error::new_spanned(ty, message),
        });
    }
    if let LabelKind::Generic = kind {
        let name = &label.name;
        return Err(syn::Error::new_spanned(
            label
                .ty
                .as_ref()
                .map_or_else(|| label.value.to_token_stream(), ToTokens::to_token_stream),
            format!(
                "the type of label `{name}` names a generic parameter of the function, so its \
                 values cannot be listed before the program runs: convert the value to a \
                 concrete label type, `labels({name}: MyKind = MyKind::from(..))`"
            ),
        ));
    }
    Ok(kind)
}

/// The error for a label whose type the attribute cannot see.
fn not_seen(label: &Label) -> syn::Error {
    let name = &label.name;
    syn::Error::new_spanned(
        &label.value,
        format!(
            "the type of label `{name}` cannot be seen from the attribute: write it, \
             `labels({name}: Type = ...)`, so that the manifest lists its values before the \
             program runs"
        ),
    )
}

fn checked(ty: Type, deref: bool, sig: &Signature) -> LabelKind {
    if names_generics(ty.to_token_stream(), sig) {
        LabelKind::Generic
    } else {
        LabelKind::Typed {
            ty: Box::new(ty),
            deref,
        }
    }
}

fn bool_type() -> Type {
    syn::parse_quote!(bool)
}

fn infer(expr: &Expr, sig: &Signature) -> Option<LabelKind> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Some(LabelKind::Literal(text.clone())),
        Expr::Lit(ExprLit {
            lit: Lit::Bool(_), ..
        }) => Some(checked(bool_type(), false, sig)),
        // `7u8`: the suffix is the type.
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) if !int.suffix().is_empty() => {
            Some(checked(syn::parse_str(int.suffix()).ok()?, false, sig))
        }
        Expr::Binary(binary)
            if matches!(
                binary.op,
                BinOp::Eq(_)
                    | BinOp::Ne(_)
                    | BinOp::Lt(_)
                    | BinOp::Le(_)
                    | BinOp::Gt(_)
                    | BinOp::Ge(_)
                    | BinOp::And(_)
                    | BinOp::Or(_)
            ) =>
        {
            Some(checked(bool_type(), false, sig))
        }
        Expr::Unary(unary) if matches!(unary.op, UnOp::Not(_)) => match infer(&unary.expr, sig)? {
            LabelKind::Typed { ty, .. } if ty.to_token_stream().to_string() == "bool" => {
                Some(checked(*ty, false, sig))
            }
            _ => None,
        },
        Expr::Paren(inner) => infer(&inner.expr, sig),
        Expr::Group(inner) => infer(&inner.expr, sig),
        Expr::Path(path) if path.qself.is_none() => {
            let segments = &path.path.segments;
            if let Some(ident) = path.path.get_ident() {
                return parameter_type(ident, sig);
            }
            // `Enum::Variant`: the enum.
            let last = segments.last()?;
            let variant = last.ident.to_string();
            if segments.len() >= 2 && variant.starts_with(|c: char| c.is_ascii_uppercase()) {
                let mut enum_path = path.path.clone();
                enum_path.segments.pop();
                let enum_path = strip_trailing_separator(enum_path);
                return Some(checked(syn::parse2(enum_path).ok()?, false, sig));
            }
            None
        }
        // `Type::new(..)`, `Type::signed(..)`, `Type::of(..)`: the type.
        Expr::Call(call) => {
            let Expr::Path(func) = &*call.func else {
                return None;
            };
            let last = func.path.segments.last()?;
            if func.qself.is_some()
                || func.path.segments.len() < 2
                || !matches!(last.ident.to_string().as_str(), "new" | "signed" | "of")
            {
                return None;
            }
            let mut type_path = func.path.clone();
            type_path.segments.pop();
            let type_path = strip_trailing_separator(type_path);
            Some(checked(syn::parse2(type_path).ok()?, false, sig))
        }
        _ => None,
    }
}

fn strip_trailing_separator(path: syn::Path) -> TokenStream {
    let mut tokens: Vec<TokenTree> = path.into_token_stream().into_iter().collect();
    while matches!(tokens.last(), Some(TokenTree::Punct(p)) if p.as_char() == ':') {
        tokens.pop();
    }
    tokens.into_iter().collect()
}

/// The type of the function parameter `ident`, without a leading reference.
fn parameter_type(ident: &syn::Ident, sig: &Signature) -> Option<LabelKind> {
    sig.inputs.iter().find_map(|arg| {
        let FnArg::Typed(typed) = arg else {
            return None;
        };
        let Pat::Ident(pat) = &*typed.pat else {
            return None;
        };
        if pat.ident != *ident {
            return None;
        }
        match &*typed.ty {
            Type::Reference(reference) => Some(checked((*reference.elem).clone(), true, sig)),
            ty => Some(checked(ty.clone(), false, sig)),
        }
    })
}

/// Whether `tokens` name a generic parameter of the function, a lifetime, `impl` or `Self`
/// (none of which a `static` can name).
fn names_generics(tokens: TokenStream, sig: &Signature) -> bool {
    let generics: Vec<String> = sig
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) => Some(t.ident.to_string()),
            syn::GenericParam::Const(c) => Some(c.ident.to_string()),
            syn::GenericParam::Lifetime(_) => None,
        })
        .chain(std::iter::once("Self".to_owned()))
        .collect();
    crate::type_text::mentions(tokens, &generics)
}

impl LabelKind {
    /// The value expression the hot path records, checked against the type the call site
    /// lists.
    pub(crate) fn value(&self, value: &Expr) -> TokenStream {
        match self {
            LabelKind::Literal(text) => {
                quote!(::telemetry_core::__private::LiteralLabel(#text))
            }
            LabelKind::Typed { ty, deref: false } => {
                quote!(::telemetry_core::__private::label_as::<#ty>(&(#value)))
            }
            LabelKind::Typed { ty, deref: true } => {
                quote!(::telemetry_core::__private::label_as::<#ty>(&*(#value)))
            }
            LabelKind::Generic => unreachable!("`kind` refuses generic label types"),
        }
    }

    /// The call site's description of the label's values, as source text.
    pub(crate) fn domain(&self) -> String {
        match self {
            LabelKind::Literal(text) => format!(
                "::telemetry_core::__private::LabelDomain::literal(&[{}])",
                text.to_token_stream()
            ),
            LabelKind::Typed { ty, .. } => format!(
                "::telemetry_core::__private::LabelDomain::of::<{}>()",
                ty.to_token_stream()
            ),
            LabelKind::Generic => unreachable!("`kind` refuses generic label types"),
        }
    }
}

/// The error type of an `errors` site, as source text. Named as `E` of
/// `Result<T, E>`, or through the alias with its success type made `()` (`io::Result<T>` as
/// `<io::Result<()> as ResultError>::Error`), so that neither `T` (which may borrow, name
/// `Self` or be an `impl Trait`) nor the function's generics reach the `static`. `None` when
/// the error type names a generic parameter or `Self`.
pub(crate) fn error_type(ret: &Type, sig: &Signature) -> Option<String> {
    let Type::Path(path) = ret else {
        return None;
    };
    let last = path.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    let error = match types.as_slice() {
        [_, error, ..] => error.to_token_stream().to_string(),
        [_] => {
            let mut alias = path.clone();
            if let Some(syn::PathArguments::AngleBracketed(args)) = alias
                .path
                .segments
                .last_mut()
                .map(|last| &mut last.arguments)
            {
                for arg in &mut args.args {
                    if let syn::GenericArgument::Type(t) = arg {
                        *t = syn::parse_quote!(());
                    }
                }
            }
            format!(
                "<{} as ::telemetry_core::__private::ResultError>::Error",
                alias.to_token_stream()
            )
        }
        [] => return None,
    };
    let tokens: TokenStream = error.parse().ok()?;
    (!names_generics(tokens, sig)).then_some(error)
}

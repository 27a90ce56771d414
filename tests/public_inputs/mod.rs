//! The library's public inputs, read from its source: every public function or method that
//! takes text, a number, a path, a callback or a value of a guard trait. The canary test feeds
//! each of them (or says why one cannot reach an output), so a new input cannot be added
//! without a canary case.

use std::path::{Path, PathBuf};

/// What kind of value an input takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Takes {
    Text,
    Number,
    /// A type of a guard trait (`LabelValue`, `Anonymize`, `Section`, `Event`, `ErrorKind`,
    /// `Sink`) or a callback whose value is recorded.
    Guarded,
}

/// One public input: `Type::method` (or `module::function`) and what it takes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Input {
    pub name: String,
    pub takes: Vec<Takes>,
}

const GUARDS: &[&str] = &[
    "LabelValue",
    "LabelSet",
    "Anonymize",
    "Section",
    "Event",
    "ErrorKind",
    "Sink",
    "HashInput",
    "Fn",
    "FnOnce",
    "FnMut",
];

fn text_of(tokens: impl quote_like::ToText) -> String {
    tokens.text()
}

/// Minimal token-to-text, without depending on `quote`.
mod quote_like {
    pub trait ToText {
        fn text(&self) -> String;
    }
    impl ToText for &syn::Type {
        fn text(&self) -> String {
            let mut out = String::new();
            write_type(self, &mut out);
            out
        }
    }
    fn write_type(ty: &syn::Type, out: &mut String) {
        match ty {
            syn::Type::Reference(r) => {
                out.push('&');
                write_type(&r.elem, out);
            }
            syn::Type::Path(p) => {
                for seg in &p.path.segments {
                    out.push_str(&seg.ident.to_string());
                    if let syn::PathArguments::AngleBracketed(args) = &seg.arguments {
                        out.push('<');
                        for arg in &args.args {
                            if let syn::GenericArgument::Type(t) = arg {
                                write_type(t, out);
                                out.push(',');
                            }
                        }
                        out.push('>');
                    }
                    out.push_str("::");
                }
            }
            syn::Type::ImplTrait(i) => {
                out.push_str("impl ");
                for bound in &i.bounds {
                    if let syn::TypeParamBound::Trait(t) = bound {
                        for seg in &t.path.segments {
                            out.push_str(&seg.ident.to_string());
                            out.push_str("::");
                            if let syn::PathArguments::AngleBracketed(args) = &seg.arguments {
                                for arg in &args.args {
                                    if let syn::GenericArgument::Type(t) = arg {
                                        write_type(t, out);
                                    }
                                }
                            }
                        }
                        out.push('+');
                    }
                }
            }
            syn::Type::Slice(s) => {
                out.push('[');
                write_type(&s.elem, out);
                out.push(']');
            }
            syn::Type::Array(a) => {
                out.push('[');
                write_type(&a.elem, out);
                out.push(']');
            }
            syn::Type::Tuple(t) => {
                out.push('(');
                for e in &t.elems {
                    write_type(e, out);
                    out.push(',');
                }
                out.push(')');
            }
            _ => out.push('?'),
        }
    }
}

fn is_hidden(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        (a.path().is_ident("doc") || a.path().is_ident("cfg"))
            && matches!(&a.meta, syn::Meta::List(l) if {
                let t = l.tokens.to_string();
                t == "hidden" || t == "test"
            })
    })
}

fn is_pub(vis: &syn::Visibility) -> bool {
    matches!(vis, syn::Visibility::Public(_))
}

/// What a parameter of type `ty` takes, given the function's generic bounds.
fn classify(ty: &syn::Type, generic_bounds: &[(String, String)]) -> Option<Takes> {
    let text = text_of(ty);
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    if GUARDS.iter().any(|g| has(g)) {
        return Some(Takes::Guarded);
    }
    for (param, bounds) in generic_bounds {
        if has(param) && GUARDS.iter().any(|g| bounds.split("::").any(|b| b == *g)) {
            return Some(Takes::Guarded);
        }
    }
    if ["str", "String", "Path", "PathBuf", "OsStr", "OsString"]
        .iter()
        .any(|w| has(w))
    {
        return Some(Takes::Text);
    }
    if [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64",
    ]
    .iter()
    .any(|w| has(w))
    {
        return Some(Takes::Number);
    }
    None
}

fn generic_bounds(generics: &syn::Generics) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for param in generics.type_params() {
        let mut bounds = String::new();
        for bound in &param.bounds {
            if let syn::TypeParamBound::Trait(t) = bound {
                for seg in &t.path.segments {
                    bounds.push_str(&seg.ident.to_string());
                    bounds.push_str("::");
                }
            }
        }
        out.push((param.ident.to_string(), bounds));
    }
    out
}

fn inputs_of(owner: &str, sig: &syn::Signature, outer: &[(String, String)], out: &mut Vec<Input>) {
    let mut bounds = outer.to_vec();
    bounds.extend(generic_bounds(&sig.generics));
    let mut takes: Vec<Takes> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(t) => classify(&t.ty, &bounds),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    takes.sort();
    takes.dedup();
    if !takes.is_empty() {
        out.push(Input {
            name: format!("{owner}::{}", sig.ident),
            takes,
        });
    }
}

fn self_type_name(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

fn walk(items: &[syn::Item], module: &str, hidden_types: &[String], out: &mut Vec<Input>) {
    for item in items {
        match item {
            syn::Item::Fn(f) if is_pub(&f.vis) && !is_hidden(&f.attrs) => {
                inputs_of(module, &f.sig, &[], out);
            }
            syn::Item::Impl(i) if !is_hidden(&i.attrs) => {
                let Some(owner) = self_type_name(&i.self_ty) else {
                    continue;
                };
                if hidden_types.contains(&owner) {
                    continue;
                }
                let outer = generic_bounds(&i.generics);
                let trait_impl = i.trait_.is_some();
                for impl_item in &i.items {
                    if let syn::ImplItem::Fn(f) = impl_item
                        && (trait_impl || is_pub(&f.vis))
                        && !is_hidden(&f.attrs)
                        && !trait_impl
                    {
                        inputs_of(&owner, &f.sig, &outer, out);
                    }
                }
            }
            syn::Item::Mod(m) if !is_hidden(&m.attrs) && m.ident != "__private" => {
                if let Some((_, items)) = &m.content {
                    walk(items, &m.ident.to_string(), hidden_types, out);
                }
            }
            _ => {}
        }
    }
}

fn hidden_types_in(items: &[syn::Item], out: &mut Vec<String>) {
    for item in items {
        match item {
            syn::Item::Struct(s) if is_hidden(&s.attrs) || !is_pub(&s.vis) => {
                out.push(s.ident.to_string())
            }
            syn::Item::Enum(e) if is_hidden(&e.attrs) || !is_pub(&e.vis) => {
                out.push(e.ident.to_string())
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    hidden_types_in(items, out);
                }
            }
            _ => {}
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every public input of `telemetry-core`, by name.
pub fn public_inputs() -> Vec<Input> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("telemetry-core/src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let parsed: Vec<(String, syn::File)> = files
        .iter()
        // The macros' support module and the fuzz targets' (both `#[doc(hidden)]`), not public
        // inputs.
        .filter(|path| {
            path.file_stem()
                .is_some_and(|s| s != "__private" && s != "fuzzing")
        })
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            (module, syn::parse_file(&text).unwrap())
        })
        .collect();
    let mut hidden = Vec::new();
    for (_, file) in &parsed {
        hidden_types_in(&file.items, &mut hidden);
    }
    let mut out = Vec::new();
    for (module, file) in &parsed {
        walk(&file.items, module, &hidden, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

//! Label types refused where the attribute or `counter!` can see them: text, addresses,
//! wide integers, floats and `Pii`. The compiler would refuse them too (they do not implement
//! `LabelValue`), but once per place the type is used, and without saying what to write;
//! here it is one error, at the type, that does.

use syn::{GenericArgument, PathArguments, Type};

/// Why a value of `ty` cannot be a label, with what to use instead; `None` if the type is not
/// one of the refused ones (the compiler then checks `LabelValue`).
pub(crate) fn refusal(label: &str, ty: &Type) -> Option<String> {
    let shown = crate::type_text::type_text(ty);
    let reason = reason(ty)?;
    Some(format!(
        "label `{label}` cannot be of type `{shown}`: {reason}"
    ))
}

fn reason(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Reference(reference) => reason(&reference.elem),
        Type::Paren(inner) => reason(&inner.elem),
        Type::Group(inner) => reason(&inner.elem),
        Type::Path(path) if path.qself.is_none() => {
            let segments = &path.path.segments;
            let last = segments.last()?;
            let first = segments.first()?.ident.to_string();
            let standard = segments.len() == 1
                || matches!(first.as_str(), "std" | "core" | "alloc" | "telemetry_core");
            if !standard {
                return None;
            }
            match last.ident.to_string().as_str() {
                "str" | "String" | "char" | "OsStr" | "OsString" | "PathBuf" | "CString"
                | "CStr" => Some(TEXT),
                // A smart pointer or `Cow` of text.
                "Box" | "Rc" | "Arc" | "Cow"
                    if type_arguments(&last.arguments).any(|t| reason(t) == Some(TEXT)) =>
                {
                    Some(TEXT)
                }
                "IpAddr" | "Ipv4Addr" | "Ipv6Addr" | "SocketAddr" | "SocketAddrV4"
                | "SocketAddrV6" => Some(ADDRESS),
                "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64"
                | "i128" | "isize" => Some(WIDE_INTEGER),
                "f32" | "f64" => Some(FLOAT),
                "Pii" => Some(PERSONAL),
                _ => None,
            }
        }
        _ => None,
    }
}

fn type_arguments(arguments: &PathArguments) -> impl Iterator<Item = &Type> {
    let args = match arguments {
        PathArguments::AngleBracketed(args) => Some(args.args.iter()),
        _ => None,
    };
    args.into_iter().flatten().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

const TEXT: &str = "text may carry personal data and takes unbounded values. Use a string \
     literal, an enum with `#[derive(LabelValue)]` (its variants are the values), or a keyed \
     hash, `HashedLabel::new(..)`";
const ADDRESS: &str = "an address identifies a machine or a person. Leave it out, or label \
     what the address tells (`labels(loopback = peer.is_loopback())`)";
const WIDE_INTEGER: &str = "a wide integer can carry an identifier (an IPv4 address fits a \
     `u32`). Declare its range with `Bounded<MAX>`, or bucket it with `Pow2Bucket`";
const FLOAT: &str = "a measured number belongs in a histogram, not in a label. Record it \
     with `#[timed]` or `histogram!`, or label a bucket (`Pow2Bucket`)";
const PERSONAL: &str = "`Pii` marks personal data, which never leaves the machine as a label. \
     Leave it out, or hash it with `HashedLabel::new(..)`";

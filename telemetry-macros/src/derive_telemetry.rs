//! `#[derive(Telemetry)]`: the PII guard for report sections and events.
//!
//! Each field is emitted through `Anonymize` (numbers rounded, enums by name, nested sections),
//! hashed, vouched for as verbatim, or skipped. A field that is PII (marked `#[pii]` or
//! `#[telemetry(pii)]`, of type `Pii<..>`, or named like personal data) must be skipped or
//! hashed; every offending field of an item is reported at once, at the field.

use crate::ast::doc_summary;
use crate::pii_names::pii_word;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

pub(crate) fn derive(input: DeriveInput) -> TokenStream {
    match expand(&input) {
        Ok(tokens) => tokens,
        Err(error) => error.to_compile_error(),
    }
}

/// How a field leaves the machine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Anonymized,
    Hash,
    HashUrl,
    Verbatim,
    Skip,
}

struct FieldAttrs {
    mode: Mode,
    mode_span: Option<proc_macro2::Span>,
    marked_pii: bool,
    not_pii: Option<LitStr>,
    verbatim: Option<LitStr>,
    rename: Option<LitStr>,
}

fn push(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

fn field_attrs(field: &syn::Field, errors: &mut Option<syn::Error>) -> FieldAttrs {
    let mut out = FieldAttrs {
        mode: Mode::Anonymized,
        mode_span: None,
        marked_pii: false,
        not_pii: None,
        verbatim: None,
        rename: None,
    };
    for attr in &field.attrs {
        if attr.path().is_ident("pii") {
            out.marked_pii = true;
            continue;
        }
        if !attr.path().is_ident("telemetry") {
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let mut set_mode = |mode: Mode| {
                if out.mode != Mode::Anonymized && out.mode != mode {
                    push(
                        errors,
                        meta.error("a field is either skipped, hashed or verbatim: keep one"),
                    );
                }
                out.mode = mode;
                out.mode_span = Some(meta.path.span());
            };
            match key.as_str() {
                "skip" => set_mode(Mode::Skip),
                "hash" => set_mode(Mode::Hash),
                "hash_url" => set_mode(Mode::HashUrl),
                "pii" => out.marked_pii = true,
                "verbatim" => {
                    set_mode(Mode::Verbatim);
                    out.verbatim = Some(reason(&meta, "verbatim")?);
                }
                "not_pii" => out.not_pii = Some(reason(&meta, "not_pii")?),
                "rename" => out.rename = Some(meta.value()?.parse()?),
                _ => {
                    return Err(meta.error(
                        "unknown key: `#[telemetry(...)]` on a field accepts `skip`, `hash`, \
                         `hash_url`, `pii`, `not_pii = \"reason\"`, `verbatim = \"reason\"` \
                         and `rename = \"...\"`",
                    ));
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            push(errors, e);
        }
    }
    out
}

/// A non-empty reason string.
fn reason(meta: &syn::meta::ParseNestedMeta<'_>, key: &str) -> syn::Result<LitStr> {
    let lit: LitStr = meta.value()?.parse()?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{key}` needs a reason, e.g. `{key} = \"a count, not an address\"`"),
        ));
    }
    Ok(lit)
}

/// `Pii<..>` (the last path segment), wherever it is written from.
fn is_pii_type(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Pii"),
        syn::Type::Reference(r) => is_pii_type(&r.elem),
        _ => false,
    }
}

/// What an item is: a report section (`section = ".."`), an event (`event = ".."`), a
/// product's whole payload (`payload = ".."`), or a type nested in one (none of them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Section,
    Event,
    Payload,
    Nested,
}

/// The item's name and kind: `#[telemetry(section = "..")]`, `#[telemetry(event = "..")]`,
/// `#[telemetry(payload = "..")]`, or the type's own name for a nested type.
fn section_name(input: &DeriveInput, errors: &mut Option<syn::Error>) -> (String, ItemKind) {
    let mut name = input.ident.to_string();
    let mut kind = ItemKind::Nested;
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("telemetry"))
    {
        let result = attr.parse_nested_meta(|meta| {
            let (what, example, item) = if meta.path.is_ident("section") {
                (
                    "a section",
                    "section = \"configuration\"",
                    ItemKind::Section,
                )
            } else if meta.path.is_ident("event") {
                ("an event", "event = \"flow_created\"", ItemKind::Event)
            } else if meta.path.is_ident("payload") {
                ("a payload", "payload = \"eventstoredb\"", ItemKind::Payload)
            } else if meta.path.is_ident("crate") {
                // Read by `crate_path::of_item`.
                meta.value()?.parse::<LitStr>()?;
                return Ok(());
            } else {
                return Err(meta.error(
                    "unknown key: `#[telemetry(...)]` on an item accepts `section = \"...\"`, \
                     `event = \"...\"`, `payload = \"...\"` or `crate = \"...\"`",
                ));
            };
            let lit = meta.value()?.parse::<LitStr>()?;
            // An event's name becomes the report's `trigger`, `event:{name}`.
            if !telemetry_rules::trigger_name(&lit.value()) {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "{what} name is 1 to 64 lower-case ASCII letters, digits, `_` and `.`, \
                         starting with a letter, e.g. `{example}`"
                    ),
                ));
            }
            name = lit.value();
            kind = item;
            Ok(())
        });
        if let Err(e) = result {
            push(errors, e);
        }
    }
    (name, kind)
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = None;
    let (section, kind) = section_name(input, &mut errors);
    let top_level = kind == ItemKind::Section;
    let is_event = kind == ItemKind::Event;
    let is_payload = kind == ItemKind::Payload;
    let generic_names: Vec<String> = input
        .generics
        .type_params()
        .map(|p| p.ident.to_string())
        .collect();
    let description = doc_summary(&input.attrs);
    let name = &input.ident;
    let (body, schema_fields) = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => struct_body(fields, &generic_names, &mut errors),
            // An event (or section) without data: an empty object.
            Fields::Unit => (
                quote!(::telemetry_core::__private::serde_json::Value::Object(
                    ::telemetry_core::__private::serde_json::Map::new()
                )),
                Vec::new(),
            ),
            _ => {
                return Err(syn::Error::new_spanned(
                    name,
                    "#[derive(Telemetry)] needs named fields: each field's name is its key in the report",
                ));
            }
        },
        Data::Enum(data) => enum_body(data, &mut errors),
        Data::Union(_) => {
            return Err(syn::Error::new_spanned(
                name,
                "#[derive(Telemetry)] is for structs and enums",
            ));
        }
    };
    if let Some(errors) = errors {
        return Err(errors);
    }
    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param
            .bounds
            .push(syn::parse_quote!(::telemetry_core::anonymize::Anonymize));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let event_impl = match kind {
        ItemKind::Event => quote! {
            impl #impl_generics ::telemetry_core::Event for #name #ty_generics #where_clause {
                const NAME: &'static str = #section;
                fn __declaration() -> ::core::option::Option<&'static ::telemetry_core::manifest::SectionSchema> {
                    ::core::option::Option::Some(&__TELEMETRY_SECTION)
                }
            }
        },
        ItemKind::Section => quote! {
            impl #impl_generics ::telemetry_core::Section for #name #ty_generics #where_clause {
                const NAME: &'static str = #section;
                fn __declaration() -> ::core::option::Option<&'static ::telemetry_core::manifest::SectionSchema> {
                    ::core::option::Option::Some(&__TELEMETRY_SECTION)
                }
            }
        },
        ItemKind::Payload => quote! {
            impl #impl_generics ::telemetry_core::Payload for #name #ty_generics #where_clause {
                const NAME: &'static str = #section;
                fn __declaration() -> ::core::option::Option<&'static ::telemetry_core::manifest::SectionSchema> {
                    ::core::option::Option::Some(&__TELEMETRY_SECTION)
                }
            }
        },
        ItemKind::Nested => quote!(),
    };
    Ok(quote! {
        #[allow(unused_qualifications)]
        const _: () = {
            impl #impl_generics ::telemetry_core::anonymize::Anonymize for #name #ty_generics #where_clause {
                const SAFE_BECAUSE: &'static str = "derived: each field by its rule in the manifest";
                fn anonymize(
                    &self,
                    __telemetry_anonymizer: &::telemetry_core::anonymize::Anonymizer,
                ) -> ::telemetry_core::__private::serde_json::Value {
                    #body
                }
            }

            #event_impl

            #[::telemetry_core::__private::linkme::distributed_slice(::telemetry_core::__private::SECTIONS)]
            #[linkme(crate = ::telemetry_core::__private::linkme)]
            static __TELEMETRY_SECTION: ::telemetry_core::manifest::SectionSchema =
                ::telemetry_core::manifest::SectionSchema {
                    name: #section,
                    top_level: #top_level,
                    event: #is_event,
                    payload: #is_payload,
                    type_name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    description: #description,
                    fields: &[#(#schema_fields),*],
                };
        };
    })
}

fn struct_body(
    fields: &syn::FieldsNamed,
    generic_names: &[String],
    errors: &mut Option<syn::Error>,
) -> (TokenStream, Vec<TokenStream>) {
    let mut inserts = Vec::new();
    let mut schema = Vec::new();
    for field in &fields.named {
        let Some(ident) = &field.ident else { continue };
        let attrs = field_attrs(field, errors);
        let key = attrs.rename.as_ref().map_or_else(
            || ident.to_string().trim_start_matches("r#").to_owned(),
            LitStr::value,
        );
        let hashed = matches!(attrs.mode, Mode::Hash | Mode::HashUrl);
        let leaves = attrs.mode != Mode::Skip;
        let pii_type = is_pii_type(&field.ty);
        let pii_name = pii_word(&ident.to_string())
            .or_else(|| pii_word(&key))
            .filter(|_| attrs.not_pii.is_none());
        if leaves && !hashed {
            let why = if attrs.marked_pii {
                Some("is marked #[pii]".to_owned())
            } else if pii_type {
                Some("is `Pii<..>`".to_owned())
            } else {
                pii_name
                    .map(|word| format!("looks like personal data (its name contains `{word}`)"))
            };
            if let Some(why) = why {
                let vouch = if attrs.marked_pii || pii_type {
                    String::new()
                } else {
                    ", or #[telemetry(not_pii = \"why\")] if it is not personal data".to_owned()
                };
                push(
                    errors,
                    syn::Error::new_spanned(
                        ident,
                        format!(
                            "field `{ident}` {why}: it may not be emitted as it is; add \
                             #[telemetry(skip)] to leave it out or #[telemetry(hash)] to emit \
                             a keyed hash{vouch}"
                        ),
                    ),
                );
            }
        }
        let ty = &field.ty;
        let value = quote_spanned!(ty.span()=> &self.#ident);
        let emitted = match attrs.mode {
            Mode::Skip => None,
            Mode::Hash => Some(quote_spanned! {ty.span()=>
                ::telemetry_core::anonymize::HashInput::hash_with(#value, &|__t| __telemetry_anonymizer.hash_name(__t))
            }),
            Mode::HashUrl => Some(quote_spanned! {ty.span()=>
                ::telemetry_core::anonymize::HashInput::hash_with(#value, &|__t| __telemetry_anonymizer.hash_url(__t))
            }),
            Mode::Verbatim => Some(quote_spanned! {ty.span()=>
                ::telemetry_core::__private::verbatim(#value)
            }),
            Mode::Anonymized => Some(quote_spanned! {ty.span()=>
                ::telemetry_core::__private::anonymized(#value, __telemetry_anonymizer)
            }),
        };
        if let Some(emitted) = emitted {
            inserts.push(quote! {
                __telemetry_map.insert(<::std::string::String as ::std::convert::From<&str>>::from(#key), #emitted);
            });
        }
        let rule = match attrs.mode {
            Mode::Anonymized => quote!(Anonymized),
            Mode::Hash => quote!(Hashed),
            Mode::HashUrl => quote!(HashedUrl),
            Mode::Verbatim => {
                let reason = attrs
                    .verbatim
                    .as_ref()
                    .map(LitStr::value)
                    .unwrap_or_default();
                quote!(Verbatim(#reason))
            }
            Mode::Skip => quote!(Skipped),
        };
        let not_pii = match &attrs.not_pii {
            Some(reason) => quote!(::core::option::Option::Some(#reason)),
            None => quote!(::core::option::Option::None),
        };
        let pii = attrs.marked_pii
            || pii_type
            || pii_word(&ident.to_string()).is_some()
            || pii_word(&key).is_some();
        let type_name = crate::type_text::type_text(ty);
        // Why the type's values are safe, from its `Anonymize` implementation (a `static`
        // cannot name the item's generic parameters: those say nothing here).
        let safe_because = if attrs.mode == Mode::Anonymized
            && !crate::type_text::mentions(quote!(#ty), generic_names)
        {
            quote!({
                fn __reason() -> &'static str {
                    #[allow(unused_imports)]
                    use ::telemetry_core::__private::{NoAnonymize as _, ViaAnonymize as _};
                    (&::telemetry_core::__private::Probe::<#ty>::new()).safe_because()
                }
                __reason
            })
        } else {
            quote!(::telemetry_core::__private::no_reason)
        };
        let description = doc_summary(&field.attrs);
        schema.push(quote! {
            ::telemetry_core::manifest::FieldSchema {
                name: #key,
                type_name: #type_name,
                description: #description,
                rule: ::telemetry_core::manifest::FieldRule::#rule,
                personal: #pii,
                not_pii: #not_pii,
                safe_because: #safe_because,
            }
        });
    }
    let body = quote! {
        let mut __telemetry_map = ::telemetry_core::__private::serde_json::Map::new();
        #(#inserts)*
        ::telemetry_core::__private::serde_json::Value::Object(__telemetry_map)
    };
    (body, schema)
}

fn enum_body(
    data: &syn::DataEnum,
    errors: &mut Option<syn::Error>,
) -> (TokenStream, Vec<TokenStream>) {
    let mut arms = Vec::new();
    let mut schema = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            push(
                errors,
                syn::Error::new_spanned(
                    variant,
                    "#[derive(Telemetry)] on an enum emits the variant's name, so variants have \
                     no fields; put the data in a struct with its own #[derive(Telemetry)]",
                ),
            );
            continue;
        }
        let ident = &variant.ident;
        let text = ident.to_string();
        arms.push(quote!(Self::#ident => #text));
        let description = doc_summary(&variant.attrs);
        schema.push(quote! {
            ::telemetry_core::manifest::FieldSchema {
                name: #text,
                type_name: "variant",
                description: #description,
                rule: ::telemetry_core::manifest::FieldRule::Variant,
                personal: false,
                not_pii: ::core::option::Option::None,
                safe_because: ::telemetry_core::__private::no_reason,
            }
        });
    }
    let body = quote! {
        let __telemetry_text: &str = match self { #(#arms,)* };
        ::telemetry_core::__private::serde_json::Value::String(<::std::string::String as ::std::convert::From<&str>>::from(__telemetry_text))
    };
    (body, schema)
}

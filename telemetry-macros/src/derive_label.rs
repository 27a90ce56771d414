//! `#[derive(LabelValue)]`: an enum without fields becomes a label value (its variant names),
//! and may leave the machine as that name.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr};

pub(crate) fn derive(input: DeriveInput) -> TokenStream {
    match expand(&input) {
        Ok(tokens) => tokens,
        Err(error) => error.to_compile_error(),
    }
}

/// The variant's `#[label(rename = "...")]`, or its name.
fn variant_text(variant: &syn::Variant) -> syn::Result<String> {
    let mut text = variant.ident.to_string();
    for attr in variant.attrs.iter().filter(|a| a.path().is_ident("label")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                text = meta.value()?.parse::<LitStr>()?.value();
                Ok(())
            } else {
                Err(meta.error("unknown key: `#[label(...)]` accepts `rename = \"...\"`"))
            }
        })?;
    }
    Ok(text)
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(LabelValue)] is for enums without fields: a label value must come from a \
             small closed set; for a struct, label by one of its enum fields",
        ));
    };
    let mut errors: Option<syn::Error> = None;
    let mut arms = Vec::new();
    let mut texts = Vec::new();
    for (index, variant) in data.variants.iter().enumerate() {
        if !matches!(variant.fields, Fields::Unit) {
            let e = syn::Error::new_spanned(
                variant,
                "a label value's variants have no fields: fields could carry personal data or \
                 unbounded values; move them out of the label enum",
            );
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
            continue;
        }
        let text = match variant_text(variant) {
            Ok(text) => text,
            Err(e) => {
                match &mut errors {
                    Some(all) => all.combine(e),
                    None => errors = Some(e),
                }
                continue;
            }
        };
        let ident = &variant.ident;
        let index = index as u64;
        arms.push(quote!(Self::#ident => (#index, #text)));
        texts.push(text);
    }
    if let Some(errors) = errors {
        return Err(errors);
    }
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #[allow(unused_qualifications)]
        const _: () = {
            impl #impl_generics #name #ty_generics #where_clause {
                #[inline]
                fn __telemetry_label(&self) -> (u64, &'static str) {
                    match self { #(#arms,)* }
                }
            }
            impl #impl_generics ::telemetry_core::LabelValue for #name #ty_generics #where_clause {
                const SAFE_BECAUSE: &'static str = "derived: one of the enum's variant names";
                #[inline]
                fn label_key(&self) -> u64 {
                    self.__telemetry_label().0
                }
                fn label_text(&self) -> ::std::borrow::Cow<'static, str> {
                    ::std::borrow::Cow::Borrowed(self.__telemetry_label().1)
                }
                const VALUES: ::telemetry_core::labels::Values =
                    ::telemetry_core::labels::Values::listed(&[#(#texts),*]);
            }
            impl #impl_generics ::telemetry_core::anonymize::Anonymize for #name #ty_generics #where_clause {
                const SAFE_BECAUSE: &'static str = "derived: one of the enum's variant names";
                fn anonymize(
                    &self,
                    _: &::telemetry_core::anonymize::Anonymizer,
                ) -> ::telemetry_core::__private::serde_json::Value {
                    ::telemetry_core::__private::serde_json::Value::String(
                        <::std::string::String as ::std::convert::From<&str>>::from(self.__telemetry_label().1),
                    )
                }
            }
        };
    })
}

/// `#[derive(ErrorKind)]`: each variant's name (or `#[error_kind(rename = "...")]`) is its
/// kind; fields are allowed and never read.
pub(crate) fn derive_error_kind(input: DeriveInput) -> TokenStream {
    let Data::Enum(data) = &input.data else {
        return syn::Error::new_spanned(
            &input.ident,
            "#[derive(ErrorKind)] is for error enums: each variant's name is a kind; for a \
             struct error, implement `telemetry_core::ErrorKind` by hand",
        )
        .to_compile_error();
    };
    let mut arms = Vec::new();
    let mut kinds = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for variant in &data.variants {
        let mut kind = variant.ident.to_string();
        for attr in variant
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("error_kind"))
        {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    kind = meta.value()?.parse::<LitStr>()?.value();
                    Ok(())
                } else {
                    Err(meta.error("unknown key: `#[error_kind(...)]` accepts `rename = \"...\"`"))
                }
            });
            if let Err(e) = result {
                match &mut errors {
                    Some(all) => all.combine(e),
                    None => errors = Some(e),
                }
            }
        }
        let ident = &variant.ident;
        let pattern = match &variant.fields {
            Fields::Unit => quote!(Self::#ident),
            Fields::Unnamed(_) => quote!(Self::#ident(..)),
            Fields::Named(_) => quote!(Self::#ident { .. }),
        };
        arms.push(quote!(#pattern => #kind));
        kinds.push(kind);
    }
    if let Some(errors) = errors {
        return errors.to_compile_error();
    }
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[allow(unused_qualifications)]
        impl #impl_generics ::telemetry_core::ErrorKind for #name #ty_generics #where_clause {
            const SAFE_BECAUSE: &'static str = "derived: one of the error enum's variant names";
            fn error_kind(&self) -> &'static str {
                match self { #(#arms,)* }
            }
            const KINDS: &'static [&'static str] = &[#(#kinds),*];
        }
    }
}

//! How call sites reach the registry: the linker collects every site's `static` into
//! [`CALL_SITES`], which is registered the first time the registry is locked.

use super::CallSite;
use crate::engine::registry::{self, Loader, Loading, SeriesRequest};

/// Every macro call site in the program, gathered at link time.
#[linkme::distributed_slice]
pub static CALL_SITES: [CallSite];

/// Puts a call site's `static` into [`CALL_SITES`]. Used by the macros' expansions.
///
/// On Linux-like and BSD targets it writes the section attribute linkme would write itself
/// (linkme 0.3 names the section there `linkme_` and the slice's name, and marks elements
/// `#[used]`; its `used_linker` feature, which this crate does not enable, would change that),
/// saving each site two `macro_rules!` hops and five `cfg_attr`s at compile time. Elsewhere
/// (macOS, Windows, illumos, whose section names linkme derives differently) it goes through
/// the `macro_rules!` linkme generates for the slice. `tests/registry.rs` checks that sites are
/// collected.
#[cfg(any(
    target_os = "none",
    target_os = "linux",
    target_os = "android",
    target_os = "fuchsia",
    target_os = "psp",
    target_os = "freebsd",
    target_os = "openbsd"
))]
#[doc(hidden)]
#[macro_export]
macro_rules! __call_site {
    ($($item:tt)*) => {
        #[used]
        #[unsafe(link_section = "linkme_CALL_SITES")]
        $($item)*
    };
}

#[cfg(not(any(
    target_os = "none",
    target_os = "linux",
    target_os = "android",
    target_os = "fuchsia",
    target_os = "psp",
    target_os = "freebsd",
    target_os = "openbsd"
)))]
#[doc(hidden)]
#[macro_export]
macro_rules! __call_site {
    ($($item:tt)*) => {
        $crate::__private::CALL_SITES! {
            #![linkme_macro = $crate::__private::CALL_SITES]
            $($item)*
        }
    };
}

/// Registers every call site the linker collected, the first time the registry is locked:
/// unlabeled ones get their storage, labeled ones are declared with their label values.
fn load_call_sites(loading: &mut Loading<'_>) {
    for site in CALL_SITES {
        let meta = site.meta();
        if meta.labels.is_empty() {
            if site.cached().is_none() {
                let storage =
                    loading.register_or_keep_apart(&meta.request(), SeriesRequest::unlabeled());
                site.cache(&storage);
            }
        } else if let Err(error) = loading.declare(
            &meta.request(),
            &SeriesRequest {
                values: Vec::new(),
                possible: site.possible_values(),
                reasons: site.reasons(),
            },
            false,
        ) {
            loading.defer(error.to_string());
        }
    }
}

#[linkme::distributed_slice(registry::LOADERS)]
static CALL_SITE_LOADER: Loader = Loader {
    order: 0,
    load: load_call_sites,
};

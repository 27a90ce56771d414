//! How what the linker collected reaches the registry: each module that collects declarations
//! (macro call sites, plain-API declarations) adds a [`Loader`], run under the registry's lock
//! the first time it is taken, with a [`Loading`] view of the registry.

use super::{Deferred, RegistryError, Request, SeriesRequest, State, Storage};

/// A module that collects declarations at link time (macro call sites, plain-API
/// declarations) and registers them the first time the registry is locked, in `order`. Each
/// such module adds its loader to [`LOADERS`], so the registry depends on none of them.
pub(crate) struct Loader {
    pub(crate) order: u8,
    pub(crate) load: fn(&mut Loading<'_>),
}

/// Every [`Loader`], collected by the linker.
#[linkme::distributed_slice]
pub(crate) static LOADERS: [Loader];

/// The registry while the collected declarations are loaded, under its lock.
pub(crate) struct Loading<'a> {
    pub(super) state: &'a mut State,
    pub(super) deferred: &'a mut Deferred,
}

impl Loading<'_> {
    /// Declares a metric (with the values its labels can take), see [`Registry::declare`].
    pub(crate) fn declare(
        &mut self,
        request: &Request<'_>,
        series: &SeriesRequest,
        callback: bool,
    ) -> Result<(), RegistryError> {
        self.state.declare(request, series, callback)
    }

    /// Registers a metric's one series, see [`Registry::register`].
    pub(crate) fn register(
        &mut self,
        request: &Request<'_>,
        series: SeriesRequest,
    ) -> Result<Storage, RegistryError> {
        self.state.register(request, series, None)
    }

    /// The storage of a series; one that conflicts with an existing metric is kept under
    /// `{name}.conflicting_{kind}` (and the conflict logged), so its values are not lost.
    pub(crate) fn register_or_keep_apart(
        &mut self,
        request: &Request<'_>,
        series: SeriesRequest,
    ) -> Storage {
        self.state
            .register_or_keep_apart(request, series, self.deferred)
    }

    /// A problem to log once the lock is released.
    pub(crate) fn defer(&mut self, line: String) {
        self.deferred.push(line);
    }
}

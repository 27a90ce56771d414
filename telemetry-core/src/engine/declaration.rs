//! The plain API's declarations: one `static` per use of [`crate::counter!`],
//! [`crate::gauge!`] or [`crate::histogram!`], collected by the linker into [`DECLARATIONS`].
//!
//! The registry declares every collected metric when it is first used, so the manifest lists
//! plain-API metrics (and their label values) before the code that records them runs, like
//! the attributes' call sites. A declaration that the linker did not collect (one built at run
//! time, with a leaked name) is refused: metric names, descriptions and label names are text
//! fixed in the code.

use crate::engine::callsite::LabelDomain;
use crate::engine::handles::{
    Counter, Gauge, Histogram, LabeledCounter, LabeledHistogram, MetricBuilder,
};
use crate::engine::labels::LabelSet;
use crate::engine::metadata::{Location, MetricKind, Unit};
use crate::engine::registry::{Loader, Loading, RegistryError, Request, SeriesRequest};

/// Every plain-API declaration in the program, gathered at link time.
#[linkme::distributed_slice]
pub static DECLARATIONS: [Declaration];

/// One use of `counter!`, `gauge!` or `histogram!`. Built by the macros only; not a stable
/// API.
#[doc(hidden)]
pub struct Declaration {
    kind: MetricKind,
    name: &'static str,
    description: &'static str,
    unit: Unit,
    labels: &'static [&'static str],
    domains: &'static [LabelDomain],
    max_series: usize,
    callback: bool,
    module_path: &'static str,
    file: &'static str,
    line: u32,
}

impl Declaration {
    /// A declaration; the macros check every field at compile time.
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        kind: MetricKind,
        name: &'static str,
        description: &'static str,
        unit: Unit,
        labels: &'static [&'static str],
        domains: &'static [LabelDomain],
        max_series: usize,
        callback: bool,
        module_path: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        Declaration {
            kind,
            name,
            description,
            unit,
            labels,
            domains,
            max_series,
            callback,
            module_path,
            file,
            line,
        }
    }

    /// What registering it asks the registry for.
    pub(crate) fn request(&self) -> Request<'_> {
        Request {
            name: self.name,
            kind: self.kind,
            unit: self.unit,
            description: self.description,
            location: self.location(),
            labels: self.labels,
            max_series: self.max_series,
            sample_one_in: None,
        }
    }

    fn location(&self) -> Location {
        Location {
            module_path: self.module_path.to_owned(),
            file: self.file.to_owned(),
            line: self.line,
        }
    }

    /// Whether it is a callback gauge's.
    pub(crate) fn is_callback(&self) -> bool {
        self.callback
    }

    /// Each label's closed set of values, where its type has one.
    pub(crate) fn possible_values(&self) -> Vec<Option<&'static [&'static str]>> {
        self.domains.iter().map(|d| d.values).collect()
    }

    /// Each label type's reason its values are safe.
    pub(crate) fn reasons(&self) -> Vec<&'static str> {
        self.domains.iter().map(|d| d.safe_because).collect()
    }

    /// A builder for this declaration, if the linker collected it (it is in
    /// [`DECLARATIONS`]) and it is of `kind`.
    fn builder<M>(&'static self, kind: MetricKind) -> Result<MetricBuilder<M>, RegistryError> {
        if !DECLARATIONS.iter().any(|d| std::ptr::eq(d, self)) || self.kind != kind {
            return Err(RegistryError::Undeclared {
                name: self.name.to_owned(),
            });
        }
        Ok(MetricBuilder::from_request(self.request()))
    }

    /// `counter!("...")`.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is taken by another kind, unit or label names, or the
    /// declaration was not collected by the linker.
    pub fn counter(&'static self) -> Result<Counter, RegistryError> {
        self.builder::<Counter>(MetricKind::Counter)?.register()
    }

    /// `counter!("...", labels(...))`.
    ///
    /// # Errors
    /// As for [`counter`](Self::counter).
    pub fn labeled_counter<L: LabelSet>(&'static self) -> Result<LabeledCounter<L>, RegistryError> {
        self.builder::<Counter>(MetricKind::Counter)?
            .register_labeled()
    }

    /// `gauge!("...")`.
    ///
    /// # Errors
    /// As for [`counter`](Self::counter), and if the name is a callback gauge's.
    pub fn gauge(&'static self) -> Result<Gauge, RegistryError> {
        self.builder::<Gauge>(MetricKind::Gauge)?.register()
    }

    /// `gauge!("...", callback = ...)`.
    ///
    /// # Errors
    /// As for [`gauge`](Self::gauge), and if the callback gauge is registered already.
    pub fn gauge_callback(
        &'static self,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> Result<(), RegistryError> {
        self.builder::<Gauge>(MetricKind::Gauge)?
            .register_callback(read)
    }

    /// `histogram!("...")`.
    ///
    /// # Errors
    /// As for [`counter`](Self::counter).
    pub fn histogram(&'static self) -> Result<Histogram, RegistryError> {
        self.builder::<Histogram>(MetricKind::Histogram)?.register()
    }

    /// `histogram!("...", labels(...))`.
    ///
    /// # Errors
    /// As for [`counter`](Self::counter).
    pub fn labeled_histogram<L: LabelSet>(
        &'static self,
    ) -> Result<LabeledHistogram<L>, RegistryError> {
        self.builder::<Histogram>(MetricKind::Histogram)?
            .register_labeled()
    }
}

/// Registers every declaration the linker collected, after the call sites, the first time the
/// registry is locked: a metric without labels gets its one series, a labeled metric or a
/// callback gauge is declared with its label values.
fn load_declarations(loading: &mut Loading<'_>) {
    for declaration in DECLARATIONS {
        let request = declaration.request();
        let series = SeriesRequest {
            values: Vec::new(),
            possible: declaration.possible_values(),
            reasons: declaration.reasons(),
        };
        let result = if request.labels.is_empty() && !declaration.is_callback() {
            loading.register(&request, series).map(drop)
        } else {
            loading.declare(&request, &series, declaration.is_callback())
        };
        if let Err(error) = result {
            loading.defer(format!("{error} (declared at {})", request.location));
        }
    }
}

#[linkme::distributed_slice(crate::engine::registry::LOADERS)]
static DECLARATION_LOADER: Loader = Loader {
    order: 1,
    load: load_declarations,
};

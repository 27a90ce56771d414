//! [`MemorySink`]: a sink that keeps every report it is given, for a product's tests.

use crate::product::report::Report;
use crate::product::sink::{Sink, SinkError};
use std::sync::{Arc, Mutex, PoisonError};

/// Keeps every report in memory, in the order they came; clones share the reports. Give it to
/// [`ReporterBuilder::sink`](crate::reporter::ReporterBuilder::sink) and read what the
/// reporter delivered locally.
///
/// ```
/// use telemetry_core::{Application, Report, Sink, testing::MemorySink};
///
/// let sink = MemorySink::new();
/// sink.send(&Report::collect(Application::new("app", "1.0.0")))?;
/// assert_eq!(sink.reports().len(), 1);
/// assert_eq!(sink.reports()[0].application.name(), "app");
/// # Ok::<(), telemetry_core::SinkError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    reports: Arc<Mutex<Vec<Report>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every report received so far, oldest first.
    pub fn reports(&self) -> Vec<Report> {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the reports received so far.
    pub fn clear(&self) {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Sink for MemorySink {
    /// Keeps a copy of `report`; never fails.
    fn send(&self, report: &Report) -> Result<(), SinkError> {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(report.clone());
        Ok(())
    }
}

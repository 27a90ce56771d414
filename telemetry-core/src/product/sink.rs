//! Where reports go: the [`Sink`] trait and the local sinks.
//!
//! Consent, scheduling and network delivery sit in front of sinks: a sink only delivers what it
//! is given. A sink that fails returns a [`SinkError`]; it must not panic, and callers that run
//! sinks on behalf of a host catch panics anyway.

use crate::product::report::Report;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a sink could not deliver a report.
#[derive(Debug, thiserror::Error)]
#[error("telemetry sink `{sink}` failed: {source}")]
pub struct SinkError {
    sink: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl SinkError {
    /// An error of sink `sink` (a short name such as `"json-file"`) caused by `source`.
    pub fn new(
        sink: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        SinkError {
            sink,
            source: source.into(),
        }
    }

    /// The short name of the sink that failed.
    pub fn sink(&self) -> &'static str {
        self.sink
    }
}

/// A destination for reports.
pub trait Sink: Send + Sync {
    /// Delivers one report.
    ///
    /// # Errors
    /// A [`SinkError`] saying why the report was not delivered; the caller decides whether to
    /// keep it for later.
    fn send(&self, report: &Report) -> Result<(), SinkError>;
}

/// Writes each report as one line of JSON to standard output.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdoutSink {
    /// Indented JSON over several lines instead of one line.
    pub pretty: bool,
}

impl Sink for StdoutSink {
    fn send(&self, report: &Report) -> Result<(), SinkError> {
        let json = if self.pretty {
            report.to_json_pretty()
        } else {
            report.to_json()
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{json}").map_err(|e| SinkError::new("stdout", e))
    }
}

/// Logs each report as JSON through the `log` facade, at a chosen level, with target
/// `telemetry::report` (EventStoreDB logs every transmission with its payload).
#[derive(Clone, Copy, Debug)]
pub struct LogSink {
    /// The level of the log record.
    pub level: log::Level,
}

impl Default for LogSink {
    fn default() -> Self {
        LogSink {
            level: log::Level::Info,
        }
    }
}

impl Sink for LogSink {
    fn send(&self, report: &Report) -> Result<(), SinkError> {
        log::log!(target: "telemetry::report", self.level, "telemetry report: {}", report.to_json());
        Ok(())
    }
}

/// Writes the latest report to a JSON file, replacing the previous one (FerretDB keeps its last
/// report in `telemetry.json`). The file is written beside its final path and renamed into
/// place, so a reader never sees half a report.
#[derive(Clone, Debug)]
pub struct JsonFileSink {
    path: PathBuf,
}

impl JsonFileSink {
    /// A sink writing to `path`. The directory must exist.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonFileSink { path: path.into() }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for JsonFileSink {
    fn send(&self, report: &Report) -> Result<(), SinkError> {
        let mut partial = self.path.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&partial)?;
            file.write_all(report.to_json_pretty().as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&partial, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            // The file's name only: the framework's log lines carry no absolute path.
            SinkError::new(
                "json-file",
                format!("{}: {e}", crate::state::file_name(&self.path)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::snapshot::Snapshot;
    use crate::product::report::Application;

    #[test]
    fn json_file_sink_replaces_the_file_and_reports_errors() {
        let dir = std::env::temp_dir().join(format!("telemetry-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sink = JsonFileSink::new(dir.join("telemetry.json"));
        let report = Report::new(Application::new("a", "1"), Snapshot::default());
        sink.send(&report).unwrap();
        sink.send(&report).unwrap();
        let back: Report =
            serde_json::from_str(&std::fs::read_to_string(sink.path()).unwrap()).unwrap();
        assert_eq!(back, report);
        let missing = JsonFileSink::new(dir.join("no-such-dir").join("t.json"));
        let err = missing.send(&report).unwrap_err();
        assert_eq!(err.sink(), "json-file");
        let text = err.to_string();
        assert!(
            text.contains("t.json") && !text.contains("no-such-dir"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Structured logs: every record of the `log` facade (the collector's and telemetry-core's)
//! as one JSON line on standard error. The collector never reads its clients' addresses, so
//! no record can hold one.

use std::io::Write;

struct JsonLogger {
    level: log::LevelFilter,
}

impl log::Log for JsonLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let ours = metadata.target().starts_with("telemetry");
        metadata.level() <= self.level && (ours || metadata.level() <= log::Level::Warn)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let line = serde_json::json!({
            "ts": now.as_millis() as u64,
            "level": record.level().as_str(),
            "target": record.target(),
            "msg": record.args().to_string(),
        });
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    fn flush(&self) {}
}

/// Installs the JSON logger at `level` (from `TELEMETRY_COLLECTOR_LOG`: `error`, `warn`,
/// `info` (default), `debug`). Records of other crates below `warn` are dropped, so the HTTP
/// stack's debug records never appear. A second call does nothing.
pub fn init() {
    let level = std::env::var("TELEMETRY_COLLECTOR_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(JsonLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}

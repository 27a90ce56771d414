//! Crash reports (Qdrant's "critical error reports, such as backtraces", from its "Usage Statistics" documentation), scrubbed:
//! an opt-in panic hook that counts each panic in `telemetry.panics`, labeled by where it
//! happened in the application's own code, and then calls the hook that was installed before.
//!
//! The `location` label is `{crate}::{module}::{function}:{line}` of the innermost backtrace
//! frame that belongs to one of the application's crates (as the product lists them), or the
//! panic's source line as `{crate}/src/{file}:{line}` with everything before `src/` removed when
//! no frame is resolved (a release build without debug info). No file system path, user name,
//! host name or panic message is kept, unless the message is one the product allow-lists
//! verbatim. The counter is in the error-reports consent category, so it is sent only when that
//! category is allowed.
//!
//! ```
//! use telemetry_core::crash::{PanicHookConfig, install_panic_hook};
//! install_panic_hook(PanicHookConfig::new(["my_server"]));
//! ```

use crate::Counter;
use crate::engine::handles::LabeledCounter;
use crate::engine::labels::LiteralLabel;
use std::backtrace::Backtrace;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The counter of panics.
pub const PANICS: &str = "telemetry.panics";

/// The most distinct panic locations kept as series; more go to the overflow series.
pub const MAX_PANIC_LOCATIONS: usize = 64;

/// What the panic hook keeps: [`PanicHookConfig::new`], then
/// [`allow_messages`](PanicHookConfig::allow_messages) if some messages may be reported.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PanicHookConfig {
    /// The application's crate names (as in paths: `my_server`, not `my-server`); frames of
    /// other crates (std, dependencies) are skipped when looking for the location.
    pub crates: Vec<&'static str>,
    /// Panic messages that may be reported as they are (label `message`); any other message is
    /// reported as `other`. Messages can hold user data, so the default is none.
    pub allowed_messages: Vec<&'static str>,
}

impl PanicHookConfig {
    /// The application's crates (names as in paths), with no message allowed.
    pub fn new(crates: impl IntoIterator<Item = &'static str>) -> Self {
        PanicHookConfig {
            crates: crates.into_iter().collect(),
            allowed_messages: Vec::new(),
        }
    }

    /// Adds panic messages that may be reported as they are (label `message`). Only literals
    /// the product wrote: a message can carry user data.
    pub fn allow_messages(mut self, messages: impl IntoIterator<Item = &'static str>) -> Self {
        self.allowed_messages.extend(messages);
        self
    }
}

struct Hook {
    config: PanicHookConfig,
    panics: LabeledCounter<(LiteralLabel, LiteralLabel)>,
}

static HOOK: OnceLock<Hook> = OnceLock::new();

/// Installs the panic hook once per process (later calls are ignored and return false). The
/// previous hook (the default one that prints the panic, or the product's) still runs after.
/// Returns true if this call installed it.
pub fn install_panic_hook(config: PanicHookConfig) -> bool {
    let Ok(panics) = Counter::builder(PANICS)
        .description("Panics, by the application's code location (no paths, no messages)")
        .labels(&["location", "message"])
        .max_series(MAX_PANIC_LOCATIONS)
        .register_labeled::<(LiteralLabel, LiteralLabel)>()
    else {
        return false;
    };
    if HOOK.set(Hook { config, panics }).is_err() {
        return false;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Counting must never turn one panic into an abort: it cannot panic (no indexing, no
        // unwrap), and a failure to resolve the backtrace only loses precision.
        if let Some(hook) = HOOK.get() {
            let location = scrubbed_location(&hook.config.crates, info.location());
            let message = panic_message(info.payload())
                .and_then(|m| {
                    hook.config
                        .allowed_messages
                        .iter()
                        .find(|a| **a == m)
                        .copied()
                })
                .unwrap_or("other");
            hook.panics
                .increment((LiteralLabel(location), LiteralLabel(message)));
        }
        previous(info);
    }));
    true
}

/// The payload's text, for the allow-list comparison only.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// The location label; leaked once per distinct location (at most a few dozen in practice,
/// and the counter caps series).
fn scrubbed_location(crates: &[&str], location: Option<&std::panic::Location<'_>>) -> &'static str {
    let text = application_frame(crates, &Backtrace::force_capture().to_string())
        .or_else(|| location.map(|l| format!("{}:{}", scrub_path(l.file()), l.line())))
        .unwrap_or_else(|| "unknown".to_owned());
    intern(text)
}

/// The innermost frame of one of `crates`, as `path::to::function:line`.
///
/// `std`'s backtrace text has one frame per line pair: `  N: crate::module::function` then
/// `             at /path/to/file.rs:LINE:COL`.
fn application_frame(crates: &[&str], backtrace: &str) -> Option<String> {
    let mut lines = backtrace.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((_, symbol)) = line.trim_start().split_once(": ") else {
            continue;
        };
        let symbol = strip_hash(symbol.trim());
        let own = crates.iter().any(|c| {
            symbol.starts_with(&format!("{c}::")) || symbol.starts_with(&format!("<{c}::"))
        });
        if !own {
            continue;
        }
        let line_number = lines
            .peek()
            .and_then(|next| next.trim_start().strip_prefix("at "))
            .and_then(|at| at.rsplit(':').nth(1))
            .and_then(|n| n.parse::<u32>().ok());
        return Some(match line_number {
            Some(n) => format!("{symbol}:{n}"),
            None => symbol.to_owned(),
        });
    }
    None
}

/// Drops the `::h0123456789abcdef` suffix of a legacy-mangled symbol.
fn strip_hash(symbol: &str) -> &str {
    match symbol.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => symbol,
    }
}

/// A source path without anything before its crate's `src/` directory (home directories,
/// user names, build machines): `/home/alice/app/src/store.rs` becomes `src/store.rs`.
pub fn scrub_path(path: &str) -> String {
    let unified = path.replace('\\', "/");
    match unified.rfind("/src/") {
        Some(i) => unified[i + 1..].to_owned(),
        None => unified.rsplit('/').next().unwrap_or_default().to_owned(),
    }
}

/// Panic locations already made `'static`, so each is leaked once.
static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);

// Holds [`SEEN`] until the guard is dropped (see [`crate::fork`]).
crate::fork::fork_hook!(SEEN_FORK_HOOK, 4, || {
    Some(Box::new(
        SEEN.lock().unwrap_or_else(PoisonError::into_inner),
    ))
});

fn intern(text: String) -> &'static str {
    let Ok(mut seen) = SEEN.lock() else {
        return "unknown";
    };
    let seen = seen.get_or_insert_with(HashSet::new);
    if let Some(existing) = seen.get(text.as_str()) {
        return existing;
    }
    if seen.len() >= 4 * MAX_PANIC_LOCATIONS {
        return "other";
    }
    let leaked: &'static str = Box::leak(text.into_boxed_str());
    seen.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_everything_before_src() {
        assert_eq!(
            scrub_path("/home/alice/work/app/src/store/mod.rs"),
            "src/store/mod.rs"
        );
        assert_eq!(
            scrub_path("C:\\Users\\bob\\app\\src\\main.rs"),
            "src/main.rs"
        );
        assert_eq!(scrub_path("/home/alice/build.rs"), "build.rs");
    }

    #[test]
    fn the_first_application_frame_is_kept_without_its_path() {
        let bt = "   0: std::panicking::begin_panic\n             at /rustc/abc/library/std/src/panicking.rs:600:5\n   1: my_app::store::insert::h0123456789abcdef\n             at /home/alice/my_app/src/store.rs:42:9\n   2: my_app::main\n             at /home/alice/my_app/src/main.rs:3:5\n";
        assert_eq!(
            application_frame(&["my_app"], bt).as_deref(),
            Some("my_app::store::insert:42")
        );
        assert_eq!(application_frame(&["other"], bt), None);
    }
}

//! Consent and opt-out: three states, named sources combined by a product's rule, categories
//! under one kill switch, and the decision persisted with its date and manifest version.
//!
//! # States (FerretDB's "Telemetry reporting" page)
//! [`Consent::Enabled`], [`Consent::Disabled`] and [`Consent::Undecided`] (the default). The
//! reporter waits its undecided delay (default 1 hour) before the first report of an
//! undecided installation; a decision made during that delay takes effect at once.
//!
//! # Sources, in the order they are asked
//! 1. `DO_NOT_TRACK` set to anything but an empty value or a plain no (`0 f false n no off`):
//!    `1`, `t`, `true`, `enable` (FerretDB's list), but also `disable`, `optout` and unknown or
//!    non-UTF-8 values, erring on the side of not tracking. It disables everything, always; a
//!    CLI flag asking to enable at the same time is a startup error
//!    ([`ConsentError::Conflict`]), as in FerretDB.
//! 2. The executable's file name, or the name the program was started under (a symbolic
//!    link), containing `donottrack` (FerretDB): the same.
//! 3. The CLI flag value (`--telemetry=<value>`, FerretDB spellings).
//! 4. The product's own sources, in the order the product adds them: environment variables
//!    ([`ConsentBuilder::env`]), config values ([`ConsentBuilder::config`]) and valueless
//!    switches such as Qdrant's `--disable-telemetry` ([`ConsentBuilder::switch`]).
//! 5. The decision persisted in the reporter's state directory (a runtime
//!    [`set_consent`](crate::product::reporter::Reporter::set_consent), or `myapp telemetry disable`).
//! 6. Otherwise: the product's default ([`ConsentBuilder::default_consent`]), undecided unless
//!    it says otherwise.
//!
//! How sources 3 to 5 combine is the product's [`Combine`] rule: the first source that decides
//! ([`Combine::FirstDecisive`], the default), or "any one of them disables"
//! ([`Combine::AnyDisables`], Qdrant's three switches). Sources scoped to one [`Category`]
//! (Unleash's `SEND_TELEMETRY` for usage statistics) decide only that category, and can only
//! narrow what the kill switch allows: a category is sent only if both agree.
//!
//! # What a source's value means
//! [`ValueRule::FerretDb`]: case-insensitive `1 t true y yes on enable enabled optin opt-in
//! allow` and `0 f false n no off disable disabled optout opt-out disallow forbid`; anything
//! else is an error naming the source and the accepted values. FerretDB's page also lists
//! `forbid` among the values that enable; a word that means "forbid" never enables here.
//! [`ValueRule::Unleash`]: `true`, `t` or `1` (case-insensitive) say yes; anything else no.
//!
//! [`Polarity`] says what yes and no mean:
//! - [`Polarity::OptIn`] (`TELEMETRY_ENABLED`, Automatisch; `--telemetry`, FerretDB): yes
//!   enables, no disables. Both are decisions.
//! - [`Polarity::OptOut`] (`EVENTSTORE_TELEMETRY_OPTOUT`, EventStoreDB;
//!   `QDRANT__TELEMETRY_DISABLED`, Qdrant): yes disables; no (`=false`) is **no decision**: the
//!   source is as if unset, so it neither consents nor skips an undecided delay.
//!
//! # Versioned consent
//! A decision is saved with the manifest version it was given under
//! ([`crate::privacy::manifest::Manifest::version`]). With [`ConsentBuilder::ask_again_on_change`], a
//! saved "enabled" given under another version counts as undecided, so the user is asked again
//! when what is collected changes. A saved "disabled" stays disabled whatever changes.
//!
//! # Debug mode
//! `TELEMETRY_DEBUG` (or the product's own variable, [`ConsentBuilder::debug_env`]) set to a
//! yes value makes the reporter print every report it would send to standard error and send
//! nothing (Homebrew's `HOMEBREW_DEBUG`-style semantics: printing never also sends).

use crate::state::{StateDir, files};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// An installation's telemetry consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// Reports may be sent.
    Enabled,
    /// Nothing leaves the process.
    Disabled,
    /// No decision yet: reports are sent after the undecided delay unless a decision comes first.
    #[default]
    Undecided,
}

impl fmt::Display for Consent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Consent::Enabled => "enabled",
            Consent::Disabled => "disabled",
            Consent::Undecided => "undecided",
        })
    }
}

/// Kinds of data with consent of their own, under the one kill switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Asking for the latest version (Unleash's `CHECK_VERSION`, FerretDB's version notification).
    VersionCheck,
    /// Usage statistics: the metrics and product sections (Unleash's `SEND_TELEMETRY`).
    UsageStatistics,
    /// Error counts and crash reports (Qdrant's critical error reports).
    ErrorReports,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 3] = [
        Category::VersionCheck,
        Category::UsageStatistics,
        Category::ErrorReports,
    ];
}

/// How a source's text is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRule {
    /// FerretDB's spellings; anything else is an error.
    FerretDb,
    /// Unleash's rule: `true`, `t` or `1` is yes; anything else is no.
    Unleash,
}

/// What a "yes" and a "no" from a source mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    /// Yes enables and no disables (`TELEMETRY_ENABLED=true|false`, `--telemetry=enable|disable`).
    OptIn,
    /// Yes disables; no is no decision (`EVENTSTORE_TELEMETRY_OPTOUT=true` disables,
    /// `EVENTSTORE_TELEMETRY_OPTOUT=false` is as if unset).
    OptOut,
}

/// How the flag, the product's sources and the persisted decision combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Combine {
    /// The first source that decides wins: flag, then the product's sources in the order they
    /// were added, then the persisted decision (FerretDB, EventStoreDB, Automatisch, Unleash).
    #[default]
    FirstDecisive,
    /// Any source that disables wins over every source that enables (Qdrant: "any of these
    /// options will prevent Qdrant from sending"); without one, the first that enables.
    AnyDisables,
}

/// The values [`ValueRule::FerretDb`] reads as yes.
pub const YES: &[&str] = &[
    "1", "t", "true", "y", "yes", "on", "enable", "enabled", "optin", "opt-in", "allow",
];
/// The values [`ValueRule::FerretDb`] reads as no.
pub const NO: &[&str] = &[
    "0", "f", "false", "n", "no", "off", "disable", "disabled", "optout", "opt-out", "disallow",
    "forbid",
];

/// Reads `value` by `rule`: `Ok(true)` for yes.
///
/// # Errors
/// [`ConsentError::InvalidValue`] naming `source` and the accepted values, for a value the
/// FerretDB rule does not know (the Unleash rule accepts anything).
pub fn parse_value(source: &str, value: &str, rule: ValueRule) -> Result<bool, ConsentError> {
    let lower = value.trim().to_ascii_lowercase();
    match rule {
        ValueRule::Unleash => Ok(matches!(lower.as_str(), "true" | "t" | "1")),
        ValueRule::FerretDb if YES.contains(&lower.as_str()) => Ok(true),
        ValueRule::FerretDb if NO.contains(&lower.as_str()) => Ok(false),
        ValueRule::FerretDb => Err(ConsentError::InvalidValue {
            source: source.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// Why consent could not be resolved. Both are startup errors the product reports and exits
/// on: a silent guess would either send against the user's wish or ignore their opt-in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsentError {
    /// A source holds a value that is neither yes nor no.
    InvalidValue {
        /// The source, e.g. `--telemetry` or `EVENTSTORE_TELEMETRY_OPTOUT`.
        source: String,
        /// What it held.
        value: String,
    },
    /// The CLI flag (or a request to enable) asks to enable while `DO_NOT_TRACK` or a
    /// `donottrack` executable name disables.
    Conflict {
        /// What disables (`DO_NOT_TRACK` or the executable name).
        disabled_by: String,
        /// The flag that asks to enable.
        flag: String,
    },
    /// A runtime decision is in force for this run, but could not be saved in the state
    /// directory (read-only, full, or not a directory): the next start will not know it.
    NotSaved {
        /// The I/O error, in words.
        reason: String,
    },
}

impl fmt::Display for ConsentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsentError::InvalidValue { source, value } => {
                // A short word (a typo such as `ture`) is repeated; anything else (a path, an
                // address pasted by mistake) is not, since the message may be logged.
                let word = (1..=16).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if word {
                    write!(f, "invalid telemetry setting {source}={value:?}")?;
                } else {
                    write!(
                        f,
                        "invalid telemetry setting {source} (its value is not shown)"
                    )?;
                }
                write!(
                    f,
                    ": use one of {} to enable, or one of {} to disable",
                    YES.join(", "),
                    NO.join(", ")
                )
            }
            ConsentError::Conflict { disabled_by, flag } => write!(
                f,
                "telemetry is disabled by {disabled_by}, which cannot be overridden: remove \
                 {flag} or unset {disabled_by}"
            ),
            ConsentError::NotSaved { reason } => write!(
                f,
                "the telemetry decision holds for this run only: it could not be saved in the \
                 state directory ({reason})"
            ),
        }
    }
}

impl std::error::Error for ConsentError {}

/// Which kind of source made a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum SourceKind {
    /// The `DO_NOT_TRACK` environment variable.
    DoNotTrack,
    /// The executable's name contains `donottrack`.
    ExecutableName,
    /// A command-line flag (with a value, or a valueless switch).
    Flag(String),
    /// An environment variable.
    Env(String),
    /// A config file value.
    Config(String),
    /// The decision persisted in the state directory.
    Persisted,
    /// The default ([`Consent::Undecided`]).
    Default,
    /// A decision made while running (the reporter's `set_consent`).
    Runtime,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceKind::DoNotTrack => f.write_str("the DO_NOT_TRACK environment variable"),
            SourceKind::ExecutableName => {
                f.write_str("the executable's name (it contains `donottrack`)")
            }
            SourceKind::Flag(name) => write!(f, "the {name} flag"),
            SourceKind::Env(name) => write!(f, "the {name} environment variable"),
            SourceKind::Config(name) => write!(f, "the `{name}` setting"),
            SourceKind::Persisted => f.write_str("the decision saved in the state directory"),
            SourceKind::Default => f.write_str("the default"),
            SourceKind::Runtime => f.write_str("a decision made while running"),
        }
    }
}

/// The resolved decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentDecision {
    /// The kill switch.
    pub state: Consent,
    /// Which source set it.
    pub decided_by: SourceKind,
    /// Per-category decisions of category-scoped sources that said no.
    pub narrowed: BTreeMap<Category, SourceKind>,
    /// When a persisted or runtime decision was made (RFC 3339 UTC); `None` for the others,
    /// which are read afresh at every start.
    pub decided_at: Option<String>,
}

impl ConsentDecision {
    /// A decision with no sources: undecided.
    pub fn undecided() -> Self {
        ConsentDecision {
            state: Consent::Undecided,
            decided_by: SourceKind::Default,
            narrowed: BTreeMap::new(),
            decided_at: None,
        }
    }

    /// The state for one category: the kill switch, unless a scoped source disabled it.
    pub fn category(&self, category: Category) -> Consent {
        if self.state == Consent::Disabled || self.narrowed.contains_key(&category) {
            Consent::Disabled
        } else {
            self.state
        }
    }

    /// True if every category is disabled: nothing may leave the process.
    pub fn all_disabled(&self) -> bool {
        Category::ALL
            .iter()
            .all(|c| self.category(*c) == Consent::Disabled)
    }

    /// True if the operator disabled telemetry for this run: `DO_NOT_TRACK`, the executable's
    /// name, the flag, an environment variable, a config value or a switch said no. Only the
    /// operator can lift it; a runtime or saved "enable" is refused.
    pub fn is_operator_opt_out(&self) -> bool {
        self.state == Consent::Disabled
            && matches!(
                self.decided_by,
                SourceKind::DoNotTrack
                    | SourceKind::ExecutableName
                    | SourceKind::Flag(_)
                    | SourceKind::Env(_)
                    | SourceKind::Config(_)
            )
    }

    /// True if `DO_NOT_TRACK` or the executable's name decided: nothing can enable telemetry
    /// in this run.
    pub fn is_locked(&self) -> bool {
        matches!(
            self.decided_by,
            SourceKind::DoNotTrack | SourceKind::ExecutableName
        )
    }
}

/// One product-defined source.
#[derive(Clone, Debug)]
enum Source {
    Env {
        name: String,
        polarity: Polarity,
        rule: ValueRule,
        scope: Option<Category>,
    },
    Config {
        name: String,
        value: Option<String>,
        polarity: Polarity,
        rule: ValueRule,
    },
    Switch {
        name: String,
        present: bool,
        polarity: Polarity,
    },
}

type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The environment variable that turns on debug mode in every product.
pub const DEBUG_ENV: &str = "TELEMETRY_DEBUG";

/// Collects the sources of a product. The reporter resolves them at start
/// ([`crate::product::reporter::ReporterBuilder::consent`]), with the persisted decision of its own
/// state directory; [`resolve`](Self::resolve) resolves them without one.
///
/// ```
/// use telemetry_core::consent::{Consent, ConsentBuilder, Polarity, ValueRule};
///
/// let decision = ConsentBuilder::new()
///     .flag("--telemetry", Some("enable"))
///     .env("EVENTSTORE_TELEMETRY_OPTOUT", Polarity::OptOut, ValueRule::FerretDb)
///     .environment(|_| None) // tests pass their own environment; the default reads the process's
///     .resolve()?;
/// assert_eq!(decision.state, Consent::Enabled);
/// # Ok::<(), telemetry_core::consent::ConsentError>(())
/// ```
#[derive(Clone)]
pub struct ConsentBuilder {
    flag: Option<(String, String)>,
    persist_flag: bool,
    sources: Vec<Source>,
    combine: Combine,
    environment: EnvReader,
    executable: Option<PathBuf>,
    /// The name the program was started under (`argv[0]`), which may be a `donottrack`
    /// symbolic link to the executable.
    invoked_as: Option<PathBuf>,
    debug_envs: Vec<String>,
    ask_again_on_change: bool,
    default: Consent,
}

impl fmt::Debug for ConsentBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsentBuilder")
            .field("flag", &self.flag)
            .field("persist_flag", &self.persist_flag)
            .field("sources", &self.sources)
            .field("combine", &self.combine)
            .field("executable", &self.executable)
            .field("debug_envs", &self.debug_envs)
            .field("ask_again_on_change", &self.ask_again_on_change)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

impl Default for ConsentBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsentBuilder {
    /// No product sources yet, reading the process's environment and executable name:
    /// `DO_NOT_TRACK`, a `donottrack` executable name and the persisted decision are always
    /// asked.
    pub fn new() -> Self {
        ConsentBuilder {
            flag: None,
            persist_flag: false,
            sources: Vec::new(),
            combine: Combine::FirstDecisive,
            // Lossy: a value that is not UTF-8 still counts (`DO_NOT_TRACK=1\xff` disables;
            // a product variable that is not UTF-8 is an invalid value, not an unset one).
            environment: Arc::new(|name| {
                std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
            }),
            executable: std::env::current_exe().ok(),
            invoked_as: std::env::args_os().next().map(PathBuf::from),
            debug_envs: Vec::new(),
            ask_again_on_change: false,
            default: Consent::Undecided,
        }
    }

    /// What applies when no source decides (default [`Consent::Undecided`]). Automatisch's
    /// "Telemetry is enabled by default" is `default_consent(Consent::Enabled)`: an opt-out
    /// model without an undecided delay. `DO_NOT_TRACK`, the product's sources and a saved
    /// decision all come first.
    pub fn default_consent(mut self, state: Consent) -> Self {
        self.default = state;
        self
    }

    /// The CLI flag `name` (e.g. `--telemetry`) and its value if given; FerretDB spellings,
    /// yes enables, no disables. It decides this run only, as FerretDB's flag does, unless
    /// [`persist_flag`](Self::persist_flag) is set.
    pub fn flag(mut self, name: &str, value: Option<&str>) -> Self {
        self.flag = value.map(|v| (name.to_owned(), v.to_owned()));
        self
    }

    /// Whether a decision made by the CLI flag is saved in the state directory like a runtime
    /// decision, so later starts without the flag keep it (default false).
    pub fn persist_flag(mut self, persist: bool) -> Self {
        self.persist_flag = persist;
        self
    }

    /// A valueless command-line switch: Qdrant's `--disable-telemetry` is
    /// `switch("--disable-telemetry", cli.disable_telemetry, Polarity::OptOut)`. Present, it
    /// disables ([`Polarity::OptOut`]) or enables ([`Polarity::OptIn`]); absent, it says
    /// nothing.
    pub fn switch(mut self, name: &str, present: bool, polarity: Polarity) -> Self {
        self.sources.push(Source::Switch {
            name: name.to_owned(),
            present,
            polarity,
        });
        self
    }

    /// An environment variable deciding the kill switch.
    pub fn env(mut self, name: &str, polarity: Polarity, rule: ValueRule) -> Self {
        self.sources.push(Source::Env {
            name: name.to_owned(),
            polarity,
            rule,
            scope: None,
        });
        self
    }

    /// An environment variable deciding one category only (Unleash's `SEND_TELEMETRY` for
    /// [`Category::UsageStatistics`]): when it says no, that category is disabled.
    pub fn env_for(
        mut self,
        category: Category,
        name: &str,
        polarity: Polarity,
        rule: ValueRule,
    ) -> Self {
        self.sources.push(Source::Env {
            name: name.to_owned(),
            polarity,
            rule,
            scope: Some(category),
        });
        self
    }

    /// A config file setting `name` and its value if the file sets it (Qdrant's
    /// `telemetry_disabled: true` is `config("telemetry_disabled", Some("true"), OptOut, ..)`).
    pub fn config(
        mut self,
        name: &str,
        value: Option<&str>,
        polarity: Polarity,
        rule: ValueRule,
    ) -> Self {
        self.sources.push(Source::Config {
            name: name.to_owned(),
            value: value.map(str::to_owned),
            polarity,
            rule,
        });
        self
    }

    /// How the flag, the product's sources and the persisted decision combine (default
    /// [`Combine::FirstDecisive`]).
    pub fn combine(mut self, combine: Combine) -> Self {
        self.combine = combine;
        self
    }

    /// The product's own debug variable (e.g. `MYAPP_TELEMETRY_DEBUG`), asked besides
    /// [`DEBUG_ENV`]: set to a yes value (FerretDB spellings), reports are printed to standard
    /// error and nothing is sent.
    pub fn debug_env(mut self, name: &str) -> Self {
        self.debug_envs.push(name.to_owned());
        self
    }

    /// Whether a saved "enabled" given under another manifest version counts as undecided, so
    /// the user is asked again when what is collected changes (default false).
    pub fn ask_again_on_change(mut self, ask: bool) -> Self {
        self.ask_again_on_change = ask;
        self
    }

    /// Reads environment variables through `read` instead of the process environment.
    pub fn environment(
        mut self,
        read: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.environment = Arc::new(read);
        self
    }

    /// Uses `path` as the executable's path (for the `donottrack` rule) instead of the
    /// running executable's and the name it was started under.
    pub fn executable(mut self, path: impl Into<PathBuf>) -> Self {
        self.executable = Some(path.into());
        self.invoked_as = None;
        self
    }

    /// Whether the flag's decision is saved ([`persist_flag`](Self::persist_flag)).
    pub fn persists_flag(&self) -> bool {
        self.persist_flag
    }

    /// The debug variable that is set to a yes value, if any: [`DEBUG_ENV`] first, then the
    /// product's ([`debug_env`](Self::debug_env)). Values that are not yes (including unknown
    /// words) leave debug mode off.
    pub fn debug_mode(&self) -> Option<String> {
        std::iter::once(DEBUG_ENV)
            .chain(self.debug_envs.iter().map(String::as_str))
            .find(|name| {
                (self.environment)(name)
                    .is_some_and(|v| parse_value(name, &v, ValueRule::FerretDb) == Ok(true))
            })
            .map(str::to_owned)
    }

    /// Resolves the sources without a persisted decision (the reporter resolves with its
    /// state directory's).
    ///
    /// # Errors
    /// [`ConsentError::InvalidValue`] for a value that is neither yes nor no, and
    /// [`ConsentError::Conflict`] for a flag asking to enable what `DO_NOT_TRACK` or the
    /// executable's name disables.
    pub fn resolve(&self) -> Result<ConsentDecision, ConsentError> {
        self.resolve_in(None)
    }

    /// Resolves the sources, with the decision persisted in `dir` as the last source. A
    /// persisted decision that cannot be read counts as "disabled", with one log line.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve).
    pub fn resolve_in(&self, dir: Option<&StateDir>) -> Result<ConsentDecision, ConsentError> {
        let flag = match &self.flag {
            Some((name, value)) => Some((name, parse_value(name, value, ValueRule::FerretDb)?)),
            None => None,
        };
        // DO_NOT_TRACK's convention: set means "do not track". Only an empty value or a plain
        // "no" (`0 f false n no off`) means nothing; every other value, FerretDB's
        // `disable`/`optout`/`forbid` words and values that are not text included, errs on
        // the side of not tracking.
        let do_not_track = (self.environment)("DO_NOT_TRACK").is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            !v.is_empty() && !matches!(v.as_str(), "0" | "f" | "false" | "n" | "no" | "off")
        });
        let executable = [&self.executable, &self.invoked_as]
            .into_iter()
            .flatten()
            .filter_map(|p| p.file_name())
            .any(|n| {
                n.to_string_lossy()
                    .to_ascii_lowercase()
                    .contains("donottrack")
            });
        for (disabled, by, kind) in [
            (do_not_track, "DO_NOT_TRACK", SourceKind::DoNotTrack),
            (
                executable,
                "the executable's name (`donottrack`)",
                SourceKind::ExecutableName,
            ),
        ] {
            if !disabled {
                continue;
            }
            if let Some((name, true)) = flag {
                return Err(ConsentError::Conflict {
                    disabled_by: by.to_owned(),
                    flag: name.clone(),
                });
            }
            return Ok(ConsentDecision {
                state: Consent::Disabled,
                decided_by: kind,
                narrowed: BTreeMap::new(),
                decided_at: None,
            });
        }

        // Every decision of the flag and the product's sources, in order.
        let mut said: Vec<(Consent, SourceKind)> = Vec::new();
        if let Some((name, yes)) = flag {
            said.push((enabled_if(yes), SourceKind::Flag(name.clone())));
        }
        let mut narrowed = BTreeMap::new();
        for source in &self.sources {
            match source {
                Source::Env {
                    name,
                    polarity,
                    rule,
                    scope,
                } => {
                    let Some(value) = (self.environment)(name) else {
                        continue;
                    };
                    let yes = parse_value(name, &value, *rule)?;
                    let Some(state) = meaning(*polarity, yes) else {
                        continue;
                    };
                    match scope {
                        Some(category) => {
                            if state == Consent::Disabled {
                                narrowed
                                    .entry(*category)
                                    .or_insert(SourceKind::Env(name.clone()));
                            }
                        }
                        None => said.push((state, SourceKind::Env(name.clone()))),
                    }
                }
                Source::Config {
                    name,
                    value,
                    polarity,
                    rule,
                } => {
                    let Some(value) = value else { continue };
                    if let Some(state) = meaning(*polarity, parse_value(name, value, *rule)?) {
                        said.push((state, SourceKind::Config(name.clone())));
                    }
                }
                Source::Switch {
                    name,
                    present,
                    polarity,
                } => {
                    if *present && let Some(state) = meaning(*polarity, true) {
                        said.push((state, SourceKind::Flag(name.clone())));
                    }
                }
            }
        }
        let mut decided_at = None;
        // Read only when it can matter: a first decisive source before it makes it moot.
        let asked = self.combine == Combine::AnyDisables || said.is_empty();
        if let Some(persisted) = dir.filter(|_| asked).and_then(|d| self.load_persisted(d)) {
            said.push((persisted.state, SourceKind::Persisted));
            decided_at = Some(persisted.set_at);
        }
        let chosen = match self.combine {
            Combine::FirstDecisive => said.into_iter().next(),
            Combine::AnyDisables => {
                let disabling = said.iter().position(|(s, _)| *s == Consent::Disabled);
                said.into_iter().nth(disabling.unwrap_or(0))
            }
        };
        let (state, decided_by) = chosen.unwrap_or((self.default, SourceKind::Default));
        Ok(ConsentDecision {
            decided_at: decided_at.filter(|_| decided_by == SourceKind::Persisted),
            state,
            decided_by,
            narrowed,
        })
    }

    /// The persisted decision, as a source: a broken file counts as "disabled"; a saved
    /// "enabled" under another manifest version counts as absent when asked to ask again.
    fn load_persisted(&self, dir: &StateDir) -> Option<PersistedConsent> {
        let persisted = load_persisted(dir)?;
        if self.ask_again_on_change
            && persisted.state == Consent::Enabled
            && persisted.manifest_version.as_deref()
                != Some(crate::privacy::manifest::manifest().version.as_str())
        {
            log::info!(target: "telemetry", "what telemetry collects has changed since it was enabled: asking again (undecided)");
            return None;
        }
        Some(persisted)
    }
}

/// What a source's yes or no means under `polarity`: `None` is no decision.
fn meaning(polarity: Polarity, yes: bool) -> Option<Consent> {
    match (polarity, yes) {
        (Polarity::OptIn, yes) => Some(enabled_if(yes)),
        (Polarity::OptOut, true) => Some(Consent::Disabled),
        (Polarity::OptOut, false) => None,
    }
}

fn enabled_if(yes: bool) -> Consent {
    if yes {
        Consent::Enabled
    } else {
        Consent::Disabled
    }
}

/// A decision as saved in the state directory (`consent.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedConsent {
    /// The decision.
    pub state: Consent,
    /// When it was made, RFC 3339 UTC.
    pub set_at: String,
    /// The manifest version ([`crate::privacy::manifest::Manifest::version`]) it was given under;
    /// absent in files written before versions were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_version: Option<String>,
}

fn load_persisted(dir: &StateDir) -> Option<PersistedConsent> {
    let broken = || PersistedConsent {
        state: Consent::Disabled,
        set_at: String::new(),
        manifest_version: None,
    };
    match dir.read(files::CONSENT) {
        Ok(None) => None,
        Ok(Some(text)) => match serde_json::from_str(&text) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!(
                    target: "telemetry",
                    "ignoring the saved telemetry decision in {}: {e}; telemetry stays off until decided",
                    crate::state::named(files::CONSENT)
                );
                Some(broken())
            }
        },
        Err(e) => {
            log::warn!(
                target: "telemetry",
                "cannot read the saved telemetry decision in {}: {e}; telemetry stays off",
                crate::state::named(files::CONSENT)
            );
            Some(broken())
        }
    }
}

/// The decision saved in `dir`, if any, as written (a broken file is `None` here).
pub fn persisted(dir: &StateDir) -> Option<PersistedConsent> {
    serde_json::from_str(&dir.read(files::CONSENT).ok()??).ok()
}

/// Saves a decision with today's date and the current manifest version in `dir`.
///
/// # Errors
/// The I/O error (read-only or missing directory, full disk); the caller logs it once and
/// keeps the decision for this run only.
pub fn persist(dir: &StateDir, state: Consent) -> std::io::Result<PersistedConsent> {
    let persisted = PersistedConsent {
        state,
        set_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        manifest_version: Some(crate::privacy::manifest::manifest().version),
    };
    let json = serde_json::to_vec_pretty(&persisted).map_err(std::io::Error::other)?;
    dir.write(files::CONSENT, &json)?;
    Ok(persisted)
}

/// `--telemetry=<value>` for clap, added to a product's arguments with one
/// `#[command(flatten)]`.
///
/// ```
/// use clap::Parser;
/// use telemetry_core::consent::TelemetryArgs;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     telemetry: TelemetryArgs,
/// }
///
/// let cli = Cli::try_parse_from(["server", "--telemetry=opt-out"]).unwrap();
/// assert_eq!(cli.telemetry.telemetry, Some(false));
/// assert!(Cli::try_parse_from(["server", "--telemetry=maybe"]).is_err());
/// ```
#[cfg(feature = "clap")]
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct TelemetryArgs {
    /// Enable or disable anonymous usage telemetry: 1, t, true, y, yes, on, enable, enabled,
    /// optin, opt-in or allow to enable; 0, f, false, n, no, off, disable, disabled, optout,
    /// opt-out, disallow or forbid to disable.
    #[arg(long = "telemetry", value_name = "VALUE", value_parser = parse_flag)]
    pub telemetry: Option<bool>,
}

#[cfg(feature = "clap")]
fn parse_flag(value: &str) -> Result<bool, String> {
    parse_value("--telemetry", value, ValueRule::FerretDb).map_err(|e| e.to_string())
}

#[cfg(feature = "clap")]
impl TelemetryArgs {
    /// The flag as a consent source for [`ConsentBuilder::flag`]: `"enable"`, `"disable"` or
    /// nothing.
    pub fn value(&self) -> Option<&'static str> {
        self.telemetry
            .map(|yes| if yes { "enable" } else { "disable" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env(vars: &[(&str, &str)]) -> ConsentBuilder {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ConsentBuilder::new()
            .environment(move |name| map.get(name).cloned())
            .executable("/usr/bin/server")
    }

    #[test]
    fn ferretdb_spellings_and_the_unleash_rule() {
        for yes in YES {
            assert_eq!(
                parse_value("x", &yes.to_uppercase(), ValueRule::FerretDb),
                Ok(true)
            );
        }
        for no in NO {
            assert_eq!(parse_value("x", no, ValueRule::FerretDb), Ok(false));
        }
        let err = parse_value("--telemetry", "maybe", ValueRule::FerretDb).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--telemetry") && msg.contains("opt-in") && msg.contains("forbid"),
            "{msg}"
        );
        assert_eq!(
            parse_value("CHECK_VERSION", "T", ValueRule::Unleash),
            Ok(true)
        );
        assert_eq!(
            parse_value("CHECK_VERSION", "yes", ValueRule::Unleash),
            Ok(false)
        );
    }

    #[test]
    fn do_not_track_always_wins_and_a_flag_to_enable_is_an_error() {
        let d = with_env(&[("DO_NOT_TRACK", "1")]).resolve().unwrap();
        assert_eq!(
            (d.state, d.decided_by),
            (Consent::Disabled, SourceKind::DoNotTrack)
        );
        let err = with_env(&[("DO_NOT_TRACK", "true")])
            .flag("--telemetry", Some("enable"))
            .resolve()
            .unwrap_err();
        assert!(matches!(err, ConsentError::Conflict { .. }), "{err}");
        let d = with_env(&[("DO_NOT_TRACK", "1")])
            .flag("--telemetry", Some("off"))
            .resolve()
            .unwrap();
        assert_eq!(d.state, Consent::Disabled);
        let d = with_env(&[("DO_NOT_TRACK", "0")]).resolve().unwrap();
        assert_eq!(d.state, Consent::Undecided);
    }

    #[test]
    fn a_donottrack_executable_name_disables() {
        let d = with_env(&[])
            .executable("/opt/ferretdb-donottrack")
            .resolve()
            .unwrap();
        assert_eq!(d.decided_by, SourceKind::ExecutableName);
        assert!(
            with_env(&[])
                .executable("/opt/DoNotTrack-server")
                .flag("--telemetry", Some("yes"))
                .resolve()
                .is_err()
        );
    }

    #[test]
    fn order_is_flag_then_env_then_config_then_persisted() {
        let d = with_env(&[("APP_TELEMETRY_OPTOUT", "true")])
            .flag("--telemetry", Some("enable"))
            .env(
                "APP_TELEMETRY_OPTOUT",
                Polarity::OptOut,
                ValueRule::FerretDb,
            )
            .resolve()
            .unwrap();
        assert_eq!(
            (d.state, d.decided_by),
            (Consent::Enabled, SourceKind::Flag("--telemetry".into()))
        );
        let d = with_env(&[("APP_TELEMETRY_OPTOUT", "true")])
            .env(
                "APP_TELEMETRY_OPTOUT",
                Polarity::OptOut,
                ValueRule::FerretDb,
            )
            .config(
                "telemetry_enabled",
                Some("true"),
                Polarity::OptIn,
                ValueRule::FerretDb,
            )
            .resolve()
            .unwrap();
        assert_eq!(d.state, Consent::Disabled);
        let d = with_env(&[])
            .env(
                "APP_TELEMETRY_OPTOUT",
                Polarity::OptOut,
                ValueRule::FerretDb,
            )
            .config(
                "telemetry_enabled",
                Some("true"),
                Polarity::OptIn,
                ValueRule::FerretDb,
            )
            .resolve()
            .unwrap();
        assert_eq!(
            (d.state, d.decided_by),
            (
                Consent::Enabled,
                SourceKind::Config("telemetry_enabled".into())
            )
        );
        let err = with_env(&[("TELEMETRY_ENABLED", "sure")])
            .env("TELEMETRY_ENABLED", Polarity::OptIn, ValueRule::FerretDb)
            .resolve()
            .unwrap_err();
        assert!(
            err.to_string().contains("TELEMETRY_ENABLED=\"sure\""),
            "{err}"
        );
    }

    #[test]
    fn unleash_categories_narrow_under_the_kill_switch() {
        let unleash = |vars: &[(&str, &str)]| {
            with_env(vars)
                .env("CHECK_VERSION", Polarity::OptIn, ValueRule::Unleash)
                .env_for(
                    Category::UsageStatistics,
                    "SEND_TELEMETRY",
                    Polarity::OptIn,
                    ValueRule::Unleash,
                )
                .resolve()
                .unwrap()
        };
        let d = unleash(&[("CHECK_VERSION", "true"), ("SEND_TELEMETRY", "false")]);
        assert_eq!(d.category(Category::VersionCheck), Consent::Enabled);
        assert_eq!(d.category(Category::UsageStatistics), Consent::Disabled);
        let d = unleash(&[("CHECK_VERSION", "nope"), ("SEND_TELEMETRY", "true")]);
        assert!(
            d.all_disabled(),
            "disabling CHECK_VERSION disables everything"
        );
    }

    #[test]
    fn persisted_decisions_and_broken_state_dirs() {
        let dir = StateDir::new(
            std::env::temp_dir().join(format!("telemetry-consent-{}", uuid::Uuid::new_v4())),
        );
        assert_eq!(
            with_env(&[]).resolve_in(Some(&dir)).unwrap().state,
            Consent::Undecided
        );
        let saved = persist(&dir, Consent::Enabled).unwrap();
        assert!(saved.set_at.ends_with('Z'));
        // (Other unit tests register metrics meanwhile, so only its shape is checked here.)
        assert!(
            saved
                .manifest_version
                .as_ref()
                .is_some_and(|v| v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit())),
            "{saved:?}"
        );
        let d = with_env(&[]).resolve_in(Some(&dir)).unwrap();
        assert_eq!(
            (d.state, d.decided_by, d.decided_at),
            (Consent::Enabled, SourceKind::Persisted, Some(saved.set_at))
        );
        assert_eq!(
            with_env(&[]).resolve().unwrap().state,
            Consent::Undecided,
            "resolve() alone reads no state directory"
        );
        std::fs::write(dir.file(files::CONSENT), b"{not json").unwrap();
        assert_eq!(
            with_env(&[]).resolve_in(Some(&dir)).unwrap().state,
            Consent::Disabled
        );
        std::fs::remove_dir_all(dir.path()).unwrap();
        let missing = StateDir::new("/proc/no/such/dir");
        assert!(persist(&missing, Consent::Enabled).is_err());
    }

    #[test]
    fn a_saved_yes_under_another_manifest_is_asked_again_if_the_product_wants() {
        let dir = StateDir::new(
            std::env::temp_dir().join(format!("telemetry-consent-{}", uuid::Uuid::new_v4())),
        );
        let old = |state| PersistedConsent {
            state,
            set_at: "2026-01-01T00:00:00Z".into(),
            manifest_version: Some("0000000000000000".into()),
        };
        dir.write(
            files::CONSENT,
            &serde_json::to_vec(&old(Consent::Enabled)).unwrap(),
        )
        .unwrap();
        assert_eq!(
            with_env(&[]).resolve_in(Some(&dir)).unwrap().state,
            Consent::Enabled
        );
        assert_eq!(
            with_env(&[])
                .ask_again_on_change(true)
                .resolve_in(Some(&dir))
                .unwrap()
                .state,
            Consent::Undecided
        );
        dir.write(
            files::CONSENT,
            &serde_json::to_vec(&old(Consent::Disabled)).unwrap(),
        )
        .unwrap();
        assert_eq!(
            with_env(&[])
                .ask_again_on_change(true)
                .resolve_in(Some(&dir))
                .unwrap()
                .state,
            Consent::Disabled,
            "an opt-out is never asked again"
        );
        std::fs::remove_dir_all(dir.path()).unwrap();
    }

    /// Any-disables still lets a flag enable when nothing disables, and puts a saved opt-out
    /// above a flag that enables.
    #[test]
    fn any_disables_with_a_flag_and_a_saved_decision() {
        let dir = StateDir::new(
            std::env::temp_dir().join(format!("telemetry-consent-{}", uuid::Uuid::new_v4())),
        );
        let b = || {
            with_env(&[])
                .combine(Combine::AnyDisables)
                .flag("--telemetry", Some("enable"))
        };
        assert_eq!(b().resolve_in(Some(&dir)).unwrap().state, Consent::Enabled);
        persist(&dir, Consent::Disabled).unwrap();
        let d = b().resolve_in(Some(&dir)).unwrap();
        assert_eq!(
            (d.state, d.decided_by),
            (Consent::Disabled, SourceKind::Persisted)
        );
        let d = with_env(&[])
            .flag("--telemetry", Some("enable"))
            .resolve_in(Some(&dir))
            .unwrap();
        assert_eq!(
            d.state,
            Consent::Enabled,
            "first decisive: the flag overrides the saved decision for this run"
        );
        std::fs::remove_dir_all(dir.path()).unwrap();
    }

    #[test]
    fn an_opt_out_source_saying_no_is_no_decision_and_an_opt_in_saying_no_is_one() {
        let d = with_env(&[("X_OPTOUT", "false")])
            .env("X_OPTOUT", Polarity::OptOut, ValueRule::FerretDb)
            .resolve()
            .unwrap();
        assert_eq!(
            (d.state, d.decided_by),
            (Consent::Undecided, SourceKind::Default)
        );
        let d = with_env(&[("X_ENABLED", "false")])
            .env("X_ENABLED", Polarity::OptIn, ValueRule::FerretDb)
            .resolve()
            .unwrap();
        assert_eq!(d.state, Consent::Disabled);
        let d = with_env(&[])
            .switch("--no-telemetry", false, Polarity::OptOut)
            .switch("--telemetry-on", true, Polarity::OptIn)
            .resolve()
            .unwrap();
        assert_eq!(
            (d.state, d.decided_by),
            (Consent::Enabled, SourceKind::Flag("--telemetry-on".into()))
        );
    }

    #[test]
    fn debug_mode_reads_the_generic_and_the_product_variable() {
        assert_eq!(
            with_env(&[]).debug_env("APP_TELEMETRY_DEBUG").debug_mode(),
            None
        );
        assert_eq!(
            with_env(&[("TELEMETRY_DEBUG", "1")])
                .debug_mode()
                .as_deref(),
            Some(DEBUG_ENV)
        );
        assert_eq!(
            with_env(&[("APP_TELEMETRY_DEBUG", "yes"), ("TELEMETRY_DEBUG", "0")])
                .debug_env("APP_TELEMETRY_DEBUG")
                .debug_mode()
                .as_deref(),
            Some("APP_TELEMETRY_DEBUG")
        );
        assert_eq!(with_env(&[("TELEMETRY_DEBUG", "maybe")]).debug_mode(), None);
    }
}

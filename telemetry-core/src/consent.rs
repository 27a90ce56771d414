//! Consent and opt-out: three states, named sources resolved in a fixed order, categories
//! under one kill switch, and the decision persisted with its date.
//!
//! # States (FerretDB seed)
//! [`Consent::Enabled`], [`Consent::Disabled`] and [`Consent::Undecided`] (the default). The
//! reporter waits its undecided delay (default 1 hour) before the first report of an
//! undecided installation; a decision made during that delay takes effect at once.
//!
//! # Sources, in the order they are asked ([`ConsentBuilder::resolve`])
//! 1. `DO_NOT_TRACK` (any truthy value: `1`, `t`, `true`, `y`, `yes`, `on`, `enable`, ...):
//!    disables everything, always. A CLI flag asking to enable at the same time is a startup
//!    error ([`ConsentError::Conflict`]), as in FerretDB.
//! 2. The executable's file name containing `donottrack` (FerretDB): the same.
//! 3. The CLI flag value (`--telemetry=<value>`, FerretDB spellings).
//! 4. The product's environment variables, in the order the product lists them.
//! 5. The product's config file value.
//! 6. The persisted decision in the state directory.
//! 7. Otherwise: undecided.
//!
//! The first source that has a value decides the kill switch. Sources scoped to one
//! [`Category`] (Unleash's `SEND_TELEMETRY` for usage statistics) decide only that category,
//! and can only narrow what the kill switch allows: a category is sent only if both agree.
//!
//! # Values
//! [`ValueRule::FerretDb`]: case-insensitive `1 t true y yes on enable enabled optin opt-in
//! allow` and `0 f false n no off disable disabled optout opt-out disallow forbid`; anything
//! else is an error naming the source and the accepted values. [`ValueRule::Unleash`]: `true`,
//! `t` or `1` (case-insensitive) enable; anything else disables.
//! A source is either an opt-in (`TELEMETRY_ENABLED=true` enables, as in Automatisch) or an
//! opt-out (`EVENTSTORE_TELEMETRY_OPTOUT=true` disables, as in EventStoreDB): [`Polarity`].

use crate::state::{StateDir, files};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
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

/// What a "yes" from a source means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    /// Yes enables (`TELEMETRY_ENABLED=true`, `--telemetry=enable`).
    OptIn,
    /// Yes disables (`EVENTSTORE_TELEMETRY_OPTOUT=true`, `DO_NOT_TRACK=1`).
    OptOut,
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
    /// The CLI flag asks to enable while `DO_NOT_TRACK` or a `donottrack` executable name
    /// disables.
    Conflict {
        /// What disables (`DO_NOT_TRACK` or the executable name).
        disabled_by: String,
        /// The flag that asks to enable.
        flag: String,
    },
}

impl fmt::Display for ConsentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsentError::InvalidValue { source, value } => write!(
                f,
                "invalid telemetry setting {source}={value:?}: use one of {} to enable, or one \
                 of {} to disable",
                YES.join(", "),
                NO.join(", ")
            ),
            ConsentError::Conflict { disabled_by, flag } => write!(
                f,
                "telemetry is disabled by {disabled_by}, which cannot be overridden: remove \
                 {flag} or unset {disabled_by}"
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
    /// A command-line flag.
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
}

impl ConsentDecision {
    /// A decision with no sources: undecided.
    pub fn undecided() -> Self {
        ConsentDecision {
            state: Consent::Undecided,
            decided_by: SourceKind::Default,
            narrowed: BTreeMap::new(),
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
}

type EnvReader = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Collects the sources of a product, then resolves them ([`ConsentBuilder::resolve`]).
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
pub struct ConsentBuilder {
    flag: Option<(String, String)>,
    sources: Vec<Source>,
    state_dir: Option<StateDir>,
    environment: EnvReader,
    executable: Option<PathBuf>,
}

impl Default for ConsentBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsentBuilder {
    /// No sources yet, reading the process's environment and executable name.
    pub fn new() -> Self {
        ConsentBuilder {
            flag: None,
            sources: Vec::new(),
            state_dir: None,
            environment: Box::new(|name| std::env::var(name).ok()),
            executable: std::env::current_exe().ok(),
        }
    }

    /// The CLI flag `name` (e.g. `--telemetry`) and its value if given; FerretDB spellings,
    /// yes enables.
    pub fn flag(mut self, name: &str, value: Option<&str>) -> Self {
        self.flag = value.map(|v| (name.to_owned(), v.to_owned()));
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

    /// The state directory holding a persisted decision.
    pub fn state_dir(mut self, dir: StateDir) -> Self {
        self.state_dir = Some(dir);
        self
    }

    /// Reads environment variables through `read` instead of the process environment.
    pub fn environment(
        mut self,
        read: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.environment = Box::new(read);
        self
    }

    /// Uses `path` as the executable's path (for the `donottrack` rule) instead of the
    /// running executable's.
    pub fn executable(mut self, path: impl Into<PathBuf>) -> Self {
        self.executable = Some(path.into());
        self
    }

    /// Resolves the sources in the documented order.
    ///
    /// # Errors
    /// [`ConsentError::InvalidValue`] for a value that is neither yes nor no, and
    /// [`ConsentError::Conflict`] for a flag asking to enable what `DO_NOT_TRACK` or the
    /// executable's name disables. A persisted decision that cannot be read is not an error:
    /// it counts as absent, with one log line.
    pub fn resolve(&self) -> Result<ConsentDecision, ConsentError> {
        let flag = match &self.flag {
            Some((name, value)) => Some((name, parse_value(name, value, ValueRule::FerretDb)?)),
            None => None,
        };
        let do_not_track = match (self.environment)("DO_NOT_TRACK") {
            // DO_NOT_TRACK's convention: set to a truthy value means "do not track"; an empty
            // or falsy value means nothing. Unknown values err on the side of not tracking.
            Some(v) if !v.trim().is_empty() => {
                parse_value("DO_NOT_TRACK", &v, ValueRule::FerretDb).unwrap_or(true)
            }
            _ => false,
        };
        let executable = self
            .executable
            .as_ref()
            .and_then(|p| p.file_name())
            .is_some_and(|n| {
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
            });
        }

        let mut decision: Option<(Consent, SourceKind)> =
            flag.map(|(name, yes)| (enabled_if(yes), SourceKind::Flag(name.clone())));
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
                    let enabled = (*polarity == Polarity::OptIn) == yes;
                    match scope {
                        Some(category) if !enabled => {
                            narrowed
                                .entry(*category)
                                .or_insert(SourceKind::Env(name.clone()));
                        }
                        None if decision.is_none() => {
                            decision = Some((enabled_if(enabled), SourceKind::Env(name.clone())));
                        }
                        _ => {}
                    }
                }
                Source::Config {
                    name,
                    value,
                    polarity,
                    rule,
                } => {
                    let Some(value) = value else { continue };
                    let yes = parse_value(name, value, *rule)?;
                    if decision.is_none() {
                        let enabled = (*polarity == Polarity::OptIn) == yes;
                        decision = Some((enabled_if(enabled), SourceKind::Config(name.clone())));
                    }
                }
            }
        }
        if decision.is_none() {
            decision = self
                .state_dir
                .as_ref()
                .and_then(load_persisted)
                .map(|p| (p.state, SourceKind::Persisted));
        }
        let (state, decided_by) = decision.unwrap_or((Consent::Undecided, SourceKind::Default));
        Ok(ConsentDecision {
            state,
            decided_by,
            narrowed,
        })
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
}

fn load_persisted(dir: &StateDir) -> Option<PersistedConsent> {
    match dir.read(files::CONSENT) {
        Ok(None) => None,
        Ok(Some(text)) => match serde_json::from_str(&text) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!(
                    target: "telemetry",
                    "ignoring the saved telemetry decision in {}: {e}; telemetry stays off until decided",
                    dir.file(files::CONSENT).display()
                );
                Some(PersistedConsent {
                    state: Consent::Disabled,
                    set_at: String::new(),
                })
            }
        },
        Err(e) => {
            log::warn!(
                target: "telemetry",
                "cannot read the saved telemetry decision in {}: {e}; telemetry stays off",
                dir.path().display()
            );
            Some(PersistedConsent {
                state: Consent::Disabled,
                set_at: String::new(),
            })
        }
    }
}

/// Saves a decision with today's date in `dir`.
///
/// # Errors
/// The I/O error (read-only or missing directory, full disk); the caller logs it once and
/// keeps the decision for this run only.
pub fn persist(dir: &StateDir, state: Consent) -> std::io::Result<PersistedConsent> {
    let persisted = PersistedConsent {
        state,
        set_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
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
            with_env(&[])
                .state_dir(dir.clone())
                .resolve()
                .unwrap()
                .state,
            Consent::Undecided
        );
        let saved = persist(&dir, Consent::Enabled).unwrap();
        assert!(saved.set_at.ends_with('Z'));
        let d = with_env(&[]).state_dir(dir.clone()).resolve().unwrap();
        assert_eq!(
            (d.state, d.decided_by),
            (Consent::Enabled, SourceKind::Persisted)
        );
        std::fs::write(dir.file(files::CONSENT), b"{not json").unwrap();
        assert_eq!(
            with_env(&[])
                .state_dir(dir.clone())
                .resolve()
                .unwrap()
                .state,
            Consent::Disabled
        );
        std::fs::remove_dir_all(dir.path()).unwrap();
        let missing = StateDir::new("/proc/no/such/dir");
        assert!(persist(&missing, Consent::Enabled).is_err());
    }
}

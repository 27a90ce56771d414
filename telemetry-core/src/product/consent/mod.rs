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
//! [`ValueRule::Unleash`]: exactly `true`, `t` or `1` say yes; anything else no (`TRUE` and
//! ` 1` too, as Unleash's "Data collection" page says "anything other than" those).
//!
//! [`Polarity`] says what yes and no mean:
//! - [`Polarity::OptIn`] (`TELEMETRY_ENABLED`, Automatisch; `--telemetry`, FerretDB): yes
//!   enables, no disables. Both are decisions.
//! - [`Polarity::OptOut`] (`EVENTSTORE_TELEMETRY_OPTOUT`, EventStoreDB;
//!   `QDRANT__TELEMETRY_DISABLED`, Qdrant): yes disables; a plain no (`=false`, `0`, `f`, `n`,
//!   `no`, `off`) is **no decision**: the source is as if unset, so it neither consents nor
//!   skips an undecided delay. A word that names an opt-out (`=opt-out`, `=disable`, `=forbid`)
//!   disables: said to an opt-out variable it can only mean "out".
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

mod builder;
mod error;
#[cfg(feature = "clap")]
mod flag;
mod saved;
mod values;

pub use builder::ConsentBuilder;
pub use error::ConsentError;
#[cfg(feature = "clap")]
pub use flag::TelemetryArgs;
pub use saved::{PersistedConsent, persist, persisted};
#[cfg(feature = "fuzzing")]
pub(crate) use values::{NO, YES, parse_value};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

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

/// The environment variable that turns on debug mode in every product.
pub const DEBUG_ENV: &str = "TELEMETRY_DEBUG";

#[cfg(test)]
mod tests {
    use super::values::{NO, YES, parse_value};
    use super::*;
    use crate::state::{StateDir, files};
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
        for yes in ["true", "t", "1"] {
            assert_eq!(
                parse_value("CHECK_VERSION", yes, ValueRule::Unleash),
                Ok(true)
            );
        }
        // Unleash compares exactly: anything else, these in other cases or with spaces
        // included, says no.
        for no in ["T", "TRUE", "True", " 1", "true ", "yes", ""] {
            assert_eq!(
                parse_value("CHECK_VERSION", no, ValueRule::Unleash),
                Ok(false),
                "{no:?}"
            );
        }
        assert_eq!(
            parse_value("CHECK_VERSION", "yes", ValueRule::Unleash),
            Ok(false)
        );
    }

    #[test]
    fn an_opt_out_variable_set_to_a_word_naming_an_opt_out_disables() {
        let with = |value: &'static str| {
            ConsentBuilder::new()
                .environment(move |name| (name == "APP_OPTOUT").then(|| value.to_owned()))
                .executable("/usr/bin/app")
                .env("APP_OPTOUT", Polarity::OptOut, ValueRule::FerretDb)
                .default_consent(Consent::Enabled)
                .resolve()
                .unwrap()
                .state
        };
        for out in [
            "true",
            "1",
            "yes",
            "on",
            "enable",
            "disable",
            "disabled",
            "optout",
            "opt-out",
            "OPT-OUT",
            " Disable ",
            "disallow",
            "forbid",
        ] {
            assert_eq!(with(out), Consent::Disabled, "APP_OPTOUT={out:?}");
        }
        for no in ["false", "0", "f", "n", "no", "off", " FALSE "] {
            assert_eq!(
                with(no),
                Consent::Enabled,
                "APP_OPTOUT={no:?} is no decision"
            );
        }
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

//! The product's consent sources and their resolution: [`ConsentBuilder`].

use super::saved::{PersistedConsent, load_persisted};
use super::values::parse_value;
use super::{
    Category, Combine, Consent, ConsentDecision, ConsentError, DEBUG_ENV, Polarity, SourceKind,
    ValueRule,
};
use crate::state::StateDir;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

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
                    let Some(state) = read(name, &value, *polarity, *rule)? else {
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
                    if let Some(state) = read(name, value, *polarity, *rule)? {
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
            crate::diagnostics::diag!(
                info,
                "what telemetry collects has changed since it was enabled: asking again (undecided)"
            );
            return None;
        }
        Some(persisted)
    }
}

/// What `value` of source `name` decides under `polarity` and `rule`: `None` is no decision.
/// Under [`Polarity::OptOut`], only a plain negative (`0`, `f`, `false`, `n`, `no`, `off`) is no
/// decision: a word that names an opt-out (`disable`, `disabled`, `optout`, `opt-out`,
/// `disallow`, `forbid`) given to an opt-out variable can only mean "out", so it disables.
fn read(
    name: &str,
    value: &str,
    polarity: Polarity,
    rule: ValueRule,
) -> Result<Option<Consent>, ConsentError> {
    let yes = parse_value(name, value, rule)?;
    let plain_no = matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "0" | "f" | "false" | "n" | "no" | "off"
    );
    if polarity == Polarity::OptOut && !yes && !plain_no && rule == ValueRule::FerretDb {
        return Ok(Some(Consent::Disabled));
    }
    Ok(meaning(polarity, yes))
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

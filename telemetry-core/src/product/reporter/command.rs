//! End-user control: `myapp telemetry status|enable|disable|show|manifest|clean`, as plain
//! methods of [`ReporterBuilder`] and as a clap subcommand (feature `clap`).
//!
//! A product mounts the subcommand beside its own:
//!
//! ```ignore
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     /// Show or change what telemetry this installation sends.
//!     Telemetry {
//!         #[command(subcommand)]
//!         action: telemetry_core::reporter::TelemetryCommand,
//!     },
//! }
//! // ... then, with the same builder the product starts its reporter with:
//! reporter_builder.run_command(action, &mut std::io::stdout())?;
//! ```

use super::ReporterBuilder;
use super::maker::ReportMaker;
use crate::privacy::anonymize::HashKey;
use crate::product::consent::{
    Category, Consent, ConsentDecision, ConsentError, PersistedConsent, SourceKind,
};
use crate::product::identity::{self, Identity};
use crate::state::files;
use std::fmt;
use std::io::Write;

/// One end-user telemetry command. With the `clap` feature it is a `clap::Subcommand`; each
/// variant's doc comment is its help text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::Subcommand))]
pub enum TelemetryCommand {
    /// Print the telemetry decision, what set it and when, the installation id to quote for a
    /// deletion request, the last transmission and the reports waiting to be sent.
    Status,
    /// Allow telemetry from now on (saved in the state directory).
    Enable,
    /// Stop telemetry from now on (saved in the state directory) and delete unsent reports.
    Disable,
    /// Print exactly the payload the next report would carry.
    Show,
    /// Print the "What data is collected" page.
    Manifest,
    /// Delete unsent reports, the last report, the installation id and the hashing key.
    Clean,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Consent cannot be resolved, or enabling is refused (`DO_NOT_TRACK`).
    #[error("{0}")]
    Consent(#[source] ConsentError),
    /// The command needs a state directory and the builder has none.
    #[error("telemetry has no state directory here, so there is nothing to save or delete")]
    NoStateDir,
    /// Reading or writing the state directory or the output failed.
    #[error("telemetry state: {0}")]
    Io(#[source] std::io::Error),
}

impl From<ConsentError> for CommandError {
    fn from(e: ConsentError) -> Self {
        CommandError::Consent(e)
    }
}

impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> Self {
        CommandError::Io(e)
    }
}

/// The last report the reporter made, from `telemetry.json` in the state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastTransmission {
    /// When it was written, RFC 3339 UTC.
    pub written_at: String,
    /// Whether it was delivered.
    pub sent: bool,
    /// What happened, in words (`sent`, `telemetry is disabled`, ...).
    pub outcome: String,
}

/// What [`TelemetryCommand::Status`] prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryStatus {
    /// The decision as the next start would resolve it.
    pub decision: ConsentDecision,
    /// The debug variable that is set, if any (reports are printed, not sent).
    pub debug: Option<String>,
    /// The installation id, if one was made (reports of products that send one carry it).
    pub installation_id: Option<uuid::Uuid>,
    /// The last report, if any.
    pub last: Option<LastTransmission>,
    /// Reports waiting in the spool.
    pub spooled: usize,
}

impl fmt::Display for TelemetryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.decision;
        write!(f, "telemetry: {}, set by {}", d.state, d.decided_by)?;
        if let Some(at) = &d.decided_at {
            write!(f, " on {at}")?;
        }
        writeln!(f)?;
        for c in Category::ALL {
            let name = match c {
                Category::VersionCheck => "version check",
                Category::UsageStatistics => "usage statistics",
                Category::ErrorReports => "error reports",
            };
            write!(f, "  {name}: {}", d.category(c))?;
            if let Some(by) = d.narrowed.get(&c) {
                write!(f, " (by {by})")?;
            }
            writeln!(f)?;
        }
        if let Some(name) = &self.debug {
            writeln!(
                f,
                "debug mode: on ({name}): reports are printed, nothing is sent"
            )?;
        }
        match &self.installation_id {
            Some(id) => writeln!(
                f,
                "installation id: {id} (quote it to ask for this installation's data to be deleted)"
            )?,
            None => writeln!(f, "installation id: none")?,
        }
        match &self.last {
            Some(last) => writeln!(
                f,
                "last report: {} ({})",
                last.written_at,
                if last.sent { "sent" } else { &last.outcome }
            )?,
            None => writeln!(f, "last report: none")?,
        }
        write!(f, "reports waiting to be sent: {}", self.spooled)
    }
}

impl ReporterBuilder {
    /// The installation's telemetry status, read from the sources and the state directory
    /// without changing anything.
    ///
    /// # Errors
    /// The [`ConsentError`] of a source that cannot be read.
    pub fn status(&self) -> Result<TelemetryStatus, ConsentError> {
        let decision = self.resolve_consent()?;
        let dir = self.state_dir.as_ref();
        let last = dir
            .and_then(|d| d.read(files::LAST_REPORT).ok().flatten())
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .map(|v| LastTransmission {
                written_at: v["written_at"].as_str().unwrap_or_default().to_owned(),
                sent: v["sent"].as_bool().unwrap_or(false),
                outcome: v["outcome"].as_str().unwrap_or_default().to_owned(),
            });
        Ok(TelemetryStatus {
            decision,
            debug: self.consent.debug_mode(),
            installation_id: dir.and_then(identity::existing_installation_id),
            last,
            spooled: self.spool().map_or(0, |s| s.count()),
        })
    }

    /// Saves `state` as the installation's decision (what [`super::Reporter::set_consent`]
    /// does at run time); disabling also deletes the reports waiting to be sent. A flag or
    /// variable that decides before the saved decision still wins on the runs that set it.
    ///
    /// # Errors
    /// [`CommandError::Consent`] when enabling what an operator's opt-out disables
    /// (`DO_NOT_TRACK`, the executable's name, the flag, a variable, a config value or a
    /// switch); [`CommandError::NoStateDir`] without a state directory; the I/O error.
    pub fn save_consent(&self, state: Consent) -> Result<PersistedConsent, CommandError> {
        let dir = self.state_dir.as_ref().ok_or(CommandError::NoStateDir)?;
        if state != Consent::Disabled {
            let now = self.resolve_consent()?;
            if now.is_operator_opt_out() {
                return Err(CommandError::Consent(ConsentError::Conflict {
                    disabled_by: now.decided_by.to_string(),
                    flag: "the request to enable telemetry".to_owned(),
                }));
            }
        }
        let saved = crate::product::consent::persist(dir, state)?;
        if state == Consent::Disabled
            && let Some(spool) = self.spool()
        {
            spool.clear();
        }
        Ok(saved)
    }

    /// Exactly the bytes (compact JSON) the next report would carry, made by the same function
    /// as the HTTP body, and whether consent lets it leave (`None`: it would not be sent, because
    /// consent is disabled or debug mode is on). Uses the stored hashing key if there is one
    /// and creates no file.
    ///
    /// # Errors
    /// The [`ConsentError`] of a source that cannot be read.
    pub fn preview(&self) -> Result<(String, Option<Category>), ConsentError> {
        let decision = self.resolve_consent()?;
        if let Some(key) = self
            .state_dir
            .as_ref()
            .and_then(|dir| HashKey::load_existing(&dir.file(files::HASH_KEY)))
        {
            // The stored key, so names hash as they will in the report; none is created here.
            crate::privacy::anonymize::set_global(crate::privacy::anonymize::Anonymizer::new(key));
        }
        let installation_id = match (&self.state_dir, self.identity) {
            (Some(dir), Identity::Installation) => identity::existing_installation_id(dir),
            _ => None,
        };
        let maker = ReportMaker::new(
            self.application.clone(),
            installation_id,
            self.sections.clone(),
            self.system_facts.clone(),
            self.shape.clone(),
        );
        let category = match decision.state {
            _ if self.consent.debug_mode().is_some() => None,
            Consent::Disabled => None,
            _ => [Category::UsageStatistics, Category::VersionCheck]
                .into_iter()
                .find(|c| decision.category(*c) != Consent::Disabled),
        };
        Ok((maker.payload(Some("schedule"), &decision), category))
    }

    /// Deletes what the reporter keeps about this installation besides the decision: unsent
    /// reports, the last report, the installation id and the hashing key. Returns how many
    /// files were removed.
    ///
    /// # Errors
    /// [`CommandError::NoStateDir`] without a state directory; the I/O error of a file that
    /// exists but cannot be removed.
    pub fn clean(&self) -> Result<usize, CommandError> {
        let dir = self.state_dir.as_ref().ok_or(CommandError::NoStateDir)?;
        let mut removed = self.spool().map_or(0, |s| s.clear());
        for name in [files::LAST_REPORT, files::INSTALLATION_ID, files::HASH_KEY] {
            match std::fs::remove_file(dir.file(name)) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CommandError::Io(e)),
            }
        }
        Ok(removed)
    }

    /// Runs `command`, writing what it prints to `out`.
    ///
    /// # Errors
    /// The [`CommandError`] of the operation, or of writing to `out`.
    pub fn run_command(
        &self,
        command: TelemetryCommand,
        out: &mut dyn Write,
    ) -> Result<(), CommandError> {
        match command {
            TelemetryCommand::Status => writeln!(out, "{}", self.status()?)?,
            TelemetryCommand::Enable | TelemetryCommand::Disable => {
                let state = if command == TelemetryCommand::Enable {
                    Consent::Enabled
                } else {
                    Consent::Disabled
                };
                let saved = self.save_consent(state)?;
                writeln!(out, "telemetry {} (saved {})", saved.state, saved.set_at)?;
                let now = self.resolve_consent()?;
                if now.decided_by != SourceKind::Persisted {
                    writeln!(
                        out,
                        "note: {} decides before the saved decision while it is set: telemetry is {}",
                        now.decided_by, now.state
                    )?;
                }
            }
            TelemetryCommand::Show => {
                let (json, category) = self.preview()?;
                writeln!(out, "{json}")?;
                if category.is_none() {
                    writeln!(
                        out,
                        "(telemetry is disabled: this report would not be sent)"
                    )?;
                }
            }
            TelemetryCommand::Manifest => {
                writeln!(
                    out,
                    "{}",
                    crate::privacy::manifest::manifest().to_markdown()
                )?;
            }
            TelemetryCommand::Clean => {
                let removed = self.clean()?;
                writeln!(out, "telemetry state cleaned: {removed} file(s) deleted")?;
            }
        }
        Ok(())
    }
}

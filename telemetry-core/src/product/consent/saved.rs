//! The decision saved in the state directory (`consent.json`): [`PersistedConsent`].

use super::Consent;
use crate::state::{StateDir, files};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

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

pub(super) fn load_persisted(dir: &StateDir) -> Option<PersistedConsent> {
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
                crate::diagnostics::diag!(
                    warn,
                    "ignoring the saved telemetry decision in {}: {e}; telemetry stays off until decided",
                    crate::state::named(files::CONSENT)
                );
                Some(broken())
            }
        },
        Err(e) => {
            crate::diagnostics::diag!(
                warn,
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

//! Who a report is from, without saying who anyone is.
//!
//! - The **instance id** ([`crate::instance_id`]) is random at every start and never stored
//!   (Qdrant's "Usage Statistics" documentation): reports of one run can be grouped, runs cannot be linked.
//! - The **installation id** ([`installation_id`]) is random once per installation and kept in
//!   the state directory (FerretDB, Automatisch): reports of one installation can be linked
//!   across restarts, and a user can quote it to ask for their data to be deleted (Qdrant's
//!   "Usage Statistics" documentation), so it is written to the log when created or loaded.
//!
//! A product chooses: [`Identity::Instance`] sends only the instance id;
//! [`Identity::Installation`] adds the installation id.

use crate::state::{StateDir, files};
use uuid::Uuid;

/// Which ids a product's reports carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Identity {
    /// Only the per-start instance id.
    #[default]
    Instance,
    /// The instance id and the persisted installation id.
    Installation,
}

/// The installation id stored in `dir`, created on first use. Logged (target `telemetry`, level
/// info) so that a user can find it to ask for deletion.
///
/// # Errors
/// The I/O error if the directory cannot be read or written; a corrupt file is replaced by a
/// new id (logged), since an id that cannot be read identifies nothing.
pub fn installation_id(dir: &StateDir) -> std::io::Result<Uuid> {
    let existing = dir.read(files::INSTALLATION_ID)?;
    if let Some(id) = existing
        .as_deref()
        .and_then(|t| Uuid::parse_str(t.trim()).ok())
    {
        crate::diagnostics::diag!(
            info,
            "telemetry installation id: {id} (quote it to ask for your data to be deleted)"
        );
        return Ok(id);
    }
    if existing.is_some() {
        crate::diagnostics::diag!(
            warn,
            "{} does not hold an installation id; making a new one",
            crate::state::named(files::INSTALLATION_ID)
        );
    }
    let id = Uuid::new_v4();
    dir.write(files::INSTALLATION_ID, id.to_string().as_bytes())?;
    crate::diagnostics::diag!(
        info,
        "telemetry installation id: {id} (new; quote it to ask for your data to be deleted)"
    );
    Ok(id)
}

/// The installation id stored in `dir`, if there is a valid one; never creates one.
pub fn existing_installation_id(dir: &StateDir) -> Option<Uuid> {
    let text = dir.read(files::INSTALLATION_ID).ok()??;
    Uuid::parse_str(text.trim()).ok()
}

/// The name-hashing key stored in `dir` (created on first use), installed as the process's
/// anonymizer key so hashes are stable across restarts of one installation and differ
/// between installations.
///
/// # Errors
/// The I/O error; the process then keeps its per-run key.
pub fn install_hash_key(dir: &StateDir) -> std::io::Result<()> {
    dir.ensure()?;
    let key = crate::privacy::anonymize::HashKey::load_or_create(&dir.file(files::HASH_KEY))?;
    crate::privacy::anonymize::set_global(crate::privacy::anonymize::Anonymizer::new(key));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installation_ids_persist_and_heal() {
        let dir =
            StateDir::new(std::env::temp_dir().join(format!("telemetry-id-{}", Uuid::new_v4())));
        let first = installation_id(&dir).unwrap();
        assert_eq!(installation_id(&dir).unwrap(), first);
        std::fs::write(dir.file(files::INSTALLATION_ID), b"garbage").unwrap();
        let healed = installation_id(&dir).unwrap();
        assert_ne!(healed, first);
        assert_eq!(installation_id(&dir).unwrap(), healed);
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert!(installation_id(&StateDir::new("/proc/no/such/dir")).is_err());
    }
}

//! The process's anonymizer and where its key is stored: [`global`], [`use_key_file`],
//! [`set_global`].

use super::{Anonymizer, HashKey};
use std::path::Path;
use std::sync::{Arc, RwLock};

static GLOBAL: RwLock<Option<Arc<Anonymizer>>> = RwLock::new(None);

// The anonymizer's lock, held across a `fork` (see `crate::fork`).
crate::fork::fork_hook!(ANONYMIZER_FORK_HOOK, 2, || {
    Some(Box::new(GLOBAL.write().unwrap_or_else(|e| e.into_inner())))
});

/// Where the process's key is stored, once a state directory is known.
static KEY_FILE: RwLock<Option<std::path::PathBuf>> = RwLock::new(None);

// Holds the key file's path until the guard is dropped (see [`crate::fork`]).
crate::fork::fork_hook!(KEY_FILE_FORK_HOOK, 1, || {
    Some(Box::new(
        KEY_FILE.write().unwrap_or_else(|e| e.into_inner()),
    ))
});

/// The process's anonymizer, used by reports and hashed labels. On first use it loads (or
/// creates, owner-only) the key stored in the state directory given to
/// [`use_key_file`] (the reporter's builder gives it as soon as its state directory is set),
/// so hashes are stable across restarts whoever hashes first. Without one it hashes with a
/// random key made for this process: hashes are then stable within this run only.
pub fn global() -> Arc<Anonymizer> {
    crate::fork::install();
    if let Some(a) = GLOBAL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return a.clone();
    }
    let file = KEY_FILE.read().unwrap_or_else(|e| e.into_inner()).clone();
    let mut slot = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| {
        let key = file
            .and_then(|path| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).ok()?;
                }
                HashKey::load_or_create(&path).ok()
            })
            .unwrap_or_else(HashKey::generate);
        Arc::new(Anonymizer::new(key))
    })
    .clone()
}

/// The key file the process's anonymizer loads on first use (`hash.key` in the state
/// directory). If names were already hashed under another key, that key stays for this run
/// (one series per name), and this is logged once.
pub fn use_key_file(path: &Path) {
    *KEY_FILE.write().unwrap_or_else(|e| e.into_inner()) = Some(path.to_path_buf());
}

/// Replaces the process's anonymizer (for example with one keyed by the installation's
/// stored [`HashKey`]), unless names were already hashed under a different key in this run:
/// then that key stays, so a name never gets two hashes (and two series) in one run; this is
/// logged once.
pub fn set_global(anonymizer: Anonymizer) {
    let mut slot = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    if let Some(current) = slot.as_ref()
        && current.used.load(std::sync::atomic::Ordering::Relaxed)
        && current.key != anonymizer.key
    {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            crate::diagnostics::diag!(warn, "names were hashed before the installation's telemetry key was known: this run keeps hashing with its own key (configure the reporter before hashing names)");
        });
        return;
    }
    *slot = Some(Arc::new(anonymizer));
}

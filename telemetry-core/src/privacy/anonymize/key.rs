//! The per-installation secret of name hashing: [`HashKey`].

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::Path;

/// The secret key of name hashing: 32 random bytes per installation.
///
/// Its `Debug` output never shows the bytes. Keep it in the installation's state directory
/// ([`HashKey::load_or_create`]); it is never part of any report.
#[derive(Clone, PartialEq, Eq)]
pub struct HashKey(pub(super) [u8; 32]);

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(<secret>)")
    }
}

impl HashKey {
    /// The seal of a spooled report: the full HMAC-SHA-256 of its bytes (64 hex digits), in a
    /// domain of its own, so no public hash equals it.
    pub(crate) fn seal(&self, bytes: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"spool\0");
        mac.update(bytes);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A new random key from the operating system's generator.
    ///
    /// # Panics
    /// Never in practice: only if the OS has no random source at all (`getrandom` fails), in
    /// which case a key derived from the process's random instance id is used instead.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        if getrandom::fill(&mut bytes).is_err() {
            let a = uuid::Uuid::new_v4();
            let b = uuid::Uuid::new_v4();
            bytes[..16].copy_from_slice(a.as_bytes());
            bytes[16..].copy_from_slice(b.as_bytes());
        }
        HashKey(bytes)
    }

    /// A key from known bytes (tests, or a key managed by the product).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        HashKey(bytes)
    }

    /// The key stored at `path` if there is a valid one; never creates or replaces a file
    /// (previews and status commands use it).
    pub fn load_existing(path: &Path) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        Self::from_hex(std::str::from_utf8(&bytes).ok()?.trim())
    }
    /// Reads the key stored at `path` (64 hex digits), or creates one there with permissions
    /// `0600` on Unix. The directory must exist.
    ///
    /// The key is written to a temporary file and linked into place, so two processes
    /// starting at once on one state directory end up with the same key, and a reader never
    /// sees half a key. A file that does not hold a key (corrupt, empty after a full disk) is
    /// replaced by a new key, with one log line: hashes made before change, which is better
    /// than hashing with a key nobody keeps.
    ///
    /// # Errors
    /// The I/O error if the file cannot be read or written; the caller then uses a
    /// [`generate`](Self::generate)d key for this run and says so once.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        for _ in 0..3 {
            match std::fs::read(path) {
                Ok(bytes) => {
                    if let Some(key) = std::str::from_utf8(&bytes)
                        .ok()
                        .and_then(|t| Self::from_hex(t.trim()))
                    {
                        return Ok(key);
                    }
                    crate::diagnostics::diag!(
                        warn,
                        "{} does not hold a name-hashing key; replacing it (hashes made before will differ)",
                        crate::state::named(crate::state::file_name(path))
                    );
                    let key = Self::generate();
                    crate::state::write_private(path, key.to_hex().as_bytes())?;
                    return Ok(key);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = Self::generate();
                    match Self::create(path, &key) {
                        Ok(()) => return Ok(key),
                        // Another process created it first: use theirs.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other(format!(
            "{} keeps changing",
            path.display()
        )))
    }

    /// Writes `key` beside `path`, then links it into place; `AlreadyExists` if `path` exists.
    fn create(path: &Path, key: &HashKey) -> std::io::Result<()> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(format!(
            ".{}.{}.partial",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let partial = std::path::PathBuf::from(partial);
        let result = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&partial)?;
            std::io::Write::write_all(&mut file, key.to_hex().as_bytes())?;
            file.sync_all()?;
            std::fs::hard_link(&partial, path)
        })();
        let _ = std::fs::remove_file(&partial);
        result
    }

    fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(HashKey(bytes))
    }
}

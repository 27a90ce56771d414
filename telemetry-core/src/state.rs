//! The installation's state directory: persisted consent, installation id, hash key, the last
//! report and the spool.
//!
//! Every problem with it (missing, read-only, full, a corrupt file) is an `io::Error` here;
//! callers turn it into "do not send" plus one log line, never a crash.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A directory the framework keeps its files in, e.g. `/var/lib/my-server/telemetry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    path: PathBuf,
}

/// File names inside the state directory.
pub(crate) mod files {
    /// The persisted consent decision (JSON).
    pub(crate) const CONSENT: &str = "consent.json";
    /// The installation id (a UUID, text).
    pub(crate) const INSTALLATION_ID: &str = "installation_id";
    /// The name-hashing key (64 hex digits).
    pub(crate) const HASH_KEY: &str = "hash.key";
    /// The last report, with whether and where it was sent (JSON).
    pub(crate) const LAST_REPORT: &str = "telemetry.json";
    /// Reports waiting to be sent.
    pub(crate) const SPOOL: &str = "spool";
}

impl StateDir {
    /// The directory at `path`. Nothing is created until something is written.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    /// The per-user state directory of a command-line tool, where the platform keeps an
    /// application's local data (the `directories` crate's `ProjectDirs::data_local_dir`):
    /// `$XDG_DATA_HOME/{application}` or `~/.local/share/{application}` on Linux,
    /// `~/Library/Application Support/{qualifier}.{organization}.{application}` on macOS,
    /// `%LOCALAPPDATA%\{organization}\{application}\data` on Windows (feature `user-dirs`).
    /// `qualifier` is a reverse domain (`com`, `org`), `organization` and `application` the
    /// names a product uses for its other files.
    ///
    /// `None` if the platform gives no home directory (a service user without one): then keep
    /// no state, or give a directory with [`StateDir::new`].
    #[cfg(feature = "user-dirs")]
    pub fn for_user(qualifier: &str, organization: &str, application: &str) -> Option<Self> {
        directories::ProjectDirs::from(qualifier, organization, application)
            .map(|dirs| StateDir::new(dirs.data_local_dir()))
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates the directory (and its parents) if needed.
    ///
    /// # Errors
    /// The I/O error, e.g. on a read-only file system.
    pub fn ensure(&self) -> io::Result<()> {
        fs::create_dir_all(&self.path)
    }

    /// Reads file `name`; `Ok(None)` if it does not exist. Bytes that are not UTF-8 are
    /// replaced (U+FFFD), so a corrupt file reads as text that fails to parse, not as an error.
    ///
    /// # Errors
    /// Any other I/O error.
    pub fn read(&self, name: &str) -> io::Result<Option<String>> {
        match fs::read(self.file(name)) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes file `name` whole: to a temporary file beside it, synced, then renamed into
    /// place, so a crash or a full disk never leaves half a file, and two processes sharing
    /// the directory each see one complete version.
    ///
    /// # Errors
    /// The I/O error; the previous file, if any, is left as it was.
    pub fn write(&self, name: &str, contents: &[u8]) -> io::Result<()> {
        self.ensure()?;
        write_atomically(&self.file(name), contents)
    }
}

/// How the framework's log lines name `file` (a path inside the state directory): relative to
/// it, never as an absolute path, which would carry a user or host name.
pub(crate) fn named(file: impl std::fmt::Display) -> String {
    format!("`{file}` in the telemetry state directory")
}

/// The last component of `path`, for log lines that must not carry absolute paths.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes `path` through a unique temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_with_mode(path, contents, None)
}

/// As [`write_atomically`], readable and writable by the owner only (mode 0600 on Unix),
/// whatever the file's mode was before: for secrets such as the hashing key.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_with_mode(path, contents, Some(0o600))
}

fn write_with_mode(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(
        ".{}.{}.partial",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let partial = PathBuf::from(partial);
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(mode) = mode {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&partial)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&partial, path)?;
        if let Some(dir) = path.parent() {
            sync_dir(dir);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// Makes the renames and removals in `dir` durable: on Unix, `fsync` on the directory (a
/// renamed file's new name is otherwise lost with the page cache on a power loss). Best
/// effort: a failure only weakens durability.
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(feature = "user-dirs", target_os = "linux"))]
    #[test]
    fn a_user_state_dir_is_under_the_platform_data_dir() {
        // HOME or XDG_DATA_HOME is set wherever tests run on Linux.
        let dir = StateDir::for_user("org", "Example", "docs-app").expect("a home directory");
        assert!(dir.path().ends_with("docs-app"), "{}", dir.path().display());
        assert!(dir.path().is_absolute());
    }

    #[test]
    fn write_is_atomic_and_read_tells_missing_from_broken() {
        let dir = StateDir::new(
            std::env::temp_dir().join(format!("telemetry-state-{}", uuid::Uuid::new_v4())),
        );
        assert_eq!(dir.read("x").unwrap(), None);
        dir.write("x", b"one").unwrap();
        dir.write("x", b"two").unwrap();
        assert_eq!(dir.read("x").unwrap().as_deref(), Some("two"));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no partial file left"
        );
        fs::remove_dir_all(dir.path()).unwrap();
    }
}

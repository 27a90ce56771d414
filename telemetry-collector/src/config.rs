//! The collector's configuration: a TOML file, then environment variables over it.
//!
//! ```toml
//! listen = "127.0.0.1:4318"
//! admin_token = "a long random string"
//! max_body_bytes = 262144
//!
//! [storage]
//! backend = "sqlite"            # or "clickhouse"
//! path = "telemetry-collector.sqlite3"
//! # url = "http://127.0.0.1:8123"
//! # database = "telemetry"
//!
//! [products.docstore]
//! latest_version = "1.0.1"
//! channels = { beta = "1.1.0-beta.1" }
//! default_rate = 1.0
//! sampling = { "docstore.search.calls" = 0.1 }
//! deny = ["docstore.export.csv"]
//! ```
//!
//! Environment variables (each overrides the file): `TELEMETRY_COLLECTOR_LISTEN`,
//! `TELEMETRY_COLLECTOR_TOKEN`, `TELEMETRY_COLLECTOR_MAX_BODY_BYTES`,
//! `TELEMETRY_COLLECTOR_SQLITE` (a SQLite file; selects SQLite),
//! `TELEMETRY_COLLECTOR_CLICKHOUSE_URL` (selects ClickHouse) and
//! `TELEMETRY_COLLECTOR_CLICKHOUSE_DATABASE`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything the collector is told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The address to listen on (default `127.0.0.1:4318`).
    pub listen: String,
    /// The bearer token of the administrative calls (manifest registration, deletion); without
    /// one, those calls are refused (403) and only the command line can make them.
    pub admin_token: Option<String>,
    /// The largest report body accepted, bytes (default 256 KiB, the reporter's own limit).
    pub max_body_bytes: usize,
    /// The most reports waiting for the storage thread; more are answered 503 with
    /// `Retry-After` (default 8,192).
    pub queue: usize,
    /// The most reports stored in one batch (default 512).
    pub batch: usize,
    /// Where reports are kept.
    pub storage: StorageConfig,
    /// Per product: the latest versions and the upload configuration.
    pub products: BTreeMap<String, ProductConfig>,
}

/// Which backend, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite` (default) or `clickhouse`.
    pub backend: Backend,
    /// The SQLite file (default `telemetry-collector.sqlite3` in the working directory).
    pub path: PathBuf,
    /// ClickHouse's HTTP interface (default `http://127.0.0.1:8123`).
    pub url: String,
    /// The ClickHouse database (default `telemetry`).
    pub database: String,
}

/// A storage backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One SQLite file.
    #[default]
    Sqlite,
    /// ClickHouse over HTTP.
    Clickhouse,
}

/// What the collector answers about one product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProductConfig {
    /// The latest stable version, announced in the answer to every accepted report of the
    /// stable channel.
    pub latest_version: Option<String>,
    /// The latest version per channel (a version's pre-release word: `1.1.0-beta.2` is on
    /// channel `beta`).
    pub channels: BTreeMap<String, String>,
    /// The sampling rate of metrics not in `sampling`, 0 to 1 (default 1).
    pub default_rate: f64,
    /// The sampling rate of single metrics, 0 to 1.
    pub sampling: BTreeMap<String, f64>,
    /// Metrics the upload configuration leaves out although a manifest declares them.
    pub deny: Vec<String>,
}

impl Default for ProductConfig {
    fn default() -> Self {
        ProductConfig {
            latest_version: None,
            channels: BTreeMap::new(),
            default_rate: 1.0,
            sampling: BTreeMap::new(),
            deny: Vec::new(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Sqlite,
            path: PathBuf::from("telemetry-collector.sqlite3"),
            url: "http://127.0.0.1:8123".to_owned(),
            database: "telemetry".to_owned(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:4318".to_owned(),
            admin_token: None,
            max_body_bytes: 256 << 10,
            queue: 8_192,
            batch: 512,
            storage: StorageConfig::default(),
            products: BTreeMap::new(),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of this shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// The file at `path` (if given), then the environment over it.
    ///
    /// # Errors
    /// [`ConfigError`] for an unreadable or invalid file or value.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.check()?;
        Ok(config)
    }

    /// The file at `path` alone.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Applies the environment variables that `lookup` finds.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a number that is not one.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(listen) = lookup("TELEMETRY_COLLECTOR_LISTEN") {
            self.listen = listen;
        }
        if let Some(token) = lookup("TELEMETRY_COLLECTOR_TOKEN") {
            self.admin_token = Some(token);
        }
        if let Some(bytes) = lookup("TELEMETRY_COLLECTOR_MAX_BODY_BYTES") {
            self.max_body_bytes = bytes.parse().map_err(|_| {
                ConfigError::Invalid(
                    "TELEMETRY_COLLECTOR_MAX_BODY_BYTES is not a number".to_owned(),
                )
            })?;
        }
        if let Some(path) = lookup("TELEMETRY_COLLECTOR_SQLITE") {
            self.storage.backend = Backend::Sqlite;
            self.storage.path = PathBuf::from(path);
        }
        if let Some(url) = lookup("TELEMETRY_COLLECTOR_CLICKHOUSE_URL") {
            self.storage.backend = Backend::Clickhouse;
            self.storage.url = url;
        }
        if let Some(database) = lookup("TELEMETRY_COLLECTOR_CLICKHOUSE_DATABASE") {
            self.storage.database = database;
        }
        Ok(())
    }

    /// Checks ranges: rates within 0 to 1, a token of at least 16 characters, non-zero sizes.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] saying which value.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::Invalid(
                "admin_token is shorter than 16 characters".to_owned(),
            ));
        }
        if self.max_body_bytes == 0 || self.queue == 0 || self.batch == 0 {
            return Err(ConfigError::Invalid(
                "max_body_bytes, queue and batch must be above 0".to_owned(),
            ));
        }
        for (product, p) in &self.products {
            let rates = std::iter::once(&p.default_rate).chain(p.sampling.values());
            if rates.into_iter().any(|r| !(0.0..=1.0).contains(r)) {
                return Err(ConfigError::Invalid(format!(
                    "products.{product}: a rate is not within 0 to 1"
                )));
            }
        }
        Ok(())
    }

    /// The latest version of `product` on the channel of `version`, if configured.
    pub fn latest_version(&self, product: &str, version: &str) -> Option<&str> {
        let p = self.products.get(product)?;
        match channel(version) {
            "stable" => p.latest_version.as_deref(),
            c => p
                .channels
                .get(c)
                .map(String::as_str)
                .or(p.latest_version.as_deref()),
        }
    }
}

/// The channel of `version`: its pre-release word (`1.1.0-beta.2` is `beta`), else `stable`.
pub fn channel(version: &str) -> &str {
    let core = version.split('+').next().unwrap_or(version);
    match core.split_once('-') {
        Some((_, pre)) => pre
            .split('.')
            .next()
            .filter(|w| !w.is_empty())
            .unwrap_or("stable"),
        None => "stable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_the_file_and_channels_pick_the_latest_version() {
        let mut config: Config = toml::from_str(
            "listen = \"127.0.0.1:1\"\n[products.docstore]\nlatest_version = \"1.0.1\"\nchannels = { beta = \"1.1.0-beta.3\" }\n",
        )
        .unwrap();
        config
            .apply_env(|name| {
                (name == "TELEMETRY_COLLECTOR_CLICKHOUSE_URL")
                    .then(|| "http://127.0.0.1:9".to_owned())
            })
            .unwrap();
        assert_eq!(config.storage.backend, Backend::Clickhouse);
        assert_eq!(config.listen, "127.0.0.1:1");
        assert_eq!(config.latest_version("docstore", "1.0.0"), Some("1.0.1"));
        assert_eq!(
            config.latest_version("docstore", "1.1.0-beta.1"),
            Some("1.1.0-beta.3")
        );
        assert_eq!(
            config.latest_version("docstore", "1.1.0-rc.1"),
            Some("1.0.1")
        );
        assert_eq!(config.latest_version("other", "1.0.0"), None);
        assert!(
            toml::from_str::<Config>("lisen = \"x\"").is_err(),
            "unknown keys are errors"
        );
    }
}

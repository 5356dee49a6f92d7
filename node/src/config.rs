//! The node's configuration: a TOML file with documented defaults, each field overridable by
//! an environment variable.
//!
//! The file written by `tally node init` is [`CONFIG_TEMPLATE`]: every field is present with
//! its default value and a comment. A test parses the template and compares it with
//! [`Config::default`], so the two cannot drift apart. The environment variable for a field is
//! `TALLY_` followed by its section and name in upper case (`api.listen` is
//! `TALLY_API_LISTEN`); list fields take comma-separated values.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The prefix of every environment variable that overrides a config field.
pub const ENV_PREFIX: &str = "TALLY_";

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped fields.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// An environment variable's value does not fit the field it overrides.
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    BadEnv {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A field has a value outside its allowed range.
    #[error("config field {field} is invalid: {reason}")]
    Invalid {
        /// The field, as `section.name`.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// Everything an operator can set. See [`CONFIG_TEMPLATE`] for each field's meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the node's files live.
    pub node: NodeSection,
    /// Peer-to-peer networking.
    pub p2p: P2pSection,
    /// The HTTP server.
    pub api: ApiSection,
    /// Consensus pacing.
    pub consensus: ConsensusSection,
    /// The pool of transfers waiting for a block.
    pub mempool: MempoolSection,
    /// The on-disk database.
    pub storage: StorageSection,
    /// Logging.
    pub log: LogSection,
}

/// `[node]`: the files the node reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The genesis file; relative paths are relative to the data directory.
    pub genesis: String,
    /// The secret key file; relative paths are relative to the data directory.
    pub key_file: String,
}

/// `[p2p]`: libp2p listening and peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pSection {
    /// Multiaddresses to listen on (`/ip4/0.0.0.0/tcp/26656`); port 0 picks a free port.
    pub listen: Vec<String>,
    /// Peers to dial and keep dialling, as multiaddresses ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// Milliseconds between attempts to reconnect a lost bootstrap peer.
    pub redial_interval_ms: u64,
}

/// `[api]`: the HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Address and port of the HTTP server; port 0 picks a free port.
    pub listen: String,
    /// Origins allowed to call the API from a browser (CORS); `*` allows any.
    pub cors_origins: Vec<String>,
    /// Requests a second per client address, bursts of twice that; 0 is unlimited.
    pub rate_limit_per_second: u32,
    /// The largest request body accepted, in bytes.
    pub body_limit_bytes: u64,
    /// Milliseconds a client may take to send a whole request body.
    pub body_timeout_ms: u64,
}

/// `[consensus]`: pacing and clock bounds. Timeouts grow per round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusSection {
    /// With no transfer that could go into the next block (none pending, or only ones
    /// waiting behind a missing sequence), wait up to this many milliseconds before
    /// starting a height.
    pub empty_block_interval_ms: u64,
    /// A proposal dated more than this many milliseconds ahead of our clock gets a nil vote.
    pub max_clock_skew_ms: u64,
    /// Propose timeout of round 0, milliseconds.
    pub timeout_propose_ms: u64,
    /// Prevote and precommit timeouts of round 0, milliseconds.
    pub timeout_vote_ms: u64,
    /// Added to every timeout for each further round, milliseconds.
    pub timeout_increment_ms: u64,
}

/// `[mempool]`: bounds on waiting transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolSection {
    /// Most transfers held in total.
    pub max_transfers: u64,
    /// Most transfers held for one sender.
    pub max_per_sender: u64,
}

/// `[storage]`: the sled database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Bytes of sled's page cache.
    pub cache_bytes: u64,
}

/// `[log]`: what gets logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// A tracing filter: `info`, `debug`, or per module (`info,tally_node::network=debug`).
    pub level: String,
}

/// The config file that `tally node init` writes: every field, its default, and what it does.
pub const CONFIG_TEMPLATE: &str = r#"# Tally node configuration.
#
# Every field can be overridden by an environment variable named TALLY_<SECTION>_<FIELD> in
# upper case, for example TALLY_API_LISTEN="127.0.0.1:9000". List fields take values
# separated by commas. The values below are the defaults.

[node]
# The genesis file shared by the whole federation. A relative path is relative to the data
# directory. `tally node run --genesis PATH` overrides it.
genesis = "genesis.toml"
# The file holding this node's secret key (64 hex characters). It must not be readable by
# group or others (mode 0600), or the node refuses to start. Relative to the data directory.
key_file = "node.key"

[p2p]
# Multiaddresses to listen on for peers. Port 0 picks a free port; the addresses actually
# bound are written to `addresses.json` in the data directory.
listen = ["/ip4/0.0.0.0/tcp/26656"]
# Peers to connect to at start and to redial whenever the connection is lost, each as
# /ip4/HOST/tcp/PORT/p2p/PEER_ID (the peer id is printed by `tally node init`).
bootstrap = []
# Milliseconds between attempts to redial a bootstrap peer that is not connected.
redial_interval_ms = 2000

[api]
# Address and port of the wallet HTTP API (docs/api.md). Port 0 picks a free port.
listen = "127.0.0.1:8080"
# Origins allowed to call the API from a web page on another origin (CORS), for example
# ["https://wallet.example"]; "*" allows any. Empty: no cross-origin calls.
cors_origins = []
# Requests a second per client address, with bursts of twice that; over it: 429
# rate_limited. 0 turns the limit off.
rate_limit_per_second = 0
# The largest request body accepted, in bytes (a signed transfer is under 1 KiB); over it:
# 413 body_too_large.
body_limit_bytes = 8192
# Milliseconds a client may take to send a whole request body; over it: 408 body_timeout.
body_timeout_ms = 10000

[consensus]
# When no waiting transfer could go into the next block (none, or only ones whose sender
# skipped a sequence), wait up to this many milliseconds before starting the next height,
# rather than committing a stream of empty blocks.
empty_block_interval_ms = 1000
# A proposal whose timestamp is more than this many milliseconds ahead of this node's clock
# gets a nil prevote.
max_clock_skew_ms = 5000
# Milliseconds to wait for the proposal of round 0 before prevoting nil.
timeout_propose_ms = 1000
# Milliseconds to wait for more prevotes or precommits in round 0 once a quorum of any votes
# is seen.
timeout_vote_ms = 500
# Milliseconds added to each timeout for every further round of the same height.
timeout_increment_ms = 500

[mempool]
# The most transfers waiting for a block at once; beyond it submissions get `mempool_full`.
max_transfers = 20000
# The most transfers waiting for one sender.
max_per_sender = 256

[storage]
# Bytes of memory for the database page cache.
cache_bytes = 67108864

[log]
# Log filter: error, warn, info, debug or trace, optionally per module, for example
# "info,tally_node::network=debug". The RUST_LOG variable is not read; use TALLY_LOG_LEVEL.
level = "info"
"#;

impl Default for Config {
    fn default() -> Config {
        Config {
            node: NodeSection {
                genesis: "genesis.toml".into(),
                key_file: "node.key".into(),
            },
            p2p: P2pSection {
                listen: vec!["/ip4/0.0.0.0/tcp/26656".into()],
                bootstrap: Vec::new(),
                redial_interval_ms: 2000,
            },
            api: ApiSection {
                listen: "127.0.0.1:8080".into(),
                cors_origins: Vec::new(),
                rate_limit_per_second: 0,
                body_limit_bytes: 8192,
                body_timeout_ms: 10_000,
            },
            consensus: ConsensusSection {
                empty_block_interval_ms: 1000,
                max_clock_skew_ms: 5000,
                timeout_propose_ms: 1000,
                timeout_vote_ms: 500,
                timeout_increment_ms: 500,
            },
            mempool: MempoolSection {
                max_transfers: 20000,
                max_per_sender: 256,
            },
            storage: StorageSection {
                cache_bytes: 64 * 1024 * 1024,
            },
            log: LogSection {
                level: "info".into(),
            },
        }
    }
}

impl Config {
    /// Reads `path`, applies the environment overrides from `env`, and validates the result.
    ///
    /// `env` is passed in (rather than read here) so tests need not touch the process's
    /// environment; the binary passes `std::env::vars()`.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_with_env(&text, env).map_err(|error| match error {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text, applies environment overrides and validates.
    pub fn from_toml_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: PathBuf::new(),
            message,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;

        // Fields missing from the file take their defaults, so merge the file over them.
        let mut merged = default_table();
        merge_tables(&mut merged, table.clone());
        table = merged;

        for (name, value) in env {
            apply_env_override(&mut table, &name, &value)?;
        }

        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and formats that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| ConfigError::Invalid {
            field,
            reason: reason.into(),
        };

        if self.node.genesis.is_empty() {
            return Err(invalid("node.genesis", "must name a file"));
        }
        if self.node.key_file.is_empty() {
            return Err(invalid("node.key_file", "must name a file"));
        }
        if self.p2p.listen.is_empty() {
            return Err(invalid("p2p.listen", "needs at least one address"));
        }
        for address in self.p2p.listen.iter().chain(&self.p2p.bootstrap) {
            if address.parse::<libp2p::Multiaddr>().is_err() {
                return Err(ConfigError::Invalid {
                    field: "p2p.listen/p2p.bootstrap",
                    reason: format!("{address:?} is not a multiaddress"),
                });
            }
        }
        if self.p2p.redial_interval_ms == 0 {
            return Err(invalid("p2p.redial_interval_ms", "must be at least 1"));
        }
        if self.api.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "api.listen",
                "must be an IP address and port, like 127.0.0.1:8080",
            ));
        }
        if self.consensus.timeout_propose_ms == 0 || self.consensus.timeout_vote_ms == 0 {
            return Err(invalid(
                "consensus.timeout_*",
                "timeouts must be at least 1 ms",
            ));
        }
        if self.mempool.max_transfers == 0 || self.mempool.max_per_sender == 0 {
            return Err(invalid("mempool.max_*", "must be at least 1"));
        }
        if self.mempool.max_per_sender > self.mempool.max_transfers {
            return Err(invalid(
                "mempool.max_per_sender",
                "cannot exceed mempool.max_transfers",
            ));
        }
        if self.storage.cache_bytes < 1024 * 1024 {
            return Err(invalid("storage.cache_bytes", "must be at least 1 MiB"));
        }
        Ok(())
    }

    /// The API address, already checked by [`Config::validate`].
    pub fn api_listen(&self) -> SocketAddr {
        self.api.listen.parse().expect("validated on load")
    }

    /// `path` from the config resolved against the data directory `dir`.
    pub fn resolve(dir: &Path, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_owned()
        } else {
            dir.join(path)
        }
    }

    /// Every environment variable that overrides a field, with the field's dotted name.
    pub fn env_variables() -> Vec<(String, String)> {
        let mut names = Vec::new();
        for (section, fields) in default_table() {
            let fields = fields
                .as_table()
                .expect("every top-level entry is a section")
                .clone();
            for (field, _) in fields {
                names.push((env_name(&section, &field), format!("{section}.{field}")));
            }
        }
        names
    }
}

impl fmt::Display for Config {
    /// One line, for the start-up log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

fn default_table() -> toml::Table {
    toml::Table::try_from(Config::default()).expect("the default config serialises")
}

fn env_name(section: &str, field: &str) -> String {
    format!(
        "{ENV_PREFIX}{}_{}",
        section.to_uppercase(),
        field.to_uppercase()
    )
}

fn merge_tables(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(overlay_inner)) => {
                merge_tables(inner, overlay_inner);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets the field named by `name` (if it names one) to `value`, typed like the field's default.
fn apply_env_override(table: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    if !name.starts_with(ENV_PREFIX) {
        return Ok(());
    }
    let defaults = default_table();

    for (section, fields) in &defaults {
        let fields = fields
            .as_table()
            .expect("every top-level entry is a section");
        for (field, default) in fields {
            if env_name(section, field) != name {
                continue;
            }
            let bad = |reason: &str| ConfigError::BadEnv {
                name: name.into(),
                value: value.into(),
                reason: reason.into(),
            };
            let typed = match default {
                toml::Value::String(_) => toml::Value::String(value.into()),
                toml::Value::Integer(_) => toml::Value::Integer(
                    value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| bad("expected a whole number"))?,
                ),
                toml::Value::Boolean(_) => toml::Value::Boolean(
                    value
                        .trim()
                        .parse::<bool>()
                        .map_err(|_| bad("expected true or false"))?,
                ),
                toml::Value::Array(_) => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| toml::Value::String(item.into()))
                        .collect(),
                ),
                _ => return Err(bad("this field cannot be set from the environment")),
            };
            let section_table = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| bad("the config file's section is not a table"))?;
            section_table.insert(field.clone(), typed);
            return Ok(());
        }
    }

    // A TALLY_ variable that matches no field is most likely a typo: say so.
    let known: Vec<String> = Config::env_variables()
        .into_iter()
        .map(|(env, _)| env)
        .collect();
    if is_config_variable_name(name) {
        return Err(ConfigError::BadEnv {
            name: name.into(),
            value: value.into(),
            reason: format!(
                "no such config field; known variables: {}",
                known.join(", ")
            ),
        });
    }
    Ok(())
}

/// Variables with a config section prefix are meant for the config; others (like a test's
/// `TALLY_LONG_TESTS`) are not ours to judge.
fn is_config_variable_name(name: &str) -> bool {
    default_table()
        .keys()
        .any(|section| name.starts_with(&env_name(section, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn template_is_exactly_the_defaults() {
        let parsed = Config::from_toml_with_env(CONFIG_TEMPLATE, no_env()).unwrap();
        assert_eq!(parsed, Config::default());

        // And the template lists every field explicitly, with a comment above it.
        let table: toml::Table = toml::from_str(CONFIG_TEMPLATE).unwrap();
        assert_eq!(table, default_table());
        for line in CONFIG_TEMPLATE.lines().filter(|line| line.contains(" = ")) {
            let index = CONFIG_TEMPLATE.lines().position(|l| l == line).unwrap();
            let above = CONFIG_TEMPLATE.lines().nth(index - 1).unwrap();
            assert!(
                above.starts_with('#'),
                "field line {line:?} has no comment above it"
            );
        }
    }

    #[test]
    fn missing_fields_take_defaults() {
        let config = Config::from_toml_with_env("[api]\nlisten = \"127.0.0.1:9\"\n", no_env());
        let config = config.unwrap();
        assert_eq!(config.api.listen, "127.0.0.1:9");
        assert_eq!(config.mempool, Config::default().mempool);
    }

    #[test]
    fn environment_overrides_each_kind_of_field() {
        let env = vec![
            ("TALLY_API_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("TALLY_MEMPOOL_MAX_PER_SENDER".to_string(), "7".to_string()),
            (
                "TALLY_P2P_BOOTSTRAP".to_string(),
                "/ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/tcp/2".to_string(),
            ),
            ("PATH".to_string(), "/bin".to_string()),
            ("TALLY_LONG_TESTS".to_string(), "1".to_string()),
        ];
        let config = Config::from_toml_with_env(CONFIG_TEMPLATE, env).unwrap();
        assert_eq!(config.api.listen, "127.0.0.1:0");
        assert_eq!(config.mempool.max_per_sender, 7);
        assert_eq!(
            config.p2p.bootstrap,
            vec!["/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2"]
        );
    }

    #[test]
    fn bad_environment_values_are_named() {
        let env = vec![(
            "TALLY_MEMPOOL_MAX_TRANSFERS".to_string(),
            "many".to_string(),
        )];
        let error = Config::from_toml_with_env(CONFIG_TEMPLATE, env).unwrap_err();
        assert!(
            error.to_string().contains("TALLY_MEMPOOL_MAX_TRANSFERS"),
            "{error}"
        );

        let env = vec![("TALLY_API_LISTN".to_string(), "x".to_string())];
        let error = Config::from_toml_with_env(CONFIG_TEMPLATE, env).unwrap_err();
        assert!(matches!(error, ConfigError::BadEnv { .. }), "{error}");
    }

    #[test]
    fn validation_rejects_out_of_range_values() {
        let text = "[mempool]\nmax_transfers = 10\nmax_per_sender = 11\n";
        let error = Config::from_toml_with_env(text, no_env()).unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Invalid {
                field: "mempool.max_per_sender",
                ..
            }
        ));

        let error = Config::from_toml_with_env("[api]\nlisten = \"nowhere\"\n", no_env());
        assert!(matches!(
            error,
            Err(ConfigError::Invalid {
                field: "api.listen",
                ..
            })
        ));

        let error = Config::from_toml_with_env("[p2p]\nbootstrap = [\"x\"]\n", no_env());
        assert!(matches!(error, Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let error = Config::from_toml_with_env("[api]\nlisten_on = \"x\"\n", no_env());
        assert!(matches!(error, Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn env_variable_names_follow_the_sections() {
        let names = Config::env_variables();
        assert!(names.contains(&("TALLY_API_LISTEN".into(), "api.listen".into())));
        assert!(names.contains(&(
            "TALLY_STORAGE_CACHE_BYTES".into(),
            "storage.cache_bytes".into()
        )));
    }
}

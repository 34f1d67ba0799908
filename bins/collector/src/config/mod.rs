//! Configuration of both binaries, in layers; each later layer overrides the earlier ones:
//!
//! 1. the defaults ([`SETTINGS`]);
//! 2. the TOML file named by `--config` or `DEYEHARD_CONFIG`, else `./deyehard.toml` if it
//!    exists (one file may serve both binaries: each ignores the other's keys, an unknown key
//!    is an error);
//! 3. the environment, then a `.env` file in the working directory for the variables the
//!    environment does not set (names compatible with the original service: `DATABASE_URL`,
//!    `AUTH_SECRET`, `ENCRYPTION_KEY`, `BASE_URL`, `COOKIE_SECURE`, `SMTP_*`; the rest
//!    `DEYEHARD_*`);
//! 4. command-line flags.
//!
//! An empty value counts as not given. A secret may come from a file instead (`AUTH_SECRET_FILE`,
//! `auth_secret_file`, `--auth-secret-file`: Docker and systemd secrets); within one layer the
//! value and its file are mutually exclusive. A value that cannot be parsed stops the program
//! with a message naming the key and where the value came from; secrets are never shown.
//!
//! Everything is derived from the one table [`SETTINGS`]: the flags of both binaries
//! ([`add_flags`]), `print-config` ([`example_file`]) and the README's table
//! ([`markdown_table`]).

mod flags;
mod render;
mod settings;
mod values;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use flags::{Flags, add_flags, flag_values};
pub use render::{example_file, markdown_table};
pub use settings::{Binary, CONFIG_FILE, Kind, SETTINGS, Secrecy, Setting, Switch, find};
pub use values::{DatabaseUrl, Listen, LogFormat, Secret, redact_url};

/// Name of the configuration file read from the working directory when none is named.
pub const DEFAULT_FILE_NAME: &str = "deyehard.toml";

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A variable of the `.env` file.
    DotEnv(String, PathBuf),
    /// A command-line flag (`--listen`).
    Flag(String),
    /// The contents of a file named by another source (`AUTH_SECRET_FILE=…`).
    SecretFile(PathBuf, Box<Origin>),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the default"),
            Self::File(path) => write!(f, "the config file {}", path.display()),
            Self::Env(name) => write!(f, "the environment variable {name}"),
            Self::DotEnv(name, path) => write!(f, "{name} in {}", path.display()),
            Self::Flag(flag) => write!(f, "the flag --{flag}"),
            Self::SecretFile(path, named_by) => {
                write!(f, "the file {} named by {named_by}", path.display())
            }
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse.
    #[error("invalid value for `{key}` (from {origin}): {shown}: {reason}")]
    Invalid {
        /// The file key.
        key: &'static str,
        /// Where the value came from.
        origin: Origin,
        /// The value, or `***` for a secret.
        shown: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key the file should not contain.
    #[error("unknown key `{key}` in the config file {}; `print-config` lists the keys", path.display())]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
    },
    /// A value of the wrong TOML type.
    #[error("`{key}` in the config file {} must be {expected}", path.display())]
    WrongType {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// What it must be.
        expected: &'static str,
    },
    /// The file cannot be read or is not TOML.
    #[error("cannot read the config file {} (from {origin}): {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Who named it.
        origin: Origin,
        /// What went wrong.
        reason: String,
    },
    /// Both a value and a file holding it in one layer.
    #[error("`{key}` is given twice in {place}: as a value and as a file; give one")]
    Twice {
        /// The file key.
        key: &'static str,
        /// The layer.
        place: String,
    },
}

/// The environment the configuration is read from: variables of the process, then of a
/// `.env` file. Tests build one from pairs.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
    dotenv: Option<(PathBuf, HashMap<String, String>)>,
    cwd: PathBuf,
}

impl Environment {
    /// The process environment, `./.env` (if present) and the working directory.
    ///
    /// # Errors
    /// A `.env` file that exists but cannot be read or parsed.
    pub fn from_process() -> Result<Self, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let mut env = Self::from_pairs(std::env::vars(), &cwd);
        let path = cwd.join(".env");
        if path.is_file() {
            env = env.with_dotenv(&path)?;
        }
        Ok(env)
    }

    /// An environment of `vars` in the working directory `cwd`, without `.env`.
    pub fn from_pairs(vars: impl IntoIterator<Item = (String, String)>, cwd: &Path) -> Self {
        Self {
            vars: vars.into_iter().collect(),
            dotenv: None,
            cwd: cwd.to_owned(),
        }
    }

    /// Adds the variables of the `.env` file at `path` (the process environment still wins).
    ///
    /// # Errors
    /// The file cannot be read or has a malformed line.
    pub fn with_dotenv(mut self, path: &Path) -> Result<Self, ConfigError> {
        let error = |reason: String| ConfigError::File {
            path: path.to_owned(),
            origin: Origin::Default,
            reason,
        };
        let iter = dotenvy::from_path_iter(path).map_err(|e| error(e.to_string()))?;
        let mut vars = HashMap::new();
        for item in iter {
            let (name, value) = item.map_err(|e| error(e.to_string()))?;
            vars.insert(name, value);
        }
        self.dotenv = Some((path.to_owned(), vars));
        Ok(self)
    }

    /// A variable and where it came from; empty values count as unset.
    pub fn get(&self, name: &str) -> Option<(String, Origin)> {
        if let Some(v) = self.vars.get(name).filter(|v| !v.is_empty()) {
            return Some((v.clone(), Origin::Env(name.to_owned())));
        }
        let (path, vars) = self.dotenv.as_ref()?;
        let v = vars.get(name).filter(|v| !v.is_empty())?;
        Some((v.clone(), Origin::DotEnv(name.to_owned(), path.clone())))
    }
}

/// The resolved configuration: every setting of one binary as text with its origin.
#[derive(Debug, Clone)]
pub struct Config {
    binary: Binary,
    values: HashMap<&'static str, (String, Origin)>,
    file: Option<PathBuf>,
}

/// A value of one layer: the text and where it came from, or nothing.
pub(crate) type Layer = Option<(String, Origin)>;

impl Config {
    /// Reads the layers for `binary`.
    ///
    /// # Errors
    /// An unreadable or invalid config file, an unknown key, a secret file that cannot be read.
    pub fn load(binary: Binary, env: &Environment, flags: &Flags) -> Result<Self, ConfigError> {
        let mut values: HashMap<&'static str, (String, Origin)> = SETTINGS
            .iter()
            .filter(|s| s.used_by(binary))
            .filter_map(|s| s.default.map(|d| (s.key, (d.to_owned(), Origin::Default))))
            .collect();
        let file = config_path(env, flags)?;
        if let Some((path, origin)) = &file {
            let table = read_file(path, origin)?;
            for setting in SETTINGS.iter().filter(|s| s.used_by(binary)) {
                if let Some(v) = file_value(setting, &table, path)? {
                    values.insert(setting.key, v);
                }
            }
        }
        for setting in SETTINGS.iter().filter(|s| s.used_by(binary)) {
            if let Some(v) = env_value(setting, env)? {
                values.insert(setting.key, v);
            }
            if let Some(v) = flags.value(setting)? {
                values.insert(setting.key, v);
            }
        }
        Ok(Self {
            binary,
            values,
            file: file.map(|(p, _)| p),
        })
    }

    /// The binary this configuration is for.
    pub fn binary(&self) -> Binary {
        self.binary
    }

    /// The config file that was read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Where the value of `key` came from (`None`: unset).
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.values.get(key).map(|(_, o)| o)
    }

    /// The raw text of `key`, if set.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// `key` parsed by `parse`, or `None` when unset.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key and the origin.
    pub fn parse_opt<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((value, origin)) = self.values.get(key) else {
            return Ok(None);
        };
        parse(value)
            .map(Some)
            .map_err(|reason| ConfigError::Invalid {
                key,
                origin: origin.clone(),
                shown: shown(key, value),
                reason,
            })
    }

    /// `key` parsed with [`FromStr`], or `None` when unset.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key and the origin.
    pub fn get_opt<T: FromStr>(&self, key: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.parse_opt(key, |v| v.trim().parse::<T>().map_err(|e| e.to_string()))
    }

    /// `key` parsed by `parse`; a setting read this way has a default, so it always has a
    /// value (a missing one reads as an invalid empty value).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key and the origin.
    pub fn parse<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.parse_opt(key, parse)?
            .ok_or_else(|| ConfigError::Invalid {
                key,
                origin: Origin::Default,
                shown: String::new(),
                reason: "no value".to_owned(),
            })
    }

    /// `key` parsed with [`FromStr`] (see [`Config::parse`]).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key and the origin.
    pub fn get<T: FromStr>(&self, key: &'static str) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.parse(key, |v| v.trim().parse::<T>().map_err(|e| e.to_string()))
    }
}

/// The value as it may appear in a message.
fn shown(key: &str, value: &str) -> String {
    match find(key).map_or(Secrecy::Public, |s| s.secrecy) {
        Secrecy::Public => format!("{value:?}"),
        Secrecy::Url => format!("{:?}", redact_url(value)),
        Secrecy::Secret => "***".to_owned(),
    }
}

/// The config file to read, and who named it.
fn config_path(env: &Environment, flags: &Flags) -> Result<Option<(PathBuf, Origin)>, ConfigError> {
    if let Some(path) = &flags.config {
        return Ok(Some((
            path.clone(),
            Origin::Flag(CONFIG_FILE.key.to_owned()),
        )));
    }
    if let Some((path, origin)) = env.get(CONFIG_FILE.env) {
        return Ok(Some((env.cwd.join(path), origin)));
    }
    let default = env.cwd.join(DEFAULT_FILE_NAME);
    Ok(default.is_file().then_some((default, Origin::Default)))
}

fn read_file(path: &Path, origin: &Origin) -> Result<toml::Table, ConfigError> {
    let error = |reason: String| ConfigError::File {
        path: path.to_owned(),
        origin: origin.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| error(e.to_string()))?;
    for key in table.keys() {
        let known = SETTINGS
            .iter()
            .any(|s| s.key == key || s.key_file().as_deref() == Some(key));
        if !known {
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                path: path.to_owned(),
            });
        }
    }
    Ok(table)
}

/// The file's value of `setting` (or of its `_file` variant).
fn file_value(setting: &Setting, table: &toml::Table, path: &Path) -> Result<Layer, ConfigError> {
    let origin = Origin::File(path.to_owned());
    let direct = table
        .get(setting.key)
        .map(|v| toml_text(setting.key, setting.kind, v, path))
        .transpose()?;
    let via_file = match setting.key_file() {
        Some(k) => table
            .get(&k)
            .map(|v| toml_text(setting.key, Kind::Text, v, path))
            .transpose()?,
        None => None,
    };
    match (
        direct.filter(|v| !v.is_empty()),
        via_file.filter(|v| !v.is_empty()),
    ) {
        (Some(_), Some(_)) => Err(ConfigError::Twice {
            key: setting.key,
            place: format!("the config file {}", path.display()),
        }),
        (Some(v), None) => Ok(Some((v, origin))),
        (None, Some(file)) => read_secret(setting, &file, origin).map(Some),
        (None, None) => Ok(None),
    }
}

/// A TOML value as text: scalars as written, lists joined by commas.
fn toml_text(
    key: &str,
    kind: Kind,
    value: &toml::Value,
    path: &Path,
) -> Result<String, ConfigError> {
    let wrong = |expected| ConfigError::WrongType {
        key: key.to_owned(),
        path: path.to_owned(),
        expected,
    };
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) if kind == Kind::List => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong("a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        _ => Err(wrong(match kind {
            Kind::List => "a list of strings",
            _ => "a string, a number or a boolean",
        })),
    }
}

/// The environment's value of `setting`: its variable, its `_FILE` variable, its switch
/// variable, then its aliases.
fn env_value(setting: &Setting, env: &Environment) -> Result<Layer, ConfigError> {
    let direct = env.get(setting.env);
    let via_file = setting.env_file().and_then(|name| env.get(&name));
    if direct.is_some() && via_file.is_some() {
        return Err(ConfigError::Twice {
            key: setting.key,
            place: "the environment".to_owned(),
        });
    }
    if let Some((path, origin)) = via_file {
        return read_secret(setting, &path, origin).map(Some);
    }
    if direct.is_some() {
        return Ok(direct);
    }
    if let Some(Switch {
        env: Some(name),
        sets,
        ..
    }) = setting.switch
        && let Some((value, origin)) = env.get(name)
        && matches!(
            value.to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    {
        return Ok(Some((sets.to_owned(), origin)));
    }
    Ok(setting.env_aliases.iter().find_map(|alias| env.get(alias)))
}

/// The trimmed contents of the file at `path`, named by `named_by`.
pub(crate) fn read_secret(
    setting: &Setting,
    path: &str,
    named_by: Origin,
) -> Result<(String, Origin), ConfigError> {
    let path = PathBuf::from(path.trim());
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((
            text.trim().to_owned(),
            Origin::SecretFile(path, Box::new(named_by)),
        )),
        Err(e) => Err(ConfigError::Invalid {
            key: setting.key,
            origin: named_by,
            shown: format!("{:?}", path.display().to_string()),
            reason: format!("cannot read the file: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests;

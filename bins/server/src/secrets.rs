//! The server's secrets: `AUTH_SECRET` (signs session tokens, at least 32 bytes) and
//! `ENCRYPTION_KEY` (the Fernet key that seals verification and reset links).
//!
//! Each comes from the environment (or a flag), or from a file named by `AUTH_SECRET_FILE` /
//! `ENCRYPTION_KEY_FILE` (Docker and systemd secrets). In development a missing secret is
//! generated once and persisted in the data directory (mode 0600), so sessions survive a
//! restart. In production a missing, short or well-known secret, or insecure cookies, stop
//! the server before it serves anything.

use std::fmt;
use std::path::{Path, PathBuf};

use deyehard_core::auth::AuthError;
use deyehard_core::auth::onetime::OneTimeTokens;
use deyehard_core::auth::session::{MIN_SECRET_LEN, SessionKeys};
use rand::RngExt;
use sha2::{Digest, Sha256};

/// File name of the generated session secret in the data directory.
pub const AUTH_SECRET_FILE_NAME: &str = "auth_secret";
/// File name of the generated Fernet key in the data directory.
pub const ENCRYPTION_KEY_FILE_NAME: &str = "encryption_key";

/// Values that appear in examples and tutorials: never accepted in production.
const WELL_KNOWN: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "your-secret-key",
    "your-secret-key-change-in-production",
    "supersecret",
    "development",
];

/// Where the secrets come from.
#[derive(Clone, Default)]
pub struct SecretSources {
    /// `AUTH_SECRET`.
    pub auth_secret: Option<String>,
    /// `AUTH_SECRET_FILE`.
    pub auth_secret_file: Option<PathBuf>,
    /// `ENCRYPTION_KEY`.
    pub encryption_key: Option<String>,
    /// `ENCRYPTION_KEY_FILE`.
    pub encryption_key_file: Option<PathBuf>,
    /// Production profile: refuse to generate or accept weak secrets.
    pub production: bool,
    /// Whether cookies carry `Secure` (production requires it).
    pub cookie_secure: bool,
}

impl fmt::Debug for SecretSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSources")
            .field(
                "auth_secret",
                &self.auth_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("auth_secret_file", &self.auth_secret_file)
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "<redacted>"),
            )
            .field("encryption_key_file", &self.encryption_key_file)
            .field("production", &self.production)
            .field("cookie_secure", &self.cookie_secure)
            .finish()
    }
}

/// Why the secrets cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Production without a secret.
    #[error("{0} is not set; in production it must be given (environment, flag or {0}_FILE)")]
    Missing(&'static str),
    /// A secret from an example.
    #[error("{0} is a well-known example value; generate a random one")]
    WellKnown(&'static str),
    /// A secret the primitives refuse (too short, not a Fernet key).
    #[error(transparent)]
    Invalid(#[from] AuthError),
    /// Production with `COOKIE_SECURE=false`.
    #[error("COOKIE_SECURE=false is not allowed in production: session cookies must be Secure")]
    InsecureCookies,
    /// A secret file cannot be read or written.
    #[error("cannot access the secret file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The loaded secrets, ready to use. `Debug` shows nothing secret.
pub struct Secrets {
    /// Signs and checks session tokens.
    pub sessions: SessionKeys,
    /// Seals and opens one-time links.
    pub tokens: OneTimeTokens,
    /// Key of the CSRF tokens, derived from `AUTH_SECRET`.
    pub csrf_key: [u8; 32],
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

impl Secrets {
    /// Loads (or, in development, generates and persists under `data_dir`) the secrets.
    ///
    /// # Errors
    /// See [`SecretsError`].
    pub fn load(sources: &SecretSources, data_dir: &Path) -> Result<Self, SecretsError> {
        if sources.production && !sources.cookie_secure {
            return Err(SecretsError::InsecureCookies);
        }
        let auth = resolve(
            "AUTH_SECRET",
            sources.auth_secret.as_deref(),
            sources.auth_secret_file.as_deref(),
            sources.production,
            &data_dir.join(AUTH_SECRET_FILE_NAME),
            || hex::encode(rand::rng().random::<[u8; 32]>()),
        )?;
        let key = resolve(
            "ENCRYPTION_KEY",
            sources.encryption_key.as_deref(),
            sources.encryption_key_file.as_deref(),
            sources.production,
            &data_dir.join(ENCRYPTION_KEY_FILE_NAME),
            OneTimeTokens::generate_key,
        )?;
        Self::from_values(auth.as_bytes(), &key)
    }

    /// Fresh random secrets held only in memory (tests and embedding; sessions and links do
    /// not survive a restart).
    pub fn ephemeral() -> Result<Self, SecretsError> {
        let auth: [u8; 32] = rand::rng().random();
        Self::from_values(&auth, &OneTimeTokens::generate_key())
    }

    fn from_values(auth_secret: &[u8], encryption_key: &str) -> Result<Self, SecretsError> {
        let sessions = SessionKeys::new(auth_secret)?;
        let tokens = OneTimeTokens::new(encryption_key)?;
        let mut hasher = Sha256::new();
        hasher.update(b"deyehard csrf v1\0");
        hasher.update(auth_secret);
        Ok(Self {
            sessions,
            tokens,
            csrf_key: hasher.finalize().into(),
        })
    }
}

fn resolve(
    name: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
    production: bool,
    generated: &Path,
    generate: impl FnOnce() -> String,
) -> Result<String, SecretsError> {
    let given = match (value.filter(|v| !v.trim().is_empty()), file) {
        (Some(v), _) => Some(v.trim().to_owned()),
        (None, Some(path)) => Some(read(path)?),
        (None, None) => None,
    };
    match given {
        Some(secret) => {
            let lower = secret.to_ascii_lowercase();
            if production && WELL_KNOWN.iter().any(|w| lower.contains(w)) {
                return Err(SecretsError::WellKnown(name));
            }
            if name == "AUTH_SECRET" && secret.len() < MIN_SECRET_LEN {
                return Err(AuthError::WeakSecret {
                    len: secret.len(),
                    min: MIN_SECRET_LEN,
                }
                .into());
            }
            Ok(secret)
        }
        None if production => Err(SecretsError::Missing(name)),
        None if generated.exists() => read(generated),
        None => {
            let secret = generate();
            write_private(generated, &secret)?;
            tracing::info!(file = %generated.display(), "generated {name} for development");
            Ok(secret)
        }
    }
}

fn read(path: &Path) -> Result<String, SecretsError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| SecretsError::Io {
            path: path.to_owned(),
            source,
        })
}

fn write_private(path: &Path, secret: &str) -> Result<(), SecretsError> {
    let io = |source| SecretsError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> SecretSources {
        SecretSources {
            cookie_secure: true,
            ..SecretSources::default()
        }
    }

    #[test]
    fn development_generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        Secrets::load(&dev(), dir.path()).unwrap();
        let first = std::fs::read_to_string(dir.path().join(AUTH_SECRET_FILE_NAME)).unwrap();
        Secrets::load(&dev(), dir.path()).unwrap();
        let second = std::fs::read_to_string(dir.path().join(AUTH_SECRET_FILE_NAME)).unwrap();
        assert_eq!(first, second);
        assert!(first.len() >= MIN_SECRET_LEN);
    }

    #[test]
    fn production_refuses_missing_short_default_and_insecure_cookies() {
        let dir = tempfile::tempdir().unwrap();
        let key = OneTimeTokens::generate_key();
        let prod = |auth: &str, secure: bool| SecretSources {
            auth_secret: Some(auth.to_owned()),
            encryption_key: Some(key.clone()),
            production: true,
            cookie_secure: secure,
            ..SecretSources::default()
        };
        let good = "f".repeat(8) + &hex::encode([7u8; 32]);
        assert!(Secrets::load(&prod(&good, true), dir.path()).is_ok());
        assert!(matches!(
            Secrets::load(&prod(&good, false), dir.path()),
            Err(SecretsError::InsecureCookies)
        ));
        assert!(matches!(
            Secrets::load(&prod("short", true), dir.path()),
            Err(SecretsError::Invalid(AuthError::WeakSecret { .. }))
        ));
        assert!(matches!(
            Secrets::load(
                &prod("your-secret-key-change-in-production-0123456789", true),
                dir.path()
            ),
            Err(SecretsError::WellKnown("AUTH_SECRET"))
        ));
        let missing = SecretSources {
            production: true,
            cookie_secure: true,
            ..SecretSources::default()
        };
        assert!(matches!(
            Secrets::load(&missing, dir.path()),
            Err(SecretsError::Missing("AUTH_SECRET"))
        ));
        assert!(!dir.path().join(AUTH_SECRET_FILE_NAME).exists());
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("a");
        std::fs::write(&auth, format!("{}\n", "x".repeat(40))).unwrap();
        let sources = SecretSources {
            auth_secret_file: Some(auth),
            ..dev()
        };
        Secrets::load(&sources, dir.path()).unwrap();
        assert!(!dir.path().join(AUTH_SECRET_FILE_NAME).exists());
    }
}

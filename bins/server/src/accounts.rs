//! The account service shared by the JSON API and the pages: secrets, mail, rate limits,
//! bounded password hashing, and the server settings the flows need (base URL, cookies,
//! trusted proxies).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deyehard_core::auth::password;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::limits::AccountLimits;
use crate::mail::{Mail, Mailer};
use crate::secrets::Secrets;
use crate::security::TrustedProxies;

/// How long a request may wait for a hashing slot before it gets a 503.
const HASH_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the account flows.
#[derive(Clone)]
pub struct AccountSettings {
    /// Public URL of the server, for links in mail (`BASE_URL`), without a trailing slash.
    pub base_url: String,
    /// Whether cookies carry `Secure` (`COOKIE_SECURE`); also turns on HSTS.
    pub cookie_secure: bool,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Time zone of new accounts that do not name one.
    pub default_time_zone: String,
    /// At most this many password hashes are computed at once.
    pub max_concurrent_hashes: usize,
}

impl AccountSettings {
    /// Settings for `base_url` with secure cookies, no trusted proxy, Europe/Berlin and one
    /// hashing slot per core but one.
    pub fn new(base_url: &str) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            cookie_secure: true,
            trusted_proxies: TrustedProxies::default(),
            default_time_zone: "Europe/Berlin".to_owned(),
            max_concurrent_hashes: cores.saturating_sub(1).max(1),
        }
    }
}

/// Everything the account flows share. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Accounts(Arc<Inner>);

struct Inner {
    settings: AccountSettings,
    secrets: Secrets,
    mailer: Mailer,
    limits: AccountLimits,
    hashing: Semaphore,
}

impl Accounts {
    /// Puts the pieces together.
    pub fn new(settings: AccountSettings, secrets: Secrets, mailer: Mailer) -> Self {
        let hashing = Semaphore::new(settings.max_concurrent_hashes.max(1));
        Self(Arc::new(Inner {
            settings,
            secrets,
            mailer,
            limits: AccountLimits::default(),
            hashing,
        }))
    }

    /// For a quick start and for embedding: ephemeral secrets, mail written to `outbox`.
    ///
    /// # Errors
    /// When the random secrets cannot be made into keys (they always can).
    pub fn ephemeral(base_url: &str, outbox: Option<PathBuf>) -> anyhow::Result<Self> {
        let settings = AccountSettings::new(base_url);
        let mailer = Mailer::new("deyehard <noreply@localhost>", base_url, None, outbox)?;
        Ok(Self::new(settings, Secrets::ephemeral()?, mailer))
    }

    /// The settings.
    pub fn settings(&self) -> &AccountSettings {
        &self.0.settings
    }

    /// The secrets.
    pub fn secrets(&self) -> &Secrets {
        &self.0.secrets
    }

    /// The rate limits.
    pub fn limits(&self) -> &AccountLimits {
        &self.0.limits
    }

    /// A link to `path` (which starts with `/`) on this server.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.0.settings.base_url)
    }

    /// Sends a mail in the background: the response does not wait for SMTP, so its timing
    /// does not tell whether a mail went out.
    pub fn send_mail(&self, mail: Mail) {
        let accounts = self.clone();
        tokio::spawn(async move { accounts.0.mailer.send(mail).await });
    }

    /// Hashes a new password on a blocking thread, at most `max_concurrent_hashes` at once.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when the hashing queue is full for too long.
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        let hash = self
            .blocking(move || password::hash_password(&password))
            .await?
            .map_err(|e| ApiError::Internal(Box::new(e)))?;
        Ok(hash.into_string())
    }

    /// Checks a password against a stored hash (or, with `None`, spends the same time and
    /// fails), on a blocking thread with the same bound.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when the hashing queue is full for too long.
    pub async fn verify_password(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, ApiError> {
        self.blocking(move || match phc {
            Some(phc) => password::verify_password(&password, &phc).unwrap_or(false),
            None => {
                password::verify_dummy(&password);
                false
            }
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let busy = ApiError::Unavailable { retry_after_s: 5 };
        let permit = tokio::time::timeout(HASH_QUEUE_TIMEOUT, self.0.hashing.acquire())
            .await
            .map_err(|_| ApiError::Unavailable { retry_after_s: 5 })?
            .map_err(|_| busy)?;
        let result = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::Internal(Box::new(e)));
        drop(permit);
        result
    }

    /// Whether `ip` is a configured trusted proxy.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.0.settings.trusted_proxies.contains(ip)
    }
}

/// The answer to an address that is not one.
pub const INVALID_EMAIL: &str = "This is not a valid email address.";
/// The answer to an empty display name.
pub const NO_DISPLAY_NAME: &str = "Please enter a display name.";
/// The answer to a display name over 100 characters.
pub const NAME_TOO_LONG: &str = "The display name must be at most 100 characters long.";
/// The start of the answer to a time zone that is not an IANA name (the name follows).
pub const UNKNOWN_TIME_ZONE: &str = "Unknown time zone:";

/// A display name from a form, trimmed.
///
/// # Errors
/// 422 when it is empty or longer than 100 characters.
pub fn check_display_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        Err(ApiError::Unprocessable(NO_DISPLAY_NAME.to_owned()))
    } else if name.chars().count() > 100 {
        Err(ApiError::Unprocessable(NAME_TOO_LONG.to_owned()))
    } else {
        Ok(name.to_owned())
    }
}

/// Checks an IANA time zone name from a form.
///
/// # Errors
/// 422 naming the zone when it is unknown.
pub fn check_time_zone(name: &str) -> Result<(), ApiError> {
    match deyehard_core::energy::parse_tz(name) {
        Ok(_) => Ok(()),
        Err(_) => {
            let shown: String = name.chars().take(64).collect();
            Err(ApiError::Unprocessable(format!(
                "{UNKNOWN_TIME_ZONE} {shown:?}"
            )))
        }
    }
}

/// Builds the account service from the `serve` options: secrets (refusing weak ones in
/// production), mail (SMTP or the outbox in the data directory), settings.
///
/// # Errors
/// Bad secrets, a bad sender address or SMTP settings.
pub fn from_args(
    args: &crate::cli::AccountArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<Accounts> {
    let sources = crate::secrets::SecretSources {
        auth_secret: args.auth_secret.clone(),
        auth_secret_file: args.auth_secret_file.clone(),
        encryption_key: args.encryption_key.clone(),
        encryption_key_file: args.encryption_key_file.clone(),
        production: args.is_production(),
        cookie_secure: args.cookie_secure,
    };
    let secrets = Secrets::load(&sources, data_dir)?;
    let smtp = args
        .smtp_host
        .as_ref()
        .map(|host| crate::mail::SmtpSettings {
            host: host.clone(),
            port: args.smtp_port,
            username: args.smtp_username.clone(),
            password: args.smtp_password.clone(),
            tls: args.smtp_tls,
        });
    let outbox = smtp.is_none().then(|| data_dir.join("outbox"));
    let mailer = Mailer::new(&args.smtp_from, &args.base_url, smtp.as_ref(), outbox)?;
    let mut settings = AccountSettings::new(&args.base_url);
    settings.cookie_secure = args.cookie_secure;
    settings.trusted_proxies = args.trusted_proxies.clone();
    settings.default_time_zone = args.default_time_zone.clone();
    Ok(Accounts::new(settings, secrets, mailer))
}

/// `user list`: every user matching `search` on stdout, one per line, tab-separated (see the
/// command's help), in pages of 500.
///
/// # Errors
/// Store errors, or stdout closed.
pub async fn print_users(
    store: &deyehard_store::Store,
    search: Option<&str>,
) -> anyhow::Result<()> {
    use deyehard_store::UserStore;
    use std::io::Write;
    const PAGE: u32 = 500;
    let mut out = std::io::stdout().lock();
    let mut offset = 0;
    loop {
        let page = store.users_unscoped(search, PAGE, offset).await?;
        for o in &page {
            writeln!(out, "{}", user_line(o))?;
        }
        if page.len() < PAGE as usize {
            return Ok(());
        }
        offset += PAGE;
    }
}

/// One line of `user list`.
fn user_line(o: &deyehard_store::UserOverview) -> String {
    let u = &o.user;
    let flag = |on: bool, yes: &'static str, no: &'static str| if on { yes } else { no };
    let name: String = u
        .display_name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        u.id,
        u.email,
        flag(u.is_active, "active", "inactive"),
        flag(u.is_verified, "verified", "unverified"),
        flag(u.is_superuser, "admin", "user"),
        o.inverter_count,
        u.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        name
    )
}

/// `apikey create` refuses accounts whose address is not confirmed, as the web app does.
///
/// # Errors
/// A message saying how to verify the user first; store errors.
pub async fn check_key_owner_verified(
    store: &deyehard_store::Store,
    email: &str,
) -> anyhow::Result<()> {
    use deyehard_store::UserStore;
    match store.user_by_email_unscoped(email).await? {
        Some(user) if !user.is_verified => anyhow::bail!(
            "{email} has not confirmed their email address, and unverified accounts cannot \
             have API keys; confirm it for them with `deyehard-server user verify --email {email}`"
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Hashing runs on blocking threads, never on the async workers, and at most
    /// `max_concurrent_hashes` at once: a login flood cannot stall the runtime.
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_runs_off_the_runtime_with_a_bound() {
        let mut settings = AccountSettings::new("http://localhost");
        settings.max_concurrent_hashes = 2;
        let mailer = Mailer::new("t <t@example.org>", "http://localhost", None, None).unwrap();
        let accounts = Accounts::new(settings, Secrets::ephemeral().unwrap(), mailer);
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let (accounts, running, peak) = (accounts.clone(), running.clone(), peak.clone());
            jobs.spawn(async move {
                accounts
                    .blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        // Stands for argon2: the thread is busy, not waiting on the runtime.
                        std::thread::sleep(Duration::from_millis(40));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap();
            });
        }
        while let Some(job) = jobs.join_next().await {
            job.unwrap();
        }
        ticker.abort();
        assert_eq!(peak.load(Ordering::SeqCst), 2, "at most two hashes at once");
        // Three waves of 40 ms ran while the single runtime thread kept ticking.
        assert!(ticks.load(Ordering::Relaxed) >= 5, "the runtime stalled");

        let hash = accounts
            .hash_password("Bounded-Hash-1".into())
            .await
            .unwrap();
        let ok = accounts
            .verify_password("Bounded-Hash-1".into(), Some(hash))
            .await;
        assert!(ok.unwrap());
        assert!(!accounts.verify_password("x".into(), None).await.unwrap());
    }

    #[test]
    fn user_lines_are_tab_separated_and_one_line_each() {
        let user = deyehard_store::User {
            id: deyehard_core::UserId::new(7),
            email: "ann@example.org".to_owned(),
            password_hash: String::new(),
            display_name: "Ann\tB\nC".to_owned(),
            time_zone: "Europe/Berlin".to_owned(),
            locale: "en".to_owned(),
            is_active: true,
            is_verified: false,
            is_superuser: true,
            session_version: 1,
            created_at: chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap(),
        };
        let line = user_line(&deyehard_store::UserOverview {
            user,
            inverter_count: 2,
        });
        assert_eq!(
            line,
            "7\tann@example.org\tactive\tunverified\tadmin\t2\t2025-06-15T15:06:40Z\tAnn B C"
        );
    }
}

//! Typed values of the configuration whose `Debug` output must not leak, and the small
//! enums both binaries parse.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// A secret (`AUTH_SECRET`, `SMTP_PASSWORD`, …): `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

/// A database URL: `Debug` and `Display` show it with the password replaced by `***`
/// (`postgres://user:***@host/db`).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let known = ["postgres://", "postgresql://", "sqlite:"];
        if known.iter().any(|p| s.starts_with(p)) || !s.contains("://") {
            Ok(Self(s.to_owned()))
        } else {
            Err("expected postgres://…, sqlite:… or a file path".to_owned())
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `url` with the password of its user info and any `password=` query value replaced by
/// `***`.
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((user_info, host)) => match user_info.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// An optional listen address: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
            return Ok(Self(None));
        }
        s.parse()
            .map(|a| Self(Some(a)))
            .map_err(|e| format!("not an address like 0.0.0.0:10000 or `off` ({e})"))
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected `text` or `json`".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        for (url, shown) in [
            (
                "postgres://user:pa:ss@host:5432/db",
                "postgres://user:***@host:5432/db",
            ),
            ("postgres://user@host/db", "postgres://user@host/db"),
            (
                "postgres://host/db?password=x&sslmode=require",
                "postgres://host/db?password=***&sslmode=require",
            ),
            ("postgres://u:p@h", "postgres://u:***@h"),
            ("data/deyehard.db", "data/deyehard.db"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
        let url: DatabaseUrl = "postgres://user:hunter2@db/deyehard".parse().unwrap();
        assert_eq!(format!("{url:?}"), "\"postgres://user:***@db/deyehard\"");
        assert_eq!(url.to_string(), "postgres://user:***@db/deyehard");
        assert_eq!(url.expose(), "postgres://user:hunter2@db/deyehard");
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn listen_and_log_format_parse() {
        assert_eq!("off".parse::<Listen>().unwrap(), Listen(None));
        assert_eq!(
            "127.0.0.1:1".parse::<Listen>().unwrap(),
            Listen(Some(SocketAddr::from(([127, 0, 0, 1], 1))))
        );
        assert!("localhost".parse::<Listen>().is_err());
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("xml".parse::<LogFormat>().is_err());
    }
}

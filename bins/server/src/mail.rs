//! Outgoing mail: verification, "you already have an account", password reset and email
//! change messages, in English or German (askama templates under `templates/mail/`).
//!
//! With `SMTP_HOST` set, messages go out through lettre (STARTTLS on 587 by default, implicit
//! TLS with `SMTP_TLS=tls`, plain only with `SMTP_TLS=none` for a local catcher). Without it,
//! every message is written as one `.eml` file to `<data-dir>/outbox/` so a self-hoster can
//! still open the link. The log only says that a message was sent or written, to whom and
//! what kind: never its body, which carries the link.

use std::path::PathBuf;

use askama::Template;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::RngExt;

/// How to reach the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SmtpTls {
    /// STARTTLS (usually port 587).
    #[default]
    Starttls,
    /// Implicit TLS (usually port 465).
    Tls,
    /// No encryption: only for a mail catcher on the same machine.
    None,
}

/// SMTP settings (`SMTP_*`).
#[derive(Clone)]
pub struct SmtpSettings {
    /// `SMTP_HOST`.
    pub host: String,
    /// `SMTP_PORT` (default by `tls`: 587, 465 or 25).
    pub port: Option<u16>,
    /// `SMTP_USERNAME`.
    pub username: Option<String>,
    /// `SMTP_PASSWORD`.
    pub password: Option<String>,
    /// `SMTP_TLS`.
    pub tls: SmtpTls,
}

/// Why the mailer cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `SMTP_FROM` is not a mailbox.
    #[error("SMTP_FROM is not a valid address: {0}")]
    From(String),
    /// The SMTP transport cannot be set up.
    #[error("cannot set up SMTP: {0}")]
    Smtp(String),
}

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// Confirm the address after signup (carries the link).
    Verify,
    /// A signup with an address that already has an account.
    AlreadyRegistered,
    /// Password reset (carries the link).
    Reset,
    /// Confirm a new address (carries the link).
    ChangeEmail,
    /// Notice to the old address that a change was requested (`link` is the new address).
    EmailChanged,
}

impl MailKind {
    const fn code(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::AlreadyRegistered => "already_registered",
            Self::Reset => "reset",
            Self::ChangeEmail => "change_email",
            Self::EmailChanged => "email_changed",
        }
    }

    fn subject(self, german: bool) -> &'static str {
        match (self, german) {
            (Self::Verify, false) => "Confirm your email address",
            (Self::Verify, true) => "Bestätige deine E-Mail-Adresse",
            (Self::AlreadyRegistered, false) => "You already have an account",
            (Self::AlreadyRegistered, true) => "Du hast bereits ein Konto",
            (Self::Reset, false) => "Reset your password",
            (Self::Reset, true) => "Passwort zurücksetzen",
            (Self::ChangeEmail, false) => "Confirm your new email address",
            (Self::ChangeEmail, true) => "Bestätige deine neue E-Mail-Adresse",
            (Self::EmailChanged, false) => "Your email address is being changed",
            (Self::EmailChanged, true) => "Deine E-Mail-Adresse wird geändert",
        }
    }
}

/// One message to send.
#[derive(Clone)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Recipient's display name.
    pub name: String,
    /// `en` or `de` (anything else is English).
    pub locale: String,
    /// What it is about.
    pub kind: MailKind,
    /// The link (or, for [`MailKind::EmailChanged`], the new address).
    pub link: String,
}

#[derive(Template)]
#[template(path = "mail/en.txt")]
struct English<'a> {
    name: &'a str,
    kind: &'a str,
    link: &'a str,
    base_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/de.txt")]
struct German<'a> {
    name: &'a str,
    kind: &'a str,
    link: &'a str,
    base_url: &'a str,
}

/// Sends mail over SMTP, or writes it to the outbox.
pub struct Mailer {
    from: Mailbox,
    base_url: String,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    outbox: Option<PathBuf>,
}

impl Mailer {
    /// A mailer sending from `from`; with `smtp` unset, messages go to `outbox` (or, without
    /// an outbox, are only logged as written nowhere).
    ///
    /// # Errors
    /// [`MailError`] for a bad sender address or SMTP settings.
    pub fn new(
        from: &str,
        base_url: &str,
        smtp: Option<&SmtpSettings>,
        outbox: Option<PathBuf>,
    ) -> Result<Self, MailError> {
        let from: Mailbox = from.parse().map_err(|_| MailError::From(from.to_owned()))?;
        let smtp = smtp.map(build_transport).transpose()?;
        Ok(Self {
            from,
            base_url: base_url.trim_end_matches('/').to_owned(),
            smtp,
            outbox,
        })
    }

    /// Renders and delivers a message. Failures are logged (without the body) and not
    /// returned: a flow must answer the same whether or not the mail went out.
    pub async fn send(&self, mail: Mail) {
        let kind = mail.kind.code();
        let message = match self.build(&mail, self.smtp.is_none()) {
            Ok(message) => message,
            Err(e) => {
                tracing::error!(kind, error = %e, "cannot build the mail");
                return;
            }
        };
        if let Some(smtp) = &self.smtp {
            match smtp.send(message).await {
                Ok(_) => tracing::info!(kind, to = %mail.to, "mail sent"),
                Err(e) => tracing::warn!(kind, to = %mail.to, error = %e, "mail not sent"),
            }
            return;
        }
        let Some(outbox) = &self.outbox else {
            tracing::warn!(kind, to = %mail.to, "no SMTP and no outbox: mail dropped");
            return;
        };
        let name = format!(
            "{}-{}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
            hex::encode(rand::rng().random::<[u8; 4]>())
        );
        let path = outbox.join(name);
        let written = async {
            tokio::fs::create_dir_all(outbox).await?;
            tokio::fs::write(&path, message.formatted()).await
        };
        match written.await {
            Ok(()) => {
                tracing::info!(kind, to = %mail.to, file = %path.display(), "no SMTP configured: mail written to the outbox")
            }
            Err(e) => tracing::error!(kind, error = %e, "cannot write the mail to the outbox"),
        }
    }

    /// `readable`: leave the body unencoded (the outbox, read by people, with the link on
    /// one line); over SMTP lettre picks a transport-safe encoding (quoted-printable).
    fn build(&self, mail: &Mail, readable: bool) -> Result<Message, String> {
        let german = mail.locale.starts_with("de");
        let (kind, base_url) = (mail.kind.code(), self.base_url.as_str());
        let text = if german {
            German {
                name: &mail.name,
                kind,
                link: &mail.link,
                base_url,
            }
            .render()
        } else {
            English {
                name: &mail.name,
                kind,
                link: &mail.link,
                base_url,
            }
            .render()
        }
        .map_err(|e| e.to_string())?;
        let to: Mailbox = mail.to.parse().map_err(|_| "bad recipient".to_owned())?;
        let body = if readable {
            Body::new_with_encoding(text.clone(), ContentTransferEncoding::Binary)
                .unwrap_or_else(|_| Body::new(text))
        } else {
            Body::new(text)
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.kind.subject(german))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| e.to_string())
    }
}

fn build_transport(
    settings: &SmtpSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let smtp = |e: lettre::transport::smtp::Error| MailError::Smtp(e.to_string());
    let (mut builder, default_port) = match settings.tls {
        SmtpTls::Starttls => (
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host).map_err(smtp)?,
            587,
        ),
        SmtpTls::Tls => (
            AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host).map_err(smtp)?,
            465,
        ),
        SmtpTls::None => (
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host),
            25,
        ),
    };
    builder = builder.port(settings.port.unwrap_or(default_port));
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outbox_gets_one_eml_per_message_with_the_link_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(
            "deyehard <noreply@example.com>",
            "http://localhost:8000/",
            None,
            Some(dir.path().join("outbox")),
        )
        .unwrap();
        let link = format!("http://localhost:8000/verify?token={}", "A".repeat(200));
        for locale in ["en", "de"] {
            mailer
                .send(Mail {
                    to: "anna@example.com".into(),
                    name: "Anna".into(),
                    locale: locale.into(),
                    kind: MailKind::Verify,
                    link: link.clone(),
                })
                .await;
        }
        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 2);
        for file in files {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            assert!(text.contains(&link), "{text}");
            assert!(text.contains("To: anna@example.com"));
        }
    }
}

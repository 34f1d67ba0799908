//! Accounts, API keys and inverters of the original service, into our store.
//!
//! - A user whose e-mail address is new here is created with the original password hash as it
//!   is (argon2id and bcrypt verify as they are; the server rehashes at the next login), the
//!   original flags, a display name from first and last name (or the e-mail's local part) and
//!   the configured default time zone.
//! - A user whose e-mail address exists here with the *same* password hash was created by an
//!   earlier import (the hash carries a random salt, so nobody else can hold it): the import
//!   completes what is missing (keys, inverters, readings). With another hash it is someone
//!   else's account (or the user changed the password since): left alone with everything the
//!   original had for it, and reported.
//! - The plaintext API key becomes one of the user's hashed keys, so their devices keep pushing.

use anyhow::Context;
use deyehard_core::auth::api_key;
use deyehard_core::{DeviceInfo, InverterId, InverterKind, TenantScope};
use deyehard_store::{
    ApiKeyStore, Inverter, InverterFields, InverterStore, NewUser, Store, StoreError, UserStore,
    constraint,
};

use super::ImportReport;
use super::classify::{Classified, classify};
use super::report::InverterNote;
use super::source::{SourceInverter, SourceUser};

/// The name of an API key carried over from the original service.
pub const IMPORTED_KEY_NAME: &str = "imported from the original service";

/// What became of a user of the original database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOutcome {
    /// Created now.
    Created(TenantScope),
    /// Created by an earlier import: complete it.
    Resumed(TenantScope),
    /// Not imported (left alone or failed); nothing of theirs is imported.
    Skipped,
}

/// Creates (or recognises) the account of `user`.
pub async fn import_user(
    store: &Store,
    user: &SourceUser,
    time_zone: &str,
    report: &mut ImportReport,
) -> anyhow::Result<UserOutcome> {
    let email = user.email.trim();
    if let Some(existing) = store.user_by_email_unscoped(email).await? {
        let scope = TenantScope::from_credential_lookup(existing.id);
        if existing.password_hash != user.hashed_password {
            report.users_left_alone.push(email.to_owned());
            return Ok(UserOutcome::Skipped);
        }
        report.users_resumed.push(email.to_owned());
        // Deactivation may be what an interrupted run did not get to; never re-activate.
        if !user.is_active && existing.is_active {
            store.set_active(&scope, false).await?;
        }
        return Ok(UserOutcome::Resumed(scope));
    }
    let created = store
        .create_user(&NewUser {
            email: email.to_owned(),
            password_hash: user.hashed_password.clone(),
            display_name: display_name(user),
            time_zone: Some(time_zone.to_owned()),
            locale: None,
            is_verified: user.is_verified,
            is_superuser: user.is_superuser,
        })
        .await;
    let created = match created {
        Ok(created) => created,
        Err(StoreError::Conflict(_)) => {
            let why = "another user of the original has this address in other letter case";
            report.users_failed.push((email.to_owned(), why.to_owned()));
            return Ok(UserOutcome::Skipped);
        }
        Err(StoreError::Invalid(why)) => {
            report.users_failed.push((email.to_owned(), why));
            return Ok(UserOutcome::Skipped);
        }
        Err(e) => return Err(e).context("cannot create an account"),
    };
    let scope = TenantScope::from_credential_lookup(created.id);
    if !user.is_active {
        store.set_active(&scope, false).await?;
        report.users_inactive += 1;
    }
    if !is_known_hash(&user.hashed_password) {
        report.unusable_password_hashes.push(email.to_owned());
    }
    report.users_imported += 1;
    Ok(UserOutcome::Created(scope))
}

/// Stores the user's plaintext API key, hashed, as one of their keys.
pub async fn import_api_key(
    store: &Store,
    scope: &TenantScope,
    plaintext: &str,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let key = plaintext.trim();
    if key.is_empty() {
        return Ok(());
    }
    // Legacy keys show their first group; any other shape its first four characters.
    let prefix = api_key::legacy_prefix(key)
        .map(str::to_owned)
        .unwrap_or_else(|| key.chars().take(4).collect());
    match store
        .create_api_key(scope, IMPORTED_KEY_NAME, &prefix, &api_key::hash(key))
        .await
    {
        Ok(_) => report.api_keys_imported += 1,
        Err(StoreError::Conflict(c)) if c == constraint::API_KEY_HASH => {
            report.api_keys_present += 1;
        }
        Err(e) => return Err(e).context("cannot store an imported API key"),
    }
    Ok(())
}

/// Registers the user's inverters (or finds those an earlier import registered) and returns
/// `(original id, our id)` of each one to import readings for.
pub async fn import_inverters(
    store: &Store,
    scope: &TenantScope,
    owner: &str,
    inverters: &[SourceInverter],
    report: &mut ImportReport,
) -> anyhow::Result<Vec<(i64, InverterId)>> {
    let existing = store.inverters(scope).await?;
    let mut imported = Vec::with_capacity(inverters.len());
    for source in inverters {
        let serial_text = source.serial_logger.clone().unwrap_or_default();
        let note = |reason: &str| InverterNote {
            source_id: source.id,
            name: source.name.clone().unwrap_or_default(),
            serial: serial_text.clone(),
            owner: Some(owner.to_owned()),
            reason: reason.to_owned(),
        };
        let classified = classify(&serial_text);
        let Some(fields) = fields_of(source, &classified) else {
            report
                .inverters_skipped
                .push(note("the serial is empty or not printable text"));
            continue;
        };
        if let Some(found) = existing.iter().find(|i| same_device(i, &fields)) {
            report.inverters_present += 1;
            imported.push((source.id, found.id));
            continue;
        }
        let inverter = match store.create_inverter(scope, &fields).await {
            Ok(inverter) => inverter,
            Err(StoreError::Conflict(_)) => {
                report.inverters_skipped.push(note(
                    "another account here already claims this serial; its readings were not imported",
                ));
                continue;
            }
            Err(e) => return Err(e).context("cannot register an inverter"),
        };
        if matches!(classified, Classified::Ambiguous(_)) {
            report.ambiguous.push(note(
                "neither a Solarman logger serial nor a Hoymiles serial: imported as OpenDTU",
            ));
        }
        let firmware = source
            .sw_version
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "-");
        if let Some(firmware) = firmware {
            let info = DeviceInfo {
                firmware_version: Some(firmware.to_owned()),
                ..DeviceInfo::default()
            };
            store.update_device_info(scope, inverter.id, &info).await?;
        }
        report.inverters_imported += 1;
        imported.push((source.id, inverter.id));
    }
    Ok(imported)
}

/// Our fields for an original inverter; `None` when its serial is unusable.
fn fields_of(source: &SourceInverter, classified: &Classified) -> Option<InverterFields> {
    let kind = classified.kind()?;
    let (serial, logger_serial) = match classified {
        Classified::Solarman(logger) => (None, Some(*logger)),
        Classified::Opendtu(serial) | Classified::Ambiguous(serial) => (Some(serial.clone()), None),
        Classified::Unusable => return None,
    };
    let name = source
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map_or_else(
            || source.serial_logger.clone().unwrap_or_default(),
            str::to_owned,
        );
    Some(InverterFields {
        name,
        kind,
        serial,
        logger_serial,
        rated_power_w: source.rated_power.filter(|w| *w > 0).map(|w| w as f64),
        mppt_count: source
            .number_of_mppts
            .and_then(|n| u8::try_from(n).ok())
            .filter(|n| *n > 0),
    })
}

/// Whether a stored inverter is the device `fields` describe.
fn same_device(stored: &Inverter, fields: &InverterFields) -> bool {
    match fields.kind {
        InverterKind::Solarman => {
            fields.logger_serial.is_some() && stored.logger_serial == fields.logger_serial
        }
        _ => fields.serial.is_some() && stored.serial == fields.serial,
    }
}

/// "First Last", or the e-mail's local part when the original has no name.
fn display_name(user: &SourceUser) -> String {
    let parts: Vec<&str> = [user.first_name.as_deref(), user.last_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        let email = user.email.trim();
        email.split('@').next().unwrap_or(email).to_owned()
    } else {
        parts.join(" ")
    }
}

/// Hash formats our password verification accepts (argon2id, bcrypt).
fn is_known_hash(hash: &str) -> bool {
    ["$argon2id$", "$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(first: Option<&str>, last: Option<&str>) -> SourceUser {
        SourceUser {
            id: 1,
            email: " anna.sonne@example.com ".into(),
            hashed_password: "$2b$12$x".into(),
            is_active: true,
            is_superuser: false,
            is_verified: true,
            first_name: first.map(str::to_owned),
            last_name: last.map(str::to_owned),
            api_key: None,
        }
    }

    #[test]
    fn display_names_come_from_the_names_or_the_email() {
        assert_eq!(
            display_name(&user(Some("Anna"), Some("Sonne"))),
            "Anna Sonne"
        );
        assert_eq!(display_name(&user(Some(" Anna "), Some(""))), "Anna");
        assert_eq!(display_name(&user(None, Some("Sonne"))), "Sonne");
        assert_eq!(display_name(&user(None, None)), "anna.sonne");
        assert_eq!(display_name(&user(Some(" "), None)), "anna.sonne");
    }

    #[test]
    fn known_hash_formats() {
        assert!(is_known_hash(
            "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
        ));
        assert!(is_known_hash("$2b$12$abc"));
        assert!(!is_known_hash(
            "$argon2i$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
        ));
        assert!(!is_known_hash("plaintext"));
    }

    #[test]
    fn fields_carry_kind_serials_and_metadata() {
        let source = SourceInverter {
            id: 3,
            user_id: Some(1),
            name: Some("  ".into()),
            serial_logger: Some("2712345678".into()),
            sw_version: Some("-".into()),
            rated_power: Some(600),
            number_of_mppts: Some(300),
        };
        let fields = fields_of(&source, &classify("2712345678")).unwrap();
        assert_eq!(fields.kind, InverterKind::Solarman);
        assert_eq!(fields.logger_serial.map(|s| s.get()), Some(2_712_345_678));
        assert_eq!(fields.serial, None);
        assert_eq!(fields.name, "2712345678");
        assert_eq!(fields.rated_power_w, Some(600.0));
        assert_eq!(fields.mppt_count, None, "300 MPPTs is not a number we keep");
        assert!(fields_of(&source, &classify("")).is_none());
    }
}

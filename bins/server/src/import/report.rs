//! The summary of an import: what was copied, what was already there, what was skipped.

use std::fmt;
use std::time::Duration;

/// An inverter of the original database that was not imported, or needs a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InverterNote {
    /// `inverter.id` in the original database.
    pub source_id: i64,
    /// Its name there.
    pub name: String,
    /// Its `serial_logger`.
    pub serial: String,
    /// The owner's e-mail address (none for orphans).
    pub owner: Option<String>,
    /// Why it is listed.
    pub reason: String,
}

/// What an import did. `Display` gives the summary the command prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Users of the original database.
    pub users_seen: u64,
    /// Accounts created.
    pub users_imported: u64,
    /// Imported accounts that the original marked inactive (imported inactive).
    pub users_inactive: u64,
    /// Accounts that an earlier import created (same e-mail, same password hash): their
    /// missing inverters and readings were completed.
    pub users_resumed: Vec<String>,
    /// Accounts whose e-mail address exists in our store with another password: left alone,
    /// with their inverters and readings.
    pub users_left_alone: Vec<String>,
    /// Users that could not be created, with the reason.
    pub users_failed: Vec<(String, String)>,
    /// Imported accounts whose password hash is neither argon2id nor bcrypt: they must reset
    /// their password.
    pub unusable_password_hashes: Vec<String>,
    /// Plaintext API keys stored (hashed) as keys of their owners.
    pub api_keys_imported: u64,
    /// API keys that were already stored.
    pub api_keys_present: u64,
    /// Inverters registered.
    pub inverters_imported: u64,
    /// Inverters that an earlier import registered.
    pub inverters_present: u64,
    /// Inverters imported as OpenDTU whose serial has neither known shape.
    pub ambiguous: Vec<InverterNote>,
    /// Inverters skipped (unusable serial, logger claimed by another account…).
    pub inverters_skipped: Vec<InverterNote>,
    /// Inverters without an owner: skipped.
    pub orphans: Vec<InverterNote>,
    /// AC rows read from the original.
    pub measurement_rows_read: u64,
    /// Readings stored.
    pub measurements_imported: u64,
    /// Readings our store already had (an earlier run).
    pub measurements_present: u64,
    /// AC rows dropped as duplicates of (inverter, time).
    pub duplicates_removed: u64,
    /// DC rows stored.
    pub dc_rows_imported: u64,
    /// DC rows dropped as duplicates of (inverter, time, channel).
    pub dc_duplicates_removed: u64,
    /// Readings made of DC rows without an AC row near them.
    pub dc_without_ac: u64,
    /// DC rows with a channel number outside 1…255, skipped.
    pub dc_bad_channel: u64,
    /// Wall-clock time of the import.
    pub elapsed: Duration,
}

impl ImportReport {
    /// Whether this run added anything to our store.
    pub fn imported_anything(&self) -> bool {
        self.users_imported
            + self.api_keys_imported
            + self.inverters_imported
            + self.measurements_imported
            > 0
    }

    /// Readings (stored or not) per second of wall-clock time.
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.measurement_rows_read as f64 / secs
        } else {
            0.0
        }
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Import from the original service")?;
        writeln!(f, "  users in the original:        {}", self.users_seen)?;
        writeln!(
            f,
            "  users imported:               {} ({} inactive)",
            self.users_imported, self.users_inactive
        )?;
        writeln!(
            f,
            "  users already present:        {} (from an earlier import: {}, completed; another account: {}, left alone)",
            self.users_resumed.len() + self.users_left_alone.len(),
            self.users_resumed.len(),
            self.users_left_alone.len()
        )?;
        writeln!(
            f,
            "  API keys imported:            {} ({} already present)",
            self.api_keys_imported, self.api_keys_present
        )?;
        writeln!(
            f,
            "  inverters imported:           {} ({} already present)",
            self.inverters_imported, self.inverters_present
        )?;
        writeln!(
            f,
            "  measurements imported:        {} ({} already present, {} rows read)",
            self.measurements_imported, self.measurements_present, self.measurement_rows_read
        )?;
        writeln!(
            f,
            "  duplicates removed:           {}",
            self.duplicates_removed
        )?;
        writeln!(
            f,
            "  DC rows imported:             {} ({} duplicates removed, {} with a bad channel skipped, {} readings of DC rows without AC row)",
            self.dc_rows_imported,
            self.dc_duplicates_removed,
            self.dc_bad_channel,
            self.dc_without_ac
        )?;
        writeln!(f, "  orphaned inverters skipped:   {}", self.orphans.len())?;
        writeln!(
            f,
            "  time:                         {:.1} s ({:.0} rows/s)",
            self.elapsed.as_secs_f64(),
            self.rows_per_second()
        )?;
        if !self.imported_anything() {
            writeln!(f, "Nothing new to import: everything was already there.")?;
        }
        list(
            f,
            "Already present, left alone (another account with this e-mail):",
            &self.users_left_alone,
        )?;
        list(
            f,
            "From an earlier import (checked, missing data completed):",
            &self.users_resumed,
        )?;
        let failed: Vec<String> = self
            .users_failed
            .iter()
            .map(|(email, why)| format!("{email}: {why}"))
            .collect();
        list(f, "Users not imported:", &failed)?;
        list(
            f,
            "Password hash neither argon2id nor bcrypt (they must reset their password):",
            &self.unusable_password_hashes,
        )?;
        notes(f, "Orphaned inverters (no owner), skipped:", &self.orphans)?;
        notes(f, "Inverters skipped:", &self.inverters_skipped)?;
        notes(
            f,
            "Serials of neither shape, imported as OpenDTU (check them):",
            &self.ambiguous,
        )
    }
}

fn list(f: &mut fmt::Formatter<'_>, title: &str, items: &[String]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(f, "{title}")?;
    items.iter().try_for_each(|item| writeln!(f, "  - {item}"))
}

fn notes(f: &mut fmt::Formatter<'_>, title: &str, items: &[InverterNote]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(f, "{title}")?;
    for note in items {
        write!(
            f,
            "  - inverter {} {:?} serial {:?}",
            note.source_id, note.name, note.serial
        )?;
        if let Some(owner) = &note.owner {
            write!(f, " of {owner}")?;
        }
        writeln!(f, ": {}", note.reason)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_run_says_nothing_was_new() {
        let report = ImportReport {
            users_seen: 2,
            users_resumed: vec!["a@example.com".into(), "b@example.com".into()],
            measurement_rows_read: 10,
            measurements_present: 0,
            ..ImportReport::default()
        };
        let text = report.to_string();
        assert!(!report.imported_anything());
        assert!(text.contains("Nothing new to import"), "{text}");
        assert!(text.contains("users already present:        2"), "{text}");
        assert!(text.contains("  - a@example.com"), "{text}");
    }

    #[test]
    fn orphans_and_ambiguous_serials_are_listed() {
        let note = |id, reason: &str| InverterNote {
            source_id: id,
            name: "Roof".into(),
            serial: "HM-1".into(),
            owner: None,
            reason: reason.into(),
        };
        let report = ImportReport {
            measurements_imported: 5,
            orphans: vec![note(7, "no owner")],
            ambiguous: vec![InverterNote {
                owner: Some("x@example.com".into()),
                ..note(8, "imported as OpenDTU")
            }],
            ..ImportReport::default()
        };
        let text = report.to_string();
        assert!(report.imported_anything());
        assert!(!text.contains("Nothing new"), "{text}");
        assert!(
            text.contains("  - inverter 7 \"Roof\" serial \"HM-1\": no owner"),
            "{text}"
        );
        assert!(
            text.contains("inverter 8 \"Roof\" serial \"HM-1\" of x@example.com"),
            "{text}"
        );
    }
}

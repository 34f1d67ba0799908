//! The command-line layer: the global flags derived from the settings table, and the values
//! they carry.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{
    Binary, CONFIG_FILE, ConfigError, Kind, Layer, Origin, SETTINGS, Setting, read_secret,
};

/// Values given on the command line, by file key (see [`flag_values`]).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// Key → (value, flag without `--`, whether the value names a file holding it).
    values: HashMap<&'static str, (String, String, bool)>,
    pub(super) config: Option<PathBuf>,
}

impl Flags {
    /// No flags.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets `key` as if `--flag value` had been given (for tests and embedders).
    pub fn set(mut self, key: &'static str, flag: &str, value: &str) -> Self {
        self.values
            .insert(key, (value.to_owned(), flag.to_owned(), false));
        self
    }

    /// Sets `key` to the contents of the file `path`, as `--flag-file path` does.
    pub fn set_file(mut self, key: &'static str, flag: &str, path: &str) -> Self {
        self.values
            .insert(key, (path.to_owned(), format!("{flag}-file"), true));
        self
    }

    /// Names the config file, as `--config path` does.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// The flag layer's value of `setting`.
    pub(super) fn value(&self, setting: &Setting) -> Result<Layer, ConfigError> {
        let Some((value, flag, from_file)) = self.values.get(setting.key) else {
            return Ok(None);
        };
        let origin = Origin::Flag(flag.clone());
        if *from_file {
            return read_secret(setting, value, origin).map(Some);
        }
        Ok(Some((value.clone(), origin)).filter(|(v, _)| !v.is_empty()))
    }
}

/// Adds a global flag for every setting `binary` uses (plus `--config`, the `-file` variants
/// and the switches) to `command`.
pub fn add_flags(command: clap::Command, binary: Binary) -> clap::Command {
    let heading = "Configuration (flags > environment > config file > defaults)";
    let mut command = command.arg(flag_arg(&CONFIG_FILE, binary, heading));
    for setting in SETTINGS.iter().filter(|s| s.used_by(binary)) {
        command = command.arg(flag_arg(setting, binary, heading));
        if let (Some(flag), Some(env)) = (setting.flag(binary), setting.env_file()) {
            command = command.arg(
                clap::Arg::new(file_id(setting.key))
                    .long(format!("{flag}-file"))
                    .value_name("FILE")
                    .global(true)
                    .help_heading(heading)
                    .conflicts_with(setting.key)
                    .help(format!("File holding the value of --{flag} [env: {env}]")),
            );
        }
        if let Some(switch) = setting.switch {
            command = command.arg(
                clap::Arg::new(switch_id(setting.key))
                    .long(switch.flag)
                    .action(clap::ArgAction::SetTrue)
                    .global(true)
                    .help_heading(heading)
                    .help(format!(
                        "Same as --{} {}",
                        setting.flag(binary).unwrap_or(setting.key),
                        switch.sets
                    )),
            );
        }
    }
    command
}

fn flag_arg(setting: &Setting, binary: Binary, heading: &'static str) -> clap::Arg {
    let flag = setting.flag(binary).unwrap_or(setting.key);
    let mut help = format!("{} [env: {}]", setting.help, setting.env);
    if let Some(default) = setting.default.filter(|d| !d.is_empty()) {
        help.push_str(&format!(" [default: {default}]"));
    }
    clap::Arg::new(setting.key)
        .long(flag)
        .value_name(if setting.kind == Kind::List {
            "LIST"
        } else {
            "VALUE"
        })
        .global(true)
        .help_heading(heading)
        .help(help)
}

fn file_id(key: &str) -> String {
    format!("{key}_file")
}

fn switch_id(key: &str) -> String {
    format!("{key}_switch")
}

/// The flags of [`add_flags`] that `matches` holds.
pub fn flag_values(matches: &clap::ArgMatches, binary: Binary) -> Flags {
    let mut flags = Flags {
        config: matches
            .get_one::<String>(CONFIG_FILE.key)
            .map(PathBuf::from),
        ..Flags::default()
    };
    for setting in SETTINGS.iter().filter(|s| s.used_by(binary)) {
        let flag = setting.flag(binary).unwrap_or(setting.key);
        if let Some(switch) = setting.switch
            && matches.get_flag(&switch_id(setting.key))
        {
            flags = flags.set(setting.key, switch.flag, switch.sets);
        }
        if let Some(v) = matches.get_one::<String>(setting.key) {
            flags = flags.set(setting.key, flag, v);
        }
        if setting.file_variant
            && let Some(path) = matches.get_one::<String>(&file_id(setting.key))
        {
            flags = flags.set_file(setting.key, flag, path);
        }
    }
    flags
}

//! The settings table as a commented example file (`print-config`) and as the README's
//! Markdown table.

use std::fmt::Write;

use super::settings::{Binary, CONFIG_FILE, Kind, SETTINGS, Secrecy, Setting};

/// A commented configuration file for `binary` with every key it reads: keys with a default
/// are set to it (so the file, read back, changes nothing), the others are commented out
/// with an example value.
pub fn example_file(binary: Binary) -> String {
    let mut out = format!(
        "# {name} configuration (TOML), printed by `{name} print-config`.\n\
         #\n\
         # Every key is optional. Each layer overrides the one before: the defaults shown here,\n\
         # then this file, then environment variables (a `.env` file in the working directory is\n\
         # read too), then command-line flags. Name this file with --config FILE or\n\
         # {env}=FILE, or put it at ./deyehard.toml. One file may serve both binaries.\n\
         # A secret may live in a file of its own: `auth_secret_file = \"/run/secrets/auth\"`.\n",
        name = binary.name(),
        env = CONFIG_FILE.env,
    );
    for setting in SETTINGS.iter().filter(|s| s.used_by(binary)) {
        out.push('\n');
        for line in wrap(setting.help, 92) {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "# {}", sources(setting, binary));
        match (setting.default, setting.example) {
            (Some(default), _) => {
                let _ = writeln!(
                    out,
                    "{} = {}",
                    setting.key,
                    toml_value(setting.kind, default)
                );
            }
            (None, Some(example)) => {
                let _ = writeln!(
                    out,
                    "# {} = {}",
                    setting.key,
                    toml_value(setting.kind, example)
                );
            }
            (None, None) => {
                let file_key = setting.key_file().unwrap_or_else(|| setting.key.to_owned());
                let _ = writeln!(out, "# {file_key} = \"/run/secrets/{}\"", setting.key);
            }
        }
    }
    out
}

/// "env X (or X_FILE), flag --x (or --x-file)".
fn sources(setting: &Setting, binary: Binary) -> String {
    let mut env = setting.env.to_owned();
    if let Some(file) = setting.env_file() {
        let _ = write!(env, " or {file}");
    }
    let flag = setting.flag(binary).unwrap_or(setting.key);
    let mut flags = format!("--{flag}");
    if setting.file_variant {
        let _ = write!(flags, " or --{flag}-file");
    }
    if let Some(switch) = setting.switch {
        let _ = write!(flags, " or --{}", switch.flag);
    }
    format!("env {env}; flag {flags}")
}

/// `text` written as a TOML value of `kind`.
fn toml_value(kind: Kind, text: &str) -> String {
    match kind {
        Kind::Integer | Kind::Bool => text.to_owned(),
        Kind::Text => toml::Value::String(text.to_owned()).to_string(),
        Kind::List => {
            let items: Vec<String> = text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()).to_string())
                .collect();
            format!("[{}]", items.join(", "))
        }
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().map(|l| l.len()).unwrap_or_default();
        if line > 0 && line + 1 + word.len() > width {
            lines.push(String::new());
        }
        if let Some(line) = lines.last_mut() {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// The configuration table of the README: every setting with its file key, environment
/// variables, flags, default and meaning.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| file key | environment | flag | default | meaning |\n|---|---|---|---|---|\n",
    );
    let config_row = format!(
        "| — | `{}` | `--{}` | `./deyehard.toml` if present | {} |\n",
        CONFIG_FILE.env,
        CONFIG_FILE.server_flag.unwrap_or("config"),
        CONFIG_FILE.help
    );
    out.push_str(&config_row);
    for setting in SETTINGS {
        let mut env = vec![format!("`{}`", setting.env)];
        env.extend(setting.env_file().map(|f| format!("`{f}`")));
        env.extend(
            setting
                .switch
                .and_then(|s| s.env)
                .map(|e| format!("`{e}=true`")),
        );
        env.extend(setting.env_aliases.iter().map(|a| format!("`{a}`")));
        let default = match (setting.default, setting.secrecy) {
            (Some(""), _) => "empty".to_owned(),
            (Some(d), _) => format!("`{d}`"),
            (None, Secrecy::Secret) => "—".to_owned(),
            (None, _) => "unset".to_owned(),
        };
        let _ = writeln!(
            out,
            "| `{}`{} | {} | {} | {} | {} |",
            setting.key,
            setting
                .key_file()
                .map(|k| format!(", `{k}`"))
                .unwrap_or_default(),
            env.join(", "),
            flags_cell(setting),
            default,
            setting.help.replace('|', "\\|"),
        );
    }
    out
}

fn flags_cell(setting: &Setting) -> String {
    let one = |flag: &str| {
        let mut s = format!("`--{flag}`");
        if setting.file_variant {
            let _ = write!(s, ", `--{flag}-file`");
        }
        if let Some(switch) = setting.switch {
            let _ = write!(s, ", `--{}`", switch.flag);
        }
        s
    };
    match (setting.server_flag, setting.collector_flag) {
        (Some(a), Some(b)) if a == b => one(a),
        (Some(a), Some(b)) => format!("{} (server), {} (collector)", one(a), one(b)),
        (Some(a), None) => format!("{} (server only)", one(a)),
        (None, Some(b)) => format!("{} (collector only)", one(b)),
        (None, None) => "—".to_owned(),
    }
}

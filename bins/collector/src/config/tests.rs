use std::net::SocketAddr;

use super::*;

fn env(dir: &Path, pairs: &[(&str, &str)]) -> Environment {
    Environment::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        dir,
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn layers_override_in_the_documented_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "deyehard.toml",
        "listen = \"127.0.0.1:1\"\nbase_url = \"http://file\"\nretention_days = 30\nsmtp_from = \"file\"\n",
    );
    let dotenv = write(
        dir.path(),
        ".env",
        "BASE_URL=http://dotenv\nSMTP_FROM=dotenv\nDEYEHARD_RETENTION_DAYS=40\n",
    );
    let env = env(
        dir.path(),
        &[
            ("BASE_URL", "http://env"),
            ("DEYEHARD_RETENTION_DAYS", "50"),
        ],
    )
    .with_dotenv(&dotenv)
    .unwrap();
    let flags = Flags::none().set("retention_days", "retention-days", "60");
    let config = Config::load(Binary::Server, &env, &flags).unwrap();
    assert_eq!(
        config.file(),
        Some(file.as_path()),
        "./deyehard.toml is read by default"
    );

    // default only
    assert_eq!(config.raw("smtp_tls"), Some("starttls"));
    assert_eq!(config.origin("smtp_tls"), Some(&Origin::Default));
    // file over default
    assert_eq!(config.get::<SocketAddr>("listen").unwrap().port(), 1);
    assert_eq!(config.origin("listen"), Some(&Origin::File(file.clone())));
    // .env over file
    assert_eq!(config.raw("smtp_from"), Some("dotenv"));
    assert_eq!(
        config.origin("smtp_from"),
        Some(&Origin::DotEnv("SMTP_FROM".into(), dotenv.clone()))
    );
    // environment over .env
    assert_eq!(config.raw("base_url"), Some("http://env"));
    assert_eq!(
        config.origin("base_url"),
        Some(&Origin::Env("BASE_URL".into()))
    );
    // flag over environment
    assert_eq!(config.get::<u32>("retention_days").unwrap(), 60);
    assert_eq!(
        config.origin("retention_days"),
        Some(&Origin::Flag("retention-days".into()))
    );
    // unset without default
    assert_eq!(config.get_opt::<String>("smtp_host").unwrap(), None);
}

#[test]
fn a_bad_value_names_the_key_and_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(
        Binary::Server,
        &env(dir.path(), &[("DEYEHARD_LISTEN", "localhost")]),
        &Flags::none(),
    )
    .unwrap();
    let err = config.get::<SocketAddr>("listen").unwrap_err().to_string();
    assert!(
        err.starts_with("invalid value for `listen` (from the environment variable DEYEHARD_LISTEN): \"localhost\""),
        "{err}"
    );

    let file = write(
        dir.path(),
        "c.toml",
        "collector_max_connections = \"many\"\n",
    );
    let config = Config::load(
        Binary::Collector,
        &env(dir.path(), &[]),
        &Flags::none().config(&file),
    )
    .unwrap();
    let err = config
        .get::<usize>("collector_max_connections")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`collector_max_connections`"), "{err}");
    assert!(
        err.contains(&format!("the config file {}", file.display())),
        "{err}"
    );

    let flags = Flags::none().set("retention_days", "retention-days", "-1");
    let config = Config::load(Binary::Server, &env(dir.path(), &[]), &flags).unwrap();
    let err = config.get::<u32>("retention_days").unwrap_err().to_string();
    assert!(err.contains("(from the flag --retention-days)"), "{err}");
}

#[test]
fn secrets_and_url_passwords_stay_out_of_messages() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(
        Binary::Server,
        &env(
            dir.path(),
            &[
                ("DATABASE_URL", "mysql://root:hunter2@db/x"),
                ("SMTP_PASSWORD", "hunter2"),
            ],
        ),
        &Flags::none(),
    )
    .unwrap();
    let err = config
        .get::<DatabaseUrl>("database_url")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mysql://root:***@db/x") && !err.contains("hunter2"),
        "{err}"
    );
    let err = config
        .parse_opt("smtp_password", |_| Err::<(), _>("no".to_owned()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("***") && !err.contains("hunter2"), "{err}");
}

#[test]
fn unknown_keys_are_refused_but_the_other_binarys_keys_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "x.toml",
        "base_url = \"http://x\"\nlisen = \"0.0.0.0:1\"\n",
    );
    let err = Config::load(
        Binary::Collector,
        &env(dir.path(), &[]),
        &Flags::none().config(&file),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown key `lisen`"), "{err}");

    let file = write(
        dir.path(),
        "y.toml",
        "base_url = \"http://x\"\ncollector_listen = \"off\"\n",
    );
    let config = Config::load(
        Binary::Collector,
        &env(dir.path(), &[]),
        &Flags::none().config(&file),
    )
    .unwrap();
    assert_eq!(
        config.raw("base_url"),
        None,
        "a server key, ignored by the collector"
    );
    assert_eq!(
        config.get::<Listen>("collector_listen").unwrap(),
        Listen(None)
    );

    let err = Config::load(
        Binary::Server,
        &env(dir.path(), &[("DEYEHARD_CONFIG", "missing.toml")]),
        &Flags::none(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("missing.toml") && err.contains("DEYEHARD_CONFIG"),
        "{err}"
    );

    let file = write(dir.path(), "z.toml", "trusted_proxies = [1]\n");
    let err = Config::load(
        Binary::Server,
        &env(dir.path(), &[]),
        &Flags::none().config(&file),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`trusted_proxies`") && err.contains("a list of strings"),
        "{err}"
    );
}

#[test]
fn secrets_come_from_files_in_every_layer_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "secret", "  s3cret-from-a-file \n");
    let secret = secret.to_str().unwrap();
    let file = write(
        dir.path(),
        "c.toml",
        &format!("auth_secret_file = {secret:?}\n"),
    );
    let from_file = Config::load(
        Binary::Server,
        &env(dir.path(), &[]),
        &Flags::none().config(&file),
    )
    .unwrap();
    assert_eq!(from_file.raw("auth_secret"), Some("s3cret-from-a-file"));
    let from_env = Config::load(
        Binary::Server,
        &env(dir.path(), &[("SMTP_PASSWORD_FILE", secret)]),
        &Flags::none(),
    )
    .unwrap();
    assert_eq!(from_env.raw("smtp_password"), Some("s3cret-from-a-file"));
    assert!(
        from_env
            .origin("smtp_password")
            .unwrap()
            .to_string()
            .contains("named by the environment variable SMTP_PASSWORD_FILE")
    );
    let from_flag = Config::load(
        Binary::Server,
        &env(dir.path(), &[("DATABASE_URL", "postgres://x")]),
        &Flags::none().set_file("database_url", "database-url", secret),
    )
    .unwrap();
    assert_eq!(from_flag.raw("database_url"), Some("s3cret-from-a-file"));

    let twice = Config::load(
        Binary::Server,
        &env(
            dir.path(),
            &[("AUTH_SECRET", "x"), ("AUTH_SECRET_FILE", secret)],
        ),
        &Flags::none(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        twice.contains("`auth_secret` is given twice in the environment"),
        "{twice}"
    );
    let missing = Config::load(
        Binary::Server,
        &env(dir.path(), &[("AUTH_SECRET_FILE", "/nonexistent/secret")]),
        &Flags::none(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("`auth_secret`") && missing.contains("AUTH_SECRET_FILE"),
        "{missing}"
    );
}

#[test]
fn empty_values_switches_and_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(
        Binary::Collector,
        &env(
            dir.path(),
            &[
                ("DATABASE_URL", ""),
                ("DEYEHARD_LOG_JSON", "true"),
                ("RUST_LOG", "debug"),
            ],
        ),
        &Flags::none(),
    )
    .unwrap();
    assert_eq!(config.raw("database_url"), None, "empty means not given");
    assert_eq!(
        config.get::<LogFormat>("log_format").unwrap(),
        LogFormat::Json
    );
    assert_eq!(
        config.raw("log"),
        Some("debug"),
        "RUST_LOG when DEYEHARD_LOG is unset"
    );

    let config = Config::load(
        Binary::Collector,
        &env(
            dir.path(),
            &[("DEYEHARD_LOG", "warn"), ("RUST_LOG", "debug")],
        ),
        &Flags::none(),
    )
    .unwrap();
    assert_eq!(config.raw("log"), Some("warn"));
}

#[test]
fn the_printed_example_reads_back_as_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    for binary in [Binary::Server, Binary::Collector] {
        let text = example_file(binary);
        let file = write(dir.path(), "example.toml", &text);
        let with_file =
            Config::load(binary, &env(dir.path(), &[]), &Flags::none().config(&file)).unwrap();
        let without = Config::load(binary, &env(dir.path(), &[]), &Flags::none()).unwrap();
        for setting in SETTINGS.iter().filter(|s| s.used_by(binary)) {
            assert_eq!(
                with_file.raw(setting.key),
                without.raw(setting.key),
                "{}",
                setting.key
            );
            assert!(text.contains(setting.env), "{} is documented", setting.env);
        }
        // Every commented-out example is valid for its key once uncommented.
        let secrets_dir = format!("{}/", dir.path().display());
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = ") && !l.contains('`'))
            .map(|l| format!("{}\n", l.replace("/run/secrets/", &secrets_dir)))
            .collect();
        for key in ["auth_secret", "encryption_key", "smtp_password"] {
            write(dir.path(), key, "x");
        }
        let file = write(dir.path(), "examples.toml", &uncommented);
        let examples =
            Config::load(binary, &env(dir.path(), &[]), &Flags::none().config(&file)).unwrap();
        assert!(examples.get::<DatabaseUrl>("database_url").is_ok());
        if binary == Binary::Server {
            assert_eq!(examples.get::<u16>("smtp_port").unwrap(), 587);
            assert_eq!(examples.raw("auth_secret"), Some("x"));
        }
    }
}

#[test]
fn flags_are_global_and_collected() {
    let command = add_flags(
        clap::Command::new("x").subcommand(clap::Command::new("serve")),
        Binary::Collector,
    );
    command.clone().debug_assert();
    let matches = command
        .try_get_matches_from([
            "x",
            "serve",
            "--listen",
            "127.0.0.1:9",
            "--log-json",
            "--data-dir",
            "d",
        ])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(
        Binary::Collector,
        &env(dir.path(), &[]),
        &flag_values(&matches, Binary::Collector),
    )
    .unwrap();
    assert_eq!(config.raw("collector_listen"), Some("127.0.0.1:9"));
    assert_eq!(
        config.origin("collector_listen"),
        Some(&Origin::Flag("listen".into()))
    );
    assert_eq!(
        config.get::<LogFormat>("log_format").unwrap(),
        LogFormat::Json
    );
    assert_eq!(config.raw("data_dir"), Some("d"));

    let server = add_flags(clap::Command::new("s"), Binary::Server);
    server.clone().debug_assert();
    let both = server.try_get_matches_from(["s", "--auth-secret", "a", "--auth-secret-file", "f"]);
    assert!(both.is_err(), "a value and its file conflict");
}

/// The README's configuration table is generated from [`SETTINGS`] (set `UPDATE_README=1` to
/// rewrite it).
#[test]
fn readme_configuration_table_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (start, end) = ("<!-- config-table:start -->\n", "<!-- config-table:end -->");
    let from = readme.find(start).expect("README has the table markers") + start.len();
    let to = readme.find(end).expect("README has the end marker");
    let table = markdown_table();
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{table}{}", &readme[..from], &readme[to..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert!(
        readme[from..to] == table,
        "the README's configuration table is out of date: run `UPDATE_README=1 cargo test -p deyehard-collector readme`"
    );
}

/// `.env.example` names only variables the configuration reads.
#[test]
fn env_example_names_only_known_variables() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example");
    let text = std::fs::read_to_string(path).unwrap();
    let known: Vec<String> = SETTINGS
        .iter()
        .flat_map(|s| {
            let mut names = vec![s.env.to_owned()];
            names.extend(s.env_file());
            names.extend(s.env_aliases.iter().map(|a| (*a).to_owned()));
            names
        })
        .chain([CONFIG_FILE.env.to_owned()])
        .collect();
    let mut seen = 0;
    for line in text.lines() {
        let line = line.trim_start_matches('#');
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !name.is_empty() {
            assert!(
                known.iter().any(|k| k == name),
                "{name} in .env.example is not a setting"
            );
            seen += 1;
        }
    }
    assert!(seen > 10, "the example lists the common variables");
}

//! Test support: a fresh store per test (SQLite in a temporary directory, or a fresh
//! PostgreSQL database), a collector on port 0, and a fake Solarman logger built from our codec.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deyehard::solarman::{ControlCode, Frame, parse};
use deyehard_core::{InverterId, InverterKind, LoggerSerial, TenantScope};
use deyehard_store::{InverterFields, InverterStore, NewUser, Store, StoreOptions, UserStore};
use serde_json::Value;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long any single network step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(10);

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store of its own for one test; dropping it removes the database.
pub struct TestStore {
    pub store: Arc<Store>,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

fn pg_admin_url() -> String {
    std::env::var("DEYEHARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` (a PostgreSQL server URL) with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let (server, _) = base.rsplit_once('/').unwrap_or((base, ""));
    format!("{server}/{db}")
}

/// Runs `$body` with `$conn` bound to a fresh connection (as the login role) to the test
/// database of `$store`, whichever backend it is.
macro_rules! on_raw_connection {
    ($store:expr, |$conn:ident| $body:expr) => {
        match $store.pg_database() {
            None => {
                let path = $store.dir.path().join("deyehard.db");
                let mut $conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                        .await
                        .expect("raw SQLite connection");
                $body
            }
            Some((admin, name)) => {
                let mut $conn = sqlx::PgConnection::connect(&with_database(admin, name))
                    .await
                    .expect("raw PostgreSQL connection");
                $body
            }
        }
    };
}

impl TestStore {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Sqlite => {
                let path = dir.path().join("deyehard.db");
                let store = Store::connect(&path.to_string_lossy(), &StoreOptions::default())
                    .await
                    .expect("open SQLite store");
                Self {
                    store: Arc::new(store),
                    dir,
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is needed for this test but {admin} is unreachable ({e}). \
                         Start it with `pg_ctlcluster 15 main start`, or point DEYEHARD_TEST_PG_URL at one."
                    )
                });
                let name = format!("dh_e2e_{:016x}", rand::random::<u64>());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let url = with_database(&admin, &name);
                let store = Store::connect(&url, &StoreOptions::default())
                    .await
                    .expect("open PostgreSQL store");
                Self {
                    store: Arc::new(store),
                    dir,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// The PostgreSQL database name, if this is a PostgreSQL store.
    pub fn pg_database(&self) -> Option<(&str, &str)> {
        self.pg.as_ref().map(|(a, n)| (a.as_str(), n.as_str()))
    }

    /// Runs `sql` on this test's database outside the store (as the login role).
    pub async fn raw_execute(&self, sql: &str) {
        on_raw_connection!(self, |conn| {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut conn)
                .await
                .expect("raw statement");
        })
    }

    /// The number `sql` (a `SELECT count(*) …`) returns, read outside the store across
    /// tenants.
    pub async fn raw_count(&self, sql: &str) -> i64 {
        on_raw_connection!(self, |conn| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                .fetch_one(&mut conn)
                .await
                .expect("raw count")
        })
    }

    /// A verified user and a scope for them.
    pub async fn user(&self, email: &str) -> TenantScope {
        let user = self
            .store
            .create_user(&NewUser {
                email: email.to_owned(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                    .to_owned(),
                display_name: email.to_owned(),
                time_zone: Some("Europe/Berlin".to_owned()),
                locale: None,
                is_verified: true,
                is_superuser: false,
            })
            .await
            .expect("create user");
        TenantScope::for_tests(user.id)
    }

    /// Registers a Solarman inverter claiming `logger`.
    pub async fn claim(&self, scope: &TenantScope, logger: u32) -> InverterId {
        self.store
            .create_inverter(
                scope,
                &InverterFields {
                    name: "Balcony".to_owned(),
                    kind: InverterKind::Solarman,
                    serial: None,
                    logger_serial: Some(LoggerSerial::new(logger)),
                    rated_power_w: None,
                    mppt_count: None,
                },
            )
            .await
            .expect("create inverter")
            .id
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Async drop does not exist: clean up on a thread with its own small runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A collector running in-process on 127.0.0.1:0.
pub struct TestCollector {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestCollector {
    pub async fn start(store: &TestStore) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local address");
        let options = deyehard_collector::CollectorOptions::new(store.dir.path().join("spool"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(deyehard_collector::run(
            listener,
            store.store.clone(),
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the collector and waits until it has drained.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(STEP, task)
                .await
                .expect("collector stops in time")
                .expect("collector task")
                .expect("collector result");
        }
    }
}

/// A fake logger speaking V5 over a real socket.
pub struct FakeLogger {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl FakeLogger {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(STEP, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Sends `bytes` one byte per write.
    pub async fn send_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.stream
                .write_all(std::slice::from_ref(b))
                .await
                .expect("send byte");
            self.stream.flush().await.expect("flush");
        }
    }

    /// The next whole frame from the collector.
    pub async fn reply(&mut self) -> Received {
        loop {
            if let Ok(len) = deyehard::solarman::check(&self.buf) {
                let frame_bytes: Vec<u8> = self.buf.drain(..len).collect();
                let frame = parse(&frame_bytes).expect("a valid reply frame");
                return owned(&frame);
            }
            let mut chunk = [0u8; 512];
            let n = tokio::time::timeout(STEP, self.stream.read(&mut chunk))
                .await
                .expect("a reply in time")
                .expect("read");
            assert!(
                n > 0,
                "the collector closed the connection instead of replying"
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Waits until the collector closes the connection.
    pub async fn closed(&mut self) {
        let mut chunk = [0u8; 64];
        loop {
            match tokio::time::timeout(STEP, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("the collector did not close the connection"),
            }
        }
    }
}

/// A frame the collector sent, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub control: ControlCode,
    pub seq_a: u8,
    pub seq_b: u8,
    pub serial: u32,
    pub payload: Vec<u8>,
}

impl Received {
    /// The unix time in a server reply (payload bytes 2..6).
    pub fn reply_time(&self) -> u32 {
        u32::from_le_bytes([
            self.payload[2],
            self.payload[3],
            self.payload[4],
            self.payload[5],
        ])
    }
}

fn owned(frame: &Frame<'_>) -> Received {
    Received {
        control: frame.control,
        seq_a: frame.seq_a,
        seq_b: frame.seq_b,
        serial: frame.serial.get(),
        payload: frame.payload.to_vec(),
    }
}

/// The test frames with their expected decoding.
pub fn fixtures() -> Vec<Value> {
    let text = include_str!("../fixtures/solarman-frames.json");
    serde_json::from_str(text).expect("frames.json")
}

/// The bytes of the fixture frame `name`.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let frame = fixtures()
        .into_iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    hex::decode(frame["hex"].as_str().expect("hex")).expect("hex")
}

/// Rebuilds `frame` with other header fields and a patched payload (checksum recomputed).
pub fn rebuild(bytes: &[u8], serial: u32, seq_b: u8, patch: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let frame = parse(bytes).expect("fixture parses");
    let mut payload = frame.payload.to_vec();
    patch(&mut payload);
    Frame {
        control: frame.control,
        seq_a: 0,
        seq_b,
        serial: LoggerSerial::new(serial),
        payload: &payload,
    }
    .to_vec()
    .expect("encode")
}

/// A live (frame type 0x01) Deye data frame from `serial` whose device time is `time`.
pub fn live_data(serial: u32, seq_b: u8, time: DateTime<Utc>) -> Vec<u8> {
    let hist = fixture_bytes("deye-m80g3-data-hist");
    rebuild(&hist, serial, seq_b, |p| {
        p[0] = 0x01;
        let total = u32::from_le_bytes([p[3], p[4], p[5], p[6]]);
        let unix = u32::try_from(time.timestamp()).expect("time fits u32");
        p[11..15].copy_from_slice(&(unix - total).to_le_bytes());
    })
}

/// A handshake from `serial`.
pub fn handshake(serial: u32, seq_b: u8) -> Vec<u8> {
    rebuild(
        &fixture_bytes("ginlong-mw08-handshake"),
        serial,
        seq_b,
        |_| {},
    )
}

/// A heartbeat from `serial`.
pub fn heartbeat(serial: u32, seq_a: u8, seq_b: u8) -> Vec<u8> {
    Frame {
        control: ControlCode::Heartbeat,
        seq_a,
        seq_b,
        serial: LoggerSerial::new(serial),
        payload: &[0x00],
    }
    .to_vec()
    .expect("encode")
}

// ---- web server (accounts and ingestion) --------------------------------------------------------

/// Everything the in-process server logged (all tests of this binary), for leak checks.
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures all logs (debug and up) once per test binary, and installs the TLS provider.
pub fn init_test_process() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=info,hyper=info,reqwest=info,rustls=info,h2=info")
            .with_writer(|| LogSink)
            .with_ansi(false)
            .try_init();
    });
}

/// The captured logs so far, as text.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().expect("log buffer")).into_owned()
}

/// The web server running in-process on 127.0.0.1:0, through the same `run_with` the binary uses,
/// with mail going to an outbox directory of its own.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`, also the server's `BASE_URL` (links in mail start with it).
    pub base: String,
    /// Where the server writes mail (one `.eml` file per message).
    pub outbox: std::path::PathBuf,
    _mail_dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// The batch writers' runtime, when the server has one.
    writers: Option<deyehard_server::WriterRuntime>,
}

impl TestServer {
    /// A server on `store` with the default ingestion options.
    pub async fn start(store: &TestStore) -> Self {
        Self::start_on(
            store.store.clone(),
            deyehard_server::IngestOptions::default(),
        )
        .await
    }

    /// A server on `store` as `deyehard-server serve` runs it: the pushes' batch writers on a
    /// thread of their own, with a pool of their own on PostgreSQL.
    pub async fn start_serving(store: &TestStore, options: deyehard_server::IngestOptions) -> Self {
        let writers = deyehard_server::WriterRuntime::start(&store.store)
            .await
            .expect("writer runtime");
        let mut server = Self::start_with(store.store.clone(), &options, Some(&writers)).await;
        server.writers = Some(writers);
        server
    }

    /// A server on any store, with these ingestion options.
    pub async fn start_on(store: Arc<Store>, options: deyehard_server::IngestOptions) -> Self {
        Self::start_with(store, &options, None).await
    }

    async fn start_with(
        store: Arc<Store>,
        options: &deyehard_server::IngestOptions,
        writers: Option<&deyehard_server::WriterRuntime>,
    ) -> Self {
        init_test_process();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local address");
        let base = format!("http://{addr}");
        let mail_dir = tempfile::tempdir().expect("temporary directory");
        let outbox = mail_dir.path().join("outbox");
        let settings = deyehard_server::accounts::AccountSettings::new(&base);
        let secrets = deyehard_server::secrets::Secrets::ephemeral().expect("secrets");
        let mailer = deyehard_server::mail::Mailer::new(
            "deyehard <noreply@example.com>",
            &base,
            None,
            Some(outbox.clone()),
        )
        .expect("mailer");
        let accounts = deyehard_server::accounts::Accounts::new(settings, secrets, mailer);
        let mut state = deyehard_server::AppState::new(store, accounts, options);
        if let Some(writers) = writers {
            state = state.with_writer_runtime(writers, options);
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(deyehard_server::run_with(listener, state, async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            outbox,
            _mail_dir: mail_dir,
            stop: Some(stop),
            task: Some(task),
            writers: None,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The bodies of the mails to `to` so far, oldest first.
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.outbox) else {
            return Vec::new();
        };
        let mut files: Vec<_> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter(|text| text.contains(&format!("To: {to}")))
            .collect()
    }

    /// Waits until `count` mails to `to` are in the outbox and returns them.
    pub async fn wait_for_mails(&self, to: &str, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} mails to {to}, found {}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server and waits until it has drained.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server result");
        }
        if let Some(writers) = self.writers.take() {
            writers.shutdown().await;
        }
    }
}

/// The first link in a mail that starts with `prefix`.
pub fn link_in(mail: &str, prefix: &str) -> Option<String> {
    let start = mail.find(prefix)?;
    let rest = &mail[start..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// An HTTP client that never follows redirects (devices do not either).
pub fn http_client() -> reqwest::Client {
    // reqwest is built without a default crypto provider; plain HTTP still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(STEP)
        .build()
        .expect("HTTP client")
}

impl TestStore {
    /// A new API key of `scope`'s user, in clear.
    pub async fn api_key(&self, scope: &TenantScope) -> String {
        use deyehard_store::ApiKeyStore;
        let key = deyehard_core::auth::api_key::generate();
        self.store
            .create_api_key(scope, "test", &key.prefix, &key.hash)
            .await
            .expect("create API key");
        key.plaintext
    }

    /// Registers an inverter with a device serial (OpenDTU unless `kind` says otherwise).
    pub async fn inverter(
        &self,
        scope: &TenantScope,
        kind: InverterKind,
        serial: &str,
    ) -> InverterId {
        self.store
            .create_inverter(
                scope,
                &InverterFields {
                    name: format!("Inverter {serial}"),
                    kind,
                    serial: Some(deyehard_core::DeviceSerial::parse(serial).expect("serial")),
                    logger_serial: None,
                    rated_power_w: Some(2000.0),
                    mppt_count: None,
                },
            )
            .await
            .expect("create inverter")
            .id
    }

    /// The PostgreSQL URL of this store's database, reached through `addr` instead.
    pub fn pg_url_via(&self, addr: SocketAddr) -> Option<String> {
        let (admin, name) = self.pg_database()?;
        let url = with_database(admin, name);
        let (scheme, rest) = url.split_once("://")?;
        let (userinfo, host_and_path) = rest.rsplit_once('@').map_or(("", rest), |(u, h)| (u, h));
        let (_, path) = host_and_path.split_once('/')?;
        let at = if userinfo.is_empty() {
            String::new()
        } else {
            format!("{userinfo}@")
        };
        Some(format!("{scheme}://{at}{addr}/{path}"))
    }

    /// The PostgreSQL server's address from the admin URL (host must be an IP address).
    pub fn pg_server_addr(&self) -> Option<SocketAddr> {
        let (admin, _) = self.pg_database()?;
        let rest = admin.split_once("://")?.1;
        let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host = host_and_path.split('/').next()?;
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:5432")
        };
        host.parse().ok()
    }
}

/// A TCP proxy that can cut every connection and refuse new ones: a database outage on demand.
pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (flag, cuts) = (up.clone(), cut.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    // Reset at once, as a host whose database is down refuses connections.
                    let _ = client.set_zero_linger();
                    continue;
                }
                let mut cut_rx = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            cut,
            task,
        }
    }

    /// Cuts every open connection and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

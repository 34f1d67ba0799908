//! One simulated logger on its socket: connect, handshake, data and heartbeats on their timers,
//! every reply awaited and checked; the counters all loggers share; and the reference responder
//! used when no collector address is given.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deyehard::core::LoggerSerial;
use deyehard::solarman::frame::Frame;
use deyehard::solarman::{FrameBuffer, FrameKind, StreamError, reply_to};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use crate::frames::{Kind, Logger, Templates, check_reply, unix_now};

/// Why a logger stopped before the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection was refused or timed out.
    Connect,
    /// No (whole) reply within the reply timeout.
    Timeout,
    /// A reply that breaks the reply rule, or a reply to nothing.
    BadReply,
    /// The collector closed the connection.
    Closed,
    /// Any other socket error.
    Io,
}

impl Failure {
    /// Every failure, in counter order.
    pub const ALL: [Self; 5] = [
        Self::Connect,
        Self::Timeout,
        Self::BadReply,
        Self::Closed,
        Self::Io,
    ];

    fn index(self) -> usize {
        match self {
            Self::Connect => 0,
            Self::Timeout => 1,
            Self::BadReply => 2,
            Self::Closed => 3,
            Self::Io => 4,
        }
    }

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect_failed",
            Self::Timeout => "reply_timeout",
            Self::BadReply => "bad_reply",
            Self::Closed => "closed_by_collector",
            Self::Io => "io_error",
        }
    }
}

/// A failure and what happened.
type Failed = (Failure, String);

/// Reply latencies in microseconds, by [`Kind::index`].
pub type Latencies = [Vec<u32>; 3];

/// Counters shared by all logger tasks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub connected: AtomicUsize,
    /// Most connections open at once.
    pub peak_connected: AtomicUsize,
    /// Frames sent, by [`Kind::index`].
    pub sent: [AtomicU64; 3],
    /// Frames whose correct reply arrived.
    pub acked: AtomicU64,
    failures: [AtomicU64; 5],
    /// Frames from the collector that were neither replies nor expected.
    pub unsolicited: AtomicU64,
    /// Bytes from the collector that were not frames.
    pub garbage_bytes: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Stats {
    fn fail(&self, failure: Failure, detail: String) {
        self.failures[failure.index()].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(detail);
        }
    }

    /// Loggers that stopped with `failure`.
    pub fn failures(&self, failure: Failure) -> u64 {
        self.failures[failure.index()].load(Ordering::Relaxed)
    }

    /// The first failure, described.
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }

    /// Sum of a counter group.
    pub fn total(counters: &[AtomicU64]) -> u64 {
        counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Sum of all failures.
    pub fn all_failures(&self) -> u64 {
        Self::total(&self.failures)
    }
}

/// Counts a connection as held while it lives.
struct Held<'a>(&'a Stats);

impl<'a> Held<'a> {
    fn new(stats: &'a Stats) -> Self {
        let now = stats.connected.fetch_add(1, Ordering::Relaxed) + 1;
        stats.peak_connected.fetch_max(now, Ordering::Relaxed);
        Self(stats)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every logger task shares.
#[derive(Debug)]
pub struct Ctx {
    /// The collector.
    pub addr: SocketAddr,
    /// Logger i uses serial `serial_base + i`.
    pub serial_base: u32,
    /// Heartbeat interval announced in the handshake, seconds.
    pub heartbeat_byte: u8,
    /// Time between data frames.
    pub data_interval: Duration,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// Longest wait for a connection or a reply.
    pub reply_timeout: Duration,
    /// Payload templates.
    pub templates: Templates,
    /// Counters.
    pub stats: Stats,
}

/// One logger's socket and receive buffer.
struct Conn {
    stream: TcpStream,
    rx: FrameBuffer,
    scratch: Vec<u8>,
}

impl Conn {
    /// Takes frames from the buffer up to the next server reply and checks it against `sent`
    /// (a reply while nothing is outstanding is an error); other frames count as unsolicited,
    /// garbage as dropped bytes. `None` when more bytes are needed.
    fn take_reply(
        &mut self,
        sent: Option<&Frame<'_>>,
        stats: &Stats,
    ) -> Option<Result<u8, String>> {
        while let Some(item) = self.rx.next_frame() {
            match item {
                Ok(f) if f.frame.control.kind() == FrameKind::ServerReply => {
                    let checked = match sent {
                        None => Err(format!("{} with no frame outstanding", f.frame.control)),
                        Some(_) if !f.checksum_ok => Err("reply with a wrong checksum".into()),
                        Some(sent) => check_reply(sent, &f.frame, unix_now()),
                    };
                    return Some(checked.map(|()| f.frame.seq_a));
                }
                Ok(_) => {
                    stats.unsolicited.fetch_add(1, Ordering::Relaxed);
                }
                Err(
                    StreamError::Resync { dropped, .. }
                    | StreamError::Rejected { len: dropped, .. },
                ) => {
                    let dropped = u64::try_from(dropped).unwrap_or(u64::MAX);
                    stats.garbage_bytes.fetch_add(dropped, Ordering::Relaxed);
                }
            }
        }
        None
    }

    /// Reads once into the receive buffer, before `deadline`.
    async fn fill(&mut self, deadline: Instant) -> Result<(), Failed> {
        match timeout_at(deadline, self.stream.read(&mut self.scratch)).await {
            Err(_) => Err((Failure::Timeout, "no reply in time".into())),
            Ok(Ok(0)) => Err((Failure::Closed, "connection closed".into())),
            Ok(Err(e)) => Err((Failure::Io, format!("read: {e}"))),
            Ok(Ok(n)) => {
                self.rx.push(&self.scratch[..n]);
                Ok(())
            }
        }
    }
}

/// Sends the next frame of `kind`, waits for its reply and checks it; records the latency.
async fn exchange(
    conn: &mut Conn,
    logger: &mut Logger,
    kind: Kind,
    ctx: &Ctx,
    latencies: &mut Latencies,
) -> Result<(), Failed> {
    let encode_failed = |e| (Failure::Io, format!("encode: {e}"));
    let bytes = logger.next_frame(kind).map_err(encode_failed)?;
    ctx.stats.sent[kind.index()].fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let deadline = started + ctx.reply_timeout;
    match timeout_at(deadline, conn.stream.write_all(bytes)).await {
        Err(_) => return Err((Failure::Timeout, "write timed out".into())),
        Ok(Err(e)) => return Err((Failure::Io, format!("write: {e}"))),
        Ok(Ok(())) => {}
    }
    let sent = logger.last_frame().map_err(encode_failed)?;
    let seq_a = loop {
        match conn.take_reply(Some(&sent), &ctx.stats) {
            Some(Ok(seq_a)) => break seq_a,
            Some(Err(e)) => return Err((Failure::BadReply, format!("{kind:?}: {e}"))),
            None => conn.fill(deadline).await?,
        }
    };
    let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
    latencies[kind.index()].push(micros);
    ctx.stats.acked.fetch_add(1, Ordering::Relaxed);
    logger.seq_a = seq_a;
    Ok(())
}

/// Waits until `until` while watching the socket. `Ok(true)`: time to send; `Ok(false)`: the
/// run is over.
async fn idle(
    conn: &mut Conn,
    until: Instant,
    stop: &mut watch::Receiver<bool>,
    stats: &Stats,
) -> Result<bool, Failed> {
    loop {
        tokio::select! {
            () = sleep_until(until) => return Ok(true),
            _ = stop.wait_for(|stopped| *stopped) => return Ok(false),
            read = conn.stream.read(&mut conn.scratch) => match read {
                Ok(0) => return Err((Failure::Closed, "idle connection closed".into())),
                Err(e) => return Err((Failure::Io, format!("read: {e}"))),
                Ok(n) => {
                    conn.rx.push(&conn.scratch[..n]);
                    if let Some(Err(e)) = conn.take_reply(None, stats) {
                        return Err((Failure::BadReply, e));
                    }
                }
            }
        }
    }
}

/// Connects at `start`; `None` when the run ends first.
async fn connect(
    ctx: &Ctx,
    start: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Conn>, Failed> {
    tokio::select! {
        () = sleep_until(start) => {}
        _ = stop.wait_for(|stopped| *stopped) => return Ok(None),
    }
    let stream = match timeout(ctx.reply_timeout, TcpStream::connect(ctx.addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err((Failure::Connect, format!("connect: {e}"))),
        Err(_) => return Err((Failure::Connect, "connect timed out".into())),
    };
    // Nagle would only delay the small request/reply exchanges.
    stream
        .set_nodelay(true)
        .map_err(|e| (Failure::Io, format!("nodelay: {e}")))?;
    Ok(Some(Conn {
        stream,
        rx: FrameBuffer::default(),
        scratch: vec![0; 512],
    }))
}

/// Logger `index` from its start time to the stop signal.
async fn session(
    index: u32,
    start: Instant,
    ctx: &Ctx,
    stop: &mut watch::Receiver<bool>,
    latencies: &mut Latencies,
) -> Result<(), Failed> {
    let Some(mut conn) = connect(ctx, start, stop).await? else {
        return Ok(());
    };
    let _held = Held::new(&ctx.stats);
    let serial = LoggerSerial::new(ctx.serial_base.saturating_add(index));
    let mut logger = Logger::new(index, serial, ctx.heartbeat_byte, &ctx.templates);
    // After a connect a logger sends its handshake, then data (§3.7).
    exchange(&mut conn, &mut logger, Kind::Handshake, ctx, latencies).await?;
    exchange(&mut conn, &mut logger, Kind::Data, ctx, latencies).await?;
    let mut next_data = Instant::now() + ctx.data_interval;
    let mut next_heartbeat = Instant::now() + ctx.heartbeat_interval;
    loop {
        let (kind, at) = if next_data <= next_heartbeat {
            (Kind::Data, next_data)
        } else {
            (Kind::Heartbeat, next_heartbeat)
        };
        if !idle(&mut conn, at, stop, &ctx.stats).await? {
            return Ok(());
        }
        exchange(&mut conn, &mut logger, kind, ctx, latencies).await?;
        match kind {
            Kind::Data => next_data += ctx.data_interval,
            _ => next_heartbeat += ctx.heartbeat_interval,
        }
    }
}

/// Runs logger `index` (see the crate docs) and returns its reply latencies.
/// After the stop signal it finishes the exchange in flight and closes.
pub async fn run_logger(
    index: u32,
    start: Instant,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
) -> Latencies {
    let mut latencies = Latencies::default();
    if let Err((failure, detail)) = session(index, start, &ctx, &mut stop, &mut latencies).await {
        let name = failure.name();
        ctx.stats
            .fail(failure, format!("logger {index}: {name}: {detail}"));
    }
    latencies
}

/// Starts a reference collector without storage on 127.0.0.1:0: it answers every
/// logger-originated frame at once with the codec's reply rule.
pub async fn start_responder() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| format!("responder bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("responder address: {e}"))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(respond(stream));
        }
    });
    Ok(addr)
}

async fn respond(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let (mut rx, mut scratch, mut out) = (FrameBuffer::default(), vec![0; 2048], Vec::new());
    while let Ok(n @ 1..) = stream.read(&mut scratch).await {
        rx.push(&scratch[..n]);
        out.clear();
        while let Some(item) = rx.next_frame() {
            if let Some(reply) = item.ok().and_then(|f| reply_to(&f.frame, unix_now(), 0)) {
                out.extend_from_slice(&reply.to_bytes());
            }
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

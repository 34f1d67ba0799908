//! The TCP listener loggers push to (feature `listener`): one task per connection, every
//! logger-originated frame handed to a [`FrameSink`] and acknowledged only once the sink has it.
//!
//! - Acknowledgement after storage: for each frame the sink's [`FrameSink::record`] is awaited
//!   first; the reply goes out on `Ok` (or [`SinkError::Rejected`]: the frame will never be
//!   storable, so retries are pointless) and is withheld on [`SinkError::Unavailable`] (the
//!   logger sends the frame again; the connection stays open). Wrap the sink in
//!   [`SpoolingSink`](crate::spool::SpoolingSink) to acknowledge while the store is down.
//! - One live connection per logger serial; a new one closes the old (§5.6).
//! - Idle timeout = idle factor × heartbeat interval (from the handshake, default 120 s).
//! - TLS ClientHellos (first byte `0x16`, §5.11) and plain-text `AT+` chatter (§4) are logged and
//!   closed.
//! - Graceful shutdown: stop accepting, let connections finish the frame in flight, wait up to
//!   `shutdown_grace`, then abort what is left.
//! - Memory: loggers are idle almost all the time, so an idle connection owns only its small
//!   task, session and registry entry: it waits for readability and reads into a stack buffer,
//!   its frame buffer is freed between frames, and the handling of a frame (with the sink's
//!   future) is allocated only while it runs.
//!
//! Metrics (through the `metrics` facade): `solarman_connections` (gauge),
//! `solarman_connections_total`, `solarman_connections_refused_total`,
//! `solarman_frames_total{kind}`, `solarman_decode_errors_total`,
//! `solarman_checksum_failures_total`, `solarman_resync_bytes_total`,
//! `solarman_sink_unavailable_total`, and `solarman_spool_depth` (gauge, from the spool).

mod connection;
mod registry;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use crate::event::FrameEvent;
use crate::frame::DEFAULT_MAX_FRAME_LEN;
use crate::session::SessionConfig;
use crate::stream::{ChecksumPolicy, StreamConfig};
use registry::Registry;

/// Settings of the listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// Connections served at once; more are accepted and closed at once.
    pub max_connections: usize,
    /// Heartbeat interval assumed until a handshake says otherwise.
    pub default_heartbeat: Duration,
    /// Idle timeout = this × heartbeat interval.
    pub idle_factor: f32,
    /// The last u32 of every reply (§2; 0 keeps loggers connected, the cloud sends 120).
    pub reply_last_field: u32,
    /// Longest frame accepted; longer length fields are treated as garbage.
    pub max_frame_len: usize,
    /// Drop frames with a wrong checksum instead of storing and answering them.
    pub strict_checksum: bool,
    /// How long shutdown waits for connections to finish.
    pub shutdown_grace: Duration,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            default_heartbeat: Duration::from_secs(120),
            idle_factor: 2.5,
            reply_last_field: 0,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            strict_checksum: false,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ListenerConfig {
    fn session(&self) -> SessionConfig {
        SessionConfig {
            default_heartbeat: self.default_heartbeat,
            idle_factor: self.idle_factor,
            reply_last_field: self.reply_last_field,
            ..SessionConfig::default()
        }
    }

    fn stream(&self) -> StreamConfig {
        let checksum = if self.strict_checksum {
            ChecksumPolicy::Strict
        } else {
            ChecksumPolicy::Lenient
        };
        StreamConfig {
            max_frame_len: self.max_frame_len,
            checksum,
        }
    }
}

/// Why a sink did not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Transient (database down): the frame is not acknowledged, the logger will resend it.
    #[error("sink unavailable: {0}")]
    Unavailable(String),
    /// Permanent (the event can never be stored): logged, and the frame is still acknowledged.
    #[error("event rejected: {0}")]
    Rejected(String),
}

/// Where the listener hands frames; implemented by the application (store, channel, …).
pub trait FrameSink: Send + Sync + 'static {
    /// Stores one event. Called in frame order per connection; the frame is acknowledged after
    /// this returns `Ok` or [`SinkError::Rejected`].
    fn record(&self, event: FrameEvent) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Live counters of a listener (for an admin page).
#[derive(Debug, Default)]
pub struct ListenerStats {
    live_connections: AtomicU64,
    connections_total: AtomicU64,
    connections_refused: AtomicU64,
    frames: AtomicU64,
    decode_errors: AtomicU64,
    checksum_failures: AtomicU64,
    resync_bytes: AtomicU64,
    sink_unavailable: AtomicU64,
}

/// A copy of [`ListenerStats`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Connections open now.
    pub live_connections: u64,
    /// Connections accepted and served since start.
    pub connections_total: u64,
    /// Connections closed at once because of the connection limit.
    pub connections_refused: u64,
    /// Frames received.
    pub frames: u64,
    /// Frames dropped or not decodable.
    pub decode_errors: u64,
    /// Frames with a wrong checksum.
    pub checksum_failures: u64,
    /// Garbage bytes skipped.
    pub resync_bytes: u64,
    /// Events the sink could not take (frames left unanswered).
    pub sink_unavailable: u64,
}

impl ListenerStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            live_connections: get(&self.live_connections),
            connections_total: get(&self.connections_total),
            connections_refused: get(&self.connections_refused),
            frames: get(&self.frames),
            decode_errors: get(&self.decode_errors),
            checksum_failures: get(&self.checksum_failures),
            resync_bytes: get(&self.resync_bytes),
            sink_unavailable: get(&self.sink_unavailable),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What every connection task shares.
struct Shared<S> {
    config: ListenerConfig,
    sink: Arc<S>,
    stats: Arc<ListenerStats>,
    registry: Registry,
    next_id: AtomicU64,
}

/// The listener: build it with [`Listener::new`], run it with [`Listener::serve`].
pub struct Listener<S> {
    shared: Arc<Shared<S>>,
}

impl<S: FrameSink> Listener<S> {
    /// A listener handing frames to `sink`.
    pub fn new(config: ListenerConfig, sink: Arc<S>) -> Self {
        let stats = Arc::new(ListenerStats::default());
        let shared = Shared {
            config,
            sink,
            stats,
            registry: Registry::default(),
            next_id: AtomicU64::new(0),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<ListenerStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Accepts loggers on `listener` until `shutdown` completes, then drains (see module docs).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let limit = Arc::new(Semaphore::new(self.shared.config.max_connections));
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        info!(addr = ?listener.local_addr().ok(), "solarman listener started");
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => self.admit(stream, remote, &limit, &stop, &mut tasks),
                    Err(e) => {
                        // Typically out of file descriptors: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(listener);
        stop.cancel();
        let grace = self.shared.config.shutdown_grace;
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(
                left = tasks.len(),
                "connections did not finish within the shutdown grace; aborting them"
            );
            tasks.shutdown().await;
        }
        info!("solarman listener stopped");
        Ok(())
    }

    fn admit(
        &self,
        stream: TcpStream,
        remote: SocketAddr,
        limit: &Arc<Semaphore>,
        stop: &CancellationToken,
        tasks: &mut JoinSet<()>,
    ) {
        let Ok(permit) = Arc::clone(limit).try_acquire_owned() else {
            warn!(%remote, limit = self.shared.config.max_connections, "connection limit reached; closing");
            ListenerStats::add(&self.shared.stats.connections_refused, 1);
            metrics::counter!("solarman_connections_refused_total").increment(1);
            return;
        };
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let span =
            tracing::info_span!("solarman", %remote, conn = id, logger = tracing::field::Empty);
        let conn =
            connection::Connection::new(Arc::clone(&self.shared), id, remote, stop.child_token());
        tasks.spawn(
            async move {
                conn.run(stream).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}

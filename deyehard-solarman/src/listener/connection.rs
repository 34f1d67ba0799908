//! One logger connection: sniff the protocol, frame the stream (the sans-io [`FrameBuffer`]),
//! run the session, hand each event to the sink and reply only once it is stored.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deyehard_core::LoggerSerial;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{FrameSink, ListenerStats, Shared, SinkError};
use crate::event::{DecodedEvent, FrameContent, FrameEvent};
use crate::frame::{Frame, FrameError};
use crate::session::{Action, Session};
use crate::stream::{FrameBuffer, StreamError, StreamFrame};

/// First byte of a TLS record carrying a handshake (ClientHello), §5.11.
const TLS_HANDSHAKE: u8 = 0x16;
/// Plain-text AT command prefix some firmware sends (§4).
const AT_PREFIX: &[u8] = b"AT+";
/// Bytes taken from the socket at a time, into a stack buffer that lives only for the read
/// (frames are rarely over 1.5 KB, §1; more waiting bytes are taken on the next turn).
const READ_CHUNK: usize = 2048;

/// What the first bytes of a connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniff {
    V5,
    Tls,
    At,
}

fn classify(buf: &[u8]) -> Option<Sniff> {
    match buf.first()? {
        &TLS_HANDSHAKE => Some(Sniff::Tls),
        _ if buf.starts_with(AT_PREFIX) => Some(Sniff::At),
        _ if AT_PREFIX.starts_with(buf) => None,
        _ => Some(Sniff::V5),
    }
}

/// Moves what the socket holds into `buffer` without waiting: `Ok(0)` when the peer closed,
/// `WouldBlock` on a spurious wake-up. The read buffer is not kept: an idle connection owns
/// no read buffer.
fn read_ready(stream: &TcpStream, buffer: &mut FrameBuffer) -> io::Result<usize> {
    let mut chunk = [0u8; READ_CHUNK];
    let n = stream.try_read(&mut chunk)?;
    buffer.push(chunk.get(..n).unwrap_or_default());
    Ok(n)
}

pub(super) struct Connection<S> {
    shared: Arc<Shared<S>>,
    id: u64,
    remote: SocketAddr,
    cancel: CancellationToken,
    session: Option<Session>,
    accepted_at: DateTime<Utc>,
}

impl<S: FrameSink> Connection<S> {
    pub(super) fn new(
        shared: Arc<Shared<S>>,
        id: u64,
        remote: SocketAddr,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            shared,
            id,
            remote,
            cancel,
            session: None,
            accepted_at: Utc::now(),
        }
    }

    pub(super) async fn run(mut self, mut stream: TcpStream) {
        let stats = Arc::clone(&self.shared.stats);
        ListenerStats::add(&stats.connections_total, 1);
        ListenerStats::add(&stats.live_connections, 1);
        metrics::counter!("solarman_connections_total").increment(1);
        metrics::gauge!("solarman_connections").increment(1.0);
        debug!("connection accepted");
        // Replies are small and must go out at once.
        let _ = stream.set_nodelay(true);
        let reason = self.serve(&mut stream).await;
        info!(reason, "connection closed");
        if let Some(session) = &self.session {
            self.shared.registry.release(session.serial(), self.id);
        }
        stats
            .live_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!("solarman_connections").decrement(1.0);
    }

    /// Sniffs the protocol on the first bytes, then frames the stream until the connection
    /// ends; returns why it ended. Idle, the task holds no buffer: it waits for readability,
    /// and the [`FrameBuffer`] frees its allocation between frames.
    async fn serve(&mut self, stream: &mut TcpStream) -> &'static str {
        let mut buffer = FrameBuffer::new(self.shared.config.stream());
        let mut sniffed = false;
        loop {
            if !sniffed {
                match classify(buffer.pending()) {
                    None => {}
                    Some(Sniff::V5) => sniffed = true,
                    Some(Sniff::Tls) => return refuse_tls(),
                    Some(Sniff::At) => return refuse_at(buffer.pending()),
                }
            }
            // Everything buffered first: several frames may come from one read.
            while sniffed && let Some(item) = buffer.next_frame() {
                match item {
                    Ok(frame) => {
                        // Boxed: handling a frame (the sink's future, a database client's, can
                        // be large) takes memory only while it runs, not in every idle task.
                        if Box::pin(self.on_frame(frame, stream)).await.is_err() {
                            return "write error";
                        }
                    }
                    Err(error) => self.on_stream_error(&error),
                }
                if self.cancel.is_cancelled() {
                    return "shutdown or replaced";
                }
            }
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return "shutdown or replaced",
                () = tokio::time::sleep(self.until_deadline()) => if self.on_timer() { return "idle timeout" },
                ready = stream.readable() => match ready.and_then(|()| read_ready(stream, &mut buffer)) {
                    Ok(0) => return "closed by the peer",
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return "read error",
                },
            }
        }
    }

    /// The session's next deadline, or the idle timeout from accept before the first frame.
    fn deadline(&self) -> DateTime<Utc> {
        match &self.session {
            Some(session) => session.next_deadline().unwrap_or(DateTime::<Utc>::MAX_UTC),
            None => {
                let idle = chrono::TimeDelta::from_std(self.shared.config.session().idle_timeout());
                idle.ok()
                    .and_then(|d| self.accepted_at.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
        }
    }

    fn until_deadline(&self) -> Duration {
        (self.deadline() - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    /// Runs the session clock; true when the connection must close.
    fn on_timer(&mut self) -> bool {
        let now = Utc::now();
        let Some(session) = self.session.as_mut() else {
            return now >= self.deadline();
        };
        let mut close = false;
        for action in session.poll(now) {
            match action {
                Action::Close(reason) => {
                    info!(?reason, "closing idle logger connection");
                    close = true;
                }
                other => debug!(?other, "session timer"),
            }
        }
        close
    }

    fn on_stream_error(&self, error: &StreamError) {
        let stats = &self.shared.stats;
        match error {
            StreamError::Resync { dropped, .. } => {
                let dropped = u64::try_from(*dropped).unwrap_or(u64::MAX);
                ListenerStats::add(&stats.resync_bytes, dropped);
                metrics::counter!("solarman_resync_bytes_total").increment(dropped);
                debug!(%error, "skipped bytes that are not a frame");
            }
            StreamError::Rejected { cause, .. } => {
                if matches!(cause, FrameError::ChecksumMismatch { .. }) {
                    ListenerStats::add(&stats.checksum_failures, 1);
                    metrics::counter!("solarman_checksum_failures_total").increment(1);
                }
                ListenerStats::add(&stats.decode_errors, 1);
                metrics::counter!("solarman_decode_errors_total").increment(1);
                warn!(%error, "frame dropped");
            }
        }
    }

    async fn on_frame(&mut self, item: StreamFrame<'_>, write: &mut TcpStream) -> io::Result<()> {
        let frame = item.frame;
        self.count(&frame, item.checksum_ok);
        let actions = self.session_for(frame.serial).on_frame(&frame, Utc::now());
        if actions.is_empty() {
            warn!(control = %frame.control, "server-direction frame from a logger; ignored");
        }
        let mut raw = Some(item.raw.to_vec());
        let mut stored = true;
        for action in actions {
            match action {
                Action::Store(event) => {
                    stored = self.store(*event, raw.take().unwrap_or_default()).await
                }
                Action::Reply(bytes) if stored => write.write_all(&bytes).await?,
                Action::Reply(_) => debug!("reply withheld until the frame can be stored"),
                other => debug!(?other, "session action"),
            }
        }
        Ok(())
    }

    fn count(&self, frame: &Frame<'_>, checksum_ok: bool) {
        let stats = &self.shared.stats;
        ListenerStats::add(&stats.frames, 1);
        metrics::counter!("solarman_frames_total", "kind" => frame.control.kind().as_str())
            .increment(1);
        if !checksum_ok {
            ListenerStats::add(&stats.checksum_failures, 1);
            metrics::counter!("solarman_checksum_failures_total").increment(1);
            warn!(control = %frame.control, "wrong checksum; accepted (lenient policy)");
        }
    }

    /// The session, opened on the first frame: registers the logger (closing its older
    /// connection) and names it in the connection's log span.
    fn session_for(&mut self, serial: LoggerSerial) -> &mut Session {
        let shared = &self.shared;
        let (id, cancel) = (self.id, &self.cancel);
        self.session.get_or_insert_with(|| {
            tracing::Span::current().record("logger", serial.get());
            if shared.registry.claim(serial, id, cancel.clone()) {
                info!("replaced the previous connection of this logger");
            }
            Session::new(serial, shared.config.session())
        })
    }

    /// Hands the event to the sink; true when the frame may be acknowledged.
    async fn store(&self, event: DecodedEvent, raw: Vec<u8>) -> bool {
        if let FrameContent::Undecodable { error } = &event.content {
            ListenerStats::add(&self.shared.stats.decode_errors, 1);
            metrics::counter!("solarman_decode_errors_total").increment(1);
            debug!(error, "payload not decodable; stored raw");
        }
        match self
            .shared
            .sink
            .record(FrameEvent::new(event, self.remote, raw))
            .await
        {
            Ok(()) => true,
            Err(SinkError::Rejected(reason)) => {
                warn!(reason, "sink rejected the frame; acknowledging it anyway");
                true
            }
            Err(SinkError::Unavailable(reason)) => {
                ListenerStats::add(&self.shared.stats.sink_unavailable, 1);
                metrics::counter!("solarman_sink_unavailable_total").increment(1);
                warn!(
                    reason,
                    "sink unavailable; frame left unanswered for the logger to resend"
                );
                false
            }
        }
    }
}

/// A TLS ClientHello: logged, the connection ends.
fn refuse_tls() -> &'static str {
    warn!("TLS ClientHello: this logger firmware talks TLS to the cloud, only plain V5 is served");
    "TLS"
}

/// Plain-text AT chatter: logged (first 64 bytes), the connection ends.
fn refuse_at(first: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(first.get(..64).unwrap_or(first))
        .trim()
        .to_owned();
    warn!(text, "plain-text AT command instead of V5");
    "AT command"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink whose future is as big as a database client's can be.
    struct FatSink;

    impl FrameSink for FatSink {
        async fn record(&self, event: FrameEvent) -> Result<(), SinkError> {
            let scratch = [0u8; 16 * 1024];
            tokio::task::yield_now().await;
            std::hint::black_box(&scratch);
            drop(event);
            Ok(())
        }
    }

    fn output_size<A, B, F: std::future::Future>(_: impl Fn(A, B) -> F) -> usize {
        size_of::<F>()
    }

    #[test]
    fn a_connection_task_stays_small_whatever_the_sink() {
        // Every idle logger holds one of these for hours: no read buffer, no sink future.
        let size = output_size(Connection::<FatSink>::run);
        assert!(size < 2048, "the connection future takes {size} bytes");
    }

    #[test]
    fn classify_first_bytes() {
        assert_eq!(classify(&[]), None);
        assert_eq!(classify(&[0xA5]), Some(Sniff::V5));
        assert_eq!(classify(&[0x16, 0x03, 0x01]), Some(Sniff::Tls));
        assert_eq!(classify(b"A"), None);
        assert_eq!(classify(b"AT"), None);
        assert_eq!(classify(b"AT+YZCMPVER"), Some(Sniff::At));
        assert_eq!(
            classify(b"AX"),
            Some(Sniff::V5),
            "garbage goes to the framer, which resyncs"
        );
    }
}

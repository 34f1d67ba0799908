//! Test doubles for the listener: a fake logger built from the crate's own codec, an in-memory
//! sink that can be switched to fail, and a listener started on 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deyehard_core::LoggerSerial;
use deyehard_solarman::listener::{FrameSink, Listener, ListenerConfig, ListenerStats, SinkError};
use deyehard_solarman::{ControlCode, Frame, FrameBuffer, FrameEvent, OwnedFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Collects events; answers `Unavailable` while switched off.
pub struct MemorySink {
    events: Mutex<Vec<FrameEvent>>,
    unavailable: AtomicBool,
    count: watch::Sender<usize>,
    refused: watch::Sender<usize>,
}

impl MemorySink {
    pub fn new(available: bool) -> Arc<Self> {
        Arc::new(Self {
            events: Mutex::new(Vec::new()),
            unavailable: AtomicBool::new(!available),
            count: watch::Sender::new(0),
            refused: watch::Sender::new(0),
        })
    }

    pub fn set_available(&self, available: bool) {
        self.unavailable.store(!available, Ordering::SeqCst);
    }

    pub fn events(&self) -> Vec<FrameEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until at least `n` events arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<FrameEvent> {
        let mut rx = self.count.subscribe();
        timeout(PATIENCE, rx.wait_for(|count| *count >= n))
            .await
            .expect("events did not arrive")
            .unwrap();
        self.events()
    }
}

impl MemorySink {
    /// Waits until the sink has refused at least `n` events.
    pub async fn wait_refused(&self, n: usize) {
        let mut rx = self.refused.subscribe();
        timeout(PATIENCE, rx.wait_for(|count| *count >= n))
            .await
            .expect("no event refused")
            .unwrap();
    }
}

impl FrameSink for MemorySink {
    async fn record(&self, event: FrameEvent) -> Result<(), SinkError> {
        if self.unavailable.load(Ordering::SeqCst) {
            self.refused.send_modify(|n| *n += 1);
            return Err(SinkError::Unavailable("switched off by the test".into()));
        }
        let n = {
            let mut events = self.events.lock().unwrap();
            events.push(event);
            events.len()
        };
        self.count.send_replace(n);
        Ok(())
    }
}

/// A listener running in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub stats: Arc<ListenerStats>,
    shutdown: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub async fn start<S: FrameSink>(config: ListenerConfig, sink: Arc<S>) -> Self {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let listener = Listener::new(config, sink);
        let stats = listener.stats();
        let (shutdown, stop) = oneshot::channel::<()>();
        let handle = tokio::spawn(listener.serve(socket, async {
            let _ = stop.await;
        }));
        Self {
            addr,
            stats,
            shutdown,
            handle,
        }
    }

    /// Triggers shutdown and waits for `serve` to return.
    pub async fn stop(self) {
        self.shutdown.send(()).unwrap();
        timeout(PATIENCE, self.handle)
            .await
            .expect("serve did not stop")
            .unwrap()
            .unwrap();
    }
}

/// A logger speaking V5 through the crate's codec.
pub struct FakeLogger {
    pub stream: TcpStream,
    buffer: FrameBuffer,
    pub serial: LoggerSerial,
    seq_a: u8,
    seq_b: u8,
}

impl FakeLogger {
    pub async fn connect(addr: SocketAddr, serial: u32) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buffer: FrameBuffer::default(),
            serial: LoggerSerial::new(serial),
            seq_a: 0,
            seq_b: 0,
        }
    }

    /// Encodes the next frame (seq B counts up, seq A is the last one the server sent).
    pub fn frame(&mut self, control: ControlCode, payload: &[u8]) -> Vec<u8> {
        self.seq_b = self.seq_b.wrapping_add(1);
        let frame = Frame {
            control,
            seq_a: self.seq_a,
            seq_b: self.seq_b,
            serial: self.serial,
            payload,
        };
        frame.to_vec().unwrap()
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    pub async fn send_byte_by_byte(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.stream.write_all(&[*b]).await.unwrap();
            self.stream.flush().await.unwrap();
        }
    }

    /// The next frame from the server.
    pub async fn recv(&mut self) -> OwnedFrame {
        timeout(PATIENCE, self.recv_inner())
            .await
            .expect("no reply in time")
            .expect("connection closed")
    }

    async fn recv_inner(&mut self) -> Option<OwnedFrame> {
        loop {
            if let Some(item) = self.buffer.next_frame() {
                let frame = item.unwrap().to_owned_frame();
                self.seq_a = frame.seq_a;
                return Some(frame);
            }
            let mut chunk = [0u8; 256];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buffer.push(&chunk[..n]);
        }
    }

    /// Waits for the server to close the connection; fails if it sends a frame first.
    pub async fn expect_closed(&mut self) {
        let next = timeout(PATIENCE, self.recv_inner())
            .await
            .expect("connection not closed in time");
        assert_eq!(next, None, "expected the connection to close");
    }
}

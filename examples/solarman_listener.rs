//! Run the Solarman V5 listener inside your own tokio program, with your own sink.
//!
//! Deye/IGEN Wi-Fi loggers open a TCP connection to their "Server B" and push frames. Here the
//! listener from `deyehard-solarman` accepts them and hands every logger frame to a sink you
//! write — this one forwards decoded readings over a channel — and only then answers the
//! logger. A fake logger built from the same codec connects over a real socket, so the example
//! needs nothing outside the process.
//!
//! Run it with `cargo run --example solarman_listener`.

// An example is a smoke test: a failed step should stop it with its message.
#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use deyehard::core::{LoggerSerial, Reading};
use deyehard::solarman::listener::{FrameSink, Listener, ListenerConfig, SinkError};
use deyehard::solarman::{ControlCode, Frame, FrameContent, FrameEvent, check, parse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Your sink: forwards each decoded reading; everything else is just acknowledged.
struct ForwardReadings(mpsc::UnboundedSender<(LoggerSerial, Reading)>);

impl FrameSink for ForwardReadings {
    async fn record(&self, event: FrameEvent) -> Result<(), SinkError> {
        if let FrameContent::Data {
            decoded: Some(data),
            ..
        } = event.content
        {
            self.0
                .send((event.logger, data.reading))
                .map_err(|_| SinkError::Unavailable("the receiver is gone".into()))?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let (tx, mut readings) = mpsc::unbounded_channel();
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = Listener::new(ListenerConfig::default(), Arc::new(ForwardReadings(tx)));
    let server = tokio::spawn(listener.serve(socket, async {
        let _ = stopped.await;
    }));
    println!("listening on {addr}");

    // A fake logger: a live data frame (the example frame with a clock offset), then a reply.
    let mut payload = hex::decode(include_str!("data/deye-data-payload.hex").trim()).expect("hex");
    payload[0] = 0x01; // live, not buffered
    payload[11..15].copy_from_slice(&1_705_840_598u32.to_le_bytes()); // clock offset
    let frame = Frame {
        control: ControlCode::Data,
        seq_a: 0,
        seq_b: 7,
        serial: LoggerSerial::new(3_939_932_716),
        payload: &payload,
    }
    .to_vec()
    .expect("encode");
    let mut logger = TcpStream::connect(addr).await.expect("connect");
    logger.write_all(&frame).await.expect("send");

    let mut reply = [0u8; 64];
    let mut filled = 0;
    let len = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), logger.read(&mut reply[filled..]))
            .await
            .expect("a reply in time")
            .expect("read");
        assert!(n > 0, "the listener closed the connection");
        filled += n;
        if let Ok(len) = check(&reply[..filled]) {
            break len;
        }
    };
    let reply = parse(&reply[..len]).expect("a valid reply");
    println!(
        "logger got {:?} with seq {}/{}",
        reply.control, reply.seq_a, reply.seq_b
    );

    let (logger_serial, reading) = readings.recv().await.expect("a reading");
    println!(
        "reading from logger {logger_serial}: {:?} W at {}",
        reading.power_ac_w, reading.time
    );

    let _ = stop.send(());
    server.await.expect("listener task").expect("listener");

    assert_eq!(reply.control, ControlCode::DataReply);
    assert_eq!((reply.seq_a, reply.seq_b), (1, 7));
    assert_eq!(logger_serial.get(), 3_939_932_716);
    assert_eq!(reading.power_ac_w, Some(185.0));
    assert_eq!(reading.time.timestamp(), 1_705_840_598 + 6_838_696);
}

//! The listener and the spool through real sockets on 127.0.0.1, driven by a fake logger.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use deyehard_solarman::listener::ListenerConfig;
use deyehard_solarman::spool::{SPOOL_FILE_NAME, SpoolingSink};
use deyehard_solarman::{ControlCode, FrameContent, OwnedFrame, parse, parse_lenient};
use tokio::sync::oneshot;
use tokio::time::timeout;

use crate::fake::{FakeLogger, MemorySink, PATIENCE, Running};
use crate::fixtures::fixture;

const SERIAL: u32 = 3_939_932_716;

fn payload_of(name: &str) -> Vec<u8> {
    parse(&fixture(name).bytes).unwrap().payload.to_vec()
}

/// Checks `reply` acknowledges `request` (§1.2, §2).
fn assert_reply(reply: &OwnedFrame, request: &[u8]) {
    let (request, _) = parse_lenient(request).unwrap();
    assert_eq!(Some(reply.control), request.control.reply_code());
    assert_eq!(reply.seq_a, request.seq_a.wrapping_add(1));
    assert_eq!(reply.seq_b, request.seq_b);
    assert_eq!(reply.serial, request.serial);
    let payload = reply.frame().payload;
    assert_eq!(payload.len(), 10);
    assert_eq!(payload[0], request.payload[0], "echoes the frame type");
    assert_eq!(payload[1], 0x01);
    let time = i64::from(u32::from_le_bytes(payload[2..6].try_into().unwrap()));
    assert!(
        (time - Utc::now().timestamp()).abs() < 10,
        "reply carries the current time"
    );
}

#[tokio::test]
async fn handshake_data_heartbeat_are_stored_then_answered() {
    let sink = MemorySink::new(true);
    let server = Running::start(ListenerConfig::default(), Arc::clone(&sink)).await;
    let mut logger = FakeLogger::connect(server.addr, SERIAL).await;
    let messages = [
        (ControlCode::Handshake, payload_of("ginlong-mw08-handshake")),
        (ControlCode::Data, payload_of("deye-m80g3-data-hist")),
        (ControlCode::Heartbeat, vec![0x00]),
    ];
    let mut sent = Vec::new();
    for (i, (control, payload)) in messages.iter().enumerate() {
        let bytes = logger.frame(*control, payload);
        logger.send(&bytes).await;
        let reply = logger.recv().await;
        assert_reply(&reply, &bytes);
        assert_eq!(
            sink.events().len(),
            i + 1,
            "stored before the reply went out"
        );
        sent.push(bytes);
    }
    let events = sink.events();
    assert!(matches!(events[0].content, FrameContent::Handshake(_)));
    let FrameContent::Data {
        decoded: Some(decoded),
        ..
    } = &events[1].content
    else {
        panic!("data not decoded")
    };
    assert_eq!(decoded.reading.power_ac_w, Some(185.0));
    assert_eq!(events[2].content, FrameContent::Heartbeat);
    for (event, bytes) in events.iter().zip(&sent) {
        assert_eq!(event.logger.get(), SERIAL);
        assert_eq!(&event.raw, bytes);
        assert_eq!(event.remote, logger.stream.local_addr().unwrap());
    }
    assert_eq!(server.stats.snapshot().frames, 3);
    server.stop().await;
}

#[tokio::test]
async fn frames_glued_together_or_written_byte_by_byte_are_all_answered() {
    let sink = MemorySink::new(true);
    let server = Running::start(ListenerConfig::default(), Arc::clone(&sink)).await;
    let mut logger = FakeLogger::connect(server.addr, SERIAL).await;
    let hb: Vec<Vec<u8>> = (0..3)
        .map(|_| logger.frame(ControlCode::Heartbeat, &[0]))
        .collect();
    logger.send(&hb.concat()).await;
    for bytes in &hb {
        assert_reply(&logger.recv().await, bytes);
    }
    let data = logger.frame(ControlCode::Data, &payload_of("deye-m80g3-data-hist"));
    let hb = logger.frame(ControlCode::Heartbeat, &[0]);
    logger
        .send_byte_by_byte(&[data.clone(), hb.clone()].concat())
        .await;
    assert_reply(&logger.recv().await, &data);
    assert_reply(&logger.recv().await, &hb);
    assert_eq!(sink.events().len(), 5);
    server.stop().await;
}

#[tokio::test]
async fn garbage_between_frames_is_skipped_and_counted() {
    let sink = MemorySink::new(true);
    let server = Running::start(ListenerConfig::default(), Arc::clone(&sink)).await;
    let mut logger = FakeLogger::connect(server.addr, SERIAL).await;
    let first = logger.frame(ControlCode::Heartbeat, &[0]);
    let second = logger.frame(ControlCode::Heartbeat, &[0]);
    let mut bad_checksum = logger.frame(ControlCode::Heartbeat, &[0]);
    bad_checksum[12] ^= 0xFF;
    logger
        .send(&[&first[..], b"\x00junk\x15", &second, b"xy", &bad_checksum].concat())
        .await;
    assert_reply(&logger.recv().await, &first);
    assert_reply(&logger.recv().await, &second);
    assert_reply(&logger.recv().await, &bad_checksum);
    let stats = server.stats.snapshot();
    assert_eq!(
        (stats.resync_bytes, stats.checksum_failures, stats.frames),
        (8, 1, 3)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_second_connection_for_the_same_serial_closes_the_first() {
    let sink = MemorySink::new(true);
    let server = Running::start(ListenerConfig::default(), Arc::clone(&sink)).await;
    let mut old = FakeLogger::connect(server.addr, SERIAL).await;
    let hb = old.frame(ControlCode::Heartbeat, &[0]);
    old.send(&hb).await;
    old.recv().await;
    let mut other_logger = FakeLogger::connect(server.addr, SERIAL + 1).await;
    let hb = other_logger.frame(ControlCode::Heartbeat, &[0]);
    other_logger.send(&hb).await;
    other_logger.recv().await;

    let mut new = FakeLogger::connect(server.addr, SERIAL).await;
    let hb = new.frame(ControlCode::Heartbeat, &[0]);
    new.send(&hb).await;
    assert_reply(&new.recv().await, &hb);
    old.expect_closed().await;
    // the other logger and the new connection live on
    for logger in [&mut other_logger, &mut new] {
        let hb = logger.frame(ControlCode::Heartbeat, &[0]);
        logger.send(&hb).await;
        assert_reply(&logger.recv().await, &hb);
    }
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let config = ListenerConfig {
        default_heartbeat: Duration::from_secs(1),
        idle_factor: 0.3,
        ..Default::default()
    };
    let server = Running::start(config, MemorySink::new(true)).await;
    let mut silent = FakeLogger::connect(server.addr, SERIAL).await;
    let mut logger = FakeLogger::connect(server.addr, SERIAL + 1).await;
    let hb = logger.frame(ControlCode::Heartbeat, &[0]);
    logger.send(&hb).await;
    logger.recv().await;
    let started = tokio::time::Instant::now();
    logger.expect_closed().await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "closed before the idle timeout"
    );
    silent.expect_closed().await;
    server.stop().await;
}

#[tokio::test]
async fn tls_client_hello_and_at_commands_are_closed() {
    let sink = MemorySink::new(true);
    let server = Running::start(ListenerConfig::default(), Arc::clone(&sink)).await;
    let mut tls = FakeLogger::connect(server.addr, SERIAL).await;
    tls.send(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03,
    ])
    .await;
    tls.expect_closed().await;
    let mut at = FakeLogger::connect(server.addr, SERIAL).await;
    at.send_byte_by_byte(b"AT+YZCMPVER\r\n").await;
    at.expect_closed().await;
    assert!(sink.events().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_unavailable_sink_leaves_the_frame_unanswered_and_the_connection_open() {
    let sink = MemorySink::new(false);
    let server = Running::start(ListenerConfig::default(), Arc::clone(&sink)).await;
    let mut logger = FakeLogger::connect(server.addr, SERIAL).await;
    let data = logger.frame(ControlCode::Data, &payload_of("deye-m80g3-data-hist"));
    logger.send(&data).await;
    // Once the sink is back, the next reply is the heartbeat's: the data frame got none.
    let hb = logger.frame(ControlCode::Heartbeat, &[0]);
    sink.wait_refused(1).await;
    assert_eq!(server.stats.snapshot().sink_unavailable, 1);
    sink.set_available(true);
    logger.send(&hb).await;
    assert_reply(&logger.recv().await, &hb);
    logger.send(&data).await; // the logger resends
    assert_reply(&logger.recv().await, &data);
    assert_eq!(sink.events().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn over_the_connection_limit_connections_are_closed_at_once() {
    let config = ListenerConfig {
        max_connections: 1,
        ..Default::default()
    };
    let server = Running::start(config, MemorySink::new(true)).await;
    let mut first = FakeLogger::connect(server.addr, SERIAL).await;
    let hb = first.frame(ControlCode::Heartbeat, &[0]);
    first.send(&hb).await;
    first.recv().await;
    let mut second = FakeLogger::connect(server.addr, SERIAL + 1).await;
    second.expect_closed().await;
    assert_eq!(server.stats.snapshot().connections_refused, 1);
    let hb = first.frame(ControlCode::Heartbeat, &[0]);
    first.send(&hb).await;
    assert_reply(&first.recv().await, &hb);
    assert_eq!(server.stats.snapshot().live_connections, 1);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_returns() {
    let server = Running::start(ListenerConfig::default(), MemorySink::new(true)).await;
    let mut logger = FakeLogger::connect(server.addr, SERIAL).await;
    let hb = logger.frame(ControlCode::Heartbeat, &[0]);
    logger.send(&hb).await;
    logger.recv().await;
    let stats = Arc::clone(&server.stats);
    server.stop().await;
    logger.expect_closed().await;
    assert_eq!(stats.snapshot().live_connections, 0);
}

/// Runs the spool's replay task until the returned sender fires.
fn spawn_replay(
    spool: &Arc<SpoolingSink<MemorySink>>,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(Arc::clone(spool).run_replay(async {
        let _ = stopped.await;
    }));
    (stop, handle)
}

async fn wait_until_empty(spool: &SpoolingSink<MemorySink>) {
    // The spool has no readiness signal for "drained"; poll its depth.
    timeout(PATIENCE, async {
        while spool.depth() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("spool not drained");
}

#[tokio::test]
async fn spool_acks_while_the_store_is_down_and_replays_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemorySink::new(false);
    let spool = Arc::new(
        SpoolingSink::open(dir.path(), Arc::clone(&store))
            .await
            .unwrap()
            .with_backoff(Duration::from_millis(10), Duration::from_millis(40)),
    );
    let (stop_replay, replay) = spawn_replay(&spool);
    let server = Running::start(ListenerConfig::default(), Arc::clone(&spool)).await;
    let mut logger = FakeLogger::connect(server.addr, SERIAL).await;
    let mut sent = Vec::new();
    for i in 0..3u64 {
        let bytes = logger.frame(ControlCode::Data, &payload_of("deye-m80g3-data-hist"));
        logger.send(&bytes).await;
        assert_reply(&logger.recv().await, &bytes);
        assert!(spool.depth() > i, "acknowledged only after the spool write");
        sent.push(bytes);
    }
    assert!(store.events().is_empty());

    store.set_available(true);
    let replayed = store.wait_for(3).await;
    wait_until_empty(&spool).await;
    assert_eq!(
        replayed.iter().map(|e| e.raw.clone()).collect::<Vec<_>>(),
        sent,
        "in order, nothing lost"
    );
    assert_eq!(
        std::fs::metadata(dir.path().join(SPOOL_FILE_NAME))
            .unwrap()
            .len(),
        0,
        "truncated"
    );

    let bytes = logger.frame(ControlCode::Heartbeat, &[0]);
    logger.send(&bytes).await;
    assert_reply(&logger.recv().await, &bytes);
    assert_eq!(
        store.events().len(),
        4,
        "no duplicates; an empty spool goes straight to the store"
    );
    server.stop().await;
    stop_replay.send(()).unwrap();
    replay.await.unwrap();
}

/// Spools `n` heartbeat events for logger `serial` through a sink whose store is down.
async fn spool_events(dir: &std::path::Path, n: u8) -> Vec<Vec<u8>> {
    let spool = SpoolingSink::open(dir, MemorySink::new(false))
        .await
        .unwrap();
    let mut raws = Vec::new();
    for seq in 0..n {
        let raw = deyehard_solarman::Frame {
            control: ControlCode::Heartbeat,
            seq_a: 0,
            seq_b: seq,
            serial: deyehard_core::LoggerSerial::new(SERIAL),
            payload: &[0],
        }
        .to_vec()
        .unwrap();
        let event = deyehard_solarman::FrameEvent {
            logger: deyehard_core::LoggerSerial::new(SERIAL),
            remote: "127.0.0.1:1".parse().unwrap(),
            received_at: Utc::now(),
            control: 0x4710,
            raw: raw.clone(),
            content: FrameContent::Heartbeat,
        };
        use deyehard_solarman::listener::FrameSink;
        spool.record(event).await.unwrap();
        raws.push(raw);
    }
    assert_eq!(spool.depth(), u64::from(n));
    raws
}

#[tokio::test]
async fn a_spool_left_on_disk_is_replayed_by_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    let raws = spool_events(dir.path(), 3).await;
    let store = MemorySink::new(true);
    let spool = Arc::new(
        SpoolingSink::open(dir.path(), Arc::clone(&store))
            .await
            .unwrap(),
    );
    assert_eq!(spool.depth(), 3);
    let (stop, replay) = spawn_replay(&spool);
    let events = store.wait_for(3).await;
    assert_eq!(
        events.iter().map(|e| e.raw.clone()).collect::<Vec<_>>(),
        raws
    );
    wait_until_empty(&spool).await;
    stop.send(()).unwrap();
    replay.await.unwrap();
}

#[tokio::test]
async fn a_torn_record_at_the_tail_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let raws = spool_events(dir.path(), 2).await;
    let path = dir.path().join(SPOOL_FILE_NAME);
    let valid_len = std::fs::metadata(&path).unwrap().len();
    // a crash in the middle of a third append: header promising 500 bytes, 7 written
    let mut torn = std::fs::read(&path).unwrap();
    torn.extend_from_slice(&500u32.to_le_bytes());
    torn.extend_from_slice(&[0xAB; 4]);
    torn.extend_from_slice(b"{\"logge");
    std::fs::write(&path, torn).unwrap();

    let store = MemorySink::new(true);
    let spool = Arc::new(
        SpoolingSink::open(dir.path(), Arc::clone(&store))
            .await
            .unwrap(),
    );
    assert_eq!(spool.depth(), 2);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        valid_len,
        "torn tail cut off"
    );
    let (stop, replay) = spawn_replay(&spool);
    let events = store.wait_for(2).await;
    assert_eq!(
        events.iter().map(|e| e.raw.clone()).collect::<Vec<_>>(),
        raws
    );
    wait_until_empty(&spool).await;
    assert_eq!(store.events().len(), 2);
    stop.send(()).unwrap();
    replay.await.unwrap();
}

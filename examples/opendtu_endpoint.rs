//! Mount the OpenDTU push endpoint in your own poem application, with your own storage.
//!
//! OpenDTU's *HTTP Push* posts one JSON document per DTU every minute to a URL you choose,
//! with an API key in a header. `deyehard-opendtu`'s `poem` feature provides the whole
//! endpoint — key extraction, body limit, lenient parsing, validation with messages that name
//! the field, conversion to readings, and the original service's answers (201 / 207 / 404 with
//! per-inverter results) — and calls your `PushHandler` for the two things that are yours:
//! who the key belongs to, and where the readings go. Here the keys are a fixed map and the
//! storage is a vector in memory; the app listens on a free port of 127.0.0.1 and a client in
//! the same process plays the DTU, so the example needs nothing outside the process.
//!
//! Run it with `cargo run --example opendtu_endpoint --features opendtu-poem`.

// An example is a smoke test: a failed step should stop it with its message.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deyehard::core::{DeviceSerial, InverterId, Reading};
use deyehard::opendtu::endpoint::{OpenDtuEndpoint, PushError, PushHandler};
use deyehard::opendtu::{InverterReading, InverterResult, Push};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server, post};
use serde_json::Value;

/// A push as OpenDTU sends it (the example of the original service's README).
const PUSH: &str = include_str!("../deyehard-opendtu/tests/fixtures/readme-example.json");

/// Your storage: which keys belong to whom, which inverters each owner registered, and the
/// readings received.
struct MyStorage {
    keys: HashMap<&'static str, &'static str>,
    inverters: HashMap<(&'static str, &'static str), i64>,
    readings: Mutex<Vec<(String, DeviceSerial, Reading)>>,
}

impl PushHandler for MyStorage {
    /// The owner's name.
    type Tenant = &'static str;

    async fn authenticate(&self, api_key: &str) -> Result<&'static str, PushError> {
        self.keys
            .get(api_key)
            .copied()
            .ok_or(PushError::Unauthorized)
    }

    async fn store(
        &self,
        owner: &'static str,
        _push: &Push,
        readings: Vec<InverterReading>,
    ) -> Result<Vec<InverterResult>, PushError> {
        let mut stored = self
            .readings
            .lock()
            .map_err(|e| PushError::Internal(e.to_string()))?;
        let results = readings
            .into_iter()
            .map(|r| match self.inverters.get(&(owner, r.serial.as_str())) {
                Some(&id) => {
                    let power = r.reading.power_ac_w;
                    stored.push((owner.to_owned(), r.serial.clone(), r.reading));
                    InverterResult::ok(r.serial, InverterId::new(id), power)
                }
                None => InverterResult::error(r.serial, "not registered"),
            })
            .collect();
        Ok(results)
    }
}

#[tokio::main]
async fn main() {
    let storage = Arc::new(MyStorage {
        keys: HashMap::from([("key-of-alice", "alice")]),
        inverters: HashMap::from([(("alice", "116166771004"), 1)]),
        readings: Mutex::new(Vec::new()),
    });
    let app = Route::new().at(
        "/api/opendtu/measurements",
        post(OpenDtuEndpoint::from_arc(storage.clone())),
    );

    // Your poem server, on a free port.
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("a TCP address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            app,
            async {
                let _ = stopped.await;
            },
            None,
        ),
    );
    let url = format!("http://{addr}/api/opendtu/measurements");
    println!("push endpoint on {url}");

    // The DTU: reqwest needs its TLS crypto provider installed even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dtu = reqwest::Client::new();
    push_is_stored(&dtu, &url, &storage).await;
    bad_pushes_are_refused(&dtu, &url).await;

    let _ = stop.send(());
    server.await.expect("server task").expect("server");
    println!("ok: the push was authenticated, validated and stored by your callback");
}

/// A push with a known key: 201 with the original's body, and the reading in your storage.
async fn push_is_stored(dtu: &reqwest::Client, url: &str, storage: &MyStorage) {
    let response = dtu
        .post(url)
        .header("X-API-Key", "key-of-alice")
        .header("Content-Type", "application/json")
        .body(PUSH)
        .send()
        .await
        .expect("push");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON answer");
    println!("{status}: {body}");

    assert_eq!(status, 201, "all readings stored");
    assert_eq!(body["dtu_serial"], "145680140006");
    assert_eq!(body["timestamp"], "2025-10-19T17:54:43+02:00");
    assert_eq!(body["total_inverters"], 1);
    assert_eq!(body["success_count"], 1);
    assert_eq!(body["results"][0]["status"], "ok");
    assert_eq!(body["results"][0]["inverter_id"], 1);
    assert_eq!(body["results"][0]["power_ac"], 16.1);

    let stored = storage.readings.lock().expect("storage lock");
    assert_eq!(stored.len(), 1, "the callback received the reading");
    let (owner, serial, reading) = &stored[0];
    assert_eq!((owner.as_str(), serial.as_str()), ("alice", "116166771004"));
    assert_eq!(reading.power_ac_w, Some(16.1));
    assert_eq!(
        reading.yield_total_wh,
        Some(444_671.0),
        "kWh on the wire, Wh in the reading"
    );
    assert_eq!(reading.dc.len(), 1);
}

/// A wrong key and a broken body get the answers the original gave, with a message.
async fn bad_pushes_are_refused(dtu: &reqwest::Client, url: &str) {
    let wrong = dtu
        .post(url)
        .header("X-API-Key", "guess")
        .body(PUSH)
        .send()
        .await
        .expect("push");
    assert_eq!(wrong.status(), 401);
    let broken = dtu
        .post(url)
        .header("Authorization", "Bearer key-of-alice")
        .body(r#"{"timestamp": "2025-10-19T17:54:43Z", "dtu_serial": "1", "inverters": [7]}"#)
        .send()
        .await
        .expect("push");
    assert_eq!(broken.status(), 422);
    let message: Value = broken.json().await.expect("a JSON answer");
    println!("422: {message}");
    let text = message["message"].as_str().unwrap_or_default();
    assert!(
        text.contains("inverters[0]"),
        "the message names the field: {text}"
    );
}

use std::sync::Mutex;

use deyehard_core::{DeviceSerial, InverterId};
use poem::test::TestClient;
use poem::{EndpointExt, Route, post};
use serde_json::{Value, json};

use super::*;

const README: &str = include_str!("../../tests/fixtures/readme-example.json");
const PATH: &str = "/push";

/// Knows one key and one serial; remembers what it stored; can be made to fail.
#[derive(Default)]
struct Recorder {
    stored: Mutex<Vec<(DeviceSerial, Option<f64>)>>,
    fail: Option<PushError>,
}

impl PushHandler for Recorder {
    type Tenant = u32;

    async fn authenticate(&self, api_key: &str) -> Result<u32, PushError> {
        (api_key == "good")
            .then_some(7)
            .ok_or(PushError::Unauthorized)
    }

    async fn store(
        &self,
        tenant: u32,
        _push: &Push,
        readings: Vec<InverterReading>,
    ) -> Result<Vec<InverterResult>, PushError> {
        assert_eq!(tenant, 7);
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        let mut stored = self.stored.lock().unwrap();
        Ok(readings
            .into_iter()
            .map(|r| {
                if r.serial.as_str() == "116166771004" {
                    stored.push((r.serial.clone(), r.reading.power_ac_w));
                    InverterResult::ok(r.serial, InverterId::new(1), r.reading.power_ac_w)
                } else {
                    InverterResult::error(r.serial, "not registered")
                }
            })
            .collect())
    }
}

fn client(handler: Recorder) -> (TestClient<impl Endpoint>, Arc<Recorder>) {
    let handler = Arc::new(handler);
    let app = Route::new()
        .at(PATH, post(OpenDtuEndpoint::from_arc(handler.clone())))
        .map_to_response();
    (TestClient::new(app), handler)
}

async fn error_of(response: poem::test::TestResponse) -> (StatusCode, Value) {
    let status = response.0.status();
    let body: Value = response.0.into_body().into_json().await.unwrap();
    (status, body)
}

#[tokio::test]
async fn a_valid_push_is_stored_and_answered_like_the_original() {
    let (cli, handler) = client(Recorder::default());
    let response = cli
        .post(PATH)
        .header("X-API-Key", "good")
        .content_type("application/json")
        .body(README)
        .send()
        .await;
    response.assert_status(StatusCode::CREATED);
    let body: Value = response.0.into_body().into_json().await.unwrap();
    assert_eq!(
        body,
        json!({"dtu_serial": "145680140006", "timestamp": "2025-10-19T17:54:43+02:00",
               "total_inverters": 1, "success_count": 1, "error_count": 0,
               "results": [{"serial": "116166771004", "status": "ok", "inverter_id": 1, "power_ac": 16.1}]})
    );
    assert_eq!(handler.stored.lock().unwrap().len(), 1);

    let other = README.replace("116166771004", "116166771005");
    let response = cli
        .post(PATH)
        .header("Authorization", "Bearer good")
        .body(other)
        .send()
        .await;
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no serial known: {body}");
    assert_eq!(body["results"][0]["error"], "not registered");
}

#[tokio::test]
async fn bad_requests_get_the_right_4xx_with_a_message() {
    let (cli, handler) = client(Recorder::default());
    let missing = cli.post(PATH).body(README).send().await;
    let (status, body) = error_of(missing).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let wrong = cli
        .post(PATH)
        .header("Authorization", "Bearer bad")
        .body(README)
        .send()
        .await;
    assert_eq!(wrong.0.status(), StatusCode::UNAUTHORIZED);

    let form = cli
        .post(PATH)
        .header("X-API-Key", "good")
        .content_type("application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await;
    assert_eq!(form.0.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(DEFAULT_MAX_BODY));
    let large = cli
        .post(PATH)
        .header("X-API-Key", "good")
        .body(huge)
        .send()
        .await;
    let (status, body) = error_of(large).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    let broken = r#"{"timestamp": "2025-10-19T17:54:43Z", "dtu_serial": "1", "inverters": [7]}"#;
    let response = cli
        .post(PATH)
        .header("X-API-Key", "good")
        .body(broken)
        .send()
        .await;
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"].as_str().unwrap().contains("inverters[0]"),
        "{body}"
    );

    let old = README.replace("2025-10-19T17:54:43", "2019-10-19T17:54:43");
    let response = cli
        .post(PATH)
        .header("X-API-Key", "good")
        .body(old)
        .send()
        .await;
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"].as_str().unwrap().contains("timestamp"),
        "{body}"
    );
    assert!(handler.stored.lock().unwrap().is_empty(), "nothing stored");
}

#[tokio::test]
async fn handler_failures_map_to_503_429_and_500() {
    for (fail, status, retry) in [
        (
            PushError::Unavailable { retry_after_s: 5 },
            StatusCode::SERVICE_UNAVAILABLE,
            Some("5"),
        ),
        (
            PushError::TooManyRequests { retry_after_s: 9 },
            StatusCode::TOO_MANY_REQUESTS,
            Some("9"),
        ),
        (
            PushError::Internal("disk on fire".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
        ),
    ] {
        let (cli, _) = client(Recorder {
            fail: Some(fail),
            ..Recorder::default()
        });
        let response = cli
            .post(PATH)
            .header("X-API-Key", "good")
            .body(README)
            .send()
            .await;
        assert_eq!(response.0.status(), status);
        assert_eq!(response.0.header("retry-after"), retry);
        let (_, body) = error_of(response).await;
        assert!(
            !body["message"].as_str().unwrap().contains("fire"),
            "causes stay private"
        );
    }
}

#[test]
fn json_content_types_are_accepted_leniently() {
    for ok in [
        None,
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        Some("application/vnd.x+json"),
        Some(""),
    ] {
        assert!(accepts_content_type(ok), "{ok:?}");
    }
    for refused in [
        Some("application/xml"),
        Some("multipart/form-data; boundary=x"),
        Some("text/html"),
    ] {
        assert!(!accepts_content_type(refused), "{refused:?}");
    }
}

//! An MQTT device hub: devices speak MQTT (3.1.1 or 5.0) over WebSocket to
//! Web PubSub, and this app, their upstream, decides who gets in and
//! answers their telemetry.
//!
//! - `connect` accepts a device whose CONNECT user name is a known device
//!   and whose password is that device's; it refuses the others with the
//!   CONNACK code that means the same thing in the device's MQTT version
//!   (3.1.1 return codes are 1–5, MQTT 5 reason codes start at 128). An
//!   accepted device is subscribed to its command topic, and an MQTT 5
//!   device gets the telemetry topic as a CONNACK user property.
//! - `connected` / `disconnected` keep the list of devices online.
//! - Devices publish readings to `$webpubsub/server/events/telemetry`; the
//!   service raises user event `telemetry`, and the answer comes back to
//!   the device on `$webpubsub/server/events/telemetry/succeeded` (or
//!   `…/failed` for a reading out of range).
//!
//! ```sh
//! cargo run --example mqtt_devices      # then run the MQTT.js command it prints
//! # against a real hub instead of the emulator:
//! WebPubSubConnectionString='Endpoint=https://<name>.webpubsub.azure.com;AccessKey=<key>;Version=1.0;' \
//!   cargo run --example mqtt_devices
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::header;
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use webpubsub::client_access::{ClientAccessOptions, ClientAccessSigner, ClientProtocol};
use webpubsub::extract::Json;
use webpubsub::{
    ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest, ConnectionContext,
    DisconnectedEventRequest, EventErrorResponse, EventRouter,
};
use webpubsub_emulator::{Emulator, EventHandlerSettings, HubSettings, RunningEmulator};

#[path = "common/mod.rs"]
mod common;

/// The hub the devices connect to.
const HUB: &str = "devices";
/// Where devices publish readings: the user event `telemetry`.
const TELEMETRY_TOPIC: &str = "$webpubsub/server/events/telemetry";
/// The devices allowed in: MQTT user name and password. A real hub keeps
/// salted password hashes (or issues per-device tokens) in its database.
const DEVICES: &[(&str, &str)] = &[("thermo1", "warm-and-cosy"), ("thermo2", "cool-breeze")];
/// Devices that are known but banned (their password is right).
const BANNED: &[(&str, &str)] = &[("toaster9", "crumbs")];
/// Readings outside this range are refused.
const CELSIUS: std::ops::RangeInclusive<f64> = -80.0..=150.0;

/// The MQTT topic (group) a device gets its commands on.
fn command_topic(device: &str) -> String {
    format!("devices/{device}/commands")
}

/// Why a device is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Unknown user name, or the wrong password.
    BadCredentials,
    /// A device that may not connect at all.
    Banned,
}

impl Refusal {
    /// The CONNACK code for a client of MQTT `protocol_version`. Each
    /// version has its own table, and a code of one table means nothing
    /// (or something else) in the other: pick per version.
    fn code(self, protocol_version: u8) -> u8 {
        match (self, protocol_version) {
            // 3.1.1 return code 4: bad user name or password.
            (Self::BadCredentials, 4) => 4,
            // MQTT 5 reason code 0x86: bad user name or password.
            (Self::BadCredentials, _) => 134,
            // 3.1.1 has no "banned": 5, not authorized.
            (Self::Banned, 4) => 5,
            // MQTT 5 reason code 0x8A: banned.
            (Self::Banned, _) => 138,
        }
    }

    /// The refusal, for a client of MQTT `protocol_version`. The reason
    /// reaches MQTT 5 clients only.
    fn for_version(self, protocol_version: u8) -> EventErrorResponse {
        let reason = match self {
            Self::BadCredentials => "unknown device or wrong password",
            Self::Banned => "this device is banned",
        };
        EventErrorResponse::mqtt(self.code(protocol_version), reason)
    }
}

/// What the hub knows about one device.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
struct DeviceStatus {
    /// Its MQTT client ids (connection ids) now connected.
    connections: Vec<String>,
    /// Its last reading.
    last_celsius: Option<f64>,
    /// How many readings it sent.
    readings: u64,
}

/// The event handler: the device registry and who is online.
#[derive(Default)]
struct DeviceHub {
    /// Device → status, for every device seen since start.
    devices: Mutex<BTreeMap<String, DeviceStatus>>,
}

/// A telemetry reading, as devices publish it: `{"celsius": 21.5}`.
#[derive(Debug, serde::Deserialize)]
struct Reading {
    celsius: f64,
}

/// The answer to a reading.
#[derive(Debug, serde::Serialize)]
struct Ack {
    device: String,
    readings: u64,
}

#[webpubsub::event_handler]
impl DeviceHub {
    /// Lets in known devices with the right password, refusing others with
    /// the CONNACK code of their MQTT version.
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let Some(mqtt) = &req.mqtt else {
            return Err(EventErrorResponse::unauthorized(format!(
                "hub `{HUB}` is for MQTT devices: connect to /clients/mqtt/hubs/{HUB}"
            )));
        };
        let version = mqtt.protocol_version;
        let device = mqtt.username.as_deref().unwrap_or_default();
        // The service sends the binary password as base64.
        let password = mqtt
            .password
            .as_deref()
            .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
            .unwrap_or_default();
        if knows(BANNED, device, &password) {
            tracing::warn!(device, version, "banned device refused");
            return Err(Refusal::Banned.for_version(version));
        }
        if !knows(DEVICES, device, &password) {
            tracing::warn!(device, version, "bad device credentials");
            return Err(Refusal::BadCredentials.for_version(version));
        }
        Ok(ConnectEventResponse::new()
            .user_id(device)
            .groups([command_topic(device)])
            // CONNACK user property, seen by MQTT 5 devices only.
            .mqtt_user_property("telemetry-topic", TELEMETRY_TOPIC))
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        let ctx = req.context;
        let device = ctx.user_id.unwrap_or_default();
        tracing::info!(%device, client_id = %ctx.connection_id, "device online");
        self.lock()
            .entry(device)
            .or_default()
            .connections
            .push(ctx.connection_id);
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        let ctx = req.context;
        let by_device = req.mqtt.as_ref().is_some_and(|m| m.initiated_by_client);
        tracing::info!(device = ?ctx.user_id, client_id = %ctx.connection_id, by_device, reason = ?req.reason, "device offline");
        let mut devices = self.lock();
        for status in devices.values_mut() {
            status.connections.retain(|c| *c != ctx.connection_id);
        }
    }

    /// A reading published on [`TELEMETRY_TOPIC`]: recorded and
    /// acknowledged, or refused when out of range (the device gets the
    /// refusal on `…/telemetry/failed`).
    #[user_event("telemetry")]
    async fn telemetry(
        &self,
        ctx: ConnectionContext,
        reading: Json<Reading>,
    ) -> Result<Json<Ack>, EventErrorResponse> {
        let celsius = reading.0.celsius;
        if !CELSIUS.contains(&celsius) {
            return Err(EventErrorResponse::user_error(format!(
                "celsius must be within {}..={}",
                CELSIUS.start(),
                CELSIUS.end()
            )));
        }
        let device = ctx.user_id.unwrap_or(ctx.connection_id);
        let mut devices = self.lock();
        let status = devices.entry(device.clone()).or_default();
        status.last_celsius = Some(celsius);
        status.readings += 1;
        tracing::info!(%device, celsius, "reading");
        Ok(Json(Ack {
            device,
            readings: status.readings,
        }))
    }

    /// The devices with at least one connection, sorted.
    fn online(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, s)| !s.connections.is_empty())
            .map(|(d, _)| d.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, DeviceStatus>> {
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `list` has `device` with `password`. Compares every password
/// in full, so the time taken says nothing about how much of one matched.
fn knows(list: &[(&str, &str)], device: &str, password: &[u8]) -> bool {
    list.iter().any(|(name, secret)| {
        let same = secret.len() == password.len()
            && secret
                .bytes()
                .zip(password)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        *name == device && same
    })
}

/// The application: the event handler under `/eventhandler`, and
/// `GET /devices`, what the hub knows (`{"online": [...], "devices": {...}}`).
fn app(hub: Arc<DeviceHub>, connection_string: &str) -> Result<Router, webpubsub::ConfigError> {
    let events = EventRouter::builder()
        .hub(HUB, Arc::clone(&hub))
        .connection_string(connection_string)
        .build()?;
    let devices = get(move || async move {
        let online = hub.online();
        let body = serde_json::json!({ "online": online, "devices": &*hub.lock() });
        (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
    });
    Ok(Router::new()
        .route("/devices", devices)
        .nest_service("/eventhandler", events))
}

/// What [`start`] runs: the app, and the emulator unless Azure is used.
struct Running {
    app: SocketAddr,
    connection_string: String,
    emulator: Option<RunningEmulator>,
    server: tokio::task::JoinHandle<()>,
}

/// Starts the app on `app_port`; with no connection string, an embedded
/// emulator on `emulator_port` too (0 picks free ports).
async fn start(
    hub: Arc<DeviceHub>,
    connection_string: Option<String>,
    app_port: u16,
    emulator_port: u16,
) -> Result<Running, Box<dyn std::error::Error>> {
    let listener = common::listen(app_port, "PORT").await?;
    let app_addr = listener.local_addr()?;
    let (router, connection_string, emulator) = match connection_string {
        Some(conn) => {
            let router = app(hub, &conn).map_err(common::connection_string_error)?;
            (router, conn, None)
        }
        None => {
            let addr = SocketAddr::from(([127, 0, 0, 1], emulator_port));
            let emulator = Emulator::builder()
                .host("127.0.0.1")
                .hub(
                    HubSettings::new(HUB).event_handler(EventHandlerSettings::new(format!(
                        "http://{app_addr}/eventhandler"
                    ))),
                )
                .build()?
                .start(addr)
                .await
                .map_err(|e| common::bind_error(addr, &e, "EMULATOR_PORT"))?;
            let conn = emulator.connection_string();
            (app(hub, &conn)?, conn, Some(emulator))
        }
    };
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Running {
        app: app_addr,
        connection_string,
        emulator,
        server,
    })
}

/// An MQTT client URL for the hub, signed with the connection string's key.
fn mqtt_url(connection_string: &str) -> Result<url::Url, Box<dyn std::error::Error>> {
    let signer = ClientAccessSigner::from_connection_string(connection_string, HUB)?;
    let access = signer.client_access(&ClientAccessOptions::new().protocol(ClientProtocol::Mqtt));
    Ok(url::Url::parse(access.url())?)
}

/// An MQTT.js command line that publishes one reading as `device`.
fn publish_command(url: &url::Url, device: &str, password: &str) -> String {
    let host = url.host_str().unwrap_or("localhost");
    let port = url.port_or_known_default().unwrap_or(443);
    let path = &url[url::Position::BeforePath..];
    format!(
        "npx mqtt@5 pub -C {scheme} -h {host} -p {port} --path '{path}' \\\n      \
         --protocolVersion 5 -i {device} -u {device} -P '{password}' \\\n      \
         -t '{TELEMETRY_TOPIC}' -m '{{\"celsius\": 21.5}}'",
        scheme = url.scheme(),
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webpubsub=info".into()),
        )
        // Colours for a terminal only, not in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    common::exit(run().await)
}

/// Reads the settings (blank variables count as unset), starts the hub and
/// serves it until Ctrl-C.
async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let running = start(
        Arc::default(),
        common::var("WebPubSubConnectionString"),
        common::port("PORT", 3002)?,
        common::port("EMULATOR_PORT", 8080)?,
    )
    .await?;
    let url = mqtt_url(&running.connection_string)?;
    let (device, password) = DEVICES.first().copied().unwrap_or(("thermo1", ""));

    println!();
    println!(
        "  MQTT device hub `{HUB}`: upstream on http://{}/eventhandler",
        running.app
    );
    match &running.emulator {
        Some(emulator) => println!(
            "  (service: the embedded emulator on {}; live view at {}/_emulator)",
            emulator.local_addr(),
            emulator.endpoint()
        ),
        None => println!(
            "  (service: Azure; set the hub `{HUB}` event handler URL to https://<public host of this app>/eventhandler)"
        ),
    }
    println!();
    println!("  Devices (MQTT user name / password):");
    for (name, secret) in DEVICES {
        println!("    {name} / {secret}");
    }
    for (name, secret) in BANNED {
        println!("    {name} / {secret} (banned: its CONNECT is refused, 5 / 0x8A)");
    }
    println!();
    println!("  Publish a reading as {device} (MQTT 5 over WebSocket, with MQTT.js):");
    println!("    {}", publish_command(&url, device, password));
    println!("  or connect any MQTT client to (valid for one hour)");
    println!("    {url}");
    println!(
        "  and see who is online: curl http://{}/devices",
        running.app
    );
    println!();
    tokio::signal::ctrl_c().await?;
    if let Some(emulator) = running.emulator {
        emulator.shutdown().await;
    }
    running.server.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tower::ServiceExt;
    use webpubsub::testing;

    const CONNECTION_STRING: &str =
        "Endpoint=http://localhost;Port=8080;AccessKey=mqtt-devices-test-key;Version=1.0;";

    async fn send(app: &Router, event: testing::TestEvent) -> axum::response::Response {
        let request = event.uri("/eventhandler").sign_as(CONNECTION_STRING);
        app.clone().oneshot(request).await.unwrap()
    }

    /// A `connect` from an MQTT client of `version` with this user name and
    /// password, as the service sends it.
    fn mqtt_connect(
        client_id: &str,
        version: u8,
        username: Option<&str>,
        password: Option<&str>,
    ) -> testing::TestEvent {
        testing::connect(HUB, client_id)
            .mqtt(version)
            .mqtt_credentials(username, password.map(str::as_bytes))
    }

    #[tokio::test]
    async fn known_device_with_its_password_is_accepted_on_both_mqtt_versions() {
        let app = app(Arc::default(), CONNECTION_STRING).unwrap();
        for version in [4, 5] {
            let event = mqtt_connect("thermo1", version, Some("thermo1"), Some("warm-and-cosy"));
            let accepted = testing::read_connect_response(send(&app, event).await)
                .await
                .unwrap_or_else(|e| panic!("version {version}: refused: {e}"));
            assert_eq!(accepted.user_id.as_deref(), Some("thermo1"));
            assert_eq!(
                accepted.groups,
                Some(vec!["devices/thermo1/commands".to_owned()])
            );
            let props = &accepted
                .mqtt
                .expect("CONNACK user properties")
                .user_properties;
            assert_eq!(
                (props[0].name.as_str(), props[0].value.as_str()),
                ("telemetry-topic", TELEMETRY_TOPIC)
            );
        }
    }

    #[tokio::test]
    async fn refused_devices_get_the_connack_code_of_their_mqtt_version() {
        let app = app(Arc::default(), CONNECTION_STRING).unwrap();
        // (version, user name, password, HTTP status, CONNACK code)
        type Row<'a> = (u8, Option<&'a str>, Option<&'a str>, u16, u8);
        let rows: &[Row<'_>] = &[
            (4, Some("thermo1"), Some("wrong"), 401, 4),
            (5, Some("thermo1"), Some("wrong"), 401, 134),
            (4, Some("thermo1"), None, 401, 4),
            (5, None, None, 401, 134),
            (4, Some("stranger"), Some("warm-and-cosy"), 401, 4),
            (5, Some("thermo2"), Some("warm-and-cosy"), 401, 134),
            (4, Some("toaster9"), Some("crumbs"), 401, 5),
            (5, Some("toaster9"), Some("crumbs"), 403, 138),
        ];
        for &(version, user, password, status, code) in rows {
            let event = mqtt_connect("d1", version, user, password);
            let refused = testing::read_connect_response(send(&app, event).await)
                .await
                .expect_err("refused");
            let row = format!("v{version} {user:?}/{password:?}");
            assert_eq!(refused.status().as_u16(), status, "{row}");
            assert_eq!(refused.mqtt.expect("an MQTT answer").code, code, "{row}");
        }
    }

    #[tokio::test]
    async fn websocket_clients_are_sent_to_the_mqtt_endpoint() {
        let app = app(Arc::default(), CONNECTION_STRING).unwrap();
        let event = testing::connect(HUB, "c1").subprotocols(["json.webpubsub.azure.v1"]);
        let refused = testing::read_connect_response(send(&app, event).await)
            .await
            .unwrap_err();
        assert_eq!(refused.status().as_u16(), 401);
        assert!(
            refused.message.contains("/clients/mqtt/hubs/devices"),
            "{refused}"
        );
        assert_eq!(refused.mqtt, None);
    }

    #[tokio::test]
    async fn connected_and_disconnected_keep_the_devices_online() {
        let hub = Arc::new(DeviceHub::default());
        let app = app(Arc::clone(&hub), CONNECTION_STRING).unwrap();
        send(&app, testing::connected(HUB, "t1").mqtt(5).user("thermo1")).await;
        send(&app, testing::connected(HUB, "t2").mqtt(4).user("thermo2")).await;
        assert_eq!(hub.online(), ["thermo1", "thermo2"]);

        let by_device = json!({"reason": null, "mqtt": {"initiatedByClient": true,
            "disconnectPacket": {"code": 0, "userProperties": null}}});
        send(
            &app,
            testing::disconnected(HUB, "t2")
                .mqtt(4)
                .user("thermo2")
                .json(&by_device),
        )
        .await;
        assert_eq!(hub.online(), ["thermo1"]);

        let dropped = json!({"reason": "connection lost", "mqtt": {"initiatedByClient": false,
            "disconnectPacket": null}});
        send(
            &app,
            testing::disconnected(HUB, "t1")
                .mqtt(5)
                .user("thermo1")
                .json(&dropped),
        )
        .await;
        assert!(hub.online().is_empty());
    }

    #[tokio::test]
    async fn telemetry_is_acknowledged_and_out_of_range_readings_are_refused() {
        let hub = Arc::new(DeviceHub::default());
        let app = app(Arc::clone(&hub), CONNECTION_STRING).unwrap();
        for expected in 1..=2 {
            let event = testing::user_event(HUB, "t1", "telemetry")
                .mqtt(5)
                .user("thermo1")
                .json(&json!({"celsius": 21.5}));
            let reply = testing::read_user_event_response(send(&app, event).await)
                .await
                .unwrap();
            let ack: serde_json::Value =
                serde_json::from_slice(reply.data().unwrap().as_bytes()).unwrap();
            assert_eq!(ack, json!({"device": "thermo1", "readings": expected}));
        }
        assert_eq!(hub.lock()["thermo1"].last_celsius, Some(21.5));

        // MQTT 3.1.1 has no content type: the same JSON as bytes works too.
        let binary = testing::user_event(HUB, "t2", "telemetry")
            .mqtt(4)
            .user("thermo2")
            .binary(&br#"{"celsius": -3}"#[..]);
        assert!(testing::read_user_event_response(send(&app, binary).await)
            .await
            .is_ok());

        for body in [json!({"celsius": 999}), json!({"fahrenheit": 70})] {
            let event = testing::user_event(HUB, "t1", "telemetry")
                .mqtt(5)
                .user("thermo1")
                .json(&body);
            let refused = testing::read_user_event_response(send(&app, event).await)
                .await
                .unwrap_err();
            assert_eq!(refused.status().as_u16(), 400, "{body}");
        }
    }

    #[test]
    fn the_printed_command_names_the_mqtt_endpoint_and_the_device() {
        let url = mqtt_url(CONNECTION_STRING).unwrap();
        assert_eq!(url.path(), "/clients/mqtt/hubs/devices");
        let command = publish_command(&url, "thermo1", "warm-and-cosy");
        assert!(command.contains("-C ws -h localhost -p 8080"), "{command}");
        assert!(
            command.contains("--path '/clients/mqtt/hubs/devices?access_token=ey"),
            "{command}"
        );
        assert!(
            command.contains("-u thermo1 -P 'warm-and-cosy'"),
            "{command}"
        );
        assert!(
            command.contains(&format!("-t '{TELEMETRY_TOPIC}'")),
            "{command}"
        );
    }
}

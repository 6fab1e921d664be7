//! Microsoft's official npm packages against the emulator, unchanged:
//! `@azure/web-pubsub-client` 1.1.0 (the client SDK) and `@azure/web-pubsub`
//! 1.2.0 (the service SDK), and MQTT.js (`mqtt` 5.16.0, MQTT 3.1.1 and 5.0
//! clients over WebSocket), talk to an emulator whose hubs are served by an
//! upstream built with this crate, all on 127.0.0.1. The checks themselves
//! are the `node:test` files in `tests/node/`; this test starts the
//! emulator and the upstream, runs `node --test` on those files with the
//! addresses in environment variables, and fails when node does.
//!
//! Needs Node.js on PATH (22 or later is what `@azure/web-pubsub-client`
//! 1.1.0 declares; 20 works) and the packages installed with
//! `npm ci --prefix tests/node`; without them this test fails and says so.
//!
//! `WPS_NODE_FILES=mqtt.test.mjs,client.test.mjs` (file names, comma
//! separated) runs only those files, to iterate on one.
//!
//! Environment given to the node tests:
//!
//! - `WPS_CONNECTION_STRING`: the emulator's connection string;
//! - `WPS_HUB`: `chat`, the shared hub;
//! - `WPS_HUB_ISOLATED`: `lobby`, a second hub with the same upstream, for
//!   tests that act on every connection of a hub (node runs test files in
//!   parallel);
//! - `WPS_ENDPOINT`: the emulator's `http://127.0.0.1:port` (for
//!   `/_emulator/api/state`);
//! - `WPS_UPSTREAM_LOG`: the upstream's `GET /log`, the JSON list of every
//!   event the upstream saw, oldest first;
//! - `WPS_HUB_DOWN`: `down`, a hub whose event handler points at a closed
//!   port of 127.0.0.1 and takes no system events (clients connect; every
//!   user event fails as unreachable).
//!
//! The upstream: `connect` grants `webpubsub.joinLeaveGroup` and
//! `webpubsub.sendToGroup` unless the query has `role=none`, refuses with
//! 401 when the query has `reject`, and adds the groups of the query's
//! `join` values; user event `echo` replies with its data, `whoami` replies
//! JSON `{"userId", "connectionId", "event"}`, `silent` replies nothing,
//! `fail` fails with 400, `crash` fails with 500, `slow` replies nothing
//! after 3 s and then logs a second entry, `type: "done"` (so a call the
//! emulator dropped has no `done`), any other event replies text
//! `got <event>`.
//! `connected` of a user whose id starts with `slow-` takes 300 ms before
//! it is logged. Every event is logged when its handler is done.
//!
//! MQTT clients (`mqtt.test.mjs`, MQTT.js): the `connect` log entry has the
//! CONNECT's `mqtt` object (`protocolVersion`, `username`, base64
//! `password`, `userProperties`) and the `disconnected` entry the event's
//! `mqtt` (`initiatedByClient`, `disconnectPacket`). The CONNECT user name
//! picks the answer: `refuse-<n>` refuses with explicit CONNACK code `n`
//! (`EventErrorResponse::mqtt`, reason `refused by the upstream`);
//! `refuse-unauthorized`, `refuse-user-error` and `refuse-server-error`
//! refuse with the generic error of that name, which the core maps to the
//! code of the client's version (5/135, 4/134, 3/128); every refusal
//! carries CONNACK user property `refused: <user name>`. An accepted MQTT
//! client gets CONNACK user properties `upstream: webpubsub` and, for each
//! CONNECT user property `n: v`, `echo-n: v`.
//!
//! # Keyless (`keyless.test.mjs`)
//!
//! `official_service_sdk_works_keyless_with_a_token_credential` runs
//! `tests/node/keyless.test.mjs` alone (the first test runs every other
//! file) against a second emulator with local auth disabled (no access
//! key) and its HTTPS listener on. Both hubs' event handler authenticates
//! with the emulator's managed identity (resource
//! `api://npm-keyless-upstream`), and the upstream, the same `App`, has no
//! key: it checks every event's bearer token with
//! `webpubsub::entra::EntraValidation` (the emulator's tenant and
//! authority, that audience, the managed identity's object id as the only
//! caller). The file checks `@azure/web-pubsub` built with a plain
//! `TokenCredential` that gets its tokens from the emulator's token
//! endpoint: `getClientAccessToken` goes through `:generateToken` with the
//! bearer and its `wss://` URL connects `@azure/web-pubsub-client`;
//! sends, groups and existence checks work; one `getToken` serves every
//! request of a client; tokens of another audience, with a broken
//! signature or not JWTs get 401; the connection string path is refused.
//! Environment, besides the variables above (for this emulator, whose
//! connection string has no `AccessKey`):
//!
//! - `NODE_EXTRA_CA_CERTS`: a temporary PEM file with the emulator's
//!   self-signed certificate (the Azure pipeline sends bearer tokens over
//!   `https` only), removed afterwards;
//! - `WPS_HTTPS_ENDPOINT`: the emulator's `https://127.0.0.1:port`;
//! - `WPS_TOKEN_ENDPOINT`: its Entra ID token endpoint (on the http port);
//! - `WPS_CLIENT_ID`, `WPS_CLIENT_SECRET`: its default app registration
//!   (the secret is random, made when the emulator is built);
//! - `WPS_ISSUER`: the `iss` of its tokens;
//! - `WPS_OTHER_AUDIENCE_TOKEN`: a token of that issuer and app for
//!   `api://someone-else`, signed by the test (the token endpoint mints
//!   tokens for the REST API only, and refuses that scope with 400).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use webpubsub::client_access::Permission;
use webpubsub::events::EventData;
use webpubsub::{
    ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest, ConnectionContext,
    DisconnectedEventRequest, EventErrorResponse, UserEventRequest, UserEventResponse,
};
use webpubsub_emulator::{Emulator, EventHandlerSettings, HubSettings};

const KEY: &str = "npm-clients-test-key-0123456789abcdef";
const HUB: &str = "chat";
const ISOLATED_HUB: &str = "lobby";
/// A hub whose event handler is unreachable.
const DOWN_HUB: &str = "down";
/// How long the whole node run may take before it is killed.
const NODE_DEADLINE: Duration = Duration::from_secs(180);

/// Every event the upstream saw, as JSON, oldest first.
#[derive(Default)]
struct Log(Mutex<Vec<Value>>);

impl Log {
    fn push(&self, entry: Value) {
        self.0.lock().unwrap().push(entry);
    }

    fn snapshot(&self) -> Value {
        Value::Array(self.0.lock().unwrap().clone())
    }
}

struct App {
    log: Arc<Log>,
}

/// The fields every log entry has.
fn base(kind: &str, context: &ConnectionContext) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("type".into(), kind.into());
    entry.insert("hub".into(), context.hub.clone().into());
    entry.insert("event".into(), context.event_name.clone().into());
    entry.insert("connectionId".into(), context.connection_id.clone().into());
    entry.insert("userId".into(), json!(context.user_id));
    entry.insert("subprotocol".into(), json!(context.subprotocol));
    entry
}

/// A payload as `(dataType, data)`: text as a string, JSON as itself,
/// binary as base64.
fn data_json(data: &EventData) -> (&'static str, Value) {
    match data {
        EventData::Text(text) => ("text", Value::String(text.clone())),
        EventData::Json(bytes) => (
            "json",
            serde_json::from_slice(bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
        ),
        EventData::Binary(bytes) => (
            "binary",
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
        _ => ("unknown", Value::Null),
    }
}

#[webpubsub::event_handler]
impl App {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let mut entry = base("connect", &req.context);
        entry.insert("query".into(), json!(req.query()));
        entry.insert("claims".into(), json!(req.claims()));
        entry.insert("subprotocols".into(), json!(req.subprotocols));
        entry.insert("mqtt".into(), json!(req.mqtt));
        self.log.push(Value::Object(entry));
        if req.query_value("reject").is_some() {
            return Err(EventErrorResponse::unauthorized("rejected by the upstream"));
        }
        let mut response = ConnectEventResponse::new();
        if let Some(mqtt) = &req.mqtt {
            let username = mqtt.username.as_deref().unwrap_or_default();
            if let Some(refusal) = mqtt_refusal(username) {
                return Err(refusal.mqtt_user_property("refused", username));
            }
            response = response.mqtt_user_property("upstream", "webpubsub");
            for property in &mqtt.user_properties {
                let name = format!("echo-{}", property.name);
                response = response.mqtt_user_property(name, property.value.clone());
            }
        }
        if req.query_value("role") != Some("none") {
            response = response.roles([
                Permission::JoinLeaveGroup.role(),
                Permission::SendToGroup.role(),
            ]);
        }
        if let Some(groups) = req.query().get("join") {
            response = response.groups(groups.iter().cloned());
        }
        Ok(response)
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        // For the ordering test: a `connected` handler that takes a while.
        if req
            .context
            .user_id
            .as_deref()
            .is_some_and(|u| u.starts_with("slow-"))
        {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        self.log
            .push(Value::Object(base("connected", &req.context)));
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        let mut entry = base("disconnected", &req.context);
        entry.insert("reason".into(), json!(req.reason));
        if let Some(mqtt) = &req.mqtt {
            let packet = mqtt.disconnect_packet.as_ref().map(|p| {
                json!({"code": p.code, "userProperties": p.user_properties.as_ref().map(|props| {
                    props.iter().map(|u| json!({"name": u.name, "value": u.value})).collect::<Vec<_>>()
                })})
            });
            entry.insert(
                "mqtt".into(),
                json!({"initiatedByClient": mqtt.initiated_by_client, "disconnectPacket": packet}),
            );
        }
        self.log.push(Value::Object(entry));
    }

    #[user_event(fallback)]
    async fn user(&self, req: UserEventRequest) -> Result<UserEventResponse, EventErrorResponse> {
        let mut entry = base("user", &req.context);
        let (data_type, data) = data_json(&req.data);
        entry.insert("dataType".into(), data_type.into());
        entry.insert("data".into(), data);
        self.log.push(Value::Object(entry));
        let name = req.context.event_name.as_str();
        match name {
            "echo" => Ok(UserEventResponse::from(req.data)),
            "whoami" => UserEventResponse::json(&json!({
                "userId": req.context.user_id,
                "connectionId": req.context.connection_id,
                "event": name,
            })),
            "silent" => Ok(UserEventResponse::none()),
            "fail" => Err(EventErrorResponse::user_error(
                "the upstream refuses `fail`",
            )),
            "crash" => Err(EventErrorResponse::server_error(
                "the upstream crashed on `crash`",
            )),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                self.log.push(Value::Object(base("done", &req.context)));
                Ok(UserEventResponse::none())
            }
            _ => Ok(UserEventResponse::text(format!("got {name}"))),
        }
    }
}

/// The refusal an MQTT CONNECT user name asks for (see the top comment).
fn mqtt_refusal(username: &str) -> Option<EventErrorResponse> {
    let asked = username.strip_prefix("refuse-")?;
    Some(match asked {
        "unauthorized" => EventErrorResponse::unauthorized("unauthorized by the upstream"),
        "user-error" => EventErrorResponse::user_error("user error by the upstream"),
        "server-error" => EventErrorResponse::server_error("server error in the upstream"),
        code => EventErrorResponse::mqtt(code.parse().ok()?, "refused by the upstream"),
    })
}

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("node")
}

/// The keyless test file, run by its own test against a keyless emulator.
const KEYLESS_FILE: &str = "keyless.test.mjs";

/// The `*.test.mjs` files whose name passes `keep`, sorted, relative to the
/// crate root.
fn test_files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/node exists")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".test.mjs") && keep(n))
        })
        .map(|path| {
            path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .map(Path::to_path_buf)
                .unwrap_or(path)
        })
        .collect();
    files.sort();
    files
}

fn check_installed(dir: &Path) {
    for package in ["@azure/web-pubsub-client", "@azure/web-pubsub", "mqtt"] {
        let manifest = dir.join("node_modules").join(package).join("package.json");
        assert!(
            manifest.is_file(),
            "{} is missing: install the npm packages first with `npm ci --prefix tests/node` \
             (run from the crate root; needs Node.js 22+ and npm)",
            manifest.display()
        );
    }
}

/// Runs node with inherited stdout/stderr (so its report streams), killing
/// it after [`NODE_DEADLINE`].
fn run_node(envs: Vec<(&'static str, String)>, files: Vec<PathBuf>) -> std::process::ExitStatus {
    let mut command = Command::new("node");
    command
        .arg("--test")
        .arg("--test-timeout=60000")
        .arg("--test-reporter=spec")
        .args(&files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(envs)
        .stdin(Stdio::null());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!("cannot run `node` ({e}): install Node.js 22+ and put it on PATH")
    });
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            return status;
        }
        if started.elapsed() > NODE_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node tests did not finish within {NODE_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The upstream's routes: the event handler under `/eventhandler`, the log
/// at `GET /log`.
fn upstream_app(events: webpubsub::EventRouter, log: &Arc<Log>) -> axum::Router {
    let log = log.clone();
    axum::Router::new()
        .route(
            "/log",
            get(move || {
                let log = log.clone();
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "application/json")],
                        log.snapshot().to_string(),
                    )
                }
            }),
        )
        .nest_service("/eventhandler", events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_npm_packages_work_against_the_emulator() {
    let dir = node_dir();
    check_installed(&dir);
    let only = std::env::var("WPS_NODE_FILES").unwrap_or_default();
    let files = test_files(&dir, |name| {
        name != KEYLESS_FILE && (only.is_empty() || only.split(',').any(|f| f.trim() == name))
    });
    assert!(
        !files.is_empty(),
        "no *.test.mjs files in {}",
        dir.display()
    );

    let log = Arc::new(Log::default());
    let events = webpubsub::EventRouter::builder()
        .hub(HUB, App { log: log.clone() })
        .hub(ISOLATED_HUB, App { log: log.clone() })
        .connection_string(&format!("Endpoint=http://127.0.0.1;AccessKey={KEY}"))
        .build()
        .unwrap();
    let app = upstream_app(events, &log);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let handler =
        || EventHandlerSettings::new(format!("http://{upstream}/eventhandler/{{hub}}/{{event}}"));
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let unreachable = EventHandlerSettings::new(format!("http://{closed}/eventhandler/{{event}}"))
        .system_events([]);
    let emulator = Emulator::builder()
        .access_key(KEY)
        .host("127.0.0.1")
        .upstream_retry_delays([Duration::from_millis(10), Duration::from_millis(50)])
        .hub(HubSettings::new(HUB).event_handler(handler()))
        .hub(HubSettings::new(ISOLATED_HUB).event_handler(handler()))
        .hub(HubSettings::new(DOWN_HUB).event_handler(unreachable))
        .build()
        .unwrap()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();

    let envs = vec![
        ("WPS_CONNECTION_STRING", emulator.connection_string()),
        ("WPS_HUB", HUB.to_owned()),
        ("WPS_HUB_ISOLATED", ISOLATED_HUB.to_owned()),
        ("WPS_ENDPOINT", emulator.endpoint()),
        ("WPS_UPSTREAM_LOG", format!("http://{upstream}/log")),
        ("WPS_HUB_DOWN", DOWN_HUB.to_owned()),
    ];
    println!(
        "emulator at {}, upstream at http://{upstream}; running node --test on {files:?}",
        emulator.endpoint()
    );
    let status = tokio::task::spawn_blocking(move || run_node(envs, files))
        .await
        .expect("the node runner did not panic");
    emulator.shutdown().await;
    assert!(
        status.success(),
        "the node tests failed ({status}); their report is above"
    );
}

/// The resource the keyless hubs' event handler authenticates to (the
/// `aud` of the emulator's upstream bearer tokens).
const KEYLESS_UPSTREAM_AUDIENCE: &str = "api://npm-keyless-upstream";

/// A file removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn write(prefix: &str, contents: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{nanos}.pem", std::process::id()));
        std::fs::write(&path, contents).expect("writing a temporary file");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A token of the emulator's issuer for the app registration, but for
/// another audience (`api://someone-else`): the token endpoint mints none
/// such, so it is signed directly.
fn other_audience_token(emulator: &webpubsub_emulator::RunningEmulator) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    emulator
        .__sign_entra_token(&json!({
            "aud": "api://someone-else",
            "iss": emulator.issuer(),
            "iat": now, "nbf": now, "exp": now + 3600,
            "azp": emulator.client_id().to_string(),
            "idtyp": "app",
            "oid": webpubsub_emulator::DEFAULT_APP_OBJECT_ID.to_string(),
            "tid": emulator.tenant_id().to_string(),
            "ver": "2.0",
        }))
        .expect("the emulator signs claims")
}

/// `tests/node/keyless.test.mjs`: `@azure/web-pubsub` with a token
/// credential (the emulator's own Entra ID) over the emulator's HTTPS
/// listener, local auth disabled, `@azure/web-pubsub-client` connecting
/// with the `:generateToken` URL; the upstream checks the emulator's
/// managed-identity bearer token with the core's `EntraValidation`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_service_sdk_works_keyless_with_a_token_credential() {
    let dir = node_dir();
    check_installed(&dir);
    let files = test_files(&dir, |name| name == KEYLESS_FILE);
    assert_eq!(files.len(), 1, "tests/node/{KEYLESS_FILE} is missing");

    // The upstream's address goes into the hub settings, and the
    // emulator's Entra ID address into the upstream's validation: bind
    // first, start the emulator, then serve.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let handler = || {
        EventHandlerSettings::new(format!("http://{upstream}/eventhandler/{{hub}}/{{event}}"))
            .managed_identity(KEYLESS_UPSTREAM_AUDIENCE)
    };
    let emulator = Emulator::builder()
        .disable_local_auth(true)
        .https_port(0)
        .host("127.0.0.1")
        .upstream_retry_delays([Duration::from_millis(10), Duration::from_millis(50)])
        .hub(HubSettings::new(HUB).event_handler(handler()))
        .hub(HubSettings::new(ISOLATED_HUB).event_handler(handler()))
        .build()
        .unwrap()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let https_endpoint = emulator.https_endpoint().expect("the HTTPS listener is on");
    let certificate = TempFile::write(
        "webpubsub-npm-keyless-cert",
        emulator
            .certificate_pem()
            .expect("the HTTPS listener has a certificate"),
    );
    assert!(
        !emulator.connection_string().contains("AccessKey="),
        "local auth is off: {}",
        emulator.connection_string()
    );

    // No key anywhere: the upstream trusts only the emulator's managed
    // identity, by its bearer token.
    let log = Arc::new(Log::default());
    let validation = || {
        webpubsub::entra::EntraValidation::new(emulator.tenant_id().to_string())
            .authority(emulator.entra_base())
            .audience(KEYLESS_UPSTREAM_AUDIENCE)
            .allowed_caller(webpubsub_emulator::DEFAULT_MANAGED_IDENTITY_OBJECT_ID.to_string())
    };
    let events = webpubsub::EventRouter::builder()
        .hub(HUB, App { log: log.clone() })
        .hub(ISOLATED_HUB, App { log: log.clone() })
        .entra(validation())
        .build()
        .unwrap();
    let app = upstream_app(events, &log);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let envs = vec![
        (
            "NODE_EXTRA_CA_CERTS",
            certificate.0.to_string_lossy().into_owned(),
        ),
        ("WPS_CONNECTION_STRING", emulator.connection_string()),
        ("WPS_HUB", HUB.to_owned()),
        ("WPS_HUB_ISOLATED", ISOLATED_HUB.to_owned()),
        ("WPS_ENDPOINT", emulator.endpoint()),
        ("WPS_UPSTREAM_LOG", format!("http://{upstream}/log")),
        ("WPS_HTTPS_ENDPOINT", https_endpoint.clone()),
        ("WPS_TOKEN_ENDPOINT", emulator.token_endpoint()),
        (
            "WPS_CLIENT_ID",
            webpubsub_emulator::DEFAULT_CLIENT_ID.to_string(),
        ),
        ("WPS_CLIENT_SECRET", emulator.client_secret().to_owned()),
        ("WPS_ISSUER", emulator.issuer()),
        ("WPS_OTHER_AUDIENCE_TOKEN", other_audience_token(&emulator)),
    ];
    println!(
        "keyless emulator at {} and {https_endpoint}, Entra ID at {}, upstream at \
         http://{upstream}; running node --test on {files:?}",
        emulator.endpoint(),
        emulator.entra_base()
    );
    let status = tokio::task::spawn_blocking(move || run_node(envs, files))
        .await
        .expect("the node runner did not panic");
    emulator.shutdown().await;
    drop(certificate);
    assert!(
        status.success(),
        "the keyless node tests failed ({status}); their report is above"
    );
}

//! The whole product on one machine: a browser chat built on `webpubsub`.
//!
//! One process runs
//! - the **emulator** of the Web PubSub service (embedded), with its live
//!   view at `/_emulator`,
//! - the **event handler**, written with `#[webpubsub::event_handler]`:
//!   `connect` takes the user from the negotiated token and joins the room,
//!   `message` events are broadcast to the room through the service client,
//!   `connected` / `disconnected` announce who joined and left and who is
//!   online, and `online` answers the page's "Who's here?" (an `invoke`:
//!   the reply goes to the asker only),
//! - a **negotiate** endpoint and the **web page** (plain HTML and JS on the
//!   browser's WebSocket API, no build step).
//!
//! ```sh
//! cargo run --example chat              # then open the URL it prints
//! # against a real hub instead of the emulator:
//! WebPubSubConnectionString='Endpoint=https://<name>.webpubsub.azure.com;AccessKey=<key>;Version=1.0;' \
//!   cargo run --example chat
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Mutex;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use webpubsub::client::Message;
use webpubsub::client_access::Negotiate;
use webpubsub::extract::Json;
use webpubsub::{
    ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest, ConnectionContext,
    DisconnectedEventRequest, EventErrorResponse, EventRouter, WebPubSubServiceClient,
};
use webpubsub_emulator::{Emulator, EventHandlerSettings, HubSettings, RunningEmulator};

#[path = "../common/mod.rs"]
mod common;

/// The hub of the chat.
const HUB: &str = "chat";
/// The one room everybody joins.
const ROOM: &str = "lobby";
/// The longest accepted name and message.
const MAX_NAME: usize = 32;
const MAX_TEXT: usize = 2000;

/// The event handler: who is online, and a client to talk to the service.
struct Chat {
    service: WebPubSubServiceClient,
    /// User → number of open connections (a user may have several tabs).
    online: Mutex<BTreeMap<String, usize>>,
}

impl Chat {
    fn online(&self) -> Vec<String> {
        self.online
            .lock()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Sends a JSON notice to everybody in the room.
    async fn tell_room(&self, notice: serde_json::Value) {
        let message = Message::from(notice);
        if let Err(e) = self.service.send_to_group(ROOM, message).await {
            tracing::warn!(error = %e, "could not send to the room");
        }
    }
}

#[webpubsub::event_handler]
impl Chat {
    /// Accepts users whose token names them, and puts them in the room.
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        let user = req
            .context
            .user_id
            .clone()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| EventErrorResponse::unauthorized("negotiate a URL with a name first"))?;
        Ok(ConnectEventResponse::new().user_id(user).groups([ROOM]))
    }

    async fn connected(&self, req: ConnectedEventRequest) {
        let user = req.context.user_id.unwrap_or_default();
        let first = {
            let mut online = self.online.lock().unwrap_or_else(|e| e.into_inner());
            let count = online.entry(user.clone()).or_default();
            *count += 1;
            *count == 1
        };
        if first {
            self.tell_room(json!({ "kind": "joined", "user": user, "online": self.online() }))
                .await;
        } else {
            // Another tab of someone already here: just refresh the list.
            self.tell_room(json!({ "kind": "online", "online": self.online() }))
                .await;
        }
    }

    async fn disconnected(&self, req: DisconnectedEventRequest) {
        let user = req.context.user_id.unwrap_or_default();
        let last = {
            let mut online = self.online.lock().unwrap_or_else(|e| e.into_inner());
            match online.get_mut(&user) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    online.remove(&user);
                    true
                }
                None => false,
            }
        };
        if last {
            self.tell_room(json!({ "kind": "left", "user": user, "online": self.online() }))
                .await;
        }
    }

    /// Who is online, answered to the asker only: the page's "Who's here?"
    /// button sends it as an `invoke` (the reply comes back as its
    /// `invokeResponse`, not as a broadcast).
    #[user_event("online")]
    async fn who_is_online(&self) -> Json<Vec<String>> {
        Json(self.online())
    }

    /// A chat line: broadcast to the room with its author.
    #[user_event("message")]
    async fn message(
        &self,
        ctx: ConnectionContext,
        text: String,
    ) -> Result<(), EventErrorResponse> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_TEXT {
            return Err(EventErrorResponse::user_error(
                "messages are 1-2000 characters",
            ));
        }
        let user = ctx.user_id.unwrap_or_default();
        self.tell_room(json!({ "kind": "message", "user": user, "text": text }))
            .await;
        Ok(())
    }
}

/// The web page's files, compiled in so the example runs from anywhere.
const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// The application: page, negotiate endpoint and event handler.
fn app(connection_string: &str) -> Result<Router, webpubsub::ConfigError> {
    let service = WebPubSubServiceClient::from_connection_string(connection_string, HUB)?;
    // A demo: visitors name themselves. A real app takes the user its auth
    // layer verified (from the request extensions) instead.
    let negotiate = Negotiate::new(service.signer().clone()).user_id_with(|parts| {
        let query = parts.uri.query()?;
        let name = url_name(query)?;
        let name = name.trim();
        (!name.is_empty() && name.chars().count() <= MAX_NAME).then(|| name.to_owned())
    });
    let events = EventRouter::builder()
        .hub(
            HUB,
            Chat {
                service,
                online: Mutex::new(BTreeMap::new()),
            },
        )
        .connection_string(connection_string)
        .build()?;
    Ok(Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    INDEX_HTML,
                )
            }),
        )
        .route(
            "/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP_JS,
                )
            }),
        )
        .route(
            "/style.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    STYLE_CSS,
                )
            }),
        )
        .route("/healthz", get(|| async { "ok".into_response() }))
        .route_service("/negotiate", negotiate)
        .nest_service("/eventhandler", events))
}

/// The `name` query parameter, URL-decoded.
fn url_name(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "name")
        .map(|(_, value)| value.into_owned())
}

/// What [`start`] runs: the app, and the emulator unless Azure is used.
struct Running {
    app: SocketAddr,
    emulator: Option<RunningEmulator>,
    server: tokio::task::JoinHandle<()>,
}

/// Starts the chat on `app_port`; with no connection string, an embedded
/// emulator on `emulator_port` too (0 picks free ports). Errors say what to
/// change: a busy port names `PORT` or `EMULATOR_PORT`.
async fn start(
    connection_string: Option<String>,
    app_port: u16,
    emulator_port: u16,
) -> Result<Running, Box<dyn std::error::Error>> {
    let listener = common::listen(app_port, "PORT").await?;
    let app_addr = listener.local_addr()?;
    let (router, emulator) = match connection_string {
        Some(conn) => (app(&conn).map_err(common::connection_string_error)?, None),
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
            (app(&emulator.connection_string())?, Some(emulator))
        }
    };
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Running {
        app: app_addr,
        emulator,
        server,
    })
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

/// Reads the settings (blank variables count as unset), starts the chat and
/// serves it until Ctrl-C.
async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let running = start(
        common::var("WebPubSubConnectionString"),
        common::port("PORT", 3000)?,
        common::port("EMULATOR_PORT", 8080)?,
    )
    .await?;

    println!();
    println!("  Chat: open http://{}/", running.app);
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

    use std::io::{BufRead, BufReader, Read};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use base64::Engine as _;

    /// How long the browser script may run before it is killed (the script
    /// gives up by itself after 60 s).
    const NODE_DEADLINE: Duration = Duration::from_secs(90);
    /// What to run when the browser test's tools are missing.
    const INSTALL_HINT: &str = "run `bash .ci/test`, which installs them \
        (`apt-get install -y chromium` and `npm ci --prefix emulator/tests/node`)";

    /// The chat and its emulator on free ports, and the app's base URL.
    async fn running() -> (Running, String) {
        let running = start(None, 0, 0).await.expect("the chat starts");
        let base = format!("http://{}", running.app);
        (running, base)
    }

    async fn stop(running: Running) {
        if let Some(emulator) = running.emulator {
            emulator.shutdown().await;
        }
        running.server.abort();
    }

    /// The claims of a JWT, unverified.
    fn claims(token: &str) -> serde_json::Value {
        let payload = token.split('.').nth(1).expect("a JWT has three parts");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("the payload is base64url");
        serde_json::from_slice(&bytes).expect("the payload is JSON")
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served() {
        let (running, base) = running().await;
        for (path, kind, needle) in [
            ("/", "text/html", "<title>webpubsub chat</title>"),
            ("/app.js", "text/javascript", "json.webpubsub.azure.v1"),
            ("/style.css", "text/css", ".messages"),
        ] {
            let response = reqwest::get(format!("{base}{path}")).await.unwrap();
            assert_eq!(response.status(), 200, "GET {path}");
            let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert!(content_type.starts_with(kind), "GET {path}: {content_type}");
            let body = response.text().await.unwrap();
            assert!(body.contains(needle), "GET {path} lacks {needle:?}");
        }
        stop(running).await;
    }

    #[tokio::test]
    async fn negotiate_signs_a_url_for_the_named_user() {
        let (running, base) = running().await;
        let endpoint = running.emulator.as_ref().unwrap().endpoint();
        let response = reqwest::get(format!("{base}/negotiate?name=Ada%20L."))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).expect("the reply is JSON");
        let url = body["url"].as_str().expect("the reply has a url");
        let ws = endpoint.replacen("http://", "ws://", 1);
        let prefix = format!("{ws}/client/hubs/{HUB}?access_token=");
        assert!(
            url.starts_with(&prefix),
            "{url} does not start with {prefix}"
        );
        let token = url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
            .expect("the url has an access_token");
        let claims = claims(&token);
        assert_eq!(claims["sub"], "Ada L.", "{claims}");
        assert!(
            claims["aud"]
                .as_str()
                .unwrap_or_default()
                .ends_with("/client/hubs/chat"),
            "{claims}"
        );
        stop(running).await;
    }

    #[tokio::test]
    async fn negotiate_without_a_usable_name_is_400() {
        let (running, base) = running().await;
        let too_long = "x".repeat(MAX_NAME + 1);
        for query in [
            "",
            "?name=",
            "?name=%20%20",
            "?other=Ada",
            &format!("?name={too_long}"),
        ] {
            let response = reqwest::get(format!("{base}/negotiate{query}"))
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "GET /negotiate{query}");
        }
        stop(running).await;
    }

    /// Runs `node examples/chat/browser.mjs` against a running chat: two
    /// headless Chromium pages join, talk and leave (see that file). Needs
    /// Debian's chromium and playwright-core from emulator/tests/node.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn browser_chat_end_to_end() {
        // The repository: the npm packages are in emulator/tests/node.
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let mut missing = Vec::new();
        if !Path::new(&chromium).exists() {
            missing.push(format!("Chromium ({chromium})"));
        }
        if !root
            .join("emulator/tests/node/node_modules/playwright-core")
            .is_dir()
        {
            missing.push("emulator/tests/node/node_modules/playwright-core".to_owned());
        }
        if Command::new("node").arg("--version").output().is_err() {
            missing.push("node on PATH".to_owned());
        }
        assert!(
            missing.is_empty(),
            "the browser test needs {}; {INSTALL_HINT}",
            missing.join(", ")
        );

        let (running, base) = running().await;
        let emulator = running.emulator.as_ref().unwrap().endpoint();
        let chat_url = format!("{base}/");
        let (status, output) = tokio::task::spawn_blocking(move || {
            let mut child = Command::new("node")
                .arg("examples/chat/browser.mjs")
                .current_dir(&root)
                .env("CHAT_URL", chat_url)
                .env("EMULATOR_URL", emulator)
                .env("CHROMIUM", chromium)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("node starts");
            let relay = |stream: Box<dyn Read + Send>| {
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        println!("[browser.mjs] {line}");
                        seen.push(line);
                    }
                    seen
                })
            };
            let out = relay(Box::new(child.stdout.take().unwrap()));
            let err = relay(Box::new(child.stderr.take().unwrap()));
            let started = Instant::now();
            let status = loop {
                if let Some(status) = child.try_wait().expect("node runs") {
                    break Some(status);
                }
                if started.elapsed() > NODE_DEADLINE {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let mut output = out.join().unwrap_or_default();
            output.extend(err.join().unwrap_or_default());
            (status, output)
        })
        .await
        .unwrap();
        stop(running).await;

        let tail = output[output.len().saturating_sub(30)..].join("\n");
        match status {
            Some(status) => assert!(
                status.success(),
                "node examples/chat/browser.mjs failed ({status}); its output ends with:\n{tail}"
            ),
            None => panic!(
                "node examples/chat/browser.mjs was still running after {NODE_DEADLINE:?}, killed; \
                 its output ends with:\n{tail}"
            ),
        }
    }

    #[tokio::test]
    async fn a_busy_port_is_named_with_the_variable_that_changes_it() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        for (app_port, emulator_port, variable) in [(port, 0, "PORT"), (0, port, "EMULATOR_PORT")] {
            let Err(error) = start(None, app_port, emulator_port).await else {
                panic!("the chat started with port {port} taken");
            };
            assert_eq!(
                error.to_string(),
                format!(
                    "port {port} is busy: set {variable}=<another port> (or stop the program using it)"
                )
            );
        }
    }

    #[tokio::test]
    async fn a_bad_connection_string_is_named_with_its_variable() {
        let conn = "Endpoint=https://demo.webpubsub.azure.com;Version=1.0;".to_owned();
        let Err(error) = start(Some(conn), 0, 0).await else {
            panic!("the chat started without an access key");
        };
        let message = error.to_string();
        assert!(
            message.starts_with(
                "WebPubSubConnectionString: connection string has no `AccessKey=`; copy it"
            ),
            "{message}"
        );
    }

    #[test]
    fn blank_variables_count_as_unset() {
        for blank in ["", " ", "\t\n"] {
            assert_eq!(common::non_blank(Some(blank.to_owned())), None, "{blank:?}");
        }
        assert_eq!(common::non_blank(None), None);
        assert_eq!(
            common::non_blank(Some("Endpoint=x".to_owned())).as_deref(),
            Some("Endpoint=x")
        );
    }

    #[test]
    fn names_are_read_from_the_query_url_decoded() {
        assert_eq!(url_name("name=Ada%20L.&x=1").as_deref(), Some("Ada L."));
        assert_eq!(url_name("x=1&name=b+c").as_deref(), Some("b c"));
        assert_eq!(url_name("name=%E2%9C%93").as_deref(), Some("✓"));
        assert_eq!(url_name("other=1"), None);
    }
}

//! The `webpubsub-emulator` binary: its command line, and a running
//! instance answering the crate's service client and a WebSocket client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use webpubsub::client_access::ClientAccessOptions;
use webpubsub::WebPubSubServiceClient;

const BIN: &str = env!("CARGO_BIN_EXE_webpubsub-emulator");

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn help_lists_the_options_and_bad_arguments_exit_with_2() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for option in [
        "--port",
        "--bind",
        "--host",
        "--access-key",
        "--hub <NAME=URL>",
        "--max-connections <N>",
        "--max-connections-per-user <N>",
        "--max-groups-per-connection <N>",
        "WebPubSubEmulatorAccessKey",
        "[default: 8080]",
        "RUST_LOG",
    ] {
        assert!(text.contains(option), "--help mentions {option}:\n{text}");
    }

    for args in [
        &["--port", "http"][..],
        &["--hub", "chat"],
        &["--frobnicate"],
        &["--port"],
        &["--max-connections", "0"],
        &["--bind", "nowhere"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

/// Starts the binary with `command`'s arguments and environment, and reads
/// the connection string it prints.
async fn start(command: Command) -> (Running, String) {
    let (running, banner) = start_banner(command).await;
    let conn = banner
        .iter()
        .find_map(|line| line.strip_prefix("Connection string: ").map(str::to_owned))
        .expect("the binary prints its connection string");
    (running, conn)
}

/// Starts the binary with `command`'s arguments and environment; what it
/// printed (warnings included) up to the end of its banner.
async fn start_banner(mut command: Command) -> (Running, Vec<String>) {
    let mut child = command
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let banner = tokio::task::spawn_blocking(move || {
        let mut banner = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let last = line.starts_with("Entra ID discovery: ");
            banner.push(line);
            if last {
                return banner;
            }
        }
        panic!("the binary exited before the end of its banner: {banner:#?}");
    })
    .await
    .unwrap();
    (running, banner)
}

#[test]
fn a_busy_port_is_named_with_the_flag_that_changes_it() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["--port", &port])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!("error: port {port} is busy: pass --port <another port> (or stop the program using it)\n")
    );
}

#[test]
fn a_blank_access_key_flag_is_refused_with_the_configuration_error() {
    let out = Command::new(BIN)
        .args(["--port", "0", "--access-key", " "])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        "error: --access-key is empty: give a key (any text that is not blank), \
         or leave the flag out to use the emulator's local key\n"
    );
}

#[test]
fn a_hub_url_without_a_scheme_is_refused_in_the_flags_words() {
    let out = Command::new(BIN)
        .args(["--port", "0", "--hub", "chat=localhost:3000/eventhandler"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(
            "`localhost:3000/eventhandler` is not an http(s) URL with a host \
             (did you mean http://localhost:3000/eventhandler?); write NAME=URL, \
             e.g. chat=http://127.0.0.1:3000/eventhandler"
        ),
        "{err}"
    );
    assert!(!err.contains("connection string"), "{err}");
}

#[tokio::test]
async fn the_access_key_comes_from_its_variable_and_a_blank_one_counts_as_unset() {
    let mut set = Command::new(BIN);
    set.args(["--port", "0"]).env(
        "WebPubSubEmulatorAccessKey",
        "key-from-the-environment-0123456789",
    );
    let (_running, conn) = start(set).await;
    assert!(
        conn.contains("AccessKey=key-from-the-environment-0123456789;"),
        "{conn}"
    );

    let mut blank = Command::new(BIN);
    blank
        .args(["--port", "0"])
        .env("WebPubSubEmulatorAccessKey", "  ");
    let (_running, conn) = start(blank).await;
    assert!(
        conn.contains(&format!(
            "AccessKey={};",
            webpubsub_emulator::DEFAULT_ACCESS_KEY
        )),
        "{conn}"
    );
}

#[tokio::test]
async fn the_binary_serves_rest_and_websocket_clients_with_the_printed_connection_string() {
    let mut command = Command::new(BIN);
    command
        .args([
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--access-key",
            "binary-test-key-0123456789abcdef",
        ])
        .args(["--hub", "chat=http://127.0.0.1:9/eventhandler"]);
    let (_running, conn) = start(command).await;
    assert!(
        conn.contains("AccessKey=binary-test-key-0123456789abcdef"),
        "{conn}"
    );
    assert!(
        !conn.contains("Port=0;"),
        "the real port is printed: {conn}"
    );

    // A hub without event handlers accepts clients with their token's identity.
    let service = WebPubSubServiceClient::from_connection_string(&conn, "lobby").unwrap();
    service.health().await.unwrap();
    let url = service.client_access_url(&ClientAccessOptions::new().user_id("ada"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(service.user_exists("ada").await.unwrap());
    service.send_to_user("ada", "hello").await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a frame in time")
        .expect("the socket is open")
        .expect("a valid frame");
    assert_eq!(frame.into_text().unwrap().as_str(), "hello");
}

#[tokio::test]
async fn listening_off_loopback_warns_that_other_hosts_can_reach_it() {
    let mut command = Command::new(BIN);
    command.args(["--port", "0", "--bind", "0.0.0.0"]);
    let (_running, banner) = start_banner(command).await;
    let text = banner.join("\n");
    let warning = banner
        .iter()
        .find(|line| line.contains("WARN") && line.contains("reachable from other hosts"))
        .unwrap_or_else(|| panic!("a warning about other hosts:\n{text}"));
    assert!(warning.contains("access key"), "{warning}");
    assert!(
        warning.contains("loopback only"),
        "says the admin routes stay local: {warning}"
    );

    let mut opened = Command::new(BIN);
    opened.args(["--port", "0", "--bind", "0.0.0.0", "--allow-remote-admin"]);
    let (_running, banner) = start_banner(opened).await;
    let text = banner.join("\n");
    assert!(
        banner.iter().any(|line| line.contains("WARN")
            && line.contains("token endpoint and the live view are reachable from other hosts")),
        "{text}"
    );

    // On loopback it says nothing of the kind.
    let mut local = Command::new(BIN);
    local.args(["--port", "0"]);
    let (_running, banner) = start_banner(local).await;
    let text = banner.join("\n");
    assert!(!text.contains("other hosts"), "{text}");
}

#[tokio::test]
async fn the_banner_prints_a_random_client_secret_and_a_blank_flag_is_refused() {
    let secret_of = |banner: &[String]| {
        banner
            .iter()
            .find_map(|line| {
                line.split("client secret ")
                    .nth(1)
                    .map(|s| s.trim_end_matches(')').to_owned())
            })
            .unwrap_or_else(|| panic!("the banner prints the client secret: {banner:#?}"))
    };
    let mut first = Command::new(BIN);
    first.args(["--port", "0"]);
    let (_a, banner_a) = start_banner(first).await;
    let mut second = Command::new(BIN);
    second.args(["--port", "0"]);
    let (_b, banner_b) = start_banner(second).await;
    let (a, b) = (secret_of(&banner_a), secret_of(&banner_b));
    assert_ne!(a, b, "each run makes its own secret");
    assert!(a.len() >= 32, "{a}");
    assert_ne!(a, "webpubsub-emulator-dev-client-secret");

    let mut chosen = Command::new(BIN);
    chosen.args(["--port", "0", "--client-secret", "my-own-secret"]);
    let (_c, banner) = start_banner(chosen).await;
    assert_eq!(secret_of(&banner), "my-own-secret");

    let out = Command::new(BIN)
        .args(["--port", "0", "--client-secret", "  "])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("--client-secret"), "{err}");
}

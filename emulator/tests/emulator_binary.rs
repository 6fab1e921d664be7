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
async fn start(mut command: Command) -> (Running, String) {
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let conn = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("Connection string: ").map(str::to_owned))
    })
    .await
    .unwrap()
    .expect("the binary prints its connection string");
    (running, conn)
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
    assert!(
        err.starts_with("error: access key is empty or blank"),
        "{err}"
    );
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
